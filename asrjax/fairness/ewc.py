"""Elastic weight consolidation: fine-tune on the cohorts a model fails without forgetting the rest.

The penalty keeps parameters close to the trained model θ* where the original training
data's diagonal Fisher information F says they matter:

    L(θ) = L_target(θ) + λ/2 · Σ_i F_i (θ_i − θ*_i)²,      ∂/∂θ_i = λ F_i (θ_i − θ*_i).

F is estimated from **per-example** gradients on the original training data,
F_i = (1/N) Σ_n (∂ℓ_n/∂θ_i)², ℓ_n the loss of example n alone (`diagonal_fisher`, a
``vmap`` of ``grad`` over the batch axis). Squaring the gradient of a *batch* loss
instead, (Σ_n ∂ℓ_n/∂θ_i)², is the known bug of several public implementations
(avalanche #1099, pytorch-ewc #1): it measures the mean gradient, which is ~0 at a
trained optimum, not the gradients' spread. This is the *empirical* Fisher (gradients of
the reference transcripts' loss), as in Kirkpatrick et al.'s implementation practice.

`ewc` is an optax gradient transformation that adds the penalty's gradient: it keeps θ*
(the parameters it is initialised with, i.e. the run's ``train.init_from`` parameters)
and F in its state, so both are sharded like the parameters by the one trainer,
checkpointed with the optimizer state and restored on resume. Chained before clipping
and the optimizer, the update is the optimizer's on the gradient of L(θ) above; with
λ = 0 it is exactly plain fine-tuning.

References:
  Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks", PNAS 2017.
  Trinh et al., "Reducing geographic disparities in automatic speech recognition via
  elastic weight consolidation", Interspeech 2022.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax


def _check_like(fisher, params) -> None:
  if jax.tree.structure(fisher) != jax.tree.structure(params):
    raise ValueError(f"the Fisher tree does not match the parameters: {jax.tree.structure(fisher)} vs "
                     f"{jax.tree.structure(params)}.")
  bad = [(jnp.shape(f), jnp.shape(p)) for f, p in zip(jax.tree.leaves(fisher), jax.tree.leaves(params))
         if jnp.shape(f) != jnp.shape(p)]
  if bad:
    raise ValueError(f"Fisher and parameter shapes differ, e.g. {bad[0][0]} vs {bad[0][1]}.")


def penalty(params, anchor, fisher, weight: float) -> jax.Array:
  """``weight/2 · Σ_i F_i (θ_i − θ*_i)²`` over every leaf (a scalar).

  Raises:
    ValueError: the trees do not match.
  """
  _check_like(fisher, params)
  _check_like(anchor, params)
  terms = jax.tree.map(lambda p, a, f: jnp.sum(f * jnp.square(p - a)), params, anchor, fisher)
  return 0.5 * weight * sum(jax.tree.leaves(terms))


class EWCState(NamedTuple):
  anchor: optax.Params  # θ*: the parameters the transformation was initialised with
  fisher: optax.Params  # F: the diagonal Fisher, one value per parameter


def ewc(fisher, weight: float) -> optax.GradientTransformation:
  """Adds ``weight · F · (θ − θ*)`` to the gradient (the EWC penalty's gradient).

  Args:
    fisher: the diagonal Fisher (`diagonal_fisher`), a tree like the parameters.
    weight: λ >= 0.

  The anchor θ* is the parameters ``init`` receives. ``update`` needs ``params``.

  Raises:
    ValueError: ``weight`` < 0 or not finite, or (at init) a Fisher tree unlike the
      parameters, or ``update`` without ``params``.
  """
  if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not weight >= 0 or weight == float("inf"):
    raise ValueError(f"the EWC weight must be a finite number >= 0; got {weight!r}.")

  def init_fn(params):
    _check_like(fisher, params)
    return EWCState(jax.tree.map(jnp.array, params),
                    jax.tree.map(lambda f, p: jnp.asarray(f, jnp.result_type(p)), fisher, params))

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("ewc needs the parameters: call update(grads, state, params).")
    updates = jax.tree.map(lambda g, p, a, f: g + weight * f * (p - a), updates, params, state.anchor, state.fisher)
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


def diagonal_fisher(example_loss: Callable, params, batches, *, chunk: int | None = None):
  """The empirical diagonal Fisher ``F = mean_n (∂ℓ_n/∂θ)²`` from per-example gradients.

  Args:
    example_loss: ``(params, example) -> scalar``, the loss of *one* example (a batch
      item with its leading axis removed).
    params: the trained parameters θ*.
    batches: an iterable of batches (trees of ``[B, ...]`` arrays); each example counts once.
    chunk: examples per ``vmap`` (bounds the ``[chunk, |θ|]`` per-example gradients held at
      once); default: the whole batch.

  Raises:
    ValueError: no examples, or a batch whose leaves disagree on B.
  """
  grads_of = jax.jit(jax.vmap(jax.grad(example_loss), in_axes=(None, 0)))
  total, count = jax.tree.map(jnp.zeros_like, params), 0
  for batch in batches:
    sizes = {jnp.shape(x)[0] for x in jax.tree.leaves(batch)}
    if len(sizes) != 1:
      raise ValueError(f"the batch's leaves have different leading sizes {sorted(sizes)}.")
    (b,) = sizes
    step = chunk or b
    for start in range(0, b, step):
      part = jax.tree.map(lambda x, s=start, n=step: x[s:s + n], batch)
      g = grads_of(params, part)
      total = jax.tree.map(lambda t, gi: t + jnp.sum(jnp.square(gi), axis=0), total, g)
      count += jax.tree.leaves(part)[0].shape[0]
  if count == 0:
    raise ValueError("no examples to estimate the Fisher from.")
  return jax.tree.map(lambda t: t / count, total)


def save_fisher(path: str, fisher) -> None:
  """Writes ``fisher`` (a tree of arrays) to ``path`` (msgpack, written atomically)."""
  import numpy as np  # noqa: PLC0415
  from flax import serialization  # noqa: PLC0415

  from asrjax import atomic_file  # noqa: PLC0415

  data = serialization.msgpack_serialize(jax.tree.map(lambda x: np.asarray(x, np.float32), fisher))
  with atomic_file.open(path, "wb") as f:
    f.write(data)


def load_fisher(path: str):
  """The Fisher tree `save_fisher` wrote (nested dicts of float32 arrays).

  Raises:
    FileNotFoundError: no such file (with the command that writes one).
    ValueError: the file is not a Fisher tree (damaged, or another file), or holds
      negative or non-finite values.
  """
  import os  # noqa: PLC0415

  import numpy as np  # noqa: PLC0415
  from flax import serialization  # noqa: PLC0415

  if not os.path.exists(path):
    raise FileNotFoundError(f"no Fisher file {path!r}: estimate one with experiments/fairness_ewc.py (it writes "
                            "fisher.msgpack into the base run's workdir).")
  with open(path, "rb") as f:
    data = f.read()
  try:
    tree = serialization.msgpack_restore(data)
  except Exception as e:  # msgpack raises several types for damaged data
    raise ValueError(f"{path} is not a readable Fisher file ({type(e).__name__}: {e}).") from None
  leaves = jax.tree.leaves(tree)
  if not isinstance(tree, dict) or not leaves or not all(isinstance(x, np.ndarray) for x in leaves):
    raise ValueError(f"{path} does not hold a tree of arrays: not a Fisher file.")
  if not all(np.all(np.isfinite(x)) and np.all(x >= 0) for x in leaves):
    raise ValueError(f"{path}: a diagonal Fisher is finite and >= 0; this one is not.")
  return tree


__all__ = ["EWCState", "diagonal_fisher", "ewc", "load_fisher", "penalty", "save_fisher"]
