"""EER, minDCF and the speaker bootstrap against hand-derived values and scikit-learn's ROC."""

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from asrjax.metrics import verification as v


def _sklearn_eer(scores, labels):
  """The common recipe: where the interpolated ROC meets ``fnr = fpr`` (continuous scores)."""
  fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
  return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def test_perfectly_separated_scores_have_eer_and_min_dcf_zero():
  scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
  labels = np.array([0, 0, 0, 1, 1])
  assert v.eer(scores, labels) == 0.0
  assert v.min_dcf(scores, labels) == 0.0


def test_identical_distributions_have_eer_one_half():
  assert v.eer(np.full(6, 0.3), np.array([0, 1, 0, 1, 1, 0])) == 0.5  # one tie: one operating point inside
  rng = np.random.default_rng(0)
  scores, labels = rng.normal(size=40_000), rng.integers(0, 2, 40_000)
  assert abs(v.eer(scores, labels) - 0.5) < 0.01


def test_a_hand_computed_case_with_interpolation():
  # targets 0.2, 0.6; non-targets 0.4 (weight 1), 0.1 (weight 3). Operating points (P_miss, P_fa):
  # theta 0.1: (0, 1); 0.2: (0, 1/4); 0.4: (1/2, 1/4); 0.6: (1/2, 0); inf: (1, 0).
  # The crossing lies on the segment (0, 1/4) -> (1/2, 1/4): P_miss = P_fa = 1/4.
  scores, labels, w = np.array([0.2, 0.6, 0.4, 0.1]), np.array([1, 1, 0, 0]), np.array([1.0, 1.0, 1.0, 3.0])
  pts = v.operating_points(scores, labels, w)
  np.testing.assert_allclose(pts.p_miss, [0, 0, 0.5, 0.5, 1])
  np.testing.assert_allclose(pts.p_fa, [1, 0.25, 0.25, 0, 0])
  assert v.eer(scores, labels, w) == pytest.approx(0.25)
  # weights are repetitions
  assert v.eer(np.array([0.2, 0.6, 0.4, 0.1, 0.1, 0.1]), np.array([1, 1, 0, 0, 0, 0])) == pytest.approx(0.25)
  # minDCF, p_t = 0.5: min of P_miss + P_fa = 1/4; p_t = 0.01: min of P_miss + 99 P_fa = 1/2 (theta 0.6)
  assert v.min_dcf(scores, labels, w, p_target=0.5) == pytest.approx(0.25)
  assert v.min_dcf(scores, labels, w) == pytest.approx(0.5)
  # C_fa = 10, p_t = 0.5: (P_miss + 10 P_fa) / 1 -> min(10, 2.5, 3, 0.5, 1) = 0.5
  assert v.min_dcf(scores, labels, w, p_target=0.5, c_fa=10.0) == pytest.approx(0.5)
  # p_t = 0.9: normalised by C_fa (1 - p_t) = 0.1; min(0.9 P_miss + 0.1 P_fa) = 0.025 at theta 0.2
  assert v.min_dcf(scores, labels, w, p_target=0.9) == pytest.approx(0.25)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_equals_scikit_learns_interpolated_roc(seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(200, 3000))
  labels = rng.integers(0, 2, n)
  scores = rng.normal(size=n) + 1.2 * labels
  assert abs(v.eer(scores, labels) - _sklearn_eer(scores, labels)) < 1e-3


def test_tied_scores_make_one_operating_point_as_roc_curve_does():
  rng = np.random.default_rng(3)
  labels = rng.integers(0, 2, 500)
  scores = np.round(rng.normal(size=500) + labels, 1)  # many ties
  pts = v.operating_points(scores, labels)
  fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
  # roc_curve: thresholds descending from +inf (nothing accepted); ours ascending to +inf
  np.testing.assert_allclose(pts.p_fa[::-1], fpr)
  np.testing.assert_allclose(pts.p_miss[::-1], 1 - tpr)


