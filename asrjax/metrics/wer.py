"""Word error rate by Levenshtein alignment, with error counts for corpus and cohort totals.

``WER = (S + D + I) / N`` with substitutions, deletions and insertions from a
minimum-edit-distance alignment of the hypothesis to the reference, and ``N`` the
number of reference words. Corpus WER sums errors and reference words over
utterances (never averages per-utterance rates), so cohorts can be compared and
aggregated exactly. An empty reference contributes its hypothesis' words as
insertions and no reference words; a total of 0 reference words has WER NaN.

Several alignments can have the minimum number of errors (``a b`` -> ``b c`` is two
substitutions, or a deletion, a hit and an insertion). The total is the same; the
S/D/I split is not, and `align` breaks ties exactly as jiwer does (through
RapidFuzz's ``Levenshtein.editops``, Hyyrö's bit-parallel alignment): a common
prefix and suffix are hits, and the back-trace from the end takes a deletion where
one is optimal, else an insertion, else the diagonal (hit or substitution).
NIST sclite does not count the same way: it minimises a weighted cost (by default
insertion 3, deletion 3, substitution 4), so its split can differ from this one.

References:
  Levenshtein, "Binary codes capable of correcting deletions, insertions and
  reversals", 1966.
  Hyyrö, "A note on bit-parallel alignment computation", Stringology 2004 (the
  back-trace RapidFuzz, and so jiwer, uses).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence


@dataclasses.dataclass(frozen=True)
class ErrorCounts:
  """Edit operations of one or more aligned utterances."""

  substitutions: int = 0
  deletions: int = 0
  insertions: int = 0
  reference_words: int = 0

  @property
  def errors(self) -> int:
    return self.substitutions + self.deletions + self.insertions

  @property
  def wer(self) -> float:
    """Word error rate; NaN when there are no reference words (insertions into silence
    have no rate: read ``insertions``)."""
    return self.errors / self.reference_words if self.reference_words else float("nan")

  def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
    if not isinstance(other, ErrorCounts):
      return NotImplemented
    return ErrorCounts(
        self.substitutions + other.substitutions,
        self.deletions + other.deletions,
        self.insertions + other.insertions,
        self.reference_words + other.reference_words,
    )

  def __radd__(self, other) -> "ErrorCounts":  # sum(counts) starts from 0
    if isinstance(other, int) and not isinstance(other, bool) and other == 0:
      return self
    return NotImplemented


def _distances(ref: Sequence, hyp: Sequence) -> list[list[int]]:
  """``d[i][j]``: edit distance of ``ref[:i]`` and ``hyp[:j]``."""
  d = [list(range(len(hyp) + 1))]
  for i in range(1, len(ref) + 1):
    row = [i]
    for j in range(1, len(hyp) + 1):
      row.append(min(d[i - 1][j] + 1, row[j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1])))
    d.append(row)
  return d


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> ErrorCounts:
  """Errors of a minimum-edit alignment of two token sequences (ties broken as jiwer; module docstring)."""
  ref, hyp = list(reference), list(hypothesis)
  n = len(ref)
  # a common prefix and suffix are hits (RapidFuzz strips them before aligning)
  start = 0
  while start < min(len(ref), len(hyp)) and ref[start] == hyp[start]:
    start += 1
  end = 0
  while end < min(len(ref), len(hyp)) - start and ref[-1 - end] == hyp[-1 - end]:
    end += 1
  ref, hyp = ref[start:len(ref) - end], hyp[start:len(hyp) - end]
  d = _distances(ref, hyp)
  i, j, subs, dels, ins = len(ref), len(hyp), 0, 0, 0
  while i and j:
    if d[i][j] == d[i - 1][j] + 1:  # deletion of ref[i - 1]
      i, dels = i - 1, dels + 1
    elif j > 1 and d[i][j - 1] == d[i - 1][j - 1] - 1:  # insertion of hyp[j - 1] (RapidFuzz's test)
      j, ins = j - 1, ins + 1
    else:  # hit or substitution of ref[i - 1] by hyp[j - 1]
      subs += ref[i - 1] != hyp[j - 1]
      i, j = i - 1, j - 1
  return ErrorCounts(subs, dels + i, ins + j, n)


def _check_text(name: str, x) -> str:
  if not isinstance(x, str):
    raise TypeError(f"{name} must be a str (whitespace-separated words); got {type(x).__name__} {x!r:.80}.")
  return x


def word_errors(reference: str, hypothesis: str) -> ErrorCounts:
  """Errors of one utterance; words are whitespace-separated."""
  return align(_check_text("reference", reference).split(), _check_text("hypothesis", hypothesis).split())


def _text_list(name: str, xs) -> list[str]:
  if isinstance(xs, (str, bytes)) or not isinstance(xs, Iterable):
    raise TypeError(f"{name} must be a list of str (one per utterance); got {type(xs).__name__} {xs!r:.80}.")
  xs = list(xs)
  for i, x in enumerate(xs):
    _check_text(f"{name}[{i}]", x)
  return xs


def utterance_errors(references: Iterable[str], hypotheses: Iterable[str]) -> list[ErrorCounts]:
  """`word_errors` of each pair, aligned once: corpus and cohort totals are sums of these
  (`group_counts`), and evaluation output keeps them per utterance (cohort discovery
  starts from them). Raises if the two lists differ in length."""
  references, hypotheses = _text_list("references", references), _text_list("hypotheses", hypotheses)
  if len(references) != len(hypotheses):
    raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses: they must pair up.")
  return [word_errors(r, h) for r, h in zip(references, hypotheses)]


def corpus_errors(references: Iterable[str], hypotheses: Iterable[str]) -> ErrorCounts:
  """Summed errors over utterances; raises if the two lists differ in length."""
  return sum(utterance_errors(references, hypotheses), ErrorCounts())


def group_counts(counts: Sequence[ErrorCounts], groups) -> dict:
  """``{group: ErrorCounts}``: the per-utterance ``counts`` summed per group label (sorted by label)."""
  if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
    raise TypeError(f"groups must be a list of labels (one per utterance); got {type(groups).__name__}.")
  groups = list(groups)
  if len(counts) != len(groups):
    raise ValueError(f"{len(counts)} utterances but {len(groups)} groups: they must pair up.")
  out: dict = {}
  for c, g in zip(counts, groups):
    out[g] = out.get(g, ErrorCounts()) + c
  return dict(sorted(out.items(), key=lambda kv: str(kv[0])))


def grouped_errors(references, hypotheses, groups) -> dict:
  """``{group: ErrorCounts}`` summed over the utterances of each group label (sorted by label)."""
  references, hypotheses = _text_list("references", references), _text_list("hypotheses", hypotheses)
  if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
    raise TypeError(f"groups must be a list of labels (one per utterance); got {type(groups).__name__}.")
  groups = list(groups)
  if not len(references) == len(hypotheses) == len(groups):
    raise ValueError(f"{len(references)} references, {len(hypotheses)} hypotheses and {len(groups)} groups: "
                     "they must pair up.")
  return group_counts(utterance_errors(references, hypotheses), groups)


def bootstrap_wers(counts: Sequence[ErrorCounts], clusters, key: int, draws: int = 2000):
  """``[draws]`` corpus WERs of cluster-bootstrap resamples (clusters, e.g. speakers, drawn with replacement).

  Utterances of one speaker are not independent, so the resampling unit is the
  cluster: each draw picks as many clusters as there are, with replacement, and sums
  their errors and reference words. A draw with no reference words is NaN.

  Args:
    counts: per-utterance errors.
    clusters: one label per utterance (e.g. its speaker id).
    key: seed of the draws (`numpy.random.default_rng`).
    draws: number of resamples, >= 1.

  References:
    Efron and Tibshirani, "An introduction to the bootstrap", 1993; Bisani and Ney,
    "Bootstrap estimates for confidence intervals in ASR performance evaluation", ICASSP 2004.
  """
  import numpy as np  # noqa: PLC0415 -- the rest of this module is pure Python

  grouped = group_counts(counts, clusters)
  if not grouped:
    raise ValueError("no utterances to resample.")
  if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
    raise ValueError(f"draws must be an integer >= 1; got {draws!r}.")
  errors = np.array([c.errors for c in grouped.values()], np.float64)
  words = np.array([c.reference_words for c in grouped.values()], np.float64)
  n = len(grouped)
  weights = np.random.default_rng(key).multinomial(n, np.full(n, 1.0 / n), size=draws)
  with np.errstate(invalid="ignore", divide="ignore"):
    return (weights @ errors) / (weights @ words)


def percentile_interval(draws, level: float = 0.95) -> tuple[float, float]:
  """``(low, high)``: the central ``level`` percentile interval of bootstrap ``draws`` (NaN draws ignored)."""
  import numpy as np  # noqa: PLC0415

  if not 0.0 < level < 1.0:
    raise ValueError(f"level must be in (0, 1); got {level!r}.")
  draws = np.asarray(draws, np.float64)
  draws = draws[~np.isnan(draws)]
  if draws.size == 0:
    return float("nan"), float("nan")
  low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
  return float(low), float(high)


def format_wer(c: ErrorCounts) -> str:
  """``c.wer`` in percent with one decimal, or ``"-"`` when there are no reference words."""
  return f"{100 * c.wer:.1f}" if c.reference_words else "-"


def wer_table(counts: dict, title: str = "group") -> str:
  """Markdown table of ``{name: ErrorCounts}`` (WER ``-`` for a group with no reference words)."""
  rows = [f"| {title} | words | WER % | sub | del | ins |", "| --- | --- | --- | --- | --- | --- |"]
  for name, c in counts.items():
    rows.append(f"| {name} | {c.reference_words} | {format_wer(c)} | {c.substitutions} | {c.deletions} "
                f"| {c.insertions} |")
  return "\n".join(rows)


__all__ = ["ErrorCounts", "align", "bootstrap_wers", "corpus_errors", "percentile_interval", "format_wer", "group_counts", "grouped_errors", "utterance_errors",
           "wer_table", "word_errors"]
