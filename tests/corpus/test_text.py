"""Tests for the seeded sentence generator (`asrjax.corpus.text`)."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from asrjax.corpus.text import articles
from asrjax.corpus.text import generator
from asrjax.corpus.text import grammar
from asrjax.corpus.text import holdout
from asrjax.corpus.text import lexicon
from asrjax.corpus.text import numbers
from asrjax.corpus.text import quantities
from asrjax.corpus.text import sampler as sampler_lib

TEXT = re.compile(r"[a-z']+(?: [a-z']+)*")
SIZES = {"train": 20_000, "dev": 1_000, "test": 1_000}


@pytest.fixture(scope="module")
def splits():
  return generator.make_splits(0, SIZES)


def _pools():
  return generator._resources()[1]


# --- number spelling ----------------------------------------------------------


@pytest.mark.parametrize("n, expected", [
    (0, "zero"),
    (7, "seven"),
    (13, "thirteen"),
    (20, "twenty"),
    (21, "twenty one"),
    (99, "ninety nine"),
    (100, "one hundred"),
    (101, "one hundred one"),
    (110, "one hundred ten"),
    (999, "nine hundred ninety nine"),
    (1000, "one thousand"),
    (1001, "one thousand one"),
    (2024, "two thousand twenty four"),
    (10_000, "ten thousand"),
    (12_345, "twelve thousand three hundred forty five"),
    (100_000, "one hundred thousand"),
    (700_019, "seven hundred thousand nineteen"),
    (999_999, "nine hundred ninety nine thousand nine hundred ninety nine"),
    (1_000_000, "one million"),
    (3_000_450, "three million four hundred fifty"),
    (1_000_000_001, "one billion one"),
])
def test_cardinal(n, expected):
  assert numbers.cardinal(n) == expected


@pytest.mark.parametrize("n, expected", [
    (1, "first"), (2, "second"), (3, "third"), (4, "fourth"), (5, "fifth"), (8, "eighth"),
    (9, "ninth"), (11, "eleventh"), (12, "twelfth"), (20, "twentieth"), (21, "twenty first"),
    (22, "twenty second"), (23, "twenty third"), (30, "thirtieth"), (31, "thirty first"),
    (40, "fortieth"), (100, "one hundredth"), (101, "one hundred first"),
    (112, "one hundred twelfth"), (1000, "one thousandth"), (2_000_000, "two millionth"),
])
def test_ordinal(n, expected):
  assert numbers.ordinal(n) == expected


@pytest.mark.parametrize("n, expected", [
    (1066, "ten sixty six"), (1900, "nineteen hundred"), (1905, "nineteen oh five"),
    (1984, "nineteen eighty four"), (2000, "two thousand"), (2005, "two thousand five"),
    (2010, "twenty ten"), (2024, "twenty twenty four"), (3000, "three thousand"), (476, "four hundred seventy six"),
])
def test_year(n, expected):
  assert numbers.year(n) == expected


@pytest.mark.parametrize("args, expected", [
    ((7, 30), "seven thirty a m"),
    ((19, 5), "seven oh five p m"),
    ((0, 0), "twelve a m"),
    ((12, 0), "twelve p m"),
    ((12, 45), "twelve forty five p m"),
    ((23, 59), "eleven fifty nine p m"),
])
def test_clock_time(args, expected):
  assert numbers.clock_time(*args) == expected


def test_clock_time_without_meridiem_and_informal():
  assert numbers.clock_time(7, 0, meridiem=False) == "seven o'clock"
  assert numbers.clock_time(15, 20, meridiem=False) == "three twenty"
  assert numbers.informal_time(7, 15) == "quarter past seven"
  assert numbers.informal_time(19, 30) == "half past seven"
  assert numbers.informal_time(7, 45) == "quarter to eight"
  assert numbers.informal_time(23, 45) == "quarter to twelve"
  assert numbers.informal_time(12, 0) == "noon"
  assert numbers.informal_time(0, 0) == "midnight"
  assert numbers.informal_time(7, 10) is None


def test_cardinal_is_injective_and_uses_only_number_words():
  values = [*range(0, 20_000), *range(20_000, 10**6, 997), 10**6, 10**9 + 7]
  spelled = [numbers.cardinal(n) for n in values]
  assert len(set(spelled)) == len(values)
  assert all(TEXT.fullmatch(s) for s in spelled)
  assert {w for s in spelled for w in s.split(" ")} <= numbers.WORDS
  ordinals = {numbers.ordinal(n) for n in range(1, 5000)}
  assert len(ordinals) == 4999 and {w for s in ordinals for w in s.split(" ")} <= numbers.WORDS


@pytest.mark.parametrize("fn, arg", [
    (numbers.cardinal, -1), (numbers.cardinal, 10**12), (numbers.ordinal, 0), (numbers.year, 0),
    (numbers.year, 10_000),
])
def test_numbers_reject_out_of_range(fn, arg):
  with pytest.raises(ValueError):
    fn(arg)


def test_clock_rejects_bad_times():
  with pytest.raises(ValueError):
    numbers.clock_time(24, 0)
  with pytest.raises(ValueError):
    numbers.informal_time(3, 60)


# --- articles -------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("a apple", "an apple"),
    ("an box", "a box"),
    ("a hour and a half", "an hour and a half"),
    ("an university", "a university"),
    ("a honest man", "an honest man"),
    ("an one way ticket", "a one way ticket"),
    ("a unimportant idea", "an unimportant idea"),
    ("a european city", "a european city"),
    ("seven thirty a m", "seven thirty a m"),
    ("a", "a"),
    ("put a egg in a oven", "put an egg in an oven"),
])
def test_fix_articles(text, expected):
  assert " ".join(articles.fix_articles(text.split(" "))) == expected


# --- lexicon ----------------------------------------------------------------------


def test_parse_category_reads_columns_and_skips_comments():
  text = "# A comment\n# columns: sg|pl\n\ncat|cats\n  box | boxes \n# trailing\n"
  category = lexicon.parse_category("toy", text)
  assert category.columns == ("sg", "pl")
  assert category.entries == (("cat", "cats"), ("box", "boxes"))


@pytest.mark.parametrize("text", [
    "# columns: sg|pl\ncat\n",        # missing column
    "Cat\n",                          # upper case
    "new  york\n",                    # double space
    "route 66\n",                     # digit
    "hello, world\n",                 # punctuation
    "cat\ncat\n",                     # duplicate
    "# only a comment\n",             # empty
])
def test_parse_category_rejects_bad_files(text):
  with pytest.raises(ValueError):
    lexicon.parse_category("bad", text)


def test_shipped_lexicon():
  lex = lexicon.load_lexicon()
  assert list(lex) == sorted(lex)
  assert holdout.OPEN_CATEGORIES <= set(lex)
  minimum = {"first_names": 300, "surnames": 300, "cities": 250, "countries": 150, "thing_nouns": 350,
             "verbs_object": 150, "adjectives_physical": 150, "foods": 200}
  for name, size in minimum.items():
    assert len(lex[name].entries) >= size, name
  types = {w for c in lex.values() for e in c.entries for f in e for w in f.split(" ")}
  assert len(types) >= 4000
  for name, category in lex.items():
    if name.startswith("verbs_"):
      assert category.columns == ("base", "s", "past", "pp", "ing"), name
      for base, s, _, _, ing in category.entries:
        head = base.split(" ")[0]
        assert s.split(" ")[0].endswith("s") and ing.split(" ")[0].endswith("ing"), base
        assert s.split(" ")[0].startswith(head[:2]), base
    elif category.columns == ("sg", "pl"):
      assert sum(sg != pl for sg, pl in category.entries) >= 0.9 * len(category.entries), name


# --- template language --------------------------------------------------------------


def _toy_grammar():
  files = {
      "phrases": "greeting = (hello | hi)\n",
      "kind": "dom | {greeting} [big | small] {toy_nouns:pl} [now]\n",
  }
  return grammar.parse_grammar(files)


def _toy_sampler(seed):
  lex = {"toy_nouns": lexicon.parse_category("toy_nouns", "# columns: sg|pl\ncat|cats\nbox|boxes\n")}
  pools = holdout.split_pools(lex, frozenset())
  return sampler_lib.Sampler(np.random.default_rng(seed), pools)


def test_realise_reaches_exactly_the_language():
  g = _toy_grammar()
  grammar.check(g, {"toy_nouns": ("sg", "pl")})
  s = _toy_sampler(0)
  seen = collections.Counter()
  for _ in range(4000):
    out = []
    grammar.realise(g.templates["kind"][0].body, g, s, out)
    seen[" ".join(out)] += 1
  expected = {f"{g} {a}{n}{t}" for g in ("hello", "hi") for a in ("", "big ", "small ")
              for n in ("cats", "boxes") for t in ("", " now")}
  assert set(seen) == expected
  # [big | small] is present half the time, each option a quarter.
  big = sum(c for k, c in seen.items() if " big " in k) / 4000
  assert 0.2 < big < 0.3


@pytest.mark.parametrize("source", ["(a | b", "a ) b", "[a", "a | b", "{Bad}", "a, b", "(a | [b)]"])
def test_parse_rejects_bad_templates(source):
  with pytest.raises(ValueError):
    grammar.parse(source)


def test_check_rejects_unknown_slots_and_recursion():
  with pytest.raises(ValueError, match="unknown slot"):
    grammar.check(grammar.parse_grammar({"k": "d | {nope}"}), {})
  with pytest.raises(ValueError, match="no column"):
    grammar.check(grammar.parse_grammar({"k": "d | {toy:xx}"}), {"toy": ("sg", "pl")})
  with pytest.raises(ValueError, match="itself"):
    grammar.check(grammar.parse_grammar({"phrases": "a = x [{a}]", "k": "d | {a}"}), {})


def test_shipped_grammar_size_and_domains():
  g = grammar.load_grammar()
  assert len(g.templates["assistant"]) >= 60
  assert len(g.templates["read"]) >= 40
  domains = {t.domain for t in g.templates["assistant"]}
  assert {"timer", "alarm", "music", "shopping", "weather", "smart_home", "calendar", "reminder",
          "question", "communication"} <= domains


def test_every_template_realises_to_valid_text():
  g, pools, _ = generator._resources()
  s = sampler_lib.Sampler(np.random.default_rng(3), pools, held_out_rate=0.5)
  for kind, templates in g.templates.items():
    for t in templates:
      for _ in range(5):
        out = []
        grammar.realise(t.body, g, s, out)
        assert TEXT.fullmatch(" ".join(out)), (t.source, out)


def test_quantities_emit_only_declared_words():
  s = sampler_lib.Sampler(np.random.default_rng(0), _pools())
  for name, fn in quantities.QUANTITIES.items():
    for _ in range(300):
      text = fn(s)
      assert TEXT.fullmatch(text), (name, text)
      assert set(text.split(" ")) <= quantities.WORDS, (name, text)


def test_sampler_below_is_uniform():
  s = sampler_lib.Sampler(np.random.default_rng(5), _pools())
  counts = np.bincount([s.below(7) for _ in range(70_000)], minlength=7)
  assert counts.sum() == 70_000 and np.all(np.abs(counts - 10_000) < 500)


# --- generated sentences --------------------------------------------------------------


def test_sentences_are_well_formed(splits):
  sentences = [s for split in splits.values() for s in split]
  assert all(TEXT.fullmatch(s.text) for s in sentences)
  assert {s.kind for s in sentences} == set(generator.KINDS)
  assert all(s.domain for s in sentences)
  share = sum(s.kind == "assistant" for s in splits["train"]) / len(splits["train"])
  assert 0.45 < share < 0.55
  lengths = np.array([len(s.text.split(" ")) for s in sentences])
  assert lengths.min() >= generator.MIN_WORDS and lengths.max() <= generator.MAX_WORDS
  assert np.mean((lengths >= 4) & (lengths <= 20)) > 0.9
  # Spot-check articles: never "an" + consonant letter (bar "h": "an hour"), never
  # "a" + a/i/o (bar "one"). "a m" (a.m.) is not an article.
  bad = [s.text for s in sentences if re.search(r"\ban [bcdfgjklmnpqrstvwxyz]|\ba (?:[ai]|o(?!ne\b))", s.text)]
  assert not bad, bad[:5]


def test_vocabulary_of_twenty_thousand_sentences(splits):
  assert len(generator.vocabulary(splits["train"])) >= 2000


def test_splits_have_requested_sizes_and_share_no_sentence(splits):
  texts = {name: [s.text for s in split] for name, split in splits.items()}
  assert {k: len(v) for k, v in texts.items()} == SIZES
  for name, t in texts.items():
    assert len(set(t)) == len(t), name
  assert not set(texts["train"]) & set(texts["dev"])
  assert not set(texts["train"]) & set(texts["test"])
  assert not set(texts["dev"]) & set(texts["test"])


def test_reserved_words_only_in_dev_and_test(splits):
  reserved = generator.reserved_words()
  train_vocab = generator.vocabulary(splits["train"])
  assert not train_vocab & reserved
  for name in ("dev", "test"):
    assert generator.vocabulary(splits[name]) & reserved, name
    rate = generator.oov_rate(splits["train"], splits[name])
    assert 0.002 < rate < 0.05, (name, rate)


def test_reserved_words_are_a_small_share_of_open_class_words():
  lex = lexicon.load_lexicon()
  g = grammar.load_grammar()
  reserved = generator.reserved_words()
  open_words = {w for n in holdout.OPEN_CATEGORIES for e in lex[n].entries for w in holdout.entry_words(e)}
  closed_words = {w for n, c in lex.items() if n not in holdout.OPEN_CATEGORIES
                  for e in c.entries for w in holdout.entry_words(e)}
  assert reserved <= open_words
  assert not reserved & (closed_words | grammar.literal_words(g) | quantities.WORDS)
  assert 0.01 * len(open_words) < len(reserved) < 0.03 * len(open_words)


def test_held_out_rate_controls_reserved_words():
  reserved = generator.reserved_words()
  none = generator.generate_sentences(np.random.default_rng(1), 3000, held_out_rate=0.0)
  some = generator.generate_sentences(np.random.default_rng(1), 3000, held_out_rate=0.05)
  many = generator.generate_sentences(np.random.default_rng(1), 3000, held_out_rate=0.5)

  def share(sentences):
    return sum(bool(set(s.text.split(" ")) & reserved) for s in sentences) / len(sentences)

  assert share(none) == 0.0
  assert 0.0 < share(some) < share(many)


def test_oov_rate_counts_tokens():
  s = lambda text: generator.Sentence(text, "read", "story")
  assert generator.oov_rate([s("a b c")], [s("a d"), s("d e")]) == 0.75
  assert generator.oov_rate([s("a b")], [s("b a b")]) == 0.0
  assert generator.oov_rate([s("a")], []) == 0.0


def test_same_seed_same_sentences_different_seed_different():
  a = generator.generate_sentences(np.random.default_rng(11), 2000)
  b = generator.generate_sentences(np.random.default_rng(11), 2000)
  c = generator.generate_sentences(np.random.default_rng(12), 2000)
  assert a == b
  assert sum(x != y for x, y in zip(a, c)) > 1900
  small = {"train": 300, "dev": 50, "test": 50}
  assert generator.make_splits(4, small) == generator.make_splits(4, small)
  assert generator.make_splits(4, small)["test"] != generator.make_splits(5, small)["test"]


def test_train_does_not_depend_on_dev_and_test_sizes():
  a = generator.make_splits(9, {"train": 500, "dev": 10, "test": 10})
  b = generator.make_splits(9, {"train": 500, "dev": 200})
  assert a["train"] == b["train"]
  assert a["dev"] == b["dev"][:10]
  assert list(b) == ["train", "dev"]


def test_output_does_not_depend_on_python_hash_seed():
  code = ("import json; from asrjax.corpus.text import generator as g; "
          "print(json.dumps([s.text for s in g.make_splits(3, {'train': 200, 'test': 50})['test']]))")
  expected = [s.text for s in generator.make_splits(3, {"train": 200, "test": 50})["test"]]
  for hash_seed in ("0", "12345"):
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == expected


@pytest.mark.parametrize("sizes", [{"training": 5}, {"train": -1}])
def test_make_splits_validates_sizes(sizes):
  with pytest.raises(ValueError):
    generator.make_splits(0, sizes)


def test_generate_sentences_validates_arguments():
  with pytest.raises(ValueError):
    generator.generate_sentences(np.random.default_rng(0), -1)
  with pytest.raises(ValueError):
    generator.generate_sentences(np.random.default_rng(0), 1, held_out_rate=1.5)
