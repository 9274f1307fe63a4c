"""RNN-T loss against brute-force enumeration of alignments and hand-derived values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from asrjax.losses import lattice, rnnt_loss, rnnt_loss_from_log_probs
from tests import oracles


def _paddings(lengths, size):
  return (np.arange(size)[None, :] >= np.asarray(lengths)[:, None]).astype(np.float32)


@st.composite
def lattice_batches(draw):
  # A few fixed shapes (each is one compilation); lengths vary through padding.
  b, t, u, v = draw(st.sampled_from([(3, 4, 3, 4), (2, 1, 0, 2), (2, 3, 1, 3)]))
  seed = draw(st.integers(0, 2**31 - 1))
  rng = np.random.default_rng(seed)
  t_len = rng.integers(1, t + 1, size=b)
  t_len[0] = t
  u_len = rng.integers(0, u + 1, size=b)
  u_len[-1] = u
  blank = int(rng.integers(0, v))
  labels = rng.integers(0, v - 1, size=(b, u))
  labels = labels + (labels >= blank)  # never blank
  scale = draw(st.sampled_from([0.5, 3.0]))
  logits = (rng.normal(size=(b, t, u + 1, v)) * scale).astype(np.float32)
  return logits, t_len, labels, u_len, blank


@settings(max_examples=25, deadline=None)
@given(lattice_batches(), st.sampled_from([0.0, 0.5]))
def test_loss_and_gradient_match_enumeration(batch, fastemit_lambda):
  logits, t_len, labels, u_len, blank = batch
  b, t, u1, _ = logits.shape
  args = (_paddings(t_len, t), labels, _paddings(u_len, u1 - 1))
  loss_fn = lambda x: rnnt_loss(x, *args, blank_id=blank, fastemit_lambda=fastemit_lambda)
  loss, vjp = jax.vjp(loss_fn, jnp.asarray(logits))
  weights = np.linspace(0.5, 1.5, b).astype(np.float32)  # distinct cotangents per row
  (grad,) = vjp(jnp.asarray(weights))
  for i in range(b):
    ref_loss, ref_grad, _, _ = oracles.rnnt_nll_and_grads(
        logits[i, : t_len[i], : u_len[i] + 1], labels[i, : u_len[i]], blank, fastemit_lambda
    )
    np.testing.assert_allclose(loss[i], ref_loss, rtol=1e-5, atol=1e-5)
    expected = np.zeros_like(logits[i])
    expected[: t_len[i], : u_len[i] + 1] = weights[i] * ref_grad
    np.testing.assert_allclose(grad[i], expected, atol=2e-5)


@settings(max_examples=25, deadline=None)
@given(lattice_batches())
def test_gathered_log_prob_variant_matches_enumeration(batch):
  logits, t_len, labels, u_len, blank = batch
  b, t, u1, _ = logits.shape
  lp = oracles.log_softmax(logits).astype(np.float32)
  blank_lp = lp[..., blank]
  label_ext = np.concatenate([labels, np.zeros((b, 1), labels.dtype)], axis=1)
  label_lp = np.take_along_axis(lp, label_ext[:, None, :, None], axis=-1)[..., 0]
  fn = lambda bl, ll: rnnt_loss_from_log_probs(
      bl, ll, _paddings(t_len, t), labels, _paddings(u_len, u1 - 1), vocab_size=logits.shape[-1], blank_id=blank
  ).sum()
  loss = fn(blank_lp, label_lp)
  g_blank, g_label = jax.grad(fn, argnums=(0, 1))(jnp.asarray(blank_lp), jnp.asarray(label_lp))
  ref_total = 0.0
  for i in range(b):
    ref_loss, _, ref_gb, ref_ge = oracles.rnnt_nll_and_grads(
        logits[i, : t_len[i], : u_len[i] + 1], labels[i, : u_len[i]], blank
    )
    ref_total += ref_loss
    exp_b = np.zeros((t, u1))
    exp_b[: t_len[i], : u_len[i] + 1] = ref_gb
    exp_e = np.zeros((t, u1))
    exp_e[: t_len[i], : u_len[i] + 1] = ref_ge
    np.testing.assert_allclose(g_blank[i], exp_b, atol=2e-5)
    np.testing.assert_allclose(g_label[i], exp_e, atol=2e-5)
  np.testing.assert_allclose(loss, ref_total, rtol=1e-5)


def test_fastemit_gradient_hand_derived():
  """T = 2, U = 1: alignments A = (emit@0, blank@(0,1), blank@(1,1)), B = (blank@(0,0), emit@1, blank@(1,1)).

  With P = A + B, the occupancies are emit(0,0) = blank(0,1) = A/P and
  blank(0,0) = emit(1,0) = B/P, blank(1,1) = 1. FastEmit multiplies the emission
  occupancies by (1 + lam) in  d/dz = softmax * (g_blank + (1+lam) g_emit) - onehots.
  """
  lam = 0.7
  z = np.array([[[0.2, 1.0, -0.5], [0.3, -0.2, 0.1]], [[-0.4, 0.6, 0.0], [1.2, 0.0, -1.0]]], np.float32)
  p = np.exp(z.astype(np.float64)) / np.exp(z.astype(np.float64)).sum(-1, keepdims=True)
  y = 1
  a = p[0, 0, y] * p[0, 1, 0] * p[1, 1, 0]
  bb = p[0, 0, 0] * p[1, 0, y] * p[1, 1, 0]
  tot = a + bb
  occ = {  # (t, u): (blank occupancy, emission occupancy)
      (0, 0): (bb / tot, a / tot),
      (0, 1): (a / tot, 0.0),
      (1, 0): (0.0, bb / tot),
      (1, 1): (1.0, 0.0),
  }
  expected = np.zeros_like(p)
  for (t, u), (gb, ge) in occ.items():
    ge = (1 + lam) * ge
    expected[t, u] = p[t, u] * (gb + ge)
    expected[t, u, 0] -= gb
    expected[t, u, y] -= ge
  fn = lambda x: rnnt_loss(x[None], np.zeros((1, 2)), np.array([[y]]), np.zeros((1, 1)), fastemit_lambda=lam)[0]
  np.testing.assert_allclose(fn(jnp.asarray(z)), -math.log(tot), rtol=1e-6)
  np.testing.assert_allclose(jax.grad(fn)(jnp.asarray(z)), expected, atol=1e-6)


def test_huge_logits_give_finite_exact_loss():
  rng = np.random.default_rng(1)
  logits = rng.choice([-1e4, 1e4], size=(2, 4, 4, 5)).astype(np.float32)
  logits += rng.normal(size=logits.shape).astype(np.float32)
  labels = np.array([[1, 2, 3], [4, 4, 1]])
  args = (np.zeros((2, 4)), labels, np.zeros((2, 3)))
  loss, grad = jax.value_and_grad(lambda x: rnnt_loss(x, *args).sum())(jnp.asarray(logits))
  assert np.isfinite(loss) and np.all(np.isfinite(grad))
  ref = sum(oracles.rnnt_nll_and_grads(logits[i], labels[i])[0] for i in range(2))
  np.testing.assert_allclose(loss, ref, rtol=1e-6)


def test_bf16_matches_fp32():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(3, 12, 6, 20)).astype(np.float32) * 2
  labels = rng.integers(1, 20, size=(3, 5))
  args = (_paddings([12, 9, 5], 12), labels, _paddings([5, 3, 0], 5))
  f = lambda x: rnnt_loss(x, *args).sum()
  l32, g32 = jax.value_and_grad(f)(jnp.asarray(logits))
  bf = jnp.asarray(logits).astype(jnp.bfloat16)
  l16, g16 = jax.value_and_grad(f)(bf)
  assert g16.dtype == jnp.bfloat16
  # bf16 rounds the inputs themselves (8 mantissa bits): compare with fp32 run on the rounded logits.
  l32r = f(bf.astype(jnp.float32))
  np.testing.assert_allclose(l16, l32r, rtol=1e-5)
  np.testing.assert_allclose(l16, l32, rtol=1e-2)
  np.testing.assert_allclose(np.asarray(g16, np.float32), g32, atol=2e-2)


def test_padding_invariance_and_zero_gradient_on_padding():
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(2, 6, 4, 7)).astype(np.float32)
  labels = rng.integers(1, 7, size=(2, 3))
  t_len, u_len = [6, 3], [3, 1]
  logits[1, 3:] = np.nan  # padded frames may hold anything
  logits[1, :, 2:] = np.inf  # padded label positions too
  fn = lambda x: rnnt_loss(x, _paddings(t_len, 6), labels, _paddings(u_len, 3)).sum()
  loss, grad = jax.value_and_grad(fn)(jnp.asarray(logits))
  single = rnnt_loss(jnp.asarray(logits[1:, :3, :2]), np.zeros((1, 3)), labels[1:, :1], np.zeros((1, 1)))
  full = rnnt_loss(jnp.asarray(logits[:1]), np.zeros((1, 6)), labels[:1], np.zeros((1, 3)))
  np.testing.assert_allclose(loss, single[0] + full[0], rtol=1e-6)
  assert np.all(np.asarray(grad[1, 3:]) == 0) and np.all(np.asarray(grad[1, :, 2:]) == 0)
  assert np.all(np.isfinite(grad))


def test_alpha_beta_sum_over_each_diagonal_is_total():
  rng = np.random.default_rng(4)
  blank = np.log(rng.uniform(0.05, 0.9, size=(2, 5, 4)))
  emit = np.log(rng.uniform(0.05, 0.9, size=(2, 5, 4)))
  t_len, u_len = np.array([5, 3]), np.array([3, 2])
  lat = lattice.forward_backward(jnp.asarray(blank), jnp.asarray(emit), t_len, u_len)
  for b in range(2):
    for n in range(t_len[b] + u_len[b]):
      nodes = [(t, n - t) for t in range(t_len[b]) if 0 <= n - t <= u_len[b]]
      s = np.logaddexp.reduce([lat.alpha[b, t, u] + lat.beta[b, t, u] for t, u in nodes])
      np.testing.assert_allclose(s, lat.log_likelihood[b], rtol=1e-5)
  np.testing.assert_allclose(lat.beta[:, 0, 0], lat.log_likelihood, rtol=1e-6)


def test_no_frames_gives_inf_and_zero_gradient():
  logits = jnp.ones((2, 3, 2, 4))
  fn = lambda x: rnnt_loss(x, np.array([[0, 0, 1], [1, 1, 1.0]]), np.array([[1], [2]]), np.zeros((2, 1)))
  loss = fn(logits)
  assert np.isfinite(loss[0]) and loss[1] == np.inf
  grad = jax.grad(lambda x: fn(x)[1])(logits)
  assert np.all(np.asarray(grad) == 0)


def test_invalid_labels_raise_when_concrete_and_nan_under_jit():
  logits = jnp.zeros((1, 3, 3, 4))
  pads = np.zeros((1, 3))
  with pytest.raises(ValueError, match="differ from blank_id"):
    rnnt_loss(logits, pads, np.array([[1, 0]]), np.zeros((1, 2)))
  with pytest.raises(ValueError, match=r"\[0, 4\)"):
    rnnt_loss(logits, pads, np.array([[1, 4]]), np.zeros((1, 2)))
  # a padded label may hold anything
  assert np.isfinite(rnnt_loss(logits, pads, np.array([[1, 9]]), np.array([[0, 1.0]]))[0])
  jitted = jax.jit(lambda lab: rnnt_loss(logits, pads, lab, jnp.zeros((1, 2))))
  assert np.isnan(jitted(jnp.array([[1, 7]]))[0])


@pytest.mark.parametrize(
    "logits_shape,labels_shape,match",
    [
        ((2, 3, 4), (2, 3), "B, T, U\\+1, V"),
        ((2, 3, 4, 5), (2, 2), "does not match logits"),
        ((2, 3, 4, 5), (3,), "labels must be \\[B, U\\]"),
    ],
)
def test_bad_shapes_raise(logits_shape, labels_shape, match):
  with pytest.raises(ValueError, match=match):
    rnnt_loss(
        jnp.zeros(logits_shape), np.zeros(logits_shape[:2]), np.ones(labels_shape, np.int32), np.zeros(labels_shape)
    )


def test_non_trailing_padding_raises():
  with pytest.raises(ValueError, match="padding must be trailing"):
    rnnt_loss(jnp.zeros((1, 3, 2, 3)), np.array([[0, 1, 0.0]]), np.array([[1]]), np.zeros((1, 1)))


def test_jit_and_vmap_agree_with_eager():
  rng = np.random.default_rng(5)
  logits = jnp.asarray(rng.normal(size=(4, 2, 5, 3, 6)).astype(np.float32))
  labels = jnp.asarray(rng.integers(1, 6, size=(4, 2, 2)))
  pads, lpads = jnp.zeros((4, 2, 5)), jnp.zeros((4, 2, 2))
  eager = np.stack([rnnt_loss(logits[i], pads[i], labels[i], lpads[i]) for i in range(4)])
  vmapped = jax.jit(jax.vmap(rnnt_loss))(logits, pads, labels, lpads)
  np.testing.assert_allclose(vmapped, eager, rtol=1e-6)


def test_batch_sharded_over_eight_devices_equals_single_device():
  if jax.device_count() < 8:
    pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 (set by conftest)")
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

  rng = np.random.default_rng(6)
  logits = rng.normal(size=(8, 7, 4, 9)).astype(np.float32)
  labels = rng.integers(1, 9, size=(8, 3))
  t_pad = _paddings(rng.integers(1, 8, size=8), 7)
  u_pad = _paddings(rng.integers(0, 4, size=8), 3)
  f = lambda x, tp, y, up: jax.value_and_grad(lambda z: rnnt_loss(z, tp, y, up).sum())(x)
  single = jax.jit(f)(logits, t_pad, labels, u_pad)
  mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
  shard = lambda x: jax.device_put(x, NamedSharding(mesh, P("data")))
  args = [shard(x) for x in (logits, t_pad, labels, u_pad)]
  loss, grad = jax.jit(f, out_shardings=(NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))))(*args)
  assert len(grad.sharding.device_set) == 8
  np.testing.assert_allclose(loss, single[0], rtol=1e-6)
  np.testing.assert_allclose(grad, single[1], atol=1e-6)


# ----------------------------------------------------------------------------
# Numerics at large common offsets, the FastEmit option, the padding contract
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, jnp.bfloat16])
@pytest.mark.parametrize("offset", [0.0, 1e4, 1e5, 1e7, 1e8, -1e8, "equal"])
def test_common_offset_matches_enumeration_of_the_same_input(offset, dtype):
  """The reference is the exact (float64) loss and gradient of the fp32/bf16 logits as given.

  At 1e8 fp32 cannot hold ``1e8 + noise`` (ulp 8), so the input is whatever the cast
  made of it; the oracle's float64 log-softmax subtracts the max exactly, so a
  correct loss agrees with it to fp32 rounding of the *log-probs*, not of the offset.
  "equal": every logit exactly 1e8 (uniform distribution; the loss was once negative).
  """
  rng = np.random.default_rng(11)
  b, t, u, v = 3, 4, 3, 5
  if offset == "equal":
    logits = np.full((b, t, u + 1, v), 1e8)
  else:
    logits = rng.normal(size=(b, t, u + 1, v)) * 3 + offset
  x = jnp.asarray(logits, dtype)
  given = np.asarray(x.astype(jnp.float32), np.float64)  # the input as the loss sees it
  labels = np.array([[1, 2, 3], [4, 4, 1], [2, 0 + 3, 1]])
  t_len, u_len = [4, 3, 4], [3, 2, 1]
  args = (_paddings(t_len, t), labels, _paddings(u_len, u))
  weights = np.array([1.0, 0.5, 2.0], np.float32)
  loss, vjp = jax.vjp(lambda z: rnnt_loss(z, *args, fastemit_lambda=0.3), x)
  (grad,) = vjp(jnp.asarray(weights))
  for i in range(b):
    ref, ref_grad, _, _ = oracles.rnnt_nll_and_grads(given[i, : t_len[i], : u_len[i] + 1], labels[i, : u_len[i]],
                                                     fastemit_lambda=0.3)
    np.testing.assert_allclose(loss[i], ref, rtol=2e-6, atol=2e-5)
    expected = np.zeros_like(given[i])
    expected[: t_len[i], : u_len[i] + 1] = weights[i] * ref_grad
    tol = 2e-5 if dtype == np.float32 else 2e-2  # bf16 gradients are rounded to 8 bits
    np.testing.assert_allclose(np.asarray(grad[i], np.float32), expected, atol=tol)


def test_gathered_variant_at_large_offsets_matches_enumeration():
  """`rnnt_loss_from_log_probs` takes log-probs; check it with those of a 1e8-offset input (float64 oracle)."""
  rng = np.random.default_rng(12)
  logits = (rng.normal(size=(2, 3, 3, 4)) + 1e8).astype(np.float32)
  labels = np.array([[1, 2], [3, 1]])
  lp = oracles.log_softmax(logits.astype(np.float64))
  ext = np.concatenate([labels, np.zeros((2, 1), labels.dtype)], axis=1)
  loss = rnnt_loss_from_log_probs(lp[..., 0].astype(np.float32),
                                  np.take_along_axis(lp, ext[:, None, :, None], -1)[..., 0].astype(np.float32),
                                  np.zeros((2, 3)), labels, np.zeros((2, 2)), vocab_size=4)
  for i in range(2):
    np.testing.assert_allclose(loss[i], oracles.rnnt_nll_and_grads(logits[i].astype(np.float64), labels[i])[0],
                               rtol=1e-6)


def _tiny_inputs():
  logits = jnp.asarray(np.random.default_rng(13).normal(size=(2, 3, 3, 4)).astype(np.float32))
  return logits, np.zeros((2, 3)), np.array([[1, 2], [3, 1]]), np.zeros((2, 2))


def _from_log_probs(logits, logit_pads, labels, label_pads, **kw):
  lp = jax.nn.log_softmax(logits, axis=-1)
  labels = jnp.asarray(labels, jnp.int32)
  ext = jnp.concatenate([labels, jnp.zeros((labels.shape[0], 1), jnp.int32)], axis=1)
  nxt = jnp.take_along_axis(lp, ext[:, None, :, None], -1)[..., 0]
  return rnnt_loss_from_log_probs(lp[..., 0], nxt, logit_pads, labels, label_pads, vocab_size=lp.shape[-1], **kw)


def _pruned(logits, logit_pads, labels, label_pads, **kw):
  from asrjax.losses import pruned_rnnt  # full windows (S = U + 1): the pruned loss equals the full one
  return pruned_rnnt.pruned_rnnt_loss(logits, jnp.zeros(logits.shape[:2], jnp.int32), logit_pads, labels, label_pads,
                                      **kw)


_ENTRY_POINTS = {"rnnt_loss": rnnt_loss, "from_log_probs": _from_log_probs, "pruned": _pruned}


@pytest.mark.parametrize("entry", list(_ENTRY_POINTS))
@pytest.mark.parametrize("lam", [float("nan"), float("inf"), -float("inf"), -0.1, "0.5", True, np.ones(2)])
def test_fastemit_lambda_must_be_a_finite_non_negative_float(entry, lam):
  with pytest.raises(ValueError, match="fastemit_lambda"):
    _ENTRY_POINTS[entry](*_tiny_inputs(), fastemit_lambda=lam)


@pytest.mark.parametrize("entry", list(_ENTRY_POINTS))
def test_traced_fastemit_lambda_is_rejected_clearly(entry):
  fn = jax.jit(lambda lam: _ENTRY_POINTS[entry](*_tiny_inputs(), fastemit_lambda=lam))
  with pytest.raises(ValueError, match="fastemit_lambda must be a static Python float"):
    fn(0.5)


@pytest.mark.parametrize("entry", list(_ENTRY_POINTS))
@pytest.mark.parametrize("which, bad", [
    ("logit_paddings", [0.0, 1.0, 0.0]),  # valid after padded
    ("logit_paddings", [0.0, 0.5, 1.0]),  # fractional
    ("logit_paddings", [0.0, np.nan, 1.0]),
    ("label_paddings", [1.0, 0.0]),
    ("label_paddings", [0.0, 0.5]),
])
def test_invalid_paddings_raise_eagerly_and_give_nan_rows_under_jit(entry, which, bad):
  """Eager: ValueError naming the argument. Under jit: NaN for that row only, the other row exact."""
  fn = _ENTRY_POINTS[entry]
  logits, logit_pads, labels, label_pads = _tiny_inputs()
  pads = {"logit_paddings": logit_pads.copy(), "label_paddings": label_pads.copy()}
  pads[which][1] = bad
  with pytest.raises(ValueError, match=rf"{which}.*(trailing|only 0)"):
    fn(logits, pads["logit_paddings"], labels, pads["label_paddings"])
  loss = jax.jit(fn)(logits, pads["logit_paddings"], labels, pads["label_paddings"])
  assert np.isnan(loss[1])
  ref = oracles.rnnt_nll_and_grads(np.asarray(logits[0], np.float64), labels[0])[0]
  np.testing.assert_allclose(loss[0], ref, rtol=1e-5)


def test_no_frames_at_all_and_empty_batch():
  # T = 0: every utterance has no frame, so the documented +inf with zero gradient.
  loss, grad = jax.value_and_grad(lambda x: rnnt_loss(x, np.zeros((2, 0)), np.array([[1], [2]]), np.zeros((2, 1)))[0],
                                  allow_int=False)(jnp.zeros((2, 0, 2, 4)))
  assert loss == np.inf and grad.shape == (2, 0, 2, 4)
  # B = 0: an empty per-sequence result, not an error.
  out = rnnt_loss(jnp.zeros((0, 3, 2, 4)), np.zeros((0, 3)), np.zeros((0, 1), np.int32), np.zeros((0, 1)))
  assert out.shape == (0,)


@pytest.mark.parametrize("blank_lp_shape, match", [
    ((2, 3, 3, 4), r"blank_log_probs must be a \(B, T, U\+1\)"),  # a 4-D input (logits passed by mistake)
    ((2, 3), r"blank_log_probs must be a \(B, T, U\+1\)"),
    ((2, 3, 4), r"labels shape \(2, 2\) does not match blank_log_probs"),
    ((3, 3, 3), "labels has batch size 2"),
])
def test_gathered_variant_shape_errors_name_the_argument(blank_lp_shape, match):
  x = jnp.zeros(blank_lp_shape)
  with pytest.raises(ValueError, match=match):
    rnnt_loss_from_log_probs(x, x, np.zeros((2, 3)), np.ones((2, 2), np.int32), np.zeros((2, 2)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("donate", [False, True])
def test_peak_memory_is_logits_plus_gradient(dtype, donate):
  """XLA's own accounting of the compiled loss+gradient: no full fp32 copy of the logits.

  Kept: logits + gradient + O(B.T.U); donated (as in a train step): about the logits
  alone. A materialised fp32 cast or ``z - max`` (the traps in BUILD_NOTES) adds a full
  fp32 logits-sized buffer, 2-4x the bf16 logits.
  """
  b, t, u, v = 4, 40, 15, 512
  logits = jnp.zeros((b, t, u + 1, v), dtype)
  labels = jnp.ones((b, u), jnp.int32)
  step = jax.jit(lambda x, y: jax.value_and_grad(lambda z: rnnt_loss(z, jnp.zeros((b, t)), y, jnp.zeros((b, u))).sum())(x),
                 donate_argnums=(0,) if donate else ())
  mem = step.lower(logits, labels).compile().memory_analysis()
  if mem is None:
    pytest.skip("no memory analysis on this backend")
  peak = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes - mem.alias_size_in_bytes
  logits_bytes = logits.size * logits.dtype.itemsize
  lattice_bytes = 40 * b * (t + u + 1) * (u + 1) * 4  # generous: ~40 fp32 arrays of the skewed lattice
  assert peak <= (1 if donate else 2) * logits_bytes + lattice_bytes, (peak / logits_bytes, lattice_bytes / logits_bytes)
