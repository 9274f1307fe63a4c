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

import functools
import math
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from asrjax import atomic_file

BOS = 0  # sentence-start digit of a context (id 0, the blank, is never text)
_FORMAT = "asrjax.ngram_lm.v2"


class _Table(NamedTuple):
  """Counts of one order: the contexts of length ``n``, sorted by key, and their followers.

  A context ``(h_1 .. h_n)`` (oldest first) has key ``sum_k h_{n+1-k} V^(k-1)``: the most
  recent token is the lowest base-``V`` digit (``V = vocab_size``; BOS is digit 0).
  """

  keys: np.ndarray  # [C] int64, sorted
  offsets: np.ndarray  # [C + 1] int64: followers of context i are [offsets[i], offsets[i+1])
  words: np.ndarray  # [E] int32 follower ids (end-of-sentence = V)
  counts: np.ndarray  # [E] float64 counts (raw at the top order, continuation below)
  totals: np.ndarray  # [C] float64 sum of the context's counts


def _table(ctx_keys: np.ndarray, words: np.ndarray, counts: np.ndarray) -> _Table:
  """Groups unique ``(context key, word)`` pairs (sorted by key, then word) into a `_Table`."""
  starts = np.flatnonzero(np.r_[True, ctx_keys[1:] != ctx_keys[:-1]]) if len(ctx_keys) else np.zeros(0, np.int64)
  offsets = np.r_[starts, len(ctx_keys)].astype(np.int64)
  totals = np.add.reduceat(counts, starts) if len(starts) else np.zeros(0)
  return _Table(ctx_keys[starts].astype(np.int64), offsets, words.astype(np.int32), counts.astype(np.float64),
                totals.astype(np.float64))


