"""Seeded English sentences for the synthetic speech corpus, and their splits.

A sentence is either a voice-assistant request ("set a timer for twenty five
minutes") or a read-speech sentence ("the old farmer carried the wooden box
across the bridge"): a template (`asrjax.corpus.text.grammar`, files under
``templates/``) is drawn, its slots filled from the word lists (``lexicon/``)
and spelled quantities (`asrjax.corpus.text.quantities`), and articles fixed
("a apple" -> "an apple"). Text is lowercase words (letters, apostrophes)
joined by single spaces; sentences have `MIN_WORDS` to `MAX_WORDS` words
(templates are re-drawn otherwise) and mostly 4-20.

Determinism: every draw comes from the `numpy.random.Generator` passed in
(via `asrjax.corpus.text.sampler.Sampler`), word lists and templates are read in
a fixed order, and nothing depends on `hash()` or set iteration order; the same
seed gives the same sentences on any machine and Python version. (The one
outside dependency is NumPy's PCG64 stream of doubles, `Generator.random`,
which has been stable since NumPy 1.17.)

Splits: `make_splits` draws train, dev and test from three independent child
seeds, each sentence distinct from every sentence before it (exact strings, so
no sentence is shared between splits). Training text never uses the reserved
~2% of open-class filler words (`asrjax.corpus.text.holdout`); dev and test draw
a held-out entry for each open-class slot with probability ``held_out_rate``,
so some of their words are out of the training vocabulary (`oov_rate`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping

import numpy as np

from asrjax.corpus.text import articles
from asrjax.corpus.text import grammar as grammar_lib
from asrjax.corpus.text import holdout
from asrjax.corpus.text import lexicon as lexicon_lib
from asrjax.corpus.text import quantities
from asrjax.corpus.text import sampler as sampler_lib

KINDS = ("assistant", "read")
SPLITS = ("train", "dev", "test")
MIN_WORDS = 3
MAX_WORDS = 24
DEFAULT_HELD_OUT_RATE = 0.05
DEFAULT_ASSISTANT_FRACTION = 0.5
_MAX_TRIES_PER_SENTENCE = 50


@dataclasses.dataclass(frozen=True)
class Sentence:
  """One generated sentence.

  Attributes:
    text: lowercase words separated by single spaces.
    kind: "assistant" or "read".
    domain: topic tag of its template. Assistant: "timer", "alarm", "music",
      "shopping", "weather", "smart_home", "calendar", "reminder",
      "communication", "question", "translation", "navigation", "news",
      "sports", "cooking", "conversion", "math", "general". Read speech:
      "story", "news", "fact", "dialogue".
  """

  text: str
  kind: str
  domain: str


@functools.cache
def _resources() -> tuple[grammar_lib.Grammar, holdout.Pools, frozenset[str]]:
  lexicon = lexicon_lib.load_lexicon()
  grammar = grammar_lib.load_grammar()
  grammar_lib.check(grammar, {name: c.columns for name, c in lexicon.items()})
  if set(grammar.templates) != set(KINDS):
    raise ValueError(f"template kinds {sorted(grammar.templates)} != {sorted(KINDS)}")
  protected = grammar_lib.literal_words(grammar) | quantities.WORDS
  reserved = holdout.held_out_words(lexicon, protected)
  return grammar, holdout.split_pools(lexicon, reserved), reserved


def reserved_words() -> frozenset[str]:
  """The held-out words: never in text generated with ``held_out_rate=0``."""
  return _resources()[2]


def _kind(sampler: sampler_lib.Sampler, assistant_fraction: float) -> str:
  return "assistant" if sampler.coin(assistant_fraction) else "read"


def _draw(sampler: sampler_lib.Sampler, grammar: grammar_lib.Grammar, kind: str) -> Sentence:
  while True:
    template = sampler.choice(grammar.templates[kind])
    pieces: list[str] = []
    grammar_lib.realise(template.body, grammar, sampler, pieces)
    words = " ".join(pieces).split(" ")
    if MIN_WORDS <= len(words) <= MAX_WORDS:
      return Sentence(" ".join(articles.fix_articles(words)), kind, template.domain)


def generate_sentences(rng: np.random.Generator, n: int, *, held_out_rate: float = 0.0,
                       assistant_fraction: float = DEFAULT_ASSISTANT_FRACTION) -> list[Sentence]:
  """Draws ``n`` sentences (duplicates possible).

  Args:
    rng: source of every random draw; it is advanced.
    n: number of sentences.
    held_out_rate: probability that an open-class slot (names, places, nouns,
      ...) takes an entry with a reserved word; 0 gives training-safe text.
    assistant_fraction: probability of a voice-assistant request (else read
      speech).

  Returns:
    The sentences, in draw order.
  """
  if n < 0:
    raise ValueError(f"n must be >= 0, got {n}")
  grammar, pools, _ = _resources()
  sampler = sampler_lib.Sampler(rng, pools, held_out_rate)
  return [_draw(sampler, grammar, _kind(sampler, assistant_fraction)) for _ in range(n)]


def _distinct(sampler: sampler_lib.Sampler, n: int, taken: set[str], assistant_fraction: float) -> list[Sentence]:
  """``n`` sentences not in ``taken`` (which grows); a duplicate is redrawn with the same kind."""
  grammar = _resources()[0]
  out: list[Sentence] = []
  budget = _MAX_TRIES_PER_SENTENCE * n
  while len(out) < n:
    kind = _kind(sampler, assistant_fraction)
    while True:
      budget -= 1
      if budget < 0:
        raise RuntimeError(f"only {len(out)} of {n} distinct sentences after {_MAX_TRIES_PER_SENTENCE * n} draws")
      sentence = _draw(sampler, grammar, kind)
      if sentence.text not in taken:
        break
    taken.add(sentence.text)
    out.append(sentence)
  return out


def make_splits(seed: int, sizes: Mapping[str, int], *, held_out_rate: float = DEFAULT_HELD_OUT_RATE,
                assistant_fraction: float = DEFAULT_ASSISTANT_FRACTION) -> dict[str, list[Sentence]]:
  """Train/dev/test sentence lists with no sentence shared between or within them.

  Train is drawn from child seed 0 of ``seed`` (so it does not depend on the
  dev/test sizes), dev from child 1, test from child 2; each split rejects
  sentences already taken by itself or an earlier split, redrawing with the
  same kind so that rejection does not skew the assistant/read mix. Train uses
  no reserved word; dev and test use them at ``held_out_rate`` (see
  `generate_sentences`). Dev and test depend on the train size (through
  rejection), never the other way round.

  Args:
    seed: non-negative integer seed.
    sizes: number of sentences per split; keys from "train", "dev", "test".
    held_out_rate: held-out entry probability for dev and test slots.
    assistant_fraction: share of voice-assistant requests.

  Returns:
    Split name -> sentences, with the keys of ``sizes``.

  Raises:
    ValueError: for an unknown split name or a negative size.
    RuntimeError: if the grammar cannot supply enough distinct sentences.
  """
  unknown = set(sizes) - set(SPLITS)
  if unknown or any(v < 0 for v in sizes.values()):
    raise ValueError(f"sizes must map {SPLITS} to non-negative ints, got {dict(sizes)}")
  pools = _resources()[1]
  children = np.random.SeedSequence(seed).spawn(len(SPLITS))
  taken: set[str] = set()
  splits = {}
  for name, child in zip(SPLITS, children):
    rate = 0.0 if name == "train" else held_out_rate
    sampler = sampler_lib.Sampler(np.random.default_rng(child), pools, rate)
    splits[name] = _distinct(sampler, sizes.get(name, 0), taken, assistant_fraction)
  return {name: splits[name] for name in sizes}


def vocabulary(sentences: Iterable[Sentence]) -> set[str]:
  """The word types of some sentences."""
  return {word for s in sentences for word in s.text.split(" ")}


def oov_rate(train: Iterable[Sentence], other: Iterable[Sentence]) -> float:
  """Fraction of the word tokens of ``other`` that never occur in ``train``.

  Args:
    train: the sentences defining the vocabulary.
    other: the sentences to score (e.g. test).

  Returns:
    OOV tokens / all tokens of ``other``; 0.0 when ``other`` has no tokens.
  """
  vocab = vocabulary(train)
  tokens = [word for s in other for word in s.text.split(" ")]
  return sum(word not in vocab for word in tokens) / len(tokens) if tokens else 0.0
