"""Word error rate by Levenshtein alignment, with error counts for corpus and cohort totals.

``WER = (S + D + I) / N`` with substitutions, deletions and insertions from a
minimum-edit-distance alignment of the hypothesis to the reference, and ``N`` the
number of reference words. Corpus WER sums errors and reference words over
utterances (never averages per-utterance rates), so cohorts can be compared and
aggregated exactly.

References:
  Levenshtein, "Binary codes capable of correcting deletions, insertions and
  reversals", 1966; NIST sclite's scoring conventions.
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
    """Word error rate; NaN when there are no reference words."""
    return self.errors / self.reference_words if self.reference_words else float("nan")

  def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
    return ErrorCounts(
        self.substitutions + other.substitutions,
        self.deletions + other.deletions,
        self.insertions + other.insertions,
        self.reference_words + other.reference_words,
    )


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> ErrorCounts:
  """Minimum-edit alignment of two token sequences (ties prefer substitutions, as sclite)."""
  n, m = len(reference), len(hypothesis)
  # cost[i, j] and (sub, del, ins) counts of the best path, row by row.
  prev = [(j, 0, 0, j) for j in range(m + 1)]  # (cost, subs, dels, ins)
  for i in range(1, n + 1):
    cur = [(i, 0, i, 0)]
    for j in range(1, m + 1):
      same = reference[i - 1] == hypothesis[j - 1]
      c, s, d, k = prev[j - 1]
      best = (c + (0 if same else 1), s + (0 if same else 1), d, k)
      c, s, d, k = prev[j]
      best = min(best, (c + 1, s, d + 1, k), key=lambda x: x[0])
      c, s, d, k = cur[j - 1]
      best = min(best, (c + 1, s, d, k + 1), key=lambda x: x[0])
      cur.append(best)
    prev = cur
  _, s, d, k = prev[m]
  return ErrorCounts(s, d, k, n)


def word_errors(reference: str, hypothesis: str) -> ErrorCounts:
  """Errors of one utterance; words are whitespace-separated."""
  return align(reference.split(), hypothesis.split())


def corpus_errors(references: Iterable[str], hypotheses: Iterable[str]) -> ErrorCounts:
  """Summed errors over utterances; raises if the two lists differ in length."""
  references, hypotheses = list(references), list(hypotheses)
  if len(references) != len(hypotheses):
    raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses.")
  total = ErrorCounts()
  for r, h in zip(references, hypotheses):
    total = total + word_errors(r, h)
  return total


def grouped_errors(references, hypotheses, groups) -> dict:
  """``{group: ErrorCounts}`` summed over the utterances of each group label."""
  out: dict = {}
  for r, h, g in zip(references, hypotheses, groups, strict=True):
    out[g] = out.get(g, ErrorCounts()) + word_errors(r, h)
  return dict(sorted(out.items(), key=lambda kv: str(kv[0])))


def wer_table(counts: dict, title: str = "group") -> str:
  """Markdown table of ``{name: ErrorCounts}``."""
  rows = [f"| {title} | words | WER % | sub | del | ins |", "| --- | --- | --- | --- | --- | --- |"]
  for name, c in counts.items():
    rows.append(f"| {name} | {c.reference_words} | {100 * c.wer:.1f} | {c.substitutions} | {c.deletions} | {c.insertions} |")
  return "\n".join(rows)


__all__ = ["ErrorCounts", "align", "corpus_errors", "grouped_errors", "wer_table", "word_errors"]
