"""Choosing "a" or "an" by the sound of the next word.

Templates always write "a"; `fix_articles` rewrites each "a"/"an" to match the
following word: "an" before a vowel sound ("an apple", "an hour"), "a" before a
consonant sound ("a university", "a one way ticket"). The rule is spelling-based
with the exceptions that occur in English words; the letter sequence "a m"
(a.m.) is left alone because "m" is a consonant letter.
"""

from __future__ import annotations

from collections.abc import Sequence

# Vowel letter, consonant sound: "a university", "a european", "a one".
_CONSONANT_SOUND_PREFIXES = ("uni", "use", "usu", "uti", "eu", "ewe", "one", "once", "ubi", "uku", "ukr")
# Consonant letter, vowel sound: "an hour", "an honest".
_VOWEL_SOUND_PREFIXES = ("hour", "honest", "honor", "heir", "herb")


def starts_with_vowel_sound(word: str) -> bool:
  """Whether ``word`` is pronounced with an initial vowel (so takes "an")."""
  if word.startswith(_VOWEL_SOUND_PREFIXES):
    return True
  if word.startswith(_CONSONANT_SOUND_PREFIXES) and not word.startswith(("unin", "unim", "unid")):
    return False
  return word[:1] in ("a", "e", "i", "o", "u")


def fix_articles(words: Sequence[str]) -> list[str]:
  """Returns ``words`` with every article agreeing with the word after it.

  Args:
    words: single words (no spaces).

  Returns:
    A new list; only "a"/"an" tokens followed by a word change.
  """
  out = list(words)
  for i in range(len(out) - 1):
    if out[i] in ("a", "an"):
      out[i] = "an" if starts_with_vowel_sound(out[i + 1]) else "a"
  return out
