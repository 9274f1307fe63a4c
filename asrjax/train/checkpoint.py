"""Checkpoints with orbax `CheckpointManager`: async saves, keep-N, resume, verified restores.

A checkpoint holds the `TrainState` (sharded arrays, restored onto the current
mesh from an abstract target), the input pipeline's state (its step, JSON) and an
integrity record (JSON), all three items of one orbax step directory, so orbax's
atomic commit covers the record too.

Integrity. At save, before the state goes to orbax, every array gets a 64-bit
checksum of its values (`state_checksums`), computed on the devices where the
array lives by one jitted reduction: sharding-independent and multi-host safe
(XLA sums over the shards; nothing is gathered to a host), exact on every backend
(integer arithmetic mod 2**32), compiled once per tree (seconds on a CPU for a few
hundred leaves) and then a small fraction of the save itself. The record holds each leaf's path, shape, dtype
and checksum, a sha256 of the data state's JSON, and a sha256 of itself. At
restore the checksums are recomputed over the restored arrays: any restored value
that differs from the saved one is caught (bytes that no value depends on, e.g. a
file's unused tail, change nothing restored and are not reported). A mismatch, a
damaged or missing record, or an unreadable file is a `CheckpointError`.
Checkpoints written before asrjax recorded digests (no record item, and orbax's
step metadata lists none) are restored unverified with a warning naming them.

Fallback and rotation. `restore_latest` walks back from the newest step. Once an
older checkpoint restores and verifies, every newer one that failed is moved out
of orbax's rotation to ``<directory>/quarantine/<step>.corrupt`` (never deleted:
the user may inspect it), and a warning names each one, why, and where it went;
so rotation never keeps a checkpoint found damaged in place of a good one, and a
new save of a quarantined step's number writes a fresh directory. (A damaged
checkpoint older than the newest good one is not read at resume, so it stays in
the rotation until it is read or rotated out.) When no
checkpoint restores, nothing is moved (the cause may be shared: a wrong target,
the filesystem) and the error names every failure; training never silently
starts from scratch over a broken directory. `restore` reads one given step (for
evaluating an earlier checkpoint) and never substitutes another.

Another config. Before any array is read, the target's leaf paths, shapes and
dtypes are compared with those recorded (orbax's metadata for old checkpoints);
a difference raises `CheckpointMismatch` naming the first leaves that differ. It
means the target was built from another config, not damage: `restore_latest`
raises it at once and never falls back past or quarantines good checkpoints.

Not damage either. A read that fails for a reason outside the checkpoint (permission
denied, an I/O error, a timeout: `PermissionError`, `TimeoutError`, ``EIO``, or
tensorstore's ``PERMISSION_DENIED`` / ``UNAVAILABLE`` / ``DEADLINE_EXCEEDED``
statuses) raises `CheckpointUnavailable` at once, on every process: a flaky
filesystem must not move a good newest checkpoint out of the rotation.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from typing import Any

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

_RECORD = "integrity"  # the orbax item holding the integrity record
_RECORD_VERSION = 1
_MAX_NAMED = 10  # leaves named in a mismatch or integrity message


class CheckpointError(RuntimeError):
  """A checkpoint could not be restored (unreadable, damaged, or failed its integrity check)."""


class CheckpointUnavailable(CheckpointError):
  """A checkpoint could not be read for a reason outside it (permissions, I/O, a timeout):
  not damage, so nothing falls back past it or moves it (`restore_latest` re-raises)."""


class CheckpointMismatch(CheckpointError):
  """The checkpoint holds another tree (paths, shapes or dtypes) than the restore target."""


class Checkpointer:
  """Saves and restores ``(train_state, data_state)``, verified (see the module docstring).

  Args:
    directory: absolute or relative checkpoint directory (created if missing).
    max_to_keep: newest checkpoints kept, >= 1; None keeps every one.
    save_interval_steps: `save` is a no-op at steps not divisible by it (except ``force``), >= 1.
    async_save: write in a background thread (call `wait` before exiting).

  Raises:
    ValueError: ``max_to_keep`` or ``save_interval_steps`` out of range.
    NotADirectoryError: ``directory`` exists and is not a directory.
  """

  def __init__(self, directory: str, *, max_to_keep: int | None = 3, save_interval_steps: int = 1000,
               async_save: bool = True):
    if max_to_keep is not None and not (_is_int(max_to_keep) and max_to_keep >= 1):
      raise ValueError(f"max_to_keep must be an int >= 1 (or None to keep every checkpoint); got {max_to_keep!r}.")
    if not (_is_int(save_interval_steps) and save_interval_steps >= 1):
      raise ValueError(f"save_interval_steps must be an int >= 1; got {save_interval_steps!r}.")
    self.directory = os.path.abspath(directory)
    if os.path.exists(self.directory) and not os.path.isdir(self.directory):
      raise NotADirectoryError(f"checkpoint directory {self.directory} exists and is not a directory.")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, save_interval_steps=save_interval_steps, enable_async_checkpointing=async_save)
    handlers = {"state": ocp.StandardCheckpointHandler(), "data": ocp.JsonCheckpointHandler(),
                _RECORD: ocp.JsonCheckpointHandler()}
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

  def save(self, step: int, state: Any, data_state: dict, *, force: bool = False) -> bool:
    """Saves checkpoint ``step`` with its integrity record; False when the interval skips it.

    Raises:
      ValueError: ``step`` is not an int >= 0, or not after the newest checkpoint
        held (orbax would skip it silently).
      TypeError: ``data_state`` is not a JSON-serializable dict.
    """
    if not (_is_int(step) and step >= 0):
      raise ValueError(f"step must be an int >= 0; got {step!r}.")
    try:
      if not isinstance(data_state, dict):
        raise TypeError(f"got a {type(data_state).__name__}")
      json.dumps(data_state)
    except (TypeError, ValueError) as e:
      raise TypeError(f"data_state must be a JSON-serializable dict: {e}.") from None
    latest = self.latest_step()
    if latest is not None and step <= latest:
      raise ValueError(f"step {step} is not after the newest checkpoint (step {latest}) under {self.directory}: "
                       "checkpoints are saved in increasing step order.")
    if not (force or self._manager.should_save(step)):
      return False
    record = _record(state, data_state)  # of the values handed to orbax, before an async save starts
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state),
                              **{_RECORD: ocp.args.JsonSave(record)})
    return self._manager.save(step, args=args, force=force)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    """The steps held, ascending (quarantined ones excluded)."""
    return sorted(self._manager.all_steps())

  def _step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def restore(self, abstract_state: Any, step: int) -> tuple[Any, dict]:
    """``(state, data_state)`` of checkpoint ``step``, verified, with no fallback: the caller asked for it.

    Raises:
      TypeError: ``abstract_state`` is None.
      CheckpointMismatch: the checkpoint holds other leaves, shapes or dtypes than
        ``abstract_state`` (it was written with another config).
      CheckpointError: ``step`` is not in the directory (the error lists those that
        are), cannot be read, or fails its integrity check.
    """
    if abstract_state is None:
      raise TypeError("abstract_state must be the restore target: a pytree of jax.ShapeDtypeStruct (with "
                      "shardings) or arrays; got None.")
    steps = self.all_steps()
    if step not in steps:
      raise CheckpointError(f"no checkpoint of step {step} under {self.directory}; it holds steps {steps}.")
    path = self._step_dir(step)
    error = record = restored = None
    try:
      record = self._read_record(step)
      saved = record["leaves"] if record else _orbax_specs(path, self._manager.item_metadata(step)["state"])
      _check_tree(path, saved, abstract_state)
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    except CheckpointError as e:
      if isinstance(e, CheckpointMismatch):
        raise
      error = e
    except Exception as e:  # orbax/tensorstore raise many types for damaged files
      if _is_unavailable(e):
        error = CheckpointUnavailable(
            f"{path}: could not be read ({type(e).__name__}: {_first_lines(str(e))}). This is not damage: fix the "
            "access or retry; no checkpoint was skipped or moved.")
      else:
        error = CheckpointError(f"{path}: unreadable: {type(e).__name__}: {_first_lines(str(e))}")
      error.__cause__ = e
    # every process takes the same branch: 0 read, 1 damaged, 2 unavailable somewhere
    worst = _worst_everywhere(0 if error is None else 2 if isinstance(error, CheckpointUnavailable) else 1,
                              abstract_state)
    if worst == 2 and not isinstance(error, CheckpointUnavailable):
      raise CheckpointUnavailable(f"{path}: another process could not read it (not damage); nothing was moved.")
    if worst:
      raise error or CheckpointError(f"{path}: another process could not read it.")
    state, data = restored["state"], dict(restored["data"])
    if record is None:
      logging.warning("%s has no integrity record (written before asrjax recorded one): restored unverified.", path)
    else:
      _verify(path, record, state, data)
    return state, data

  def _read_record(self, step: int) -> dict | None:
    """The step's integrity record; None for a checkpoint written before records existed."""
    if not os.path.isdir(os.path.join(self._step_dir(step), _RECORD)):
      if _RECORD in (self._manager.metadata(step).item_handlers or {}):
        raise CheckpointError(f"{self._step_dir(step)}: its integrity record ({_RECORD}/) is missing.")
      return None
    record = self._manager.restore(step, args=ocp.args.Composite(**{_RECORD: ocp.args.JsonRestore()}))[_RECORD]
    body = {k: v for k, v in record.items() if k != "digest"}
    if record.get("version") != _RECORD_VERSION or record.get("digest") != _sha256(body):
      raise CheckpointError(f"{self._step_dir(step)}: its integrity record is damaged.")
    return record

  def restore_latest(self, abstract_state: Any, *, quarantine: bool = True) -> tuple[Any, dict, int] | None:
    """``(state, data_state, step)`` of the newest checkpoint that restores and verifies, or None if there is none.

    Args:
      abstract_state: pytree of `jax.ShapeDtypeStruct` with shardings (e.g. from
        `jax.eval_shape` + the mesh shardings) describing where arrays go.
      quarantine: move the newer checkpoints that failed out of the rotation (see
        the module docstring); False (evaluation) leaves the directory untouched.

    Raises:
      CheckpointMismatch: at the first checkpoint whose tree differs from the target.
      CheckpointError: no checkpoint could be restored (the error names every failure).
    """
    failures = []
    for step in reversed(self.all_steps()):
      try:
        state, data = self.restore(abstract_state, step)
      except (CheckpointMismatch, CheckpointUnavailable):
        raise
      except CheckpointError as e:
        failures.append((step, str(e)))
        continue
      if failures:
        notes = [f"step {s}: {why}" + (f" [moved to {self._quarantine(s, abstract_state)}]" if quarantine else "")
                 for s, why in failures]
        logging.warning("restored step %d after skipping damaged checkpoints%s:\n%s", step,
                        ", kept out of the rotation" if quarantine else "", "\n".join(notes))
      return state, data, step
    if failures:
      raise CheckpointError(f"no checkpoint under {self.directory} could be restored:\n" +
                            "\n".join(f"step {s}: {why}" for s, why in failures))
    return None

  def _quarantine(self, step: int, abstract_state: Any) -> str:
    """Moves checkpoint ``step`` to ``quarantine/<step>.corrupt[.n]``, out of orbax's view; returns where."""
    spans = _spans_processes(abstract_state)
    where = os.path.join(self.directory, "quarantine", f"{step}.corrupt")
    failure = None
    if not spans or jax.process_index() == 0:
      n = 0
      while os.path.exists(where if not n else f"{where}.{n}"):
        n += 1
      where = where if not n else f"{where}.{n}"
      try:
        os.makedirs(os.path.dirname(where), exist_ok=True)
        os.rename(self._step_dir(step), where)
      except OSError as e:
        failure = e
    if spans:  # a collective (so a barrier too): all processes raise, or none does, never one hangs
      if _worst_everywhere(int(failure is not None), abstract_state):
        failure = failure or "on process 0"
      if jax.process_index():
        where = f"{where}[.n] (named by process 0)"
    if failure is not None:
      raise CheckpointError(f"{self._step_dir(step)} is damaged and could not be moved out of the rotation "
                            f"({failure}); move it away by hand before training on.")
    self._manager.reload()
    return where

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def abstract_like(tree: Any, shardings: Any) -> Any:
  """`jax.ShapeDtypeStruct` pytree with the given shardings (restore target)."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


# ---------------------------------------------------------------- integrity record


def _fmix32(h):
  """MurmurHash3's finaliser: a bijection of uint32 that mixes every bit into every other."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def _leaf_checksum(x) -> jax.Array:
  """Two uint32 lanes ``sum_i f(i, w_i) mod 2**32`` over the 32-bit words ``w_i`` of ``x``'s values.

  Each ``f(i, .)`` is a bijection, so changing any one word always changes both
  lanes; several changed words collide with probability ~2**-64. Position ``i``
  is built from per-axis iotas (no reshape), so XLA reduces a sharded array where
  it lives, and the result does not depend on the sharding.
  """
  x = jnp.asarray(x)
  if x.dtype == jnp.bool_:
    x = x.astype(jnp.uint8)
  if x.dtype.itemsize == 8:
    words = jax.lax.bitcast_convert_type(x, jnp.uint32)  # trailing axis of 2
  else:
    words = jax.lax.bitcast_convert_type(x, jnp.dtype(f"uint{8 * x.dtype.itemsize}"))[..., None].astype(jnp.uint32)
  index = jnp.zeros(words.shape, jnp.uint32)
  stride = 1
  for axis in reversed(range(words.ndim)):
    index = index + jax.lax.broadcasted_iota(jnp.uint32, words.shape, axis) * jnp.uint32(stride % 2**32)
    stride *= words.shape[axis]
  a = _fmix32(words ^ _fmix32(index ^ jnp.uint32(0x9E3779B9)))
  b = _fmix32(words * jnp.uint32(0x2545F491) + _fmix32(index + jnp.uint32(0x7F4A7C15)))
  return jnp.stack([a.sum(dtype=jnp.uint32), b.sum(dtype=jnp.uint32)])


