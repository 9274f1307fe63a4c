"""Turn-token latency penalty: brute-force enumeration of alignments, zero when on time, growth with delay, and
its gradient against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.losses import turn_latency
from tests import oracles

B, T, U, V = 2, 5, 3, 6
LABELS = np.array([[4, 2, 5], [4, 3, 5]])  # 4 = <sot>, 5 = <eot> in this toy vocabulary
MASK = (LABELS >= 4).astype(np.float32)


def _inputs(seed=0, t_len=(T, 4), u_len=(U, 2)):
  rng = np.random.default_rng(seed)
  lp = oracles.log_softmax(rng.normal(size=(B, T, U + 1, V)) * 1.5).astype(np.float32)
  blank = lp[..., 0]
  ext = np.concatenate([LABELS, np.zeros((B, 1), int)], axis=1)
  label = np.take_along_axis(lp, ext[:, None, :, None], axis=-1)[..., 0]
  pads = lambda n, size: (np.arange(size)[None] >= np.asarray(n)[:, None]).astype(np.float32)
  return blank, label, pads(t_len, T), LABELS, pads(u_len, U), t_len, u_len


def _brute_term(blank, label, t_len, u_len, boundaries, weight, early_weight=0.0, early_buffer=0.0):
  out = []
  for i in range(B):
    tl, ul = t_len[i], u_len[i]
    b, e = blank[i, :tl, :ul + 1].astype(np.float64), label[i, :tl, :ul + 1].astype(np.float64)
    cost = np.zeros_like(e)
    for u in range(ul):
      if MASK[i, u]:
        for t in range(tl):  # frame by frame, as the docstring's formula reads
          cost[t, u] = weight * max(0, t - boundaries[i, u]) + early_weight * max(0, boundaries[i, u] - early_buffer - t)
    out.append(oracles.rnnt_nll_of_edge_scores(b, e - cost) - oracles.rnnt_nll_of_edge_scores(b, e))
  return np.array(out)


@pytest.mark.parametrize("seed,weight", [(0, 0.5), (1, 2.0), (2, 0.1)])
def test_the_term_equals_enumeration_over_alignments(seed, weight):
  blank, label, lpad, labels, upad, t_len, u_len = _inputs(seed)
  boundaries = np.array([[0, 0, 2], [1, 0, 1]], np.float32)
  pen, term = turn_latency.penalised_loss(blank, label, lpad, labels, upad, boundaries, MASK, weight=weight)
  np.testing.assert_allclose(term, _brute_term(blank, label, t_len, u_len, boundaries, weight), rtol=1e-4, atol=1e-5)
  assert np.all(np.asarray(term) > 0)


@pytest.mark.parametrize("seed,weight,early,early_buffer", [(5, 0.5, 0.7, 0.0), (6, 0.0, 1.5, 1.0)])
def test_the_two_sided_term_equals_enumeration_over_alignments(seed, weight, early, early_buffer):
  blank, label, lpad, labels, upad, t_len, u_len = _inputs(seed)
  boundaries = np.array([[1, 2, 4], [3, 1, 2]], np.float32)
  _, term = turn_latency.penalised_loss(blank, label, lpad, labels, upad, boundaries, MASK, weight=weight,
                                        early_weight=early, early_buffer=early_buffer)
  want = _brute_term(blank, label, t_len, u_len, boundaries, weight, early, early_buffer)
  np.testing.assert_allclose(term, want, rtol=1e-4, atol=1e-5)
  late_only = _brute_term(blank, label, t_len, u_len, boundaries, weight)
  assert np.all(want > late_only + 1e-3)  # the early side adds something here: the check is not vacuous


def test_the_early_side_is_zero_when_nothing_is_early_and_grows_with_earliness():
  blank, label, lpad, labels, upad, *_ = _inputs()
  term = lambda bnd, w=1.0, buf=0.0: np.asarray(turn_latency.latency_term(
      blank, label, lpad, labels, upad, np.full((B, U), bnd, np.float32), MASK, weight=0.0, early_weight=w,
      early_buffer=buf))
  np.testing.assert_array_equal(term(0), 0.0)  # no frame is before the boundary
  np.testing.assert_array_equal(term(T - 1, buf=T), 0.0)  # every earliness inside the free buffer
  by_boundary = np.stack([term(b) for b in (1, 2, 3, 4)])  # later boundaries: every emission earlier
  assert np.all(np.diff(by_boundary, axis=0) > 0)
  with pytest.raises(ValueError, match="early_weight"):
    term(1, w=-0.5)
  with pytest.raises(ValueError, match="early_buffer"):
    term(1, buf=float("inf"))


def test_zero_when_turn_tokens_are_on_time_and_growing_with_delay():
  blank, label, lpad, labels, upad, *_ = _inputs()
  term = lambda bnd, w=1.0, buf=0.0: np.asarray(turn_latency.latency_term(
      blank, label, lpad, labels, upad, np.full((B, U), bnd, np.float32), MASK, weight=w, buffer=buf))
  np.testing.assert_array_equal(term(T - 1), 0.0)  # no frame is past the boundary
  np.testing.assert_array_equal(term(1, buf=T), 0.0)  # every delay inside the free buffer
  np.testing.assert_array_equal(term(0, w=0.0), 0.0)
  by_boundary = np.stack([term(b) for b in (3, 2, 1, 0)])  # earlier boundaries: every emission later
  assert np.all(np.diff(by_boundary, axis=0) > 0)
  by_weight = np.stack([term(0, w) for w in (0.1, 0.5, 2.0)])
  assert np.all(np.diff(by_weight, axis=0) > 0)


@pytest.mark.parametrize("early", [0.0, 0.6])
def test_gradient_matches_finite_differences(early):
  blank, label, lpad, labels, upad, *_ = _inputs(3)
  boundaries = np.array([[0, 0, 1], [1, 0, 2]], np.float32) + (2 if early else 0)
  weights = jnp.array([0.7, 1.3])
  f = lambda bl, ll: jnp.sum(weights * turn_latency.latency_term(bl, ll, lpad, labels, upad, boundaries, MASK,
                                                                 weight=0.8, early_weight=early))
  g_blank, g_label = jax.grad(f, argnums=(0, 1))(jnp.asarray(blank), jnp.asarray(label))
  rng = np.random.default_rng(0)
  eps = 1e-2
  for which, g in ((0, g_blank), (1, g_label)):
    for _ in range(12):
      idx = (int(rng.integers(B)), int(rng.integers(4)), int(rng.integers(3)))
      x = [blank.copy(), label.copy()]
      x[which][idx] += eps
      up = float(f(*x))
      x[which][idx] -= 2 * eps
      down = float(f(*x))
      np.testing.assert_allclose(g[idx], (up - down) / (2 * eps), atol=3e-3, rtol=2e-2)
  assert float(jnp.max(jnp.abs(g_label))) > 1e-3  # the check is not vacuous


def test_the_penalised_loss_is_the_plain_loss_plus_the_term_and_bad_options_are_refused():
  from asrjax.losses import rnnt_loss_from_log_probs  # noqa: PLC0415

  blank, label, lpad, labels, upad, *_ = _inputs()
  boundaries = np.zeros((B, U), np.float32)
  pen, term = turn_latency.penalised_loss(blank, label, lpad, labels, upad, boundaries, MASK, weight=1.0)
  np.testing.assert_allclose(pen - term, rnnt_loss_from_log_probs(blank, label, lpad, labels, upad), rtol=1e-6)
  for bad in (-1.0, float("nan"), float("inf"), True):
    with pytest.raises(ValueError, match="weight must be a finite number"):
      turn_latency.penalised_loss(blank, label, lpad, labels, upad, boundaries, MASK, weight=bad)
  with pytest.raises(ValueError, match="boundaries must have the labels' shape"):
    turn_latency.penalised_loss(blank, label, lpad, labels, upad, boundaries[:, :2], MASK, weight=1.0)
