"""Reserved (held-out) words: vocabulary that only dev and test text may use.

To measure out-of-vocabulary behavior, a fixed ~2% of the *eligible* filler
words is reserved. Eligible words are the words of the open categories (names,
places, nouns, foods, ...: `OPEN_CATEGORIES`) minus every "protected" word that
also appears outside them (template text, closed categories such as colors or
rooms, spelled quantities) and minus words with an apostrophe. The reserved
words are the eligible words with the smallest SHA-256 digests, a choice that
depends only on the word lists, never on `hash()` or the Python version.

An entry that contains a reserved word in any form is held out as a whole. The
training pools hold no such entry, so training text generated from them cannot
contain a reserved word; dev/test text draws held-out entries at a chosen rate
(`asrjax.corpus.text.sampler.Sampler`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
from collections.abc import Iterable, Mapping

from asrjax.corpus.text import lexicon as lexicon_lib

HELD_OUT_FRACTION = 0.02

OPEN_CATEGORIES = frozenset({
    "abstract_nouns", "animals", "artists", "cities", "countries", "dishes",
    "first_names", "foods", "household_items", "landmarks", "natural_features",
    "person_nouns", "place_nouns", "song_titles", "surnames", "thing_nouns",
})


@dataclasses.dataclass(frozen=True)
class Pools:
  """Entries of every category, split into those training may use and the rest.

  Attributes:
    columns: column names of each category.
    seen: entries free of reserved words.
    held: entries containing a reserved word (empty for closed categories).
  """

  columns: Mapping[str, tuple[str, ...]]
  seen: Mapping[str, tuple[tuple[str, ...], ...]]
  held: Mapping[str, tuple[tuple[str, ...], ...]]


def entry_words(entry: Iterable[str]) -> set[str]:
  """All words of all forms of an entry."""
  return {word for form in entry for word in form.split(" ")}


def held_out_words(lexicon: Mapping[str, lexicon_lib.Category], protected: Iterable[str],
                   fraction: float = HELD_OUT_FRACTION) -> frozenset[str]:
  """Chooses the reserved words.

  Args:
    lexicon: all categories.
    protected: words that must stay available to training text (template
      words, spelled numbers, ...).
    fraction: share of the eligible words to reserve.

  Returns:
    ``round(fraction * n_eligible)`` reserved words.
  """
  closed = set(protected)
  open_words = set()
  for name, category in lexicon.items():
    words = set().union(*(entry_words(e) for e in category.entries))
    (open_words if name in OPEN_CATEGORIES else closed).update(words)
  # Words with an apostrophe are never reserved: a template's possessive ("{first_names}'s")
  # could otherwise spell one.
  eligible = sorted(w for w in open_words - closed if "'" not in w)
  ranked = sorted(eligible, key=lambda w: hashlib.sha256(w.encode("utf-8")).hexdigest())
  return frozenset(ranked[:round(fraction * len(eligible))])


def split_pools(lexicon: Mapping[str, lexicon_lib.Category], reserved: frozenset[str]) -> Pools:
  """Splits every category's entries by whether they contain a reserved word.

  Args:
    lexicon: all categories.
    reserved: the reserved words.

  Returns:
    The pools.

  Raises:
    ValueError: if a category would have no entry left for training text.
  """
  columns, seen, held = {}, {}, {}
  for name, category in lexicon.items():
    columns[name] = category.columns
    seen[name] = tuple(e for e in category.entries if not entry_words(e) & reserved)
    held[name] = tuple(e for e in category.entries if entry_words(e) & reserved)
    if not seen[name]:
      raise ValueError(f"every entry of {name!r} contains a reserved word")
  return Pools(*(types.MappingProxyType(m) for m in (columns, seen, held)))