def _unique_pairs(keys: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The distinct ``(key, word)`` pairs sorted by key then word, and how often each occurs."""
  order = np.lexsort((words, keys))
  keys, words = keys[order], words[order]
  first = np.r_[True, (keys[1:] != keys[:-1]) | (words[1:] != words[:-1])] if len(keys) else np.zeros(0, bool)
  starts = np.flatnonzero(first)
  return keys[starts], words[starts], np.diff(np.r_[starts, len(keys)])


def _check_hyperparameters(order, vocab_size, discount) -> None:
  """`ValueError` naming the argument unless ``order >= 1``, ``vocab_size >= 2`` (integers), ``0 <= discount < 1``."""
  for name, value, low in (("order", order, 1), ("vocab_size", vocab_size, 2)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
      raise ValueError(f"{name} must be an integer >= {low}" + (" (blank and unk)" if name == "vocab_size" else "")
                       + f"; got {value!r}.")
  if isinstance(discount, bool) or not isinstance(discount, (int, float, np.number)) or not 0.0 <= discount < 1.0:
    raise ValueError(f"discount must be a number in [0, 1) (the absolute discount D; 0 = no smoothing); "
                     f"got {discount!r}.")


def _check_ids(ids: Sequence[int], vocab_size: int, name: str) -> list[int]:
  """``ids`` as ints, or `ValueError` naming ``name`` if one is outside the text ids ``[1, vocab_size)``."""
  out = [int(x) for x in ids]
  if out and (min(out) < 1 or max(out) >= vocab_size):
    bad = next(x for x in out if not 1 <= x < vocab_size)
    raise ValueError(f"{name} holds id {bad} outside the LM's text ids [1, {vocab_size}) (0 is the blank, "
                     f"ids >= vocab_size are unknown to this LM).")
  return out


def _check_key_size(order: int, vocab_size: int) -> None:
  """Raises `ValueError` when contexts of ``order - 1`` ids in base ``vocab_size`` overflow int64 keys."""
  if order > 1 and vocab_size > 1 and (order - 1) * math.log2(vocab_size) >= 63:
    raise ValueError(f"an order-{order} context over {vocab_size} ids does not fit a 64-bit key "
                     f"({vocab_size}^{order - 1} >= 2^63); use a lower order.")


class NgramLM:
  """Interpolated Kneser-Ney n-gram model over token ids; build with `fit` or `load`.

  Events are ids ``1 .. vocab_size - 1`` and end-of-sentence, whose index in the
  vectors `log_probs` returns is ``vocab_size`` (so they have ``vocab_size + 1``
  entries, entry 0 being the blank's ``-inf``). The counts live in sorted numpy
  arrays (one `_Table` per order, contexts found by binary search), so an order-12
  character model of 40,000 transcripts takes tens of MB, not GB of Python dicts.
  """

  def __init__(self, order: int, vocab_size: int, discount: float, tables: Sequence[_Table]):
    _check_hyperparameters(order, vocab_size, discount)
    if len(tables) != order:
      raise ValueError(f"expected {order} count tables, got {len(tables)}.")
    _check_key_size(order, vocab_size)
    self.order, self.vocab_size, self.discount = order, vocab_size, discount
    self._tables = list(tables)  # tables[n]: contexts of length n
    # the most recent contexts' vectors, bounded: beam search meets ~500 new contexts per
    # utterance (a 16-utterance profile), ~0.2 MB per utterance: unbounded, a 4,000-utterance
    # test split would hold ~1 GB
    self._cached_log_probs = functools.lru_cache(maxsize=200_000)(self._log_probs)

  @property
  def eos_id(self) -> int:
    """Index of end-of-sentence in the vectors of `log_probs`."""
    return self.vocab_size

  @property
  def count_tables(self) -> tuple[_Table, ...]:
    """The count tables, ``[n]`` for contexts of ``n`` tokens (read-only; `asrjax.decoding.device_lm` lays
    them out for the jitted search)."""
    return tuple(self._tables)

  # ------------------------------------------------------------------ training
  @classmethod
  def fit(cls, sentences: Iterable[Sequence[int]], vocab_size: int, order: int = 6,
          discount: float = 0.7) -> "NgramLM":
    """Counts ``sentences`` (token-id sequences, ids in ``[1, vocab_size)``) into a model.

    Raises:
      ValueError: for an id outside ``[1, vocab_size)`` (the blank is not text), when
        there are no sentences, for ``order < 1``, ``vocab_size < 2`` or a
        ``discount`` outside ``[0, 1)``, or when ``vocab_size^(order-1)`` overflows the
        keys -- the hyperparameters checked before any counting.
    """
    _check_hyperparameters(order, vocab_size, discount)
    _check_key_size(order, vocab_size)
    v, eos = vocab_size, vocab_size
    pieces, n_sent = [], 0
    for n_sent, sent in enumerate(sentences, 1):
      ids = np.asarray([int(x) for x in sent], np.int64)
      bad = ids[(ids < 1) | (ids >= v)]
      if bad.size:
        raise ValueError(f"sentence {n_sent - 1} holds id {bad[0]} outside [1, {v}) "
                         "(the blank, 0, is not a text token).")
      pieces.append(np.r_[np.full(order - 1, BOS, np.int64), ids, eos])
    if n_sent == 0:
      raise ValueError("no sentences to fit the language model on.")
    seq = np.concatenate(pieces)
    # every predicted position: all but the order - 1 BOS of each sentence (windows never
    # cross a sentence, which starts with order - 1 BOS)
    is_pad = np.concatenate([np.r_[np.ones(order - 1, bool), np.zeros(len(p) - order + 1, bool)] for p in pieces])
    pos = np.flatnonzero(~is_pad)
    words = seq[pos]
    # keys[n]: key of the n tokens before each position (most recent = lowest digit)
    keys = [np.zeros(len(pos), np.int64)]
    for n in range(1, order):
      keys.append(keys[-1] + seq[pos - n] * v ** (n - 1))
    tables = [None] * order
    k, w, c = _unique_pairs(keys[order - 1], words)  # raw counts at the top order
    tables[order - 1] = _table(k, w, c.astype(np.float64))
    for n in range(order - 1):
      # N1+(. h w): the distinct (prev, h) contexts of length n + 1 followed by w
      k1, w1, _ = _unique_pairs(keys[n + 1], words)
      k, w, c = _unique_pairs(k1 % v ** n if n else np.zeros_like(k1), w1)
      tables[n] = _table(k, w, c.astype(np.float64))
    return cls(order, vocab_size, discount, tables)

  # ------------------------------------------------------------------ scoring
  def log_probs(self, context: Sequence[int]) -> np.ndarray:
    """``[vocab_size + 1]`` float64 ``log P(w | context)``; the context is the sentence so far.

    Entry 0 (blank) is ``-inf``; entry ``vocab_size`` is end-of-sentence.

    Raises:
      ValueError: ``context`` holds an id outside ``[1, vocab_size)`` (such an id would
        otherwise alias another context's key).
    """
    ids = _check_ids(context, self.vocab_size, "context")
    hist = tuple([BOS] * (self.order - 1) + ids)[len(ids):] if self.order > 1 else ()
    return self._cached_log_probs(hist)

  def _log_probs(self, hist: tuple[int, ...]) -> np.ndarray:
    v = self.vocab_size
    p = np.full(v + 1, 1.0 / v)  # uniform over ids 1..V-1 and eos
    p[0] = 0.0
    key = 0
    for n in range(self.order):  # lowest order first; context = last n tokens
      if n:
        key += hist[len(hist) - n] * v ** (n - 1)
      t = self._tables[n]
      i = int(np.searchsorted(t.keys, key))
      if i == len(t.keys) or t.keys[i] != key or t.totals[i] == 0:
        continue  # unseen context: all mass to the lower order
      s, e, total, d = t.offsets[i], t.offsets[i + 1], t.totals[i], self.discount
      q = (d * (e - s) / total) * p
      q[t.words[s:e]] += np.maximum(t.counts[s:e] - d, 0.0) / total
      p = q
    with np.errstate(divide="ignore"):
      return np.log(p)

  def sentence_log_prob(self, ids: Sequence[int]) -> float:
    """``log P(ids, end-of-sentence)``; `ValueError` for an id outside ``[1, vocab_size)``."""
    ids = _check_ids(ids, self.vocab_size, "ids")
    total = 0.0
    for i in range(len(ids) + 1):
      w = ids[i] if i < len(ids) else self.eos_id
      total += float(self.log_probs(ids[:i])[w])
    return total

  # ------------------------------------------------------------------ files
  def save(self, path: str) -> None:
    """Writes an ``.npz`` archive atomically (a temporary file, then a rename): a reader never sees half of it."""
    arrays = {"format": np.array(_FORMAT), "header": np.array([self.order, self.vocab_size]),
              "discount": np.array(self.discount)}
    for n, t in enumerate(self._tables):
      arrays.update({f"{field}_{n}": getattr(t, field) for field in ("keys", "offsets", "words", "counts")})
    with atomic_file.open(path, "wb") as f:
      np.savez(f, **arrays)

  @classmethod
  def load(cls, path: str) -> "NgramLM":
    """Reads `save`'s file; a truncated, damaged, inconsistent or foreign file raises `ValueError` naming it.

    Bytes damaged in place are caught by the archive's CRC-32 (every member is read
    whole); a well-formed archive with impossible contents (keys outside their order's
    range, non-positive or non-finite counts, a bad header) by the table checks.
    """
    try:
      with np.load(path, allow_pickle=False) as d:
        if "format" not in d or str(d["format"]) != _FORMAT:
          raise ValueError(f"format {str(d['format']) if 'format' in d else None!r}, expected {_FORMAT!r}")
        header = d["header"]
        if header.shape != (2,) or not np.issubdtype(header.dtype, np.integer):
          raise ValueError(f"header must be 2 integers (order, vocab_size); got {header!r}")
        order, vocab_size = (int(x) for x in header)
        discount = d["discount"]
        if discount.shape != () or not np.issubdtype(discount.dtype, np.floating):
          raise ValueError(f"discount must be a float scalar; got {discount!r}")
        _check_hyperparameters(order, vocab_size, float(discount))
        tables = []
        for n in range(order):
          keys, offsets, words, counts = (d[f"{f}_{n}"] for f in ("keys", "offsets", "words", "counts"))
          if not all(np.issubdtype(a.dtype, np.integer) and a.ndim == 1 for a in (keys, offsets, words)) or (
              counts.ndim != 1 or not np.issubdtype(counts.dtype, np.floating)):
            raise ValueError(f"count table of order {n + 1} has wrong array types")
          if (len(offsets) != len(keys) + 1 or offsets[0] != 0 or offsets[-1] != len(words)
              or len(words) != len(counts) or np.any(np.diff(offsets) < 1) or np.any(np.diff(keys) <= 0)
              or (len(keys) and (keys[0] < 0 or int(keys[-1]) >= vocab_size ** n))
              or not np.all(np.isfinite(counts) & (counts > 0))
              or (len(words) and (words.min() < 1 or words.max() > vocab_size))):
            raise ValueError(f"inconsistent count table of order {n + 1}")
          tables.append(_Table(keys, offsets, words, counts, np.add.reduceat(counts, offsets[:-1])
                               if len(keys) else np.zeros(0)))
        return cls(order, vocab_size, float(discount), tables)
    except Exception as e:  # noqa: BLE001 -- a damaged archive fails in zipfile/numpy in many ways
      raise ValueError(f"cannot read the n-gram language model {path}: {type(e).__name__}: {e}") from e


def perplexity(lm: NgramLM, sentences: Iterable[Sequence[int]]) -> float:
  """Per-event perplexity (end-of-sentence counted) of ``sentences`` under ``lm``."""
  total, events = 0.0, 0
  for ids in sentences:
    total += lm.sentence_log_prob(ids)
    events += len(ids) + 1
  return math.exp(-total / max(events, 1))
