"""Synthesis: determinism, and each acoustic effect checked by measurement."""

import dataclasses

import shutil

import numpy as np
import pytest

from asrjax.corpus import mixing, speakers as S, synthesis as Y

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng/sox not installed")

TEXT = "please add milk eggs and bread to my shopping list"


@pytest.fixture(scope="module")
def speaker():
  s = S.sample_speakers(np.random.default_rng(3), 1, seed=3)[0]
  return dataclasses.replace(s, timbre_db=0.0)


def test_same_inputs_give_identical_samples(speaker):
  c = Y.Condition(speed=1.1, snr_db=10.0, noise="pink", reverb=40, band_limited=True)
  a, b = Y.synthesize(TEXT, speaker, c, 7), Y.synthesize(TEXT, speaker, c, 7)
  assert a.dtype == np.int16 and np.array_equal(a, b)
  assert not np.array_equal(a, Y.synthesize(TEXT, speaker, c, 8))  # noise seed matters


def test_added_noise_has_requested_snr(speaker):
  clean = Y.render_clean(TEXT, speaker, Y.Condition())
  for snr in (0.0, 10.0, 20.0):
    noisy = Y.add_noise(clean, snr, "white", np.random.default_rng(0))
    active = np.abs(clean) > 0.01 * np.abs(clean).max()
    measured = 10 * np.log10(np.mean(clean[active] ** 2) / np.mean((noisy - clean) ** 2))
    assert abs(measured - snr) < 0.3


def test_speed_perturbation_changes_duration(speaker):
  base = Y.render_clean(TEXT, speaker, Y.Condition()).size
  fast = Y.render_clean(TEXT, speaker, Y.Condition(speed=1.1)).size
  assert abs(fast / base - 1 / 1.1) < 0.01


def test_band_limiting_removes_energy_above_3400_hz(speaker):
  def high_fraction(x):
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / Y.SAMPLE_RATE)
    return p[f > 3800].sum() / p.sum()
  wide = Y.render_clean(TEXT, speaker, Y.Condition())
  narrow = Y.render_clean(TEXT, speaker, Y.Condition(band_limited=True))
  assert high_fraction(narrow) < 0.01 < high_fraction(wide)


@pytest.mark.parametrize("kind,slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_noise_colour_has_expected_spectral_slope(kind, slope):
  x = Y.colored_noise(np.random.default_rng(0), 2**16, kind)
  assert abs(x.std() - 1) < 1e-3
  p = np.abs(np.fft.rfft(x)) ** 2
  f = np.fft.rfftfreq(x.size)
  band = (f > 0.005) & (f < 0.4)
  fitted = np.polyfit(np.log(f[band]), np.log(p[band]), 1)[0]
  assert abs(fitted - slope) < 0.1


def test_empty_text_is_rejected(speaker):
  with pytest.raises(ValueError, match="empty text"):
    Y.synthesize("  ", speaker, Y.Condition(), 0)


def test_second_talker_placement_hand_derived():
  # first speech 1000..9000, second speech starts 500 samples into its own audio
  assert mixing.place_second((1000, 9000), (500, 4500), 0.25, 16000) == 9000 - 1000 - 500
  assert mixing.place_second((1000, 9000), (500, 4500), -0.5, 16000) == 9000 + 8000 - 500
  assert mixing.place_second((0, 100), (500, 4500), 1.0, 16000) == 0  # never negative
