"""`train_and_evaluate(config, workdir)`: the one training loop, for every task.

Sections: data and task, mesh & state, checkpoint restore (or initialisation, from
another run's parameters with ``train.init_from``), the loop (jitted sharded step,
logging, periodic checkpoints), evaluation. What a method trains -- batch fields,
parameter sets, objective terms, evaluators -- comes from its task, found by
``config.task`` in `asrjax.tasks.TASKS` (`asrjax.train.task`); models by
``config.model.name`` in `asrjax.models.ENCODERS`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np

from asrjax import atomic_file, models, tasks
from asrjax.train import (averaging, checkpoint as checkpoint_lib, config_check, optimizer as optimizer_lib,
                          run_config, sharding, step as step_lib, summary, task as task_lib)


class TrainingDiverged(RuntimeError):
  """Too many consecutive non-finite steps."""


def build_model(config, vocab_size: int):
  """The `Transducer` ``config.model`` names (`asrjax.models.build`)."""
  return models.build(config.model, vocab_size)


def make_schedule(config):
  """The model's learning-rate schedule (`asrjax.train.optimizer.make_schedule`), for logging."""
  return optimizer_lib.make_schedule(config.optimizer, config.train.num_steps)


def fresh_state(task, key: jax.Array) -> step_lib.TrainState:
  """``task``'s initial `TrainState`: `Task.init` parameters, fresh optimizer states."""
  return step_lib.init_state(task.init(key), task.optimizers(), task.param_sets)


def abstract_state(task, key=None):
  """Shapes and dtypes of ``task``'s fresh `TrainState` (nothing is computed)."""
  return jax.eval_shape(functools.partial(fresh_state, task), jax.random.key(0) if key is None else key)


def restore(config, workdir: str, step: int | None = None, average: int = 1):
  """``(task, {set: params}, steps)`` of a run in ``workdir``, its task built from the workdir alone.

  The parameters are those of checkpoint ``step``, or of the newest readable one when
  ``step`` is None; with ``average = N > 1``, the element-wise mean of the N newest
  checkpoints up to ``step`` (icefall's ``--avg``; `averaging.average_trees`).

  Raises:
    FileNotFoundError: no checkpoint in ``workdir`` (or, from the task, no tokenizer).
    ValueError: ``step`` is not there, or fewer than ``average`` checkpoints are
      held up to it (`averaging.select_steps`, which lists the steps held).
    checkpoint_lib.CheckpointMismatch: the checkpoints hold another parameter tree
      than ``config`` builds (the message names the leaves that differ).
    checkpoint_lib.CheckpointError: a checkpoint asked for is unreadable or fails its
      integrity check (or, with ``step`` None and ``average`` 1, every one does).

  Reading never changes ``workdir``: damaged checkpoints are skipped, not quarantined
  (the training run that resumes there moves them out of its rotation).
  """
  config_check.validate(config)
  run_config.check_compatible(config, workdir)
  task = tasks.build(config, workdir)
  abstract = abstract_state(task)
  mesh = sharding.make_mesh(devices=jax.local_devices()[:1])
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"))
  target = checkpoint_lib.abstract_like(abstract, sharding.tree_shardings(mesh, abstract))
  names = task.param_sets
  try:
    if step is None and average == 1:  # the newest readable checkpoint, past damaged ones
      restored = ckpt.restore_latest(target, quarantine=False)
      if restored is None:
        raise FileNotFoundError(f"no checkpoint under {ckpt.directory}.")
      trees, steps = [restored[0].param_sets(names)], (restored[2],)
    else:  # exactly the steps asked for, never substitutes
      steps = averaging.select_steps(ckpt.all_steps(), step, average)
      trees = [ckpt.restore(target, s)[0].param_sets(names) for s in steps]
    params = trees[0] if len(trees) == 1 else averaging.average_trees(trees)
  except checkpoint_lib.CheckpointMismatch as e:
    raise _another_config(e, workdir, "evaluate") from None
  return task, params, steps


def _another_config(e: checkpoint_lib.CheckpointMismatch, workdir: str, verb: str, alternative: str = ""):
  """``e`` with the hint a user can act on: the workdir was trained with another config."""
  return checkpoint_lib.CheckpointMismatch(
      f"{e}\n{workdir} was trained with another config than this one: {verb} with the config and overrides "
      f"the run was trained with (model sizes, train.prune_range, ...){alternative}.")


