"""Word lists (slot fillers) loaded from the plain-text files in ``lexicon/``.

Each file ``lexicon/<category>.txt`` is one category. A line is one entry; an
entry with several forms (noun singular/plural, verb base/3sg/past/participle/
-ing) separates them with ``|`` and declares the column names once in a header
comment, e.g. ``# columns: sg|pl``. Other lines starting with ``#`` and blank
lines are ignored. A form is one or more lowercase words (letters and
apostrophes) separated by single spaces. Entries keep their file order and
categories are sorted by name, so everything downstream is order-deterministic.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import re
import types
from collections.abc import Mapping

_FORM = re.compile(r"[a-z']+(?: [a-z']+)*")
_COLUMNS_HEADER = "# columns:"


@dataclasses.dataclass(frozen=True)
class Category:
  """One word list.

  Attributes:
    name: category name (the file name without ``.txt``).
    columns: names of the forms of each entry, e.g. ``("sg", "pl")``.
    entries: the entries, each a tuple with one string per column.
  """

  name: str
  columns: tuple[str, ...]
  entries: tuple[tuple[str, ...], ...]


def parse_category(name: str, text: str) -> Category:
  """Parses the text of one lexicon file.

  Args:
    name: category name.
    text: file contents.

  Returns:
    The category.

  Raises:
    ValueError: on a malformed or duplicated entry, or an empty category.
  """
  columns = ("text",)
  entries: list[tuple[str, ...]] = []
  seen: set[tuple[str, ...]] = set()
  for number, line in enumerate(text.splitlines(), start=1):
    line = line.strip()
    if line.startswith(_COLUMNS_HEADER):
      columns = tuple(c.strip() for c in line[len(_COLUMNS_HEADER):].split("|"))
      continue
    if not line or line.startswith("#"):
      continue
    forms = tuple(f.strip() for f in line.split("|"))
    if len(forms) != len(columns) or not all(_FORM.fullmatch(f) for f in forms):
      raise ValueError(f"{name}.txt:{number}: bad entry {line!r} for columns {columns}")
    if forms in seen:
      raise ValueError(f"{name}.txt:{number}: duplicate entry {line!r}")
    seen.add(forms)
    entries.append(forms)
  if not entries:
    raise ValueError(f"{name}.txt: no entries")
  return Category(name, columns, tuple(entries))


@functools.cache
def load_lexicon() -> Mapping[str, Category]:
  """Loads every ``lexicon/*.txt`` file shipped with the package (cached).

  Returns:
    Read-only mapping from category name to category, sorted by name.
  """
  root = importlib.resources.files(__package__).joinpath("lexicon")
  files = sorted((f for f in root.iterdir() if f.name.endswith(".txt")), key=lambda f: f.name)
  categories = {}
  for f in files:
    name = f.name[:-len(".txt")]
    categories[name] = parse_category(name, f.read_text(encoding="utf-8"))
  return types.MappingProxyType(categories)
