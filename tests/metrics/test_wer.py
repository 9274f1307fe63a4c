"""WER against hand-counted cases and the jiwer peer library (totals and the S/D/I split)."""

import math

import numpy as np
import pytest

from asrjax.metrics import wer


@pytest.mark.parametrize(
    "ref,hyp,counts",
    [
        ("a b c", "a b c", (0, 0, 0, 3)),
        ("a b c", "a x c", (1, 0, 0, 3)),
        ("a b c", "a c", (0, 1, 0, 3)),
        ("a b c", "a b c d", (0, 0, 1, 3)),
        ("a b c", "", (0, 3, 0, 3)),
        ("", "a b", (0, 0, 2, 0)),
        ("", "", (0, 0, 0, 0)),
        ("turn off the lights", "turn of the light please", (2, 0, 1, 4)),
        # Ties (two alignments with 2 errors), derived by hand from the module docstring's rule:
        # from the end, a deletion where one is optimal, else an insertion, else the diagonal.
        # "a b" -> "b a": at the end, deleting "b" is optimal (d("a", "b a") = 1), then "a" is a
        # hit and "b" was inserted first: one deletion, one insertion, not two substitutions.
        ("a b", "b a", (0, 1, 1, 2)),
        # "a b" -> "b c": deleting "b" leaves d("a", "b c") = 2, not optimal; inserting "c" leaves
        # d("a b", "b") = 1, but RapidFuzz's test (d[i][j-1] = d[i-1][j-1] - 1) fails: the
        # diagonal, two substitutions, although "delete a, hit b, insert c" ties.
        ("a b", "b c", (2, 0, 0, 2)),
        ("a a b", "a b a", (0, 1, 1, 3)),  # the common prefix "a" is a hit, then as "a b" -> "b a"
        ("a b", "b c a", (0, 1, 2, 2)),
    ],
)
def test_hand_counted(ref, hyp, counts):
  c = wer.word_errors(ref, hyp)
  assert (c.substitutions, c.deletions, c.insertions, c.reference_words) == counts


def _random_pairs(seed, n, vocab=4, max_len=10, empty_refs=False):
  rng = np.random.default_rng(seed)
  words = [f"w{i}" for i in range(vocab)]
  refs = [" ".join(rng.choice(words, size=rng.integers(0 if empty_refs else 1, max_len + 1))) for _ in range(n)]
  hyps = [" ".join(rng.choice(words, size=rng.integers(0, max_len + 1))) for _ in range(n)]
  return refs, hyps


def test_split_matches_jiwer_on_every_random_pair():
  # A small vocabulary makes ties common (the old "ties prefer substitutions" split
  # differed from jiwer's on ~10% of these pairs); every pair must agree, S, D and I.
  jiwer = pytest.importorskip("jiwer")
  refs, hyps = _random_pairs(0, 3000)
  disagree = []
  for r, h in zip(refs, hyps):
    ours, theirs = wer.word_errors(r, h), jiwer.process_words(r, h)
    if (ours.substitutions, ours.deletions, ours.insertions) != (theirs.substitutions, theirs.deletions,
                                                                   theirs.insertions):
      disagree.append((r, h, ours, theirs.substitutions, theirs.deletions, theirs.insertions))
  assert not disagree, f"{len(disagree)} of {len(refs)} pairs split differently, e.g. {disagree[:3]}"


def test_corpus_totals_with_empty_references_match_jiwer_and_the_per_utterance_sum():
  jiwer = pytest.importorskip("jiwer")
  refs, hyps = _random_pairs(1, 500, vocab=3, max_len=6, empty_refs=True)
  assert sum(not r for r in refs) > 20  # empty references really occur
  ours, theirs = wer.corpus_errors(refs, hyps), jiwer.process_words(refs, hyps)
  assert (ours.substitutions, ours.deletions, ours.insertions) == (theirs.substitutions, theirs.deletions,
                                                                     theirs.insertions)
  assert ours.reference_words == sum(len(r.split()) for r in refs)
  assert ours == sum((wer.word_errors(r, h) for r, h in zip(refs, hyps)), wer.ErrorCounts())
  assert ours.wer == pytest.approx(theirs.wer)


def test_empty_references_in_corpus_totals_by_hand():
  # "" -> "x y": 2 insertions, 0 words; "a b" -> "a": 1 deletion, 2 words; "" -> "": nothing
  total = wer.corpus_errors(["", "a b", ""], ["x y", "a", ""])
  assert total == wer.ErrorCounts(substitutions=0, deletions=1, insertions=2, reference_words=2)
  assert total.wer == pytest.approx(3 / 2)
  silence = wer.corpus_errors(["", ""], ["x", ""])
  assert silence == wer.ErrorCounts(insertions=1) and math.isnan(silence.wer)


def test_groups_sum_to_corpus():
  refs, hyps = ["a b", "c d e", "f"], ["a", "c x e", "f g"]
  groups = wer.grouped_errors(refs, hyps, ["g1", "g2", "g1"])
  assert groups["g1"] + groups["g2"] == wer.corpus_errors(refs, hyps)
  assert sum(groups.values()) == wer.corpus_errors(refs, hyps)
  assert groups["g1"].wer == pytest.approx(2 / 3)
  with pytest.raises(ValueError, match="1 references but 0 hypotheses"):
    wer.corpus_errors(["a"], [])


def test_table_of_a_group_without_reference_words_shows_no_rate():
  table = wer.wer_table(wer.grouped_errors(["", "a b"], ["x", "a b"], ["silence", "speech"]), "kind")
  assert "| silence | 0 | - | 0 | 0 | 1 |" in table
  assert "| speech | 2 | 0.0 | 0 | 0 | 0 |" in table
  assert "nan" not in table.lower()


@pytest.mark.parametrize("call, match", [
    (lambda: wer.word_errors(None, "a"), "reference must be a str"),
    (lambda: wer.word_errors("a", ["a"]), "hypothesis must be a str"),
    (lambda: wer.corpus_errors("a b", "a b"), "references must be a list of str"),
    (lambda: wer.corpus_errors(["a"], [None]), r"hypotheses\[0\] must be a str"),
    (lambda: wer.corpus_errors(["a", b"b"], ["a", "b"]), r"references\[1\] must be a str"),
    (lambda: wer.grouped_errors(["a", "b"], ["a", "b"], ["g"]), "2 references, 2 hypotheses and 1 groups"),
    (lambda: wer.grouped_errors(["a"], ["a"], "g"), "groups must be a list"),
])
def test_bad_inputs_name_the_argument(call, match):
  with pytest.raises((TypeError, ValueError), match=match):
    call()
