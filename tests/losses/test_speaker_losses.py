"""AAM softmax and the pairwise verification loss against numpy loops and finite differences."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.losses import speaker


def _np_aam(e, w, y, m, s):
  out = []
  for i in range(len(e)):
    cos = (w @ e[i]) / (np.linalg.norm(w, axis=1) * np.linalg.norm(e[i]))
    theta = math.acos(np.clip(cos[y[i]], -1, 1))
    logits = s * cos.copy()
    logits[y[i]] = s * (math.cos(theta + m) if theta + m <= math.pi else cos[y[i]] - m * math.sin(m))
    out.append(-(logits[y[i]] - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()))
  return np.array(out)


@pytest.mark.parametrize("margin", [0.0, 0.2, 0.5])
def test_aam_softmax_matches_a_numpy_loop(margin):
  rng = np.random.default_rng(0)
  e, w, y = rng.normal(size=(6, 5)), rng.normal(size=(4, 5)), rng.integers(0, 4, 6)
  got = speaker.aam_softmax(jnp.asarray(e), jnp.asarray(w), jnp.asarray(y), margin=margin, scale=8.0)
  np.testing.assert_allclose(np.asarray(got), _np_aam(e, w, y, margin, 8.0), rtol=1e-5, atol=1e-5)


def test_aam_softmax_past_pi_minus_m_continues_monotonically():
  w = np.array([[1.0, 0.0], [0.0, 1.0]])
  e = np.array([[-1.0, 0.05]])  # theta_y ~ 177 degrees: theta + m > pi
  got = speaker.aam_softmax(jnp.asarray(e), jnp.asarray(w), jnp.asarray([0]), margin=0.3, scale=4.0)
  np.testing.assert_allclose(np.asarray(got), _np_aam(e, w, np.array([0]), 0.3, 4.0), rtol=1e-5)


def test_aam_softmax_gradient_matches_central_differences():
  jax.config.update("jax_enable_x64", True)
  try:
    rng = np.random.default_rng(1)
    e, w, y = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), jnp.asarray([0, 3, 3])
    f = lambda e: jnp.sum(speaker.aam_softmax(e, jnp.asarray(w), y, margin=0.2, scale=10.0))
    g = np.asarray(jax.grad(f)(jnp.asarray(e)))
    for idx in [(0, 0), (1, 2), (2, 3)]:
      d = np.zeros_like(e)
      d[idx] = 1e-6
      fd = (float(f(jnp.asarray(e + d))) - float(f(jnp.asarray(e - d)))) / 2e-6
      np.testing.assert_allclose(g[idx], fd, rtol=1e-5, atol=1e-8)
  finally:
    jax.config.update("jax_enable_x64", False)


def test_pair_weights_are_sums_of_sample_weights():
  np.testing.assert_array_equal(np.asarray(speaker.pair_weights(jnp.asarray([1.0, 2.0, 0.5]))),
                                [[2.0, 3.0, 1.5], [3.0, 4.0, 2.5], [1.5, 2.5, 1.0]])


def test_pairwise_loss_matches_a_numpy_double_loop():
  rng = np.random.default_rng(2)
  e, spk, sw = rng.normal(size=(5, 3)), np.array([0, 1, 0, 2, 1]), rng.uniform(0.5, 2.0, 5)
  a, b = 4.0, -1.5
  num = den = 0.0
  for i in range(5):
    for j in range(i + 1, 5):
      cos = e[i] @ e[j] / (np.linalg.norm(e[i]) * np.linalg.norm(e[j]))
      p = 1 / (1 + np.exp(-(a * cos + b)))
      loss = -np.log(p) if spk[i] == spk[j] else -np.log(1 - p)
      num += (sw[i] + sw[j]) * loss
      den += sw[i] + sw[j]
  got = speaker.pairwise_loss(jnp.asarray(e), jnp.asarray(spk), scale=a, offset=b,
                              weights=speaker.pair_weights(jnp.asarray(sw)))
  np.testing.assert_allclose(float(got), num / den, rtol=1e-5)
  # equal sample weights: the unweighted mean
  plain = speaker.pairwise_loss(jnp.asarray(e), jnp.asarray(spk), scale=a, offset=b)
  same = speaker.pairwise_loss(jnp.asarray(e), jnp.asarray(spk), scale=a, offset=b,
                               weights=speaker.pair_weights(jnp.full(5, 0.7)))
  np.testing.assert_allclose(float(same), float(plain), rtol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda: speaker.aam_softmax(jnp.ones((2, 3)), jnp.ones((4, 2)), jnp.zeros(2, jnp.int32)), r"class_weights \[C, D\]"),
    (lambda: speaker.aam_softmax(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.zeros(2)), "labels must be"),
    (lambda: speaker.aam_softmax(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.zeros(2, jnp.int32), margin=2.0), "margin"),
    (lambda: speaker.pairwise_loss(jnp.ones((1, 3)), jnp.zeros(1, jnp.int32), scale=1.0, offset=0.0), "B >= 2"),
    (lambda: speaker.pairwise_loss(jnp.ones((2, 3)), jnp.zeros(2, jnp.int32), scale=1.0, offset=0.0,
                                   weights=jnp.ones((3, 3))), r"weights must be \[B, B\]"),
])
def test_bad_input_is_refused(call, match):
  with pytest.raises(ValueError, match=match):
    call()
