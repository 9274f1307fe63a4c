"""Out-of-vocabulary words: reference words never seen in the training transcripts."""

from __future__ import annotations

from typing import Iterable


def vocabulary(transcripts: Iterable[str]) -> frozenset:
  """The set of whitespace-separated words of ``transcripts`` (also the closed vocabulary
  of `asrjax.decoding.word_lm`)."""
  return frozenset(w for t in transcripts for w in t.split())


def oov_words(reference: str, vocab: frozenset) -> list[str]:
  """The words of ``reference`` not in ``vocab``, in order, repeats kept."""
  return [w for w in reference.split() if w not in vocab]


__all__ = ["oov_words", "vocabulary"]
