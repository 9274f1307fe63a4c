"""A tiny template language for sentences, and the shipped templates.

Syntax of a template (or of a named phrase)::

  word          a literal word: lowercase letters and apostrophes
  {name}        a slot: a named phrase, a quantity (`asrjax.corpus.text.quantities`)
                or a lexicon category (its first column)
  {name:col}    column ``col`` of a lexicon entry, e.g. ``{thing_nouns:pl}``
  {name}'s      a slot with a possessive suffix
  (a | b c)     one alternative, uniformly (repeat one to weight it)
  [a b]         optional, present with probability 1/2
  [a | b c]     optional choice: the same as [(a | b c)]

Files under ``templates/``:

* ``phrases.txt``: ``name = body`` lines, named phrases (noun phrases, dates,
  ...) that other bodies refer to as ``{name}``.
* ``<kind>.txt`` (``assistant.txt``, ``read.txt``): ``domain | body`` lines; the
  file name is the sentence kind.

Grammatical agreement is the template author's job: a template states the
forms it needs (``{person_sg} {verbs_object:s} {thing_np}``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import re
import types
from collections.abc import Iterator, Mapping
from typing import Union

from asrjax.corpus.text import quantities
from asrjax.corpus.text import sampler as sampler_lib

_TOKEN = re.compile(r"\s*(?:([()|\[\]])|\{([a-z_]+)(?::([a-z_]+))?\}('s)?|([a-z']+))")
PHRASES_FILE = "phrases"


@dataclasses.dataclass(frozen=True)
class Word:
  text: str


@dataclasses.dataclass(frozen=True)
class Slot:
  name: str
  column: str | None = None
  suffix: str = ""


@dataclasses.dataclass(frozen=True)
class Seq:
  items: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Choice:
  options: tuple[Seq, ...]


@dataclasses.dataclass(frozen=True)
class Maybe:
  body: Seq


Node = Union[Word, Slot, Seq, Choice, Maybe]


@dataclasses.dataclass(frozen=True)
class Template:
  """One sentence template.

  Attributes:
    kind: sentence kind ("assistant" or "read").
    domain: topic tag, e.g. "timer".
    source: the template text.
    body: the parsed template.
  """

  kind: str
  domain: str
  source: str
  body: Seq


@dataclasses.dataclass(frozen=True)
class Grammar:
  """Templates by kind, plus the named phrases they use."""

  templates: Mapping[str, tuple[Template, ...]]
  phrases: Mapping[str, Seq]


def _tokens(source: str) -> Iterator[tuple[str, ...]]:
  pos, source = 0, source.rstrip()
  while pos < len(source):
    m = _TOKEN.match(source, pos)
    if not m or m.end() == pos:
      raise ValueError(f"cannot parse {source!r} at {source[pos:]!r}")
    pos = m.end()
    punct, slot, column, suffix, word = m.groups()
    if punct:
      yield (punct,)
    elif slot:
      yield ("slot", slot, column, suffix or "")
    else:
      yield ("word", word)


def parse(source: str) -> Seq:
  """Parses a template body.

  Raises:
    ValueError: on a syntax error.
  """
  tokens = list(_tokens(source))
  pos = 0

  def seq(closers: str) -> Seq:
    nonlocal pos
    items: list[Node] = []
    while pos < len(tokens) and tokens[pos][0] not in closers:
      token = tokens[pos]
      pos += 1
      if token[0] == "word":
        items.append(Word(token[1]))
      elif token[0] == "slot":
        items.append(Slot(token[1], token[2], token[3]))
      elif token[0] == "(":
        items.append(Choice(alternatives(")")))
      elif token[0] == "[":
        options = alternatives("]")
        items.append(Maybe(options[0] if len(options) == 1 else Seq((Choice(options),))))
      else:
        raise ValueError(f"unexpected {token[0]!r} in {source!r}")
    return Seq(tuple(items))

  def alternatives(closer: str) -> tuple[Seq, ...]:
    nonlocal pos
    options = [seq("|" + closer)]
    while pos < len(tokens) and tokens[pos][0] == "|":
      pos += 1
      options.append(seq("|" + closer))
    expect(closer)
    return tuple(options)

  def expect(closer: str) -> None:
    nonlocal pos
    if pos == len(tokens) or tokens[pos][0] != closer:
      raise ValueError(f"missing {closer!r} in {source!r}")
    pos += 1

  body = seq("")
  if pos != len(tokens):
    raise ValueError(f"unbalanced {tokens[pos][0]!r} in {source!r}")
  return body


def realise(node: Node, grammar: Grammar, sampler: sampler_lib.Sampler, out: list[str]) -> None:
  """Expands a node into words, appended to ``out``.

  Slot names resolve to a named phrase, else a quantity, else a lexicon category.
  """
  if isinstance(node, Word):
    out.append(node.text)
  elif isinstance(node, Slot):
    if node.name in grammar.phrases:
      realise(grammar.phrases[node.name], grammar, sampler, out)
    elif node.name in quantities.QUANTITIES:
      out.append(quantities.QUANTITIES[node.name](sampler))
    else:
      out.append(sampler.form(node.name, node.column))
    if node.suffix:
      out[-1] += node.suffix
  elif isinstance(node, Seq):
    for item in node.items:
      realise(item, grammar, sampler, out)
  elif isinstance(node, Choice):
    realise(sampler.choice(node.options), grammar, sampler, out)
  elif sampler.coin(0.5):
    realise(node.body, grammar, sampler, out)


def walk(node: Node) -> Iterator[Node]:
  """All nodes of a tree, depth first."""
  yield node
  children: tuple[Node, ...] = ()
  if isinstance(node, Seq):
    children = node.items
  elif isinstance(node, Choice):
    children = node.options
  elif isinstance(node, Maybe):
    children = (node.body,)
  for child in children:
    yield from walk(child)


def literal_words(grammar: Grammar) -> frozenset[str]:
  """Every literal word of every template and phrase."""
  bodies = [*grammar.phrases.values(), *(t.body for ts in grammar.templates.values() for t in ts)]
  return frozenset(n.text for body in bodies for n in walk(body) if isinstance(n, Word))


def check(grammar: Grammar, columns: Mapping[str, tuple[str, ...]]) -> None:
  """Checks that every slot resolves and that phrases do not recurse.

  Args:
    grammar: the grammar.
    columns: column names of every lexicon category.

  Raises:
    ValueError: naming the first bad slot.
  """

  def visit(body: Seq, stack: tuple[str, ...]) -> None:
    for node in walk(body):
      if not isinstance(node, Slot):
        continue
      if node.name in grammar.phrases or node.name in quantities.QUANTITIES:
        if node.column:
          raise ValueError(f"{node.name!r} is not a lexicon category; it takes no column")
        if node.name in stack:
          raise ValueError(f"phrase {node.name!r} refers to itself via {stack}")
        if node.name in grammar.phrases:
          visit(grammar.phrases[node.name], stack + (node.name,))
      elif node.name not in columns:
        raise ValueError(f"unknown slot {node.name!r} in {stack}")
      elif node.column is not None and node.column not in columns[node.name]:
        raise ValueError(f"category {node.name!r} has no column {node.column!r}")

  for name, body in grammar.phrases.items():
    visit(body, (name,))
  for templates in grammar.templates.values():
    for t in templates:
      visit(t.body, (t.source,))


def _lines(text: str) -> Iterator[str]:
  for line in text.splitlines():
    line = line.strip()
    if line and not line.startswith("#"):
      yield line


def parse_grammar(files: Mapping[str, str]) -> Grammar:
  """Builds a grammar from template file contents.

  Args:
    files: file stem -> text; ``phrases`` holds named phrases, every other
      stem is a sentence kind.

  Returns:
    The grammar, kinds in sorted order.

  Raises:
    ValueError: on a malformed line or a duplicated phrase name.
  """
  phrases: dict[str, Seq] = {}
  for line in _lines(files.get(PHRASES_FILE, "")):
    name, sep, body = line.partition("=")
    name = name.strip()
    if not sep or not re.fullmatch(r"[a-z_]+", name) or name in phrases:
      raise ValueError(f"bad or duplicate phrase line {line!r}")
    phrases[name] = parse(body)
  templates = {}
  for kind in sorted(k for k in files if k != PHRASES_FILE):
    kind_templates = []
    for line in _lines(files[kind]):
      domain, sep, body = line.partition("|")
      domain = domain.strip()
      if not sep or not re.fullmatch(r"[a-z_]+", domain):
        raise ValueError(f"bad template line {line!r} (want 'domain | body')")
      kind_templates.append(Template(kind, domain, body.strip(), parse(body)))
    templates[kind] = tuple(kind_templates)
  return Grammar(types.MappingProxyType(templates), types.MappingProxyType(phrases))


@functools.cache
def load_grammar() -> Grammar:
  """Parses the ``templates/*.txt`` files shipped with the package (cached)."""
  root = importlib.resources.files(__package__).joinpath("templates")
  files = {f.name[:-len(".txt")]: f.read_text(encoding="utf-8")
           for f in root.iterdir() if f.name.endswith(".txt")}
  return parse_grammar(files)
