"""A word n-gram over the training vocabulary, seen character by character, for shallow fusion.

A character-level transducer proposes one character at a time; a word LM scores
words. `LexiconWordLM` turns a word n-gram ``P(w | h)`` over a closed vocabulary
``W`` into the exact next-character distribution it implies (the "look-ahead" word
LM of Hori et al., 2018). With ``h`` the completed words and ``p`` the partial word
typed so far, and ``M(p) = sum_{w in W, w starts with p} P(w | h)``:

  P(c | h, p)     = M(p c) / M(p)                               (c a letter)
  P(space | h, p) = P(p | h) (1 - P(</s> | h p)) / M(p)          (p a word)
  P(</s> | h, p)  = P(p | h) P(</s> | h p) / M(p)

with ``P`` the word n-gram renormalised without ``<unk>``. These telescope: the
character log-probabilities of an in-vocabulary sentence sum to the word n-gram's
log-probability of it (tested). Words are kept sorted, so the words
starting with a prefix are one contiguous range and ``M`` is a difference of a
cumulative sum (one per word history, cached).

Spellings outside the vocabulary (real test words can be new) have ``M(p) = 0``;
for them, and as a floor everywhere, the distribution is interpolated with a
character n-gram ``Q`` (`ngram_lm.NgramLM` over the same ids):

  P = (1 - char_weight) P_lexicon + char_weight Q,  or Q alone once ``M(p) = 0``;

a completed unknown word enters the word history as ``<unk>``. Both parts are
normalised over the same events, so ``P`` is a distribution (tested).

References:
  Hori, Cho, Watanabe, "End-to-end speech recognition with word-based RNN language
  models", SLT 2018 (arXiv:1808.02608), the look-ahead word LM.
"""

from __future__ import annotations

import bisect
import functools
from typing import Sequence

import numpy as np

from asrjax.decoding import ngram_lm
from asrjax.metrics import oov

UNK_WORD = 1  # word id of an out-of-vocabulary word (0 is never used, like the blank)


