"""Speaker-bootstrap intervals of corpus WER against the exact resampling distribution (enumerated)."""

import itertools

import numpy as np
import pytest

from asrjax.metrics import wer
from asrjax.metrics.wer import ErrorCounts as EC

# three speakers: a has 1 error in 10 words (two utterances), b 5 in 10, c 0 in 20
COUNTS = [EC(1, 0, 0, 4), EC(0, 0, 0, 6), EC(2, 1, 2, 10), EC(0, 0, 0, 10), EC(0, 0, 0, 10)]
CLUSTERS = ["a", "a", "b", "c", "c"]
SPEAKERS = {"a": (1, 10), "b": (5, 10), "c": (0, 20)}


def _exact():
  """Every ordered resample of 3 speakers from 3 (27, equally likely) and its corpus WER."""
  out = []
  for pick in itertools.product(SPEAKERS, repeat=3):
    e = sum(SPEAKERS[p][0] for p in pick)
    n = sum(SPEAKERS[p][1] for p in pick)
    out.append(e / n)
  return np.array(out)


def test_draws_follow_the_exact_bootstrap_distribution():
  exact = _exact()
  draws = wer.bootstrap_wers(COUNTS, CLUSTERS, key=0, draws=100_000)
  assert draws.shape == (100_000,)
  for v in np.unique(exact):  # the CDFs agree at every atom
    assert abs(np.mean(draws <= v + 1e-12) - np.mean(exact <= v + 1e-12)) < 0.006, v
  assert abs(draws.mean() - exact.mean()) < 0.002


def test_resampling_is_by_speaker_not_by_utterance():
  """Splitting one speaker's words over more utterances must not narrow the interval."""
  split = [EC(0, 0, 0, 2)] * 5 + [EC(1, 0, 0, 2)] * 5 + COUNTS[3:]
  labels = ["a"] * 5 + ["b"] * 5 + ["c", "c"]
  merged = [EC(0, 0, 0, 10), EC(5, 0, 0, 10), EC(0, 0, 0, 20)]
  a = wer.percentile_interval(wer.bootstrap_wers(split, labels, key=1, draws=5000))
  b = wer.percentile_interval(wer.bootstrap_wers(merged, ["a", "b", "c"], key=1, draws=5000))
  assert a == pytest.approx(b)


def test_percentile_interval_hand_derived():
  assert wer.percentile_interval(np.arange(101) / 100) == pytest.approx((0.025, 0.975))
  assert wer.percentile_interval([0.2] * 10) == (0.2, 0.2)
  low, high = wer.percentile_interval([np.nan, np.nan])
  assert np.isnan(low) and np.isnan(high)


def test_same_key_same_draws_and_bad_arguments():
  assert np.array_equal(wer.bootstrap_wers(COUNTS, CLUSTERS, 3, 50), wer.bootstrap_wers(COUNTS, CLUSTERS, 3, 50))
  with pytest.raises(ValueError, match="draws must be an integer >= 1"):
    wer.bootstrap_wers(COUNTS, CLUSTERS, 0, 0)
  with pytest.raises(ValueError, match="no utterances"):
    wer.bootstrap_wers([], [], 0, 10)
  with pytest.raises(ValueError, match="5 utterances but 2 groups"):
    wer.bootstrap_wers(COUNTS, ["a", "b"], 0, 10)
  with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
    wer.percentile_interval([0.1], level=1.0)
