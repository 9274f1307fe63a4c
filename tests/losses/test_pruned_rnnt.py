"""Pruned RNN-T loss against brute-force enumeration over (windowed) alignments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from asrjax.losses import pruned_rnnt
from tests import oracles


def _paddings(lengths, size):
  return (np.arange(size)[None, :] >= np.asarray(lengths)[:, None]).astype(np.float32)


def _batch(seed, b=3, t=5, u=4, v=5):
  rng = np.random.default_rng(seed)
  t_len = rng.integers(2, t + 1, size=b)
  t_len[0] = t
  u_len = rng.integers(0, u + 1, size=b)
  u_len[-1] = u
  labels = rng.integers(1, v, size=(b, u))
  return rng, t_len, labels, u_len


@pytest.mark.slow  # 20 s: default-suite budget (BUILD_NOTES, "Tests")
@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_simple_loss_gradient_and_occupancy_match_enumeration(seed):
  rng, t_len, labels, u_len = _batch(seed)
  b, t, u, v = 3, 5, 4, 5
  am = rng.normal(size=(b, t, v)).astype(np.float32) * 2
  lm = rng.normal(size=(b, u + 1, v)).astype(np.float32) * 2
  args = (_paddings(t_len, t), labels, _paddings(u_len, u))
  (loss, occ), vjp = jax.vjp(lambda a, m: pruned_rnnt.simple_rnnt_loss(a, m, *args), am, lm)
  d_am, d_lm = vjp((jnp.ones(b), jnp.zeros_like(occ)))
  for i in range(b):
    tb, ub = t_len[i], u_len[i]
    full = am[i, :tb, None, :] + lm[i, None, : ub + 1, :]  # the trivial joiner, [T, U+1, V]
    ref, d_logits, neg_blank, neg_emit = oracles.rnnt_nll_and_grads(full, labels[i, :ub])
    np.testing.assert_allclose(loss[i], ref, rtol=1e-5, atol=1e-5)
    # d_am and d_lm sum the per-node gradients (magnitudes up to ~3): fp32 rounding of the
    # lattice's occupancies accumulates to ~1e-5 relative there, hence the rtol.
    np.testing.assert_allclose(d_am[i, :tb], d_logits.sum(1), rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(d_lm[i, : ub + 1], d_logits.sum(0), rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(d_am[i, tb:], 0.0)
    np.testing.assert_allclose(d_lm[i, ub + 1:], 0.0)
    expected_occ = np.zeros((t, u + 1))
    expected_occ[:tb, : ub + 1] = -(neg_blank + neg_emit)
    np.testing.assert_allclose(occ[i], expected_occ, atol=2e-5)


def _smoothed_nll(am, lm, labels, unigram_rows, lm_scale, am_scale):
  """k2's smoothed simple loss of one utterance, written out in float64 (am ``[T, V]``, lm ``[U+1, V]``).

  unigram_rows: ``[N, V]``, every valid lm row of the batch (the unigram is their mean softmax).
  """
  full = oracles.log_softmax(am[:, None, :] + lm[None, :, :])  # [T, U+1, V]
  lm_only = oracles.log_softmax(lm)[None, :, :]
  unigram = np.exp(oracles.log_softmax(unigram_rows)).mean(0)
  am_only = oracles.log_softmax(am + np.log(unigram))[:, None, :]
  mix = (1 - lm_scale - am_scale) * full + lm_scale * lm_only + am_scale * am_only
  ext = np.r_[labels, 0]
  emit = np.take_along_axis(mix, np.broadcast_to(ext[None, :, None], mix.shape[:2] + (1,)), axis=2)[..., 0]
  return oracles.rnnt_nll_of_edge_scores(mix[..., 0], emit)


@pytest.mark.parametrize("lm_scale,am_scale", [(0.25, 0.0), (0.2, 0.3), (0.0, 0.5)])
def test_smoothed_simple_loss_matches_enumeration_and_finite_differences(lm_scale, am_scale):
  rng, t_len, labels, u_len = _batch(7)
  b, t, u, v = 3, 5, 4, 5
  am = rng.normal(size=(b, t, v)) * 2
  lm = rng.normal(size=(b, u + 1, v)) * 2
  args = (_paddings(t_len, t), labels, _paddings(u_len, u))
  fn = lambda a, m: pruned_rnnt.simple_rnnt_loss(a, m, *args, lm_only_scale=lm_scale, am_only_scale=am_scale)
  (loss, _), vjp = jax.vjp(fn, am.astype(np.float32), lm.astype(np.float32))
  d_am, d_lm = vjp((jnp.ones(b), jnp.zeros((b, t, u + 1))))

  def total(am_, lm_):  # the batch's summed reference loss (the unigram couples the utterances)
    rows = np.concatenate([lm_[i, : u_len[i] + 1] for i in range(b)])
    return np.array([_smoothed_nll(am_[i, : t_len[i]], lm_[i, : u_len[i] + 1], labels[i, : u_len[i]], rows,
                                   lm_scale, am_scale) for i in range(b)])

  np.testing.assert_allclose(loss, total(am, lm), rtol=1e-5, atol=1e-5)
  eps = 1e-5
  for x, grad, is_am in ((am, d_am, True), (lm, d_lm, False)):
    expected = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
      hi, lo = x.copy(), x.copy()
      hi[idx] += eps
      lo[idx] -= eps
      plus = total(hi, lm) if is_am else total(am, hi)
      minus = total(lo, lm) if is_am else total(am, lo)
      expected[idx] = (plus.sum() - minus.sum()) / (2 * eps)
    np.testing.assert_allclose(grad, expected, atol=3e-4)


def test_smoothing_scales_are_checked():
  am, lm = jnp.zeros((1, 3, 4)), jnp.zeros((1, 2, 4))
  with pytest.raises(ValueError, match="smoothing scales"):
    pruned_rnnt.simple_log_probs(am, lm, jnp.ones((1, 1), jnp.int32), lm_only_scale=0.7, am_only_scale=0.4)


def _check_ranges(starts, t_len, u_len, s):
  for i, (tb, ub) in enumerate(zip(t_len, u_len)):
    st_ = np.asarray(starts[i, :tb])
    assert st_[0] == 0
    assert np.all(np.diff(st_) >= 0)
    assert np.all(np.diff(st_) <= s - 1)
    assert st_[-1] <= ub <= st_[-1] + s - 1
    assert np.all(st_ <= max(ub - s + 1, 0))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([2, 3, 4]))
def test_ranges_always_hold_a_path(seed, s):
  rng = np.random.default_rng(seed)
  b, t, u = 4, 7, 9
  t_len = rng.integers(1, t + 1, size=b)
  u_len = np.minimum(rng.integers(0, u + 1, size=b), (s - 1) * t_len)  # feasible
  occ = rng.exponential(size=(b, t, u + 1)).astype(np.float32) ** 3  # peaky, arbitrary
  starts = pruned_rnnt.prune_ranges(jnp.asarray(occ), jnp.asarray(t_len), jnp.asarray(u_len), s)
  _check_ranges(starts, t_len, u_len, s)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([2, 3, 5]))
def test_ranges_keep_a_single_dominant_path(seed, s):
  # Occupancy concentrated on one alignment with <= S - 1 labels per frame: every
  # node of that alignment must stay inside its frame's window.
  rng = np.random.default_rng(seed)
  t, u = 6, 8
  u_len = int(rng.integers(0, min(u, (s - 1) * t) + 1))
  per_frame = np.zeros(t, int)
  for _ in range(u_len):  # spread labels over frames, at most S - 1 each
    free = np.nonzero(per_frame < s - 1)[0]
    per_frame[rng.choice(free)] += 1
  occ = np.full((1, t, u + 1), 1e-3, np.float32)
  nodes, pos = [], 0
  for f in range(t):
    for k in range(per_frame[f] + 1):
      nodes.append((f, pos + k))
      occ[0, f, pos + k] = 1.0
    pos += per_frame[f]
  starts = np.asarray(pruned_rnnt.prune_ranges(jnp.asarray(occ), jnp.array([t]), jnp.array([u_len]), s))
  _check_ranges(starts, [t], [u_len], s)
  for f, node in nodes:
    assert starts[0, f] <= node < starts[0, f] + s, (f, node, starts)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([2, 3]), st.sampled_from([0.0, 0.5]))
def test_pruned_loss_matches_windowed_enumeration(seed, s, fastemit_lambda):
  rng, t_len, labels, u_len = _batch(seed)
  b, t, u, v = 3, 5, 4, 5
  u_len = np.minimum(u_len, (s - 1) * t_len)
  logits = (rng.normal(size=(b, t, u + 1, v)) * 2).astype(np.float32)
  occ = rng.exponential(size=(b, t, u + 1)).astype(np.float32)
  starts = pruned_rnnt.prune_ranges(jnp.asarray(occ), jnp.asarray(t_len), jnp.asarray(u_len), s)
  # The joint evaluated at the windows only: gather the full logits' rows.
  pruned = jax.vmap(lambda lg, st_: jax.vmap(lambda row, s0: row[jnp.minimum(s0 + jnp.arange(s), u)])(lg, st_))(
      jnp.asarray(logits), starts)
  loss = pruned_rnnt.pruned_rnnt_loss(pruned, starts, _paddings(t_len, t), labels, _paddings(u_len, u),
                                      fastemit_lambda=fastemit_lambda)
  for i in range(b):
    tb, ub = t_len[i], u_len[i]
    ref = oracles.rnnt_nll_windowed(logits[i, :tb, : ub + 1], labels[i, :ub], np.asarray(starts[i, :tb]), s)
    assert np.isfinite(ref)
    np.testing.assert_allclose(loss[i], ref, rtol=1e-5, atol=1e-5)
    full_ref = oracles.rnnt_nll_and_grads(logits[i, :tb, : ub + 1], labels[i, :ub])[0]
    assert loss[i] >= full_ref - 1e-5


def test_wide_windows_give_the_full_loss_and_gradient():
  rng, t_len, labels, u_len = _batch(7)
  b, t, u, v = 3, 5, 4, 5
  s = u + 1
  logits = (rng.normal(size=(b, t, u + 1, v)) * 2).astype(np.float32)
  starts = pruned_rnnt.prune_ranges(jnp.ones((b, t, u + 1)), jnp.asarray(t_len), jnp.asarray(u_len), s)
  np.testing.assert_array_equal(starts, 0)
  args = (starts, _paddings(t_len, t), labels, _paddings(u_len, u))
  loss, vjp = jax.vjp(lambda x: pruned_rnnt.pruned_rnnt_loss(x, *args), jnp.asarray(logits))
  (grad,) = vjp(jnp.ones(b))
  for i in range(b):
    tb, ub = t_len[i], u_len[i]
    ref, ref_grad, _, _ = oracles.rnnt_nll_and_grads(logits[i, :tb, : ub + 1], labels[i, :ub])
    np.testing.assert_allclose(loss[i], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad[i, :tb, : ub + 1], ref_grad, atol=2e-5)
    np.testing.assert_allclose(grad[i, tb:], 0.0)


def test_gather_windows_hand_example():
  x = jnp.arange(4)[None, :, None] * 10  # [1, U+1=4, 1]
  out = pruned_rnnt.gather_windows(x, jnp.array([[0, 1, 3]]), 2)
  np.testing.assert_array_equal(out[0, :, :, 0], [[0, 10], [10, 20], [30, 30]])


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="prune_range must be an int >= 2"):
    pruned_rnnt.prune_ranges(jnp.ones((1, 3, 2)), jnp.array([3]), jnp.array([1]), 1)
  with pytest.raises(ValueError, match=r"\[B, T, S, V\]"):
    pruned_rnnt.pruned_rnnt_loss(jnp.zeros((1, 3, 2)), jnp.zeros((1, 3), jnp.int32), jnp.zeros((1, 3)),
                                 jnp.ones((1, 1), jnp.int32), jnp.zeros((1, 1)))
  with pytest.raises(ValueError, match="U\\+1"):
    pruned_rnnt.simple_rnnt_loss(jnp.zeros((1, 3, 4)), jnp.zeros((1, 3, 4)), jnp.zeros((1, 3)),
                                 jnp.ones((1, 1), jnp.int32), jnp.zeros((1, 1)))


def test_infeasible_utterance_is_inf_not_wrong():
  # 4 labels in 2 frames need 2 per frame; a window of 2 allows only 1: no path.
  starts = pruned_rnnt.prune_ranges(jnp.ones((1, 2, 5)), jnp.array([2]), jnp.array([4]), 2)
  logits = jnp.zeros((1, 2, 2, 5))
  loss = pruned_rnnt.pruned_rnnt_loss(logits, starts, jnp.zeros((1, 2)), jnp.array([[1, 2, 3, 4]]),
                                      jnp.zeros((1, 4)))
  assert np.isinf(loss[0]) and loss[0] > 0


@pytest.mark.parametrize("fastemit_lambda", [0.0, 0.7])
def test_pruned_gradient_with_fastemit_matches_windowed_enumeration(fastemit_lambda):
  """The docstring's rule, by brute force: the windowed lattice's occupancies (kept alignments only),
  emission occupancies scaled by ``1 + lam``, chained through the log-softmax; the loss stays the plain NLL."""
  rng, t_len, labels, u_len = _batch(21)
  b, t, u, v, s = 3, 5, 4, 5, 3
  u_len = np.minimum(u_len, (s - 1) * t_len)
  logits = (rng.normal(size=(b, t, u + 1, v)) * 2).astype(np.float32)
  occ = rng.exponential(size=(b, t, u + 1)).astype(np.float32)
  starts = np.asarray(pruned_rnnt.prune_ranges(jnp.asarray(occ), jnp.asarray(t_len), jnp.asarray(u_len), s))
  idx = np.minimum(starts[:, :, None] + np.arange(s), u)  # [B, T, S]: the full-lattice row of each window slot
  pruned = np.take_along_axis(logits, idx[..., None], axis=2)  # [B, T, S, V]
  args = (jnp.asarray(starts), _paddings(t_len, t), labels, _paddings(u_len, u))
  weights = np.array([1.0, 0.5, 2.0], np.float32)
  loss, vjp = jax.vjp(lambda x: pruned_rnnt.pruned_rnnt_loss(x, *args, fastemit_lambda=fastemit_lambda),
                      jnp.asarray(pruned))
  (grad,) = vjp(jnp.asarray(weights))
  for i in range(b):
    tb, ub, st_ = t_len[i], u_len[i], starts[i]
    keep = lambda path: all(st_[tt] <= uu < st_[tt] + s for tt, uu, _ in path)
    ref, ref_grad, _, _ = oracles.rnnt_nll_and_grads(logits[i, :tb, : ub + 1].astype(np.float64), labels[i, :ub],
                                                     fastemit_lambda=fastemit_lambda, keep=keep)
    np.testing.assert_allclose(loss[i], ref, rtol=1e-5, atol=1e-5)
    expected = np.zeros((t, s, v))
    for tt in range(tb):
      for k in range(s):
        if st_[tt] + k <= ub:  # slots past U_b (clipped rows) and padded frames get no gradient
          expected[tt, k] = weights[i] * ref_grad[tt, st_[tt] + k]
    np.testing.assert_allclose(grad[i], expected, atol=2e-5)


@pytest.mark.parametrize("offset", [1e5, 1e8])
def test_simple_and_pruned_losses_exact_at_large_common_offsets(offset):
  """Reference: float64 enumeration of the fp32 inputs as given (see test_rnnt's offset test)."""
  rng, t_len, labels, u_len = _batch(22)
  b, t, u, v = 3, 5, 4, 5
  am = (rng.normal(size=(b, t, v)) * 2 + offset).astype(np.float32)
  lm = (rng.normal(size=(b, u + 1, v)) * 2 - offset).astype(np.float32)
  args = (_paddings(t_len, t), labels, _paddings(u_len, u))
  (loss, _), vjp = jax.vjp(lambda a, m: pruned_rnnt.simple_rnnt_loss(a, m, *args), am, lm)
  d_am, _ = vjp((jnp.ones(b), jnp.zeros((b, t, u + 1))))
  logits = (rng.normal(size=(b, t, u + 1, v)) * 2 + offset).astype(np.float32)
  full_windows = pruned_rnnt.pruned_rnnt_loss(jnp.asarray(logits), jnp.zeros((b, t), jnp.int32), *args)
  for i in range(b):
    tb, ub = t_len[i], u_len[i]
    joiner = am[i, :tb, None, :].astype(np.float64) + lm[i, None, : ub + 1, :].astype(np.float64)
    ref, d_logits, _, _ = oracles.rnnt_nll_and_grads(joiner, labels[i, :ub])
    np.testing.assert_allclose(loss[i], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_am[i, :tb], d_logits.sum(1), rtol=1e-5, atol=2e-5)
    ref_full = oracles.rnnt_nll_and_grads(logits[i, :tb, : ub + 1].astype(np.float64), labels[i, :ub])[0]
    np.testing.assert_allclose(full_windows[i], ref_full, rtol=1e-5, atol=1e-5)
