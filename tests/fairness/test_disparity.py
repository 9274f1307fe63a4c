"""Disparity figures on hand-computed cases; the bootstrap against exact enumeration of resamples."""

import itertools

import numpy as np
import pytest

from asrjax.fairness import cohorts as C
from asrjax.fairness import disparity as D


def _two_regions():
  # south (lat < 0): speakers s0, s1 with 10/100 and 30/100 -> WER 0.2; north: s2 5/100, s3 15/100, s4 10/100 -> 0.1
  spk = C.Speakers(np.array(["s0", "s1", "s2", "s3", "s4"]), np.array([10, 30, 5, 15, 10]), np.full(5, 100),
                   np.array([-5.0, -1.0, 2.0, 3.0, 4.0]), np.zeros(5))
  cohorts = C.Cohorts("geographic_tree", ("south", "north"),
                      {"leaves": [{"lat": [None, 0.0], "lon": [None, None]}, {"lat": [0.0, None], "lon": [None, None]}]})
  return spk, cohorts


def test_gap_share_and_region_statistics_by_hand():
  spk, cohorts = _two_regions()
  out = D.disparity(spk, cohorts, draws=10)
  f = out["figures"]
  assert out["bottom_name"] == "south"
  assert f["bottom_wer"] == pytest.approx(0.2) and f["rest_wer"] == pytest.approx(0.1)
  assert f["gap_vs_rest"] == pytest.approx(100.0) and f["gap_vs_top"] == pytest.approx(100.0)
  assert f["bottom_share"] == pytest.approx(40.0)  # 2 of 5 speakers
  assert f["wer"] == pytest.approx(70 / 500)
  assert f["cohort_wer_mean"] == pytest.approx(0.15) and f["cohort_wer_max"] == pytest.approx(0.2)
  assert f["cohort_wer_var"] == pytest.approx(0.0025)  # ((0.05)^2 + (0.05)^2) / 2
  assert [c["speakers"] for c in out["per_cohort"]] == [2, 3] and out["unassigned"] == 0


def test_gap_vs_rest_and_vs_top_differ_with_three_cohorts():
  spk = C.Speakers(np.array(list("abc")), np.array([30, 20, 10]), np.full(3, 100), np.array([-1.0, 1.0, 3.0]),
                   np.zeros(3))
  leaves = [{"lat": [None, 0.0], "lon": [None, None]}, {"lat": [0.0, 2.0], "lon": [None, None]},
            {"lat": [2.0, None], "lon": [None, None]}]
  f = D.disparity(spk, C.Cohorts("geographic_tree", ("x", "y", "z"), {"leaves": leaves}), draws=5)["figures"]
  assert f["gap_vs_rest"] == pytest.approx(100 * (0.3 / 0.15 - 1))  # rest: 30 errors / 200 words
  assert f["gap_vs_top"] == pytest.approx(200.0)  # 0.3 / 0.1 - 1


def test_the_bootstrap_matches_exact_enumeration_of_speaker_resamples():
  """With 5 speakers there are 5^5 equally likely resamples: their mean overall WER and the
  probability that the bottom cohort's WER exceeds 0.15 are exact; the seeded draws approach both."""
  spk, cohorts = _two_regions()
  labels = cohorts.assign(spk)
  overall, above = [], []
  for draw in itertools.product(range(5), repeat=5):
    w = np.bincount(draw, minlength=5).astype(float)
    overall.append((spk.errors * w).sum() / (spk.words * w).sum())
    south = labels == 0
    if (spk.words * w)[south].sum():
      above.append(float((spk.errors * w)[south].sum() / (spk.words * w)[south].sum() > 0.15))
  draws = 20_000
  rng = np.random.default_rng(0)  # the same generator and draws `disparity` makes with key=0
  boot = [rng.multinomial(5, np.full(5, 0.2)) for _ in range(draws)]
  approx_mean = np.mean([(spk.errors * w).sum() / (spk.words * w).sum() for w in boot])
  assert approx_mean == pytest.approx(np.mean(overall), abs=2e-3)
  out = D.disparity(spk, cohorts, draws=4000, key=0)
  lo, hi = out["intervals"]["wer"]
  exact = np.asarray(overall)  # a discrete distribution: check the interval's ends are its 2.5% / 97.5% quantiles
  assert np.mean(exact < lo - 1e-9) <= 0.025 + 0.01 and np.mean(exact <= lo + 1e-9) >= 0.025 - 0.01
  assert np.mean(exact > hi + 1e-9) <= 0.025 + 0.01 and np.mean(exact >= hi - 1e-9) >= 0.025 - 0.01
  lo_b, hi_b = out["intervals"]["bottom_wer"]
  assert lo_b <= 0.2 <= hi_b and lo_b == pytest.approx(0.1, abs=1e-9) and hi_b == pytest.approx(0.3, abs=1e-9)


def test_disparity_refuses_what_has_no_gap():
  spk, cohorts = _two_regions()
  one = C.Cohorts("geographic_tree", ("all",), {"leaves": [{"lat": [None, None], "lon": [None, None]}]})
  with pytest.raises(ValueError, match=r"fall into 1 cohort\(s\): a gap needs two"):
    D.disparity(spk, one)
  with pytest.raises(ValueError, match="draws must be an integer >= 1"):
    D.disparity(spk, cohorts, draws=0)


def test_k_is_chosen_on_dev_by_the_bottom_cohorts_gap():
  rng = np.random.default_rng(0)
  truth = np.repeat(np.arange(3), 12)  # three planted clusters; cluster 2 has WER 0.4, the others 0.1
  emb = (np.eye(3, 6) * 5)[truth] + 0.2 * rng.normal(size=(truth.size, 6))
  errors = np.where(truth == 2, 40, 10)
  dev = C.Speakers(np.arange(truth.size).astype(str), errors, np.full(truth.size, 100), embedding=emb)
  k = D.choose_k(dev, candidates=(2, 3), seed=0)
  assert k == 3  # k = 2 merges cluster 2 with another when it is not alone; k = 3 isolates it
  with pytest.raises(ValueError, match="no k of"):
    D.choose_k(dev, candidates=(1, 100))
