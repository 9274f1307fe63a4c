"""Cosine scoring and AS-norm against hand-computed values."""

import numpy as np
import pytest

from asrjax.speaker import scoring


def test_cosine_scores_by_hand():
  enrol = np.array([[1.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
  test = np.array([[0.0, 2.0], [3.0, 4.0], [-1.0, -1.0]])
  np.testing.assert_allclose(scoring.cosine_scores(enrol, test), [0.0, 1.0, -1.0])


def test_as_norm_on_a_hand_computed_cohort():
  # 2-D unit vectors; cohort at angles 0, 90, 180 degrees: (1,0), (0,1), (-1,0)
  cohort = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
  enrol = np.array([[1.0, 0.0]])  # cohort scores 1, 0, -1 -> top 2: 1, 0 -> mean 0.5, std 0.5
  test = np.array([[0.0, 1.0]])   # cohort scores 0, 1, 0  -> top 2: 1, 0 -> mean 0.5, std 0.5
  raw = scoring.cosine_scores(enrol, test)  # 0
  out = scoring.as_norm(raw, enrol, test, cohort, top_n=2)
  np.testing.assert_allclose(out, [0.5 * ((0 - 0.5) / 0.5 + (0 - 0.5) / 0.5)])  # -1
  # all three: enrol 1, 0, -1 -> mean 0, std sqrt(2/3); test 0, 1, 0 -> mean 1/3, std sqrt(2)/3
  out = scoring.as_norm(np.array([0.25]), enrol, test, cohort, top_n=10)
  expected = 0.5 * ((0.25 - 0) / np.sqrt(2 / 3) + (0.25 - 1 / 3) / (np.sqrt(2) / 3))
  np.testing.assert_allclose(out, [expected])


def test_as_norm_is_symmetric_in_enrol_and_test():
  rng = np.random.default_rng(0)
  e, t, c = rng.normal(size=(5, 8)), rng.normal(size=(5, 8)), rng.normal(size=(20, 8))
  s = scoring.cosine_scores(e, t)
  np.testing.assert_allclose(scoring.as_norm(s, e, t, c, top_n=6), scoring.as_norm(s, t, e, c, top_n=6))


@pytest.mark.parametrize("call,match", [
    (lambda: scoring.cosine_scores(np.ones((2, 3)), np.ones((2, 4))), r"test must be \[N, 3\]"),
    (lambda: scoring.cosine_scores(np.ones((2, 3)), np.ones((3, 3))), "same number of rows"),
    (lambda: scoring.cosine_scores(np.zeros((1, 3)), np.ones((1, 3))), "all-zero embeddings"),
    (lambda: scoring.cosine_scores(np.full((1, 3), np.nan), np.ones((1, 3))), "non-finite"),
    (lambda: scoring.as_norm(np.zeros(1), np.ones((1, 2)), np.ones((1, 2)), np.ones((5, 2)), top_n=1), "top_n"),
    (lambda: scoring.as_norm(np.zeros(1), np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2))), "at least 2"),
    (lambda: scoring.as_norm(np.zeros(2), np.ones((1, 2)), np.ones((1, 2)), np.ones((4, 2))), "agree in N"),
])
def test_bad_input_is_refused(call, match):
  with pytest.raises(ValueError, match=match):
    call()