def parse_init_from(value: str) -> tuple[str, int | None]:
  """``"<workdir>[:step]"`` -> ``(workdir, step or None)``.

  Raises:
    ValueError: an empty workdir or a step that is not an integer >= 0.
  """
  path, sep, step = value.rpartition(":")
  if not sep or not step.isdigit():  # no step (a ':' in the path itself is kept)
    path, step = value, None
  if not path:
    raise ValueError(f"train.init_from must be '<workdir>' or '<workdir>:<step>'; got {value!r}.")
  return path, (int(step) if step is not None else None)


def first_difference(expected, actual) -> str | None:
  """The first leaf (in path order) where two parameter trees differ in presence, shape or
  dtype, described for a message; None when they match."""
  flat = lambda t: {k: (shape, str(np.dtype(x.dtype))) for k, (shape, x) in _leaves(t).items()}
  want, got = flat(expected), flat(actual)
  for key in sorted(set(want) | set(got)):
    if key not in got:
      return f"{key} {want[key][0]} {want[key][1]} is missing there"
    if key not in want:
      return f"{key} {got[key][0]} {got[key][1]} is there but not in this model"
    if want[key] != got[key]:
      return f"{key} is {got[key][0]} {got[key][1]} there, {want[key][0]} {want[key][1]} here"
  return None


def initial_params(config, task, abstract) -> dict | None:
  """The parameter sets ``train.init_from`` names, checked against ``abstract`` (this run's fresh
  state), or None when it is unset. The other run is read with its own config.json (so its
  optimizer may differ); its parameter tree must match this one leaf for leaf.

  Raises:
    FileNotFoundError / checkpoint errors: as `restore` on the other workdir.
    checkpoint_lib.CheckpointMismatch: the trees differ (naming the first differing leaf).
  """
  value = config.train.get("init_from", "")
  if not value:
    return None
  source, step = parse_init_from(value)
  source_config = run_config.load(source) or config
  _, params, steps = restore(source_config, source, step)
  names = task.param_sets
  shared = {n: params[n] for n in names if n in params}  # a set the other run lacks (an adversary) starts fresh
  if names[0] not in shared:
    raise checkpoint_lib.CheckpointMismatch(f"train.init_from={value!r}: that run has no {names[0]!r} parameters "
                                            f"(it has {sorted(params)}).")
  expected = {n: s for n, s in abstract.param_sets(names).items() if n in shared}
  if config.train.get("init_transfer", "exact") == "overlap":
    try:
      plan = transfer_plan(expected, shared, getattr(task, "vocab_growth", None))
    except ValueError as e:
      raise checkpoint_lib.CheckpointMismatch(f"train.init_from={value!r} (init_transfer='overlap'): {e}") from None
    logging.info("parameters initialised from %s step %d (fresh optimizer): %s", source, steps[0],
                 describe_plan(plan))
    return shared
  diff = first_difference(expected, shared)
  if diff is not None:
    raise checkpoint_lib.CheckpointMismatch(
        f"train.init_from={value!r}: its parameters do not fit this model: {diff}. Initialise from a run of the "
        "same model sizes (and train.prune_range), set train.init_transfer='overlap' to take the leaves "
        "the two models share, or train from scratch.")
  logging.info("parameters initialised from %s step %d (fresh optimizer)", source, steps[0])
  return shared


def starting_state(config, task, txs, abstract, shardings):
  """The `TrainState` a run without checkpoints starts from: fresh (``config.train.seed``), or
  `initial_params`' (``train.init_from``) with fresh ones for the sets it lacks -- and, with
  ``train.init_transfer='overlap'``, for the leaves `transfer_plan` leaves fresh -- and a
  fresh optimizer."""
  names = task.param_sets
  init = lambda key: step_lib.init_state(task.init(key), txs, names)
  key = jax.random.key(config.train.seed)
  start_params = initial_params(config, task, abstract)
  if start_params is None:
    return jax.jit(init, out_shardings=shardings)(key)
  start_params = jax.tree.map(np.asarray, start_params)  # restored on one device; the mesh may hold more
  if config.train.get("init_transfer", "exact") != "overlap":
    fresh = lambda key, p: {**task.init(key), **p} if set(p) != set(names) else p
  else:  # the leaves the plan copies or grows, the rest fresh
    plan = transfer_plan({n: s for n, s in abstract.param_sets(names).items() if n in start_params}, start_params,
                         getattr(task, "vocab_growth", None))

    def fresh(key, p):
      params = task.init(key)
      return {**params, **apply_transfer(plan, {n: params[n] for n in p}, p)}
  return jax.jit(lambda key, p: step_lib.init_state(fresh(key, p), txs, names), out_shardings=shardings)(
      key, start_params)