def test_min_dcf_against_a_brute_force_threshold_sweep():
  rng = np.random.default_rng(4)
  labels = rng.integers(0, 2, 400)
  scores = rng.normal(size=400) + 2 * labels
  best = np.inf
  for theta in np.concatenate([np.unique(scores), [np.inf]]):
    p_miss = np.mean(scores[labels == 1] < theta)
    p_fa = np.mean(scores[labels == 0] >= theta)
    best = min(best, (0.01 * p_miss + 0.99 * p_fa) / 0.01)
  assert v.min_dcf(scores, labels) == pytest.approx(best)


def test_groups_gap_and_spread():
  # group "f": perfectly separated (EER 0); group "m": the hand case above, unweighted repeats (EER 1/4)
  scores = np.array([0.9, 0.8, 0.1, 0.2, 0.2, 0.6, 0.4, 0.1, 0.1, 0.1])
  labels = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0, 0])
  gender = np.array(["f"] * 4 + ["m"] * 6)
  out = v.summary(scores, labels, {"gender": gender})
  assert out["gender"]["per_group"] == {"f": 0.0, "m": pytest.approx(0.25)}
  assert out["gender"]["gap"] == pytest.approx(0.25) and out["gender"]["std"] == pytest.approx(0.125)
  # a group with only non-target trials has no EER and is left out
  assert set(v.group_eers(scores, labels, np.array(["f"] * 4 + ["m"] * 5 + ["x"]))) == {"f", "m"}


def test_speaker_bootstrap_weights_have_the_expected_means():
  # n speakers drawn n times with replacement: E[c_a c_b] = 1 - 1/n for a != b, E[c_a^2] = 2 - 1/n
  n = 5
  a = np.array(["s0", "s1", "s2", "s3", "s4", "s0"])
  b = np.array(["s0", "s2", "s2", "s4", "s0", "s3"])
  w0 = v.speaker_bootstrap(lambda w: w[0], a, b, key=0, draws=20_000)  # same speaker
  w1 = v.speaker_bootstrap(lambda w: w[1], a, b, key=0, draws=20_000)  # two speakers
  assert w0.mean() == pytest.approx(2 - 1 / n, abs=0.03)
  assert w1.mean() == pytest.approx(1 - 1 / n, abs=0.03)
  # seeded: the same key gives the same draws
  np.testing.assert_array_equal(v.speaker_bootstrap(lambda w: w.sum(), a, b, key=7, draws=5),
                                v.speaker_bootstrap(lambda w: w.sum(), a, b, key=7, draws=5))


def test_bootstrap_draws_without_a_class_are_nan():
  scores, labels = np.array([0.9, 0.1]), np.array([1, 0])
  draws = v.speaker_bootstrap(lambda w: v.eer(scores, labels, w), np.array(["a", "a"]), np.array(["a", "b"]),
                              key=0, draws=200)
  assert np.isnan(draws).any() and (draws[~np.isnan(draws)] == 0.0).all()


@pytest.mark.parametrize("scores,labels,weights,match", [
    ([0.1, 0.2], [1, 1], None, "both target and non-target trials are needed"),
    ([0.1, np.nan], [1, 0], None, "scores must be finite"),
    ([0.1, 0.2], [1, 2], None, r"labels must be 0 \(different speakers\) or 1"),
    ([[0.1, 0.2]], [[1, 0]], None, r"scores and labels must both be \[N\]"),
    ([0.1, 0.2, 0.3], [1, 0], None, r"scores and labels must both be \[N\]"),
    ([], [], None, "no trials"),
    ([0.1, 0.2], [1, 0], [1.0, -1.0], "weights must be"),
    ([0.1, 0.2], [1, 0], [0.0, 1.0], "both target and non-target"),
])
def test_bad_input_is_refused(scores, labels, weights, match):
  with pytest.raises(ValueError, match=match):
    v.eer(np.asarray(scores, dtype=float), np.asarray(labels), weights)


def test_min_dcf_refuses_a_bad_prior():
  with pytest.raises(ValueError, match="0 < p_target < 1"):
    v.min_dcf([0.1, 0.9], [0, 1], p_target=1.0)
