"""WER against hand-counted cases and the jiwer peer library."""

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
        ("turn off the lights", "turn of the light please", (2, 0, 1, 4)),
    ],
)
def test_hand_counted(ref, hyp, counts):
  c = wer.word_errors(ref, hyp)
  assert (c.substitutions, c.deletions, c.insertions, c.reference_words) == counts


def test_matches_jiwer_on_random_sentences():
  jiwer = pytest.importorskip("jiwer")
  rng = np.random.default_rng(0)
  words = "a b c d e f".split()
  refs, hyps = [], []
  for _ in range(300):
    refs.append(" ".join(rng.choice(words, size=rng.integers(1, 9))))
    hyps.append(" ".join(rng.choice(words, size=rng.integers(0, 9))))
  ours = wer.corpus_errors(refs, hyps)
  theirs = jiwer.process_words(refs, hyps)
  assert ours.errors == theirs.substitutions + theirs.deletions + theirs.insertions
  assert ours.wer == pytest.approx(theirs.wer)


def test_groups_sum_to_corpus():
  refs, hyps = ["a b", "c d e", "f"], ["a", "c x e", "f g"]
  groups = wer.grouped_errors(refs, hyps, ["g1", "g2", "g1"])
  assert groups["g1"] + groups["g2"] == wer.corpus_errors(refs, hyps)
  assert groups["g1"].wer == pytest.approx(2 / 3)
  with pytest.raises(ValueError):
    wer.corpus_errors(["a"], [])
