"""StackedLSTM against a NumPy implementation of the LSTM equations, with padding and carried state."""

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.nn import lstm


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _numpy_lstm(params, x, valid, state):
  """Textbook LSTM, float64, one frame at a time: ``x [B, T, D]``, ``valid [B, T]``."""
  b, t, _ = x.shape
  h_in = x.astype(np.float64)
  new_state = []
  for i, (c, h) in enumerate(state):
    p = params[f"layer_{i}"]
    w_x, bias, w_h = (np.asarray(p[k], np.float64) for k in ("kernel_x", "bias", "kernel_h"))
    c, h = np.array(c, np.float64), np.array(h, np.float64)
    hidden = h.shape[1]
    out = np.zeros((b, t, hidden))
    for s in range(t):
      z = h_in[:, s] @ w_x + bias + h @ w_h
      gi, gf, gg, go = (z[:, k * hidden : (k + 1) * hidden] for k in range(4))
      c_new = _sigmoid(gf) * c + _sigmoid(gi) * np.tanh(gg)
      h_new = _sigmoid(go) * np.tanh(c_new)
      for row in range(b):
        if valid[row, s]:
          c[row], h[row] = c_new[row], h_new[row]
          out[row, s] = h_new[row]
    new_state.append((c, h))
    h_in = out
  return h_in, new_state


def test_matches_numpy_equations_with_padding_and_initial_state():
  rng = np.random.default_rng(0)
  b, t, d, hidden = 3, 9, 5, 4
  x = rng.normal(size=(b, t, d)).astype(np.float32)
  valid = np.arange(t)[None] < np.array([9, 6, 2])[:, None]
  pads = (~valid).astype(np.float32)
  state = [tuple(rng.normal(size=(2, b, hidden)).astype(np.float32)) for _ in range(2)]
  module = lstm.StackedLSTM(hidden, 2)
  params = module.init(jax.random.key(0), x, pads, state)
  y, new_state = module.apply(params, jnp.asarray(x), jnp.asarray(pads), state)
  y_ref, state_ref = _numpy_lstm(params["params"], x, valid, state)
  np.testing.assert_allclose(np.asarray(y), y_ref, rtol=1e-5, atol=1e-6)
  assert not np.asarray(y)[~valid].any()
  for (c, h), (c_ref, h_ref) in zip(new_state, state_ref):
    np.testing.assert_allclose(np.asarray(c), c_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(h), h_ref, rtol=1e-5, atol=1e-6)


def test_forget_gate_bias_starts_at_one():
  module = lstm.StackedLSTM(3, 1)
  params = module.init(jax.random.key(0), jnp.zeros((1, 2, 4)), jnp.zeros((1, 2)), module.init_state(1))
  np.testing.assert_array_equal(np.asarray(params["params"]["layer_0"]["bias"]),
                                [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_dropout_only_with_a_dropout_rng():
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(4, 30, 5)).astype(np.float32))
  pads = jnp.zeros((4, 30))
  module = lstm.StackedLSTM(8, 1, dropout_rate=0.5)
  params = module.init(jax.random.key(0), x, pads, module.init_state(4))
  plain, _ = lstm.StackedLSTM(8, 1).apply(params, x, pads, module.init_state(4))
  quiet, _ = module.apply(params, x, pads, module.init_state(4))  # decoding / streaming: no rng
  np.testing.assert_array_equal(np.asarray(quiet), np.asarray(plain))
  dropped, _ = module.apply(params, x, pads, module.init_state(4), rngs={"dropout": jax.random.key(1)})
  dropped, plain = np.asarray(dropped), np.asarray(plain)
  zero = dropped == 0
  assert 0.4 < zero.mean() < 0.6  # inverted dropout at rate 0.5: kept units are doubled
  np.testing.assert_allclose(dropped[~zero], 2.0 * plain[~zero], rtol=1e-6)
