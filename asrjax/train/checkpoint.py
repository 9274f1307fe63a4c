"""Checkpoints with orbax `CheckpointManager`: async saves, keep-N, resume, corrupt fallback.

A checkpoint holds the `TrainState` (sharded arrays, restored onto the current
mesh from an abstract target) and the input pipeline's state (its step, JSON).
`restore_latest` walks back from the newest step: a checkpoint that cannot be read
(truncated, corrupt, half-written) is reported by path and the previous one is used;
if none can be read, the error names every failure -- training never silently
starts from scratch over a broken directory. `restore` reads one given step (for
evaluating an earlier checkpoint) and never substitutes another.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """No checkpoint in the directory could be restored."""


class Checkpointer:
  """Saves and restores ``(train_state, data_state)``.

  Args:
    directory: absolute or relative checkpoint directory (created if missing).
    max_to_keep: newest checkpoints kept.
    save_interval_steps: `save` is a no-op at other steps (except ``force``).
    async_save: write in a background thread (call `wait` before exiting).
  """

  def __init__(self, directory: str, *, max_to_keep: int = 3, save_interval_steps: int = 1000,
               async_save: bool = True):
    import os

    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, save_interval_steps=save_interval_steps, enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, state: Any, data_state: dict, *, force: bool = False) -> bool:
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state))
    return self._manager.save(step, args=args, force=force)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    """The steps held, ascending."""
    return sorted(self._manager.all_steps())

  def restore(self, abstract_state: Any, step: int) -> tuple[Any, dict]:
    """``(state, data_state)`` of checkpoint ``step``, with no fallback: the caller asked for it.

    Raises:
      CheckpointError: ``step`` is not in the directory (the error lists those that
        are) or cannot be read.
    """
    steps = self.all_steps()
    if step not in steps:
      raise CheckpointError(f"no checkpoint of step {step} under {self.directory}; it holds steps {steps}.")
    try:
      restored = self._manager.restore(step, args=self._restore_args(abstract_state))
    except Exception as e:  # orbax/tensorstore raise many types for damaged files
      raise CheckpointError(f"{self.directory}/{step}: {type(e).__name__}: {e}") from e
    return restored["state"], dict(restored["data"])

  @staticmethod
  def _restore_args(abstract_state: Any):
    return ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore())

  def restore_latest(self, abstract_state: Any) -> tuple[Any, dict, int] | None:
    """``(state, data_state, step)`` of the newest readable checkpoint, or None if there is none.

    Args:
      abstract_state: pytree of `jax.ShapeDtypeStruct` with shardings (e.g. from
        `jax.eval_shape` + the mesh shardings) describing where arrays go.
    """
    failures = []
    for step in reversed(self.all_steps()):
      try:
        state, data = self.restore(abstract_state, step)
      except CheckpointError as e:
        failures.append(str(e))
        continue
      if failures:
        logging.warning("restored step %d after unreadable checkpoints: %s", step, "; ".join(failures))
      return state, data, step
    if failures:
      raise CheckpointError("no checkpoint could be restored:\n" + "\n".join(failures))
    return None

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def abstract_like(tree: Any, shardings: Any) -> Any:
  """`jax.ShapeDtypeStruct` pytree with the given shardings (restore target)."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)
