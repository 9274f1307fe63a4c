"""Token n-gram language model with interpolated Kneser-Ney smoothing, for shallow fusion.

Trained on the training transcripts as token ids (the transducer's own tokenizer, so
the LM scores exactly the labels the decoder proposes), with an end-of-sentence event
and a sentence-start context. For a context ``h`` of the last ``order - 1`` tokens
(shorter at the start of a sentence) and ``h'`` the same with its oldest token dropped:

  P(w | h) = max(c(h, w) - D, 0) / c(h) + D * N1+(h, .) / c(h) * P(w | h'),

where ``c`` are raw counts at the highest order and continuation counts ``N1+(., h, w)``
(distinct left neighbours) at lower orders, ``D`` is the absolute discount, and a
context never seen backs off entirely (``P(w | h) = P(w | h')``). The lowest order
interpolates with the uniform distribution over the events (every text token id
``1 .. V-1`` and end-of-sentence), so no event has probability 0 when ``D > 0``.
The blank (id 0) is not a text token and always gets ``-inf``.

References:
  Kneser & Ney, "Improved backing-off for M-gram language modeling", ICASSP 1995.
  Chen & Goodman, "An empirical study of smoothing techniques for language
  modeling", 1998 (interpolated Kneser-Ney, section 2.7).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
from typing import Iterable, Sequence

import numpy as np

BOS = -1  # sentence-start context symbol (never predicted)
_FORMAT = "asrjax.ngram_lm.v1"


@dataclasses.dataclass
class _Context:
  """Counts of the events that follow one context at one order."""

  counts: dict[int, float]
  total: float  # sum of counts
  types: int  # distinct followers, N1+(h, .)


class NgramLM:
  """Interpolated Kneser-Ney n-gram model over token ids; build with `fit` or `load`.

  Events are ids ``1 .. vocab_size - 1`` and end-of-sentence, whose index in the
  vectors `log_probs` returns is ``vocab_size`` (so they have ``vocab_size + 1``
  entries, entry 0 being the blank's ``-inf``).
  """

  def __init__(self, order: int, vocab_size: int, discount: float, tables: list[dict[tuple[int, ...], _Context]]):
    if order < 1:
      raise ValueError(f"order must be >= 1; got {order}.")
    if vocab_size < 2:
      raise ValueError(f"vocab_size must be >= 2 (blank and unk); got {vocab_size}.")
    if not 0.0 <= discount < 1.0:
      raise ValueError(f"discount must be in [0, 1); got {discount}.")
    if len(tables) != order:
      raise ValueError(f"expected {order} count tables, got {len(tables)}.")
    self.order, self.vocab_size, self.discount = order, vocab_size, discount
    self._tables = tables  # tables[n][context of length n]
    self._cache: dict[tuple[int, ...], np.ndarray] = {}

  @property
  def eos_id(self) -> int:
    """Index of end-of-sentence in the vectors of `log_probs`."""
    return self.vocab_size

  # ------------------------------------------------------------------ training
  @classmethod
  def fit(cls, sentences: Iterable[Sequence[int]], vocab_size: int, order: int = 6,
          discount: float = 0.7) -> "NgramLM":
    """Counts ``sentences`` (token-id sequences, ids in ``[1, vocab_size)``) into a model.

    Raises:
      ValueError: for an id outside ``[1, vocab_size)`` (the blank is not text), or
        when there are no sentences.
    """
    eos = vocab_size
    raw: dict[tuple[int, ...], collections.Counter] = collections.defaultdict(collections.Counter)
    left: list[dict[tuple[int, ...], set]] = [collections.defaultdict(set) for _ in range(order)]
    n_sent = 0
    for n_sent, sent in enumerate(sentences, 1):
      ids = [int(x) for x in sent]
      bad = [x for x in ids if not 1 <= x < vocab_size]
      if bad:
        raise ValueError(f"sentence {n_sent - 1} holds id {bad[0]} outside [1, {vocab_size}) "
                         "(the blank, 0, is not a text token).")
      padded = [BOS] * (order - 1) + ids + [eos]
      for i in range(order - 1, len(padded)):
        hist = tuple(padded[i - order + 1:i])
        raw[hist][padded[i]] += 1
        # continuation counts: the distinct tokens preceding (shorter history, w)
        for n in range(order - 1):  # history length n at the lower orders
          h = hist[len(hist) - n:] if n else ()
          prev = hist[len(hist) - n - 1]
          left[n][(h, padded[i])].add(prev)
    if n_sent == 0:
      raise ValueError("no sentences to fit the language model on.")
    tables: list[dict[tuple[int, ...], _Context]] = [dict() for _ in range(order)]
    for hist, ctr in raw.items():
      ctx = tables[order - 1].setdefault(hist, _Context({}, 0.0, 0))
      for w, c in ctr.items():
        ctx.counts[w] = ctx.counts.get(w, 0.0) + c
    for n in range(order - 1):
      for (h, w), prevs in left[n].items():
        ctx = tables[n].setdefault(h, _Context({}, 0.0, 0))
        ctx.counts[w] = ctx.counts.get(w, 0.0) + len(prevs)
    for table in tables:
      for ctx in table.values():
        ctx.total = float(sum(ctx.counts.values()))
        ctx.types = len(ctx.counts)
    return cls(order, vocab_size, discount, tables)

  # ------------------------------------------------------------------ scoring
  def log_probs(self, context: Sequence[int]) -> np.ndarray:
    """``[vocab_size + 1]`` float64 ``log P(w | context)``; the context is the sentence so far.

    Entry 0 (blank) is ``-inf``; entry ``vocab_size`` is end-of-sentence.
    """
    hist = tuple([BOS] * (self.order - 1) + [int(x) for x in context])[len(context):] if self.order > 1 else ()
    if hist not in self._cache:
      self._cache[hist] = self._log_probs(hist)
    return self._cache[hist]

  def _log_probs(self, hist: tuple[int, ...]) -> np.ndarray:
    v = self.vocab_size
    p = np.full(v + 1, 1.0 / v)  # uniform over ids 1..V-1 and eos
    p[0] = 0.0
    for n in range(self.order):  # lowest order first; history = last n tokens
      h = hist[len(hist) - n:] if n else ()
      ctx = self._tables[n].get(h)
      if ctx is None or ctx.total == 0:
        continue  # unseen context: all mass to the lower order
      d = self.discount
      q = (d * ctx.types / ctx.total) * p
      for w, c in ctx.counts.items():
        q[w] += max(c - d, 0.0) / ctx.total
      p = q
    with np.errstate(divide="ignore"):
      return np.log(p)

  def sentence_log_prob(self, ids: Sequence[int]) -> float:
    """``log P(ids, end-of-sentence)``."""
    total = 0.0
    for i in range(len(ids) + 1):
      w = ids[i] if i < len(ids) else self.eos_id
      total += float(self.log_probs(ids[:i])[w])
    return total

  # ------------------------------------------------------------------ files
  def save(self, path: str) -> None:
    """Writes a JSON file atomically (a temporary file, then a rename): a reader never sees half of it."""
    tables = [[[list(h), {str(w): c for w, c in ctx.counts.items()}] for h, ctx in t.items()] for t in self._tables]
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
      json.dump({"format": _FORMAT, "order": self.order, "vocab_size": self.vocab_size, "discount": self.discount,
                 "tables": tables}, f)
    os.replace(tmp, path)

  @classmethod
  def load(cls, path: str) -> "NgramLM":
    """Reads `save`'s file; a truncated or foreign file raises `ValueError` naming it."""
    try:
      with open(path) as f:
        d = json.load(f)
      if d.get("format") != _FORMAT:
        raise ValueError(f"format {d.get('format')!r}, expected {_FORMAT!r}")
      tables = []
      for t in d["tables"]:
        table = {}
        for h, counts in t:
          c = {int(w): float(x) for w, x in counts.items()}
          table[tuple(int(x) for x in h)] = _Context(c, float(sum(c.values())), len(c))
        tables.append(table)
      return cls(int(d["order"]), int(d["vocab_size"]), float(d["discount"]), tables)
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise ValueError(f"cannot read the n-gram language model {path}: {e}") from e


def perplexity(lm: NgramLM, sentences: Iterable[Sequence[int]]) -> float:
  """Per-event perplexity (end-of-sentence counted) of ``sentences`` under ``lm``."""
  total, events = 0.0, 0
  for ids in sentences:
    total += lm.sentence_log_prob(ids)
    events += len(ids) + 1
  return math.exp(-total / max(events, 1))