_checksums = jax.jit(lambda leaves: [_leaf_checksum(x) for x in leaves])


def state_checksums(tree: Any) -> dict[str, str]:
  """``{leaf path: 16 hex digits}``: each array's value checksum (`_leaf_checksum`).

  Every process must call it for arrays that span processes (it is one jitted computation).
  """
  flat = _flat(tree)
  sums = jax.device_get(_checksums(list(flat.values())))
  return {k: f"{int(s[0]):08x}{int(s[1]):08x}" for k, s in zip(flat, sums)}


def _record(state: Any, data_state: dict) -> dict:
  checksums = state_checksums(state)
  leaves = {k: {"shape": list(np.shape(x)), "dtype": _dtype_name(x), "checksum": checksums[k]}
            for k, x in _flat(state).items()}
  body = {"version": _RECORD_VERSION, "leaves": leaves, "data": _sha256(data_state)}
  return {**body, "digest": _sha256(body)}


def _verify(path: str, record: dict, state: Any, data: dict) -> None:
  """Raises `CheckpointError` unless ``state`` and ``data`` hold the values the record was made of."""
  got = state_checksums(state)
  bad = [k for k, leaf in record["leaves"].items() if got.get(k) != leaf["checksum"]]
  if _sha256(data) != record["data"]:
    bad.append("the data state")
  if bad:
    raise CheckpointError(f"{path}: failed its integrity check: {len(bad)} of {len(record['leaves']) + 1} items "
                          f"differ from what was saved ({_names(bad)}).")


