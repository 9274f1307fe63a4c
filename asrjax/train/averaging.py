"""Checkpoint averaging: the element-wise mean of several parameter trees.

icefall's ``--avg N``: decoding with the mean of the last N checkpoints' parameters
smooths out the noise of the last steps (measured in BUILD_NOTES.md). The mean is
taken in float64 and cast back to each leaf's dtype.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np


def select_steps(held: Sequence[int], step: int | None, average: int) -> tuple[int, ...]:
  """The ``average`` newest of the checkpoint steps ``held`` up to ``step`` (None: the newest), ascending.

  Raises:
    ValueError: ``average < 1``, ``step`` is not held, or fewer than ``average`` steps
      are held up to it.
  """
  if average < 1:
    raise ValueError(f"average must be >= 1 checkpoints; got {average}.")
  held = sorted(held)
  if step is not None and step not in held:
    raise ValueError(f"no checkpoint of step {step}; the steps held are {held}.")
  upto = [s for s in held if step is None or s <= step]
  if len(upto) < average:
    raise ValueError(f"averaging {average} checkpoints needs {average} up to step "
                     f"{step if step is not None else 'latest'}; the steps held are {held} "
                     "(train.keep_checkpoints sets how many a run keeps).")
  return tuple(upto[-average:])


def average_trees(trees: Sequence[Any]) -> Any:
  """Element-wise mean of pytrees of identical structure, shapes and dtypes (host arrays out).

  Raises:
    ValueError: no trees, or trees that differ in structure, shape or dtype.
  """
  if not trees:
    raise ValueError("nothing to average: no parameter trees given.")
  structure = jax.tree.structure(trees[0])
  leaves = [jax.tree.leaves(t) for t in trees]
  for i, t in enumerate(trees[1:], 1):
    if jax.tree.structure(t) != structure:
      raise ValueError(f"tree {i} has another structure than tree 0.")
    for a, b in zip(leaves[0], leaves[i]):
      if (a.shape, a.dtype) != (b.shape, b.dtype):
        raise ValueError(f"tree {i} has a leaf {b.shape} {b.dtype} where tree 0 has {a.shape} {a.dtype}.")
  mean = [(sum(np.asarray(t[j], np.float64) for t in leaves) / len(trees)).astype(leaves[0][j].dtype)
          for j in range(len(leaves[0]))]
  return jax.tree.unflatten(structure, mean)
