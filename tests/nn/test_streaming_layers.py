"""Streaming layers: chunked processing equals whole-utterance processing, and causality."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.nn import causal_conv, causal_se, lstm


def _chunks(total, rng):
  cuts, t = [], 0
  while t < total:
    step = int(rng.integers(1, 6))
    cuts.append((t, min(total, t + step)))
    t += step
  return cuts


def _layers():
  return {
      "conv": (causal_conv.CausalConv1D(6, 4), lambda m, b, d: m.init_state(b, d)),
      "depthwise": (causal_conv.CausalConv1D(5, 3, depthwise=True), lambda m, b, d: m.init_state(b, d)),
      "se": (causal_se.CausalSqueezeExcite(2), lambda m, b, d: m.init_state(b, d)),
      "lstm": (lstm.StackedLSTM(7, 2), lambda m, b, d: m.init_state(b)),
  }


# "lstm" and "depthwise" are bit-identical. "conv" and "se" contain [B*T, D] @ [D, F]
# matmuls whose row count changes with the chunk length, and XLA:CPU picks a GEMM
# kernel by shape, so a frame's dot product may round differently (seen: 1 ulp).
EXACT = {"lstm", "depthwise"}


@pytest.mark.parametrize("name", ["conv", "depthwise", "se", "lstm"])
def test_chunked_equals_whole(name):
  module, init_state = _layers()[name]
  rng = np.random.default_rng(0)
  b, t, d = 3, 23, 5
  x = jnp.asarray(rng.normal(size=(b, t, d)).astype(np.float32))
  pads = jnp.asarray((np.arange(t)[None] >= np.array([23, 17, 9])[:, None]).astype(np.float32))
  params = module.init(jax.random.key(0), x, pads, init_state(module, b, d))
  apply = jax.jit(module.apply)
  whole, _ = apply(params, x, pads, init_state(module, b, d))
  state, outs = init_state(module, b, d), []
  for s, e in _chunks(t, rng):
    y, state = apply(params, x[:, s:e], pads[:, s:e], state)
    outs.append(y)
  chunked = jnp.concatenate(outs, axis=1)
  valid = np.asarray(pads == 0)
  if name in EXACT:
    np.testing.assert_array_equal(np.asarray(chunked)[valid], np.asarray(whole)[valid])
  else:
    np.testing.assert_allclose(np.asarray(chunked)[valid], np.asarray(whole)[valid], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["conv", "se", "lstm"])
def test_future_frames_do_not_change_past_outputs(name):
  module, init_state = _layers()[name]
  rng = np.random.default_rng(1)
  x = rng.normal(size=(1, 12, 5)).astype(np.float32)
  pads = np.zeros((1, 12), np.float32)
  params = module.init(jax.random.key(1), x, pads, init_state(module, 1, 5))
  y1, _ = module.apply(params, x, pads, init_state(module, 1, 5))
  x2 = x.copy()
  x2[:, 7:] += 10.0
  y2, _ = module.apply(params, x2, pads, init_state(module, 1, 5))
  np.testing.assert_array_equal(np.asarray(y1)[:, :7], np.asarray(y2)[:, :7])
  assert not np.allclose(np.asarray(y1)[:, 7:], np.asarray(y2)[:, 7:])


def test_conv_matches_numpy_formula():
  module = causal_conv.CausalConv1D(2, 3)
  x = np.arange(12, dtype=np.float32).reshape(1, 6, 2)
  params = module.init(jax.random.key(2), x, np.zeros((1, 6)), module.init_state(1, 2))
  w, bias = np.asarray(params["params"]["kernel"]), np.asarray(params["params"]["bias"])
  xp = np.concatenate([np.zeros((2, 2)), x[0]])
  expected = np.stack([bias + sum(xp[t + k] @ w[k] for k in range(3)) for t in range(6)])
  y, _ = module.apply(params, x, np.zeros((1, 6)), module.init_state(1, 2))
  np.testing.assert_allclose(y[0], expected, rtol=1e-5)


def test_running_mean_hand_derived():
  x = jnp.asarray([[[2.0], [4.0], [9.0], [100.0]]])
  pads = jnp.asarray([[0.0, 0.0, 0.0, 1.0]])
  means, total, count = causal_se.running_mean(x, pads, jnp.zeros((1, 1)), jnp.zeros((1,)))
  np.testing.assert_allclose(np.asarray(means)[0, :, 0], [2.0, 3.0, 5.0, 5.0])
  assert float(total[0, 0]) == 15.0 and float(count[0]) == 3.0
