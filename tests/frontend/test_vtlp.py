"""VTLP: the warp of Jaitly and Hinton (2013), checked against its forward formula and the mel scale."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.frontend import features, vtlp

F_MAX, F_HI, NUM_MELS = 8000.0, 4800.0, 80


def forward_warp(f, alpha):
  """Eq. 1 of the paper, transcribed: input frequency -> warped frequency."""
  knee = F_HI * min(alpha, 1.0) / alpha
  return np.where(f <= knee, alpha * f,
                  F_MAX - (F_MAX - F_HI * min(alpha, 1.0)) / (F_MAX - knee) * (F_MAX - f))


@pytest.mark.parametrize("alpha", [0.9, 0.95, 1.07, 1.1])
def test_source_frequency_inverts_the_papers_warp(alpha):
  f = np.linspace(0.0, F_MAX, 2001)
  back = np.asarray(vtlp.source_hz(jnp.asarray(forward_warp(f, alpha), jnp.float32), jnp.float32(alpha), F_MAX, F_HI))
  np.testing.assert_allclose(back, f, atol=0.05)


@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_warped_channel_reads_the_mel_position_of_the_source_frequency(alpha):
  # feature value = channel index, linear in mel, so interpolation is exact: the
  # warped value of channel m must be the (fractional) channel of its source frequency.
  corners = features.mel_to_hz(np.linspace(features.hz_to_mel(0.0), features.hz_to_mel(F_MAX), NUM_MELS + 2))
  centres = corners[1:-1]
  grid = np.linspace(0.0, F_MAX, 200_001)
  source = np.interp(centres, forward_warp(grid, alpha), grid)  # numerical inverse of eq. 1
  step = (features.hz_to_mel(F_MAX) - features.hz_to_mel(0.0)) / (NUM_MELS + 1)
  expected = np.clip(features.hz_to_mel(source) / step - 1.0, 0.0, NUM_MELS - 1)
  feats = jnp.broadcast_to(jnp.arange(NUM_MELS, dtype=jnp.float32), (1, 3, NUM_MELS))
  out = vtlp.warp_with(feats, jnp.zeros((1, 3)), jnp.full((1, 1), alpha), lower_edge_hz=0.0, upper_edge_hz=F_MAX,
                       boundary_hz=F_HI)
  np.testing.assert_allclose(np.asarray(out)[0, 1], expected, atol=2e-3)


def test_alpha_one_is_identity_and_a_formant_moves_up_for_alpha_above_one():
  feats = jnp.zeros((2, 4, NUM_MELS)).at[:, :, 30].set(5.0)  # one "formant" channel
  pads = jnp.zeros((2, 4))
  out = vtlp.warp_with(feats, pads, jnp.asarray([[1.0], [1.1]]), lower_edge_hz=0.0, upper_edge_hz=F_MAX,
                       boundary_hz=F_HI)
  np.testing.assert_allclose(np.asarray(out)[0], np.asarray(feats)[0], atol=1e-4)
  # mel(f * 1.1) of channel 30's centre lies between channels 31 and 32
  assert np.argmax(np.asarray(out)[1, 0]) in (31, 32)


def test_each_utterance_draws_its_own_warp_and_padding_is_untouched():
  rng = np.random.default_rng(0)
  feats = jnp.asarray(rng.normal(size=(4, 6, NUM_MELS)).astype(np.float32))
  pads = jnp.asarray((np.arange(6)[None] >= np.array([6, 4, 2, 5])[:, None]).astype(np.float32))
  out = np.asarray(vtlp.warp(jax.random.key(3), feats, pads, max_warp=0.1))
  np.testing.assert_array_equal(out[np.asarray(pads) > 0], np.asarray(feats)[np.asarray(pads) > 0])
  changes = [np.abs(out[i, 0] - np.asarray(feats)[i, 0]).mean() for i in range(4)]
  assert len({round(c, 6) for c in changes}) == 4 and min(changes) > 0
  again = np.asarray(vtlp.warp(jax.random.key(3), feats, pads, max_warp=0.1))
  np.testing.assert_array_equal(out, again)
