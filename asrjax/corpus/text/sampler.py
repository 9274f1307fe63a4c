"""The one source of randomness for sentence generation.

`Sampler` turns an explicit `numpy.random.Generator` into the few draws the
grammar needs (an index, a coin flip, a lexicon entry). It reads the generator
in fixed-size blocks of uniform doubles, which keeps generation fast while the
output stays a pure function of the generator's state: no `hash()`, no set
order, no global state.

Held-out words: each category has a "seen" pool (the entries that training text
may use) and a "held" pool (entries containing a reserved word, see
`asrjax.corpus.text.holdout`). With ``held_out_rate = r`` every draw from a
category that has a held pool takes a held entry with probability ``r``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from asrjax.corpus.text import holdout

T = TypeVar("T")
_BLOCK = 512


class Sampler:
  """Seeded draws of indices, coins and lexicon entries.

  Args:
    rng: the generator every draw comes from.
    pools: seen and held-out entries of every lexicon category.
    held_out_rate: probability that a draw from a category with held-out
      entries returns one of them; 0 for training text.
  """

  def __init__(self, rng: np.random.Generator, pools: holdout.Pools, held_out_rate: float = 0.0):
    if not 0.0 <= held_out_rate <= 1.0:
      raise ValueError(f"held_out_rate must be in [0, 1], got {held_out_rate}")
    self._rng = rng
    self._pools = pools
    self._rate = held_out_rate
    self._buffer: list[float] = []
    self._next = 0

  def uniform(self) -> float:
    """A uniform double in ``[0, 1)``."""
    if self._next == len(self._buffer):
      self._buffer = self._rng.random(_BLOCK).tolist()
      self._next = 0
    u = self._buffer[self._next]
    self._next += 1
    return u

  def below(self, n: int) -> int:
    """A uniform integer in ``[0, n)``."""
    return min(int(self.uniform() * n), n - 1)

  def choice(self, options: Sequence[T]) -> T:
    """A uniformly chosen element of a non-empty sequence."""
    return options[self.below(len(options))]

  def coin(self, p: float) -> bool:
    """True with probability ``p``."""
    return self.uniform() < p

  def integer(self, low: int, high: int) -> int:
    """A uniform integer in ``[low, high]`` (inclusive)."""
    return low + self.below(high - low + 1)

  def form(self, category: str, column: str | None = None) -> str:
    """One form (column) of a random entry of a lexicon category.

    Raises:
      KeyError: for an unknown category or column.
    """
    columns = self._pools.columns[category]
    if column is not None and column not in columns:
      raise KeyError(f"category {category!r} has no column {column!r} (has {columns})")
    seen, held = self._pools.seen[category], self._pools.held[category]
    pool = held if held and self.coin(self._rate) else seen
    return self.choice(pool)[0 if column is None else columns.index(column)]