class LexiconWordLM:
  """Next-character log-probabilities from a word n-gram + a character n-gram.

  Same interface as `ngram_lm.NgramLM` (``vocab_size``, ``eos_id``,
  ``log_probs(prefix)``), so `beam_search(lm=...)` fuses either.

  Args:
    words: the vocabulary; word ``words[i]`` has id ``i + 2`` in ``word_lm``.
    word_lm: n-gram over word ids (``vocab_size = len(words) + 2``).
    char_lm: n-gram over the character ids.
    id_to_char: text character of every character id ``>= 2`` (id 2 must be the space).
    char_weight: interpolation weight of ``char_lm`` in ``[0, 1]``.

  Raises:
    ValueError: naming the argument: unsorted/duplicate/empty words, a ``word_lm``
      of the wrong size, a ``char_weight`` outside ``[0, 1]`` (NaN included), or
      ``id_to_char`` without the space at id 2 or with ids outside ``[2, char_lm.vocab_size)``.
  """

  def __init__(self, words: Sequence[str], word_lm: ngram_lm.NgramLM, char_lm: ngram_lm.NgramLM,
               id_to_char: dict[int, str], char_weight: float):
    if any(not isinstance(w, str) for w in words):
      raise ValueError("words must be strings.")
    if list(words) != sorted(set(words)) or any(not w or " " in w for w in words):
      raise ValueError("words must be sorted, distinct, non-empty and without spaces.")
    for name, lm in (("word_lm", word_lm), ("char_lm", char_lm)):
      if not isinstance(lm, ngram_lm.NgramLM):
        raise ValueError(f"{name} must be an ngram_lm.NgramLM; got {type(lm).__name__}.")
    if word_lm.vocab_size != len(words) + 2:
      raise ValueError(f"word_lm has {word_lm.vocab_size} ids; {len(words)} words need {len(words) + 2}.")
    if isinstance(char_weight, bool) or not isinstance(char_weight, (int, float, np.number)) or not (
        0.0 <= char_weight <= 1.0):
      raise ValueError(f"char_weight must be a number in [0, 1]; got {char_weight!r}.")
    if id_to_char.get(2) != " ":
      raise ValueError("id_to_char: character id 2 must be the space (the word boundary).")
    outside = sorted(i for i in id_to_char if not 2 <= int(i) < char_lm.vocab_size)
    if outside:
      raise ValueError(f"id_to_char has ids {outside[:5]} outside [2, {char_lm.vocab_size}), the char_lm's "
                       "character ids.")
    self.words, self.word_lm, self.char_lm, self.char_weight = list(words), word_lm, char_lm, char_weight
    self.vocab_size = char_lm.vocab_size
    self._letters = sorted((i, c) for i, c in id_to_char.items() if i != 2)
    self._char_of = dict(id_to_char)
    self._word_id = {w: i + 2 for i, w in enumerate(self.words)}
    self._cumulative = functools.lru_cache(maxsize=4096)(self._cumulative_uncached)
    self._cached_log_probs = functools.lru_cache(maxsize=200_000)(self._log_probs)

  @property
  def eos_id(self) -> int:
    return self.vocab_size

  @property
  def id_to_char(self) -> dict[int, str]:
    """The text character of every character id ``>= 2`` (a copy)."""
    return dict(self._char_of)

  @classmethod
  def fit(cls, transcripts: Sequence[str], id_to_char: dict[int, str], char_lm: ngram_lm.NgramLM,
          order: int = 4, discount: float = 0.7, char_weight: float = 0.1) -> "LexiconWordLM":
    """Counts a word n-gram on ``transcripts`` (their words are the vocabulary) and wraps it."""
    words = sorted(oov.vocabulary(transcripts))
    word_id = {w: i + 2 for i, w in enumerate(words)}
    word_lm = ngram_lm.NgramLM.fit([[word_id[w] for w in t.split()] for t in transcripts], len(words) + 2, order,
                                   discount)
    return cls(words, word_lm, char_lm, id_to_char, char_weight)

  def log_probs(self, prefix: Sequence[int]) -> np.ndarray:
    """``[vocab_size + 1]`` ``log P(next | prefix)`` over character ids; entry 0 (blank) is ``-inf``, the last ``</s>``.

    Raises:
      ValueError: ``prefix`` holds an id outside ``[1, vocab_size)`` (1 is the unknown
        character, which matches no word).
    """
    return self._cached_log_probs(tuple(ngram_lm._check_ids(prefix, self.vocab_size, "prefix")))

  # ------------------------------------------------------------------ scoring
  def _cumulative_uncached(self, history: tuple[int, ...]):
    """``(P'(. | history) [W + 3], its cumulative sum over the sorted words [W + 1])``.

    ``P'`` is the word n-gram without ``<unk>`` (renormalised over the vocabulary and
    ``</s>``): unknown spellings are the character LM's part.
    """
    p = np.exp(self.word_lm.log_probs(history))
    p[0] = p[UNK_WORD] = 0.0
    p /= p.sum()
    return p, np.concatenate([[0.0], np.cumsum(p[2:2 + len(self.words)])])

  def _mass(self, cum: np.ndarray, prefix: str) -> float:
    lo = bisect.bisect_left(self.words, prefix)
    hi = bisect.bisect_left(self.words, prefix + "\U0010ffff")
    return float(cum[hi] - cum[lo])

  def _lexicon_probs(self, history: tuple[int, ...], partial: str) -> np.ndarray | None:
    """``P_lexicon`` over ``[vocab_size + 1]`` events, or None when no word starts with ``partial``."""
    p_words, cum = self._cumulative(history)
    eos = self.word_lm.eos_id
    mass = self._mass(cum, partial)
    out = np.zeros(self.vocab_size + 1)
    if not partial:  # start of a word: a letter, or (before any word) the end of an empty sentence
      if not history:
        mass += p_words[eos]
        out[self.eos_id] = p_words[eos]
    if mass <= 0.0:
      return None
    for i, c in self._letters:
      out[i] = self._mass(cum, partial + c)
    w = self._word_id.get(partial)
    if w is not None:
      end = self._cumulative(history + (w,))[0][eos]
      out[2] = p_words[w] * (1.0 - end)
      out[self.eos_id] = p_words[w] * end
    return out / mass

  def _log_probs(self, prefix: tuple[int, ...]) -> np.ndarray:
    text = "".join(self._char_of.get(int(i), "\0") for i in prefix)  # "\0" (unk id) matches no word
    *done, partial = text.split(" ")
    history = tuple(self._word_id.get(w, UNK_WORD) for w in done)
    char = np.exp(self.char_lm.log_probs(prefix))
    lexicon = self._lexicon_probs(history, partial)
    p = char if lexicon is None else (1.0 - self.char_weight) * lexicon + self.char_weight * char
    with np.errstate(divide="ignore"):
      out = np.log(p)
    out[0] = -np.inf
    return out
