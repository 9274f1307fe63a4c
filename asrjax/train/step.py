"""One training step of any task: value and gradient of each parameter set's objective, update.

The step is a pure function ``(state, batch, key) -> (state, metrics)`` jitted once per
batch shape over the device mesh (`asrjax.train.sharding`); what it minimises comes from
the task (`asrjax.train.task`). Parameter sets are updated in the task's order, each on
its own objective with the sets before it already updated. A set whose objective or
gradient is not finite keeps its parameters and optimizer state, and the step counts in
``state.skipped``; the loop decides when too many skips mean stopping.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class ParamSet:
  """A further parameter set (`TrainState.others`) and its optimizer state."""

  params: Any
  opt_state: Any


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any  # the task's first parameter set: the model
  opt_state: Any
  skipped: jax.Array  # steps on which some set's objective or gradient was not finite
  others: dict = flax.struct.field(default_factory=dict)  # {name: ParamSet}, the task's further sets

  def param_sets(self, names) -> dict:
    """``{name: params}`` of every set, ``names[0]`` being `params`."""
    return {names[0]: self.params, **{n: self.others[n].params for n in names[1:]}}


def init_state(params: dict, txs: dict, names) -> TrainState:
  """A fresh state: ``params[name]`` with ``txs[name].init`` for each of ``names``."""
  first, rest = names[0], names[1:]
  return TrainState(jnp.zeros((), jnp.int32), params[first], txs[first].init(params[first]), jnp.zeros((), jnp.int32),
                    {n: ParamSet(params[n], txs[n].init(params[n])) for n in rest})


def train_step(state: TrainState, batch: dict, key: jax.Array, *, task, txs: dict):
  """Updates every parameter set of ``task`` once (see the module docstring).

  Metrics: the first set's objective terms and metrics under their names, its
  ``objective`` value and ``grad_norm``; a further set's as ``<set>/<name>``; ``finite``
  (every set's objective and gradient finite).
  """
  names = task.param_sets
  current = state.param_sets(names)
  opt_states = {names[0]: state.opt_state, **{n: state.others[n].opt_state for n in names[1:]}}
  metrics, all_finite = {}, jnp.asarray(True)
  for i, name in enumerate(names):
    set_key = key if i == 0 else jax.random.fold_in(key, i)

    def value(p, name=name, set_key=set_key):
      objective = task.objective({**current, name: p}, batch, set_key, state.step, trained=name)
      return objective.value(), objective

    (loss, objective), grads = jax.value_and_grad(value, has_aux=True)(current[name])
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    updates, new_opt = txs[name].update(grads, opt_states[name], current[name])
    new_params = optax.apply_updates(current[name], updates)
    keep = lambda new, old, finite=finite: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    current = {**current, name: keep(new_params, current[name])}
    opt_states[name] = keep(new_opt, opt_states[name])
    prefix = "" if i == 0 else f"{name}/"
    metrics.update({f"{prefix}{k}": v for k, v in {**objective.terms, **objective.metrics}.items()})
    metrics.update({f"{prefix}objective": loss, f"{prefix}grad_norm": grad_norm})
    all_finite = all_finite & finite
  new_state = TrainState(
      step=state.step + 1,
      params=current[names[0]],
      opt_state=opt_states[names[0]],
      skipped=state.skipped + (~all_finite).astype(jnp.int32),
      others={n: ParamSet(current[n], opt_states[n]) for n in names[1:]},
  )
  return new_state, {**metrics, "finite": all_finite}
