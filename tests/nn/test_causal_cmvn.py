"""Causal CMVN: hand-derived values, padding, and chunked == whole utterance (bit-exact)."""

import jax.numpy as jnp
import numpy as np

from asrjax.nn import causal_cmvn


def test_hand_derived_values_with_a_prior_of_two_frames():
  x = jnp.asarray([[[2.0], [4.0], [7.0]]])
  pads = jnp.asarray([[0.0, 0.0, 1.0]])
  y, state = causal_cmvn.causal_cmvn(x, pads, causal_cmvn.init_state(1, 1, prior_frames=2.0))
  # frame 0: mean 2/3, E[x^2] = (2 + 4) / 3 = 2, var = 14/9 -> (2 - 2/3) / sqrt(14/9) = 4 / sqrt(14)
  # frame 1: sums 6 and 2 + 4 + 16 = 22 over 4 -> mean 1.5, var 5.5 - 2.25 = 3.25
  np.testing.assert_allclose(np.asarray(y)[0, :, 0], [4 / np.sqrt(14), 2.5 / np.sqrt(3.25), 0.0], rtol=1e-6)
  np.testing.assert_allclose(np.asarray(state["total"]), [[6.0, 22.0]])  # the padded frame adds nothing
  assert float(state["count"][0]) == 4.0


def test_chunked_equals_whole_bit_exact():
  rng = np.random.default_rng(0)
  b, t, d = 3, 29, 6
  x = jnp.asarray(rng.normal(1.0, 2.0, size=(b, t, d)).astype(np.float32))
  pads = jnp.asarray((np.arange(t)[None] >= np.array([29, 20, 7])[:, None]).astype(np.float32))
  whole, _ = causal_cmvn.causal_cmvn(x, pads, causal_cmvn.init_state(b, d, 50.0))
  state, outs, start = causal_cmvn.init_state(b, d, 50.0), [], 0
  for size in (1, 5, 3, 11, 9):
    y, state = causal_cmvn.causal_cmvn(x[:, start : start + size], pads[:, start : start + size], state)
    outs.append(y)
    start += size
  np.testing.assert_array_equal(np.asarray(jnp.concatenate(outs, axis=1)), np.asarray(whole))


def test_long_utterance_approaches_its_own_statistics():
  rng = np.random.default_rng(1)
  x = rng.normal(3.0, 0.5, size=(1, 4000, 2)).astype(np.float32)
  y, _ = causal_cmvn.causal_cmvn(jnp.asarray(x), jnp.zeros((1, 4000)), causal_cmvn.init_state(1, 2, 10.0))
  tail = np.asarray(y)[0, 2000:]
  np.testing.assert_allclose(tail.mean(axis=0), 0.0, atol=0.1)
  np.testing.assert_allclose(tail.std(axis=0), 1.0, atol=0.1)


def test_nan_in_padded_frames_leaves_outputs_and_state_as_the_hand_derived_ones():
  """The hand-derived case above with NaN (and inf) in the padded frame: same outputs and sums."""
  x = jnp.asarray([[[2.0], [4.0], [jnp.nan]], [[2.0], [4.0], [jnp.inf]]])
  pads = jnp.asarray([[0.0, 0.0, 1.0]] * 2)
  y, state = causal_cmvn.causal_cmvn(x, pads, causal_cmvn.init_state(2, 1, prior_frames=2.0))
  for row in range(2):
    np.testing.assert_allclose(np.asarray(y)[row, :, 0], [4 / np.sqrt(14), 2.5 / np.sqrt(3.25), 0.0], rtol=1e-6)
  np.testing.assert_allclose(np.asarray(state["total"]), [[6.0, 22.0]] * 2)