def _leaves(tree) -> dict:
  """``{path string: (shape, leaf)}`` of a parameter tree (arrays or shape structs)."""
  return {jax.tree_util.keystr(p): (tuple(np.shape(x)), x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def transfer_plan(fresh, source, vocab_growth: tuple[int, int] | None = None) -> dict[str, str]:
  """What ``train.init_transfer='overlap'`` does with each leaf of ``fresh`` (this model's
  parameter tree, arrays or shape structs), given ``source`` (another run's): ``"copy"``
  (same path and shape), ``"grow"`` (same path, shapes equal but in one axis whose sizes are
  ``vocab_growth = (source vocabulary, this vocabulary)``: the source's entries fill the
  first positions, the new tokens' stay fresh), or ``"fresh"`` (no such path there). Also
  ``"unused"`` for source paths this model lacks (e.g. the pruned loss's projections).

  Raises:
    ValueError: a leaf at the same path with another shape (a size of the model differs:
      initialising it freshly would hide that), or nothing to copy at all.
  """
  want, got = ({k: shape for k, (shape, _) in _leaves(t).items()} for t in (fresh, source))
  plan = {}
  for key, shape in want.items():
    if key not in got:
      plan[key] = "fresh"
    elif got[key] == shape:
      plan[key] = "copy"
    else:
      differ = [i for i, (a, b) in enumerate(zip(got[key], shape)) if a != b]
      if (vocab_growth is None or len(got[key]) != len(shape) or len(differ) != 1
          or (got[key][differ[0]], shape[differ[0]]) != tuple(vocab_growth)):
        grow = "" if vocab_growth is None else f" (only a vocabulary axis may grow, {vocab_growth[0]} -> {vocab_growth[1]})"
        raise ValueError(f"{key} is {got[key]} there, {shape} here{grow}: the models' sizes differ.")
      plan[key] = "grow"
  plan.update({key: "unused" for key in got if key not in want})
  if not any(v in ("copy", "grow") for v in plan.values()):
    raise ValueError("the two models share no parameter: nothing to transfer.")
  return plan


def describe_plan(plan: dict[str, str]) -> str:
  """``"42 leaves copied, 3 leaves grown (new tokens fresh), 13 leaves fresh (e.g. <path>), 4 leaves not
  used (e.g. <path>)"`` for the log (kinds with no leaf left out)."""
  parts = []
  for action, word in (("copy", "copied"), ("grow", "grown (new tokens fresh)"), ("fresh", "fresh"),
                       ("unused", "not used")):
    keys = [k for k, v in plan.items() if v == action]
    if keys:
      parts.append(f"{len(keys)} leaves {word}" + (f" (e.g. {keys[0]})" if action in ("fresh", "unused") else ""))
  return ", ".join(parts)


def apply_transfer(plan: dict[str, str], fresh, source):
  """``fresh`` with ``source``'s leaves put in as `transfer_plan` says (traceable: jit it)."""
  got = {k: x for k, (_, x) in _leaves(source).items()}

  def put(path, x):
    key = jax.tree_util.keystr(path)
    action = plan.get(key, "fresh")
    if action == "copy":
      return jax.numpy.asarray(got[key], x.dtype)
    if action == "grow":
      return jax.numpy.asarray(x).at[tuple(slice(0, n) for n in np.shape(got[key]))].set(
          jax.numpy.asarray(got[key], x.dtype))
    return x

  return jax.tree_util.tree_map_with_path(put, fresh)


def params_digest(params) -> str:
  """sha256 over every parameter's bytes, in tree order (compare runs and hosts exactly)."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(params):
    h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return h.hexdigest()


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains ``config``'s task in ``workdir`` (resuming from its checkpoints), then evaluates."""
  config_check.validate(config)  # every field, before the split is opened or anything is written
  run_config.check_compatible(config, workdir)  # resuming with another model or front end fails here
  os.makedirs(workdir, exist_ok=True)
  run_config.save(config, workdir)  # the workdir remembers its run (evaluation reads it)
  # ---------------------------------------------------------------- data, task
  train_split = tasks.open_train_split(config, workdir)
  init_from = config.train.get("init_from", "")
  if init_from and tasks.task_name(config) in ("transducer_asr", "multitalker_asr"):
    tasks.transducer_asr.inherit_files(config, parse_init_from(init_from)[0], workdir)
  task = tasks.build(config, workdir, train_split)
  task_lib.check_task(task)
  # ---------------------------------------------------------------- mesh, state
  mesh = sharding.make_mesh(fsdp=config.train.fsdp)
  txs = task.optimizers()
  names = task.param_sets
  init = lambda key: step_lib.init_state(task.init(key), txs, names)
  abstract = jax.eval_shape(init, jax.random.key(config.train.seed))
  state_sh = sharding.tree_shardings(mesh, abstract)
  # ---------------------------------------------------------------- checkpoint restore or initialisation
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=config.train.keep_checkpoints,
                                     save_interval_steps=config.train.checkpoint_every)
  try:  # damaged newer checkpoints are moved to checkpoints/quarantine, out of the rotation
    restored = ckpt.restore_latest(checkpoint_lib.abstract_like(abstract, state_sh))
  except checkpoint_lib.CheckpointMismatch as e:
    raise _another_config(e, workdir, "resume", ", or train in a new workdir") from None
  if restored is None:
    state = starting_state(config, task, txs, abstract, state_sh)
    data_state = {"step": 0}
  else:
    state, data_state, _ = restored
    logging.info("resumed from step %d", int(state.step))
  it = task.batches(int(data_state["step"]))
  logging.info("%s, %d dropped; params %d", task.describe(), it.dropped,
               sum(x.size for x in jax.tree.leaves(abstract.params)))
  # ---------------------------------------------------------------- loop
  batch_sh = sharding.batch_sharding(mesh)
  train_fn = jax.jit(functools.partial(step_lib.train_step, task=task, txs=txs),
                     in_shardings=(state_sh, batch_sh, sharding.replicated(mesh)),
                     out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=(0,))
  key = jax.random.key(config.train.seed + 1)
  writer = summary.SummaryWriter(os.path.join(workdir, "tensorboard"), enabled=jax.process_index() == 0)
  schedule = make_schedule(config)
  start, utts, consecutive_bad = time.time(), 0, 0
  prior_seconds = float(data_state.get("train_seconds", 0.0))  # the time budget spans restarts
  train_seconds = lambda: prior_seconds + time.time() - start
  history = []
  while int(state.step) < config.train.num_steps:
    if config.train.max_train_seconds:
      over = train_seconds() > config.train.max_train_seconds
      if jax.process_count() > 1:  # every host must stop at the same step
        over = bool(multihost_utils.broadcast_one_to_all(np.asarray(over)))
      if over:
        logging.info("time budget reached at step %d", int(state.step))
        break
    host_batch = next(it)
    arrays = {k: host_batch[k] for k in task.batch_fields}
    batch = jax.tree.map(lambda x: jax.make_array_from_process_local_data(batch_sh, x), arrays)
    step_no = int(state.step)
    state, metrics = train_fn(state, batch, jax.random.fold_in(key, step_no))
    utts += config.data.batch_size
    consecutive_bad = 0 if bool(metrics["finite"]) else consecutive_bad + 1
    if consecutive_bad >= config.train.max_consecutive_nonfinite:
      raise TrainingDiverged(f"{consecutive_bad} consecutive non-finite steps at step {step_no}; stopping.")
    if step_no % config.train.log_every == 0:
      m = {k: float(v) for k, v in metrics.items() if k != "finite"}
      history.append({"step": step_no, **m})
      elapsed = time.time() - start
      writer.scalars(step_no, {**m, "learning_rate": float(schedule(step_no)), "skipped": int(state.skipped),
                               "utt_per_s": utts / elapsed, "elapsed_s": elapsed}, prefix="train/")
    ckpt.save(int(state.step), state, {**it.state(), "train_seconds": train_seconds()})
  if ckpt.latest_step() != int(state.step):
    ckpt.save(int(state.step), state, {**it.state(), "train_seconds": train_seconds()}, force=True)
  ckpt.close()
  it.close()
  # ---------------------------------------------------------------- evaluation
  params = jax.device_get(state.param_sets(names))
  results = {"train_seconds": train_seconds(), "steps": int(state.step), "skipped": int(state.skipped),
             "history": history, "params_digest": params_digest(params[names[0]])}
  for name, (record, scalars) in task.evaluate(params, int(state.step)).items():
    results[name] = record
    writer.scalars(int(state.step), {f"{name}_{k}": v for k, v in scalars.items()}, prefix="eval/")
  writer.close()
  if jax.process_index() == 0:
    with atomic_file.open(os.path.join(workdir, "results.json")) as f:
      json.dump(results, f, indent=1)  # the loss history may hold NaN (skipped steps)
  return results
