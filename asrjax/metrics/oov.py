"""Out-of-vocabulary words: reference words never seen in the training transcripts."""

from __future__ import annotations

from collections.abc import Container, Iterable


def vocabulary(transcripts: Iterable[str]) -> frozenset:
  """The set of whitespace-separated words of ``transcripts`` (also the closed vocabulary
  of `asrjax.decoding.word_lm`).

  Raises:
    TypeError: ``transcripts`` is a single string (its characters would be read as
      transcripts) or holds a non-string.
  """
  if isinstance(transcripts, (str, bytes)) or not isinstance(transcripts, Iterable):
    raise TypeError(f"transcripts must be a list of str (one per utterance); got {type(transcripts).__name__}.")
  words = set()
  for i, t in enumerate(transcripts):
    if not isinstance(t, str):
      raise TypeError(f"transcripts[{i}] must be a str; got {type(t).__name__} {t!r:.80}.")
    words.update(t.split())
  return frozenset(words)


def oov_words(reference: str, vocab: frozenset) -> list[str]:
  """The words of ``reference`` not in ``vocab``, in order, repeats kept.

  Raises:
    TypeError: ``reference`` is not a str, or ``vocab`` is not a collection of words (a
      string would test substrings).
  """
  if not isinstance(reference, str):
    raise TypeError(f"reference must be a str; got {type(reference).__name__} {reference!r:.80}.")
  if isinstance(vocab, (str, bytes)) or not isinstance(vocab, Container):
    raise TypeError(f"vocab must be a set of words (e.g. oov.vocabulary(...)); got {type(vocab).__name__}.")
  return [w for w in reference.split() if w not in vocab]


__all__ = ["oov_words", "vocabulary"]