def _check_tree(path: str, saved: dict, abstract_state: Any) -> None:
  """Raises `CheckpointMismatch` unless the target has the saved leaf paths, shapes and dtypes."""
  want = {k: {"shape": list(np.shape(x)), "dtype": _dtype_name(x)} for k, x in _flat(abstract_state).items()}
  saved = {k: {"shape": list(v["shape"]), "dtype": v["dtype"]} for k, v in saved.items()}
  diffs = [f"{k}: in the target only" for k in want if k not in saved]
  diffs += [f"{k}: in the checkpoint only" for k in saved if k not in want]
  diffs += [f"{k}: checkpoint {tuple(saved[k]['shape'])} {saved[k]['dtype']}, target {tuple(w['shape'])} {w['dtype']}"
            for k, w in want.items() if k in saved and saved[k] != w]
  if diffs:
    more = f"\n  ... and {len(diffs) - _MAX_NAMED} more" if len(diffs) > _MAX_NAMED else ""
    raise CheckpointMismatch(
        f"{path} holds another tree than the restore target ({_count(diffs, 'leaf differs', 'leaves differ')}): "
        "it was written with another config (or another version of the model code).\n  "
        + "\n  ".join(diffs[:_MAX_NAMED]) + more)


def _orbax_specs(path: str, tree_metadata) -> dict:
  """Leaf shapes and dtypes from orbax's own metadata (checkpoints without a record)."""
  if tree_metadata is None:  # damage, not another config
    raise CheckpointError(f"{path}: unreadable: orbax finds no array metadata (state/_METADATA).")
  return {k: {"shape": list(m.shape), "dtype": _dtype_name(m)} for k, m in _flat(tree_metadata).items()}


def _flat(tree: Any) -> dict:
  """``{"a/b/0": leaf}``, keyed as orbax names a checkpoint's arrays."""
  return ocp.tree.to_flat_dict(tree, sep="/")


def _dtype_name(x) -> str:
  return str(np.dtype(x.dtype)) if hasattr(x, "dtype") else str(np.asarray(x).dtype)


def _sha256(obj) -> str:
  return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _count(items: list, one: str, many: str) -> str:
  return f"{len(items)} {one if len(items) == 1 else many}"


def _names(items: list[str]) -> str:
  return ", ".join(items[:_MAX_NAMED]) + (f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else "")


def _first_lines(text: str, n: int = 3, width: int = 400) -> str:
  """The head of an orbax/tensorstore message (they can run to many lines of advice, or a spec dump)."""
  text = text.split(" See full TensorStore details")[0]
  return "\n".join(text.splitlines()[:n])[:width]


def _is_int(x) -> bool:
  return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _spans_processes(tree: Any) -> bool:
  return any(not getattr(getattr(x, "sharding", None), "is_fully_addressable", True) for x in jax.tree.leaves(tree))


def _worst_everywhere(code: int, tree: Any) -> int:
  """The largest ``code`` over the processes that hold part of ``tree``'s arrays (just ``code``
  when no array spans processes); a collective, so every such process must call it."""
  if not _spans_processes(tree):
    return code
  return int(np.max(multihost_utils.process_allgather(np.asarray(code, np.int32))))


def _is_unavailable(e: Exception) -> bool:
  """An error from outside the checkpoint: permissions, I/O, timeouts (tensorstore names them
  by status), as opposed to a file that is missing, truncated or does not decode."""
  if isinstance(e, (PermissionError, TimeoutError, ConnectionError, InterruptedError)):
    return True
  if isinstance(e, OSError) and e.errno in (errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE, errno.EACCES):
    return True
  return any(status in str(e) for status in ("PERMISSION_DENIED", "UNAVAILABLE", "DEADLINE_EXCEEDED",
                                             "RESOURCE_EXHAUSTED", "ABORTED"))
