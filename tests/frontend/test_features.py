"""Log-mel features against librosa (float64) and hand-derived frame counts."""

from __future__ import annotations

import math

import jax
import librosa
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from asrjax.frontend import features
from asrjax.tasks import transducer_asr

SR = 16000
WINDOW, STEP, NFFT = 400, 160, 512  # 25 ms / 10 ms at 16 kHz, next pow2


def _signals(n: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(0)
  t = np.arange(n) / SR
  return {
      "chirp": 0.5 * scipy.signal.chirp(t, f0=60.0, f1=7500.0, t1=t[-1], method="logarithmic"),
      "sine": 0.3 * np.sin(2 * np.pi * 440.0 * t),
      "noise": 0.1 * rng.normal(size=n),
      "chirp_in_noise": 0.4 * scipy.signal.chirp(t, f0=7000.0, f1=200.0, t1=t[-1]) + 0.01 * rng.normal(size=n),
  }


def _librosa_log_mel(x: np.ndarray, *, preemphasis: float, window: str, htk: bool, norm, mel_floor=1e-5):
  """Reference in float64: scipy pre-emphasis, librosa power STFT (center=False) and mel filters.

  librosa centres a ``win_length`` window inside each ``n_fft`` frame (offset
  ``(512 - 400) / 2 = 56``) where we put it at the frame start and zero-pad on the
  right. Both frames hold the same 400 windowed samples, only circularly shifted,
  so their power spectra are identical once the signal is shifted by 56 samples:
  pad 56 zeros on both sides.
  """
  y = scipy.signal.lfilter([1.0, -preemphasis], [1.0], np.asarray(x, np.float64))
  shift = (NFFT - WINDOW) // 2
  y = np.pad(y, (shift, shift))
  spec = librosa.stft(y, n_fft=NFFT, hop_length=STEP, win_length=WINDOW, window=window, center=False)
  power = np.abs(spec) ** 2  # [K, T]
  fb = librosa.filters.mel(sr=SR, n_fft=NFFT, n_mels=80, htk=htk, norm=norm, dtype=np.float64)  # [D, K]
  return np.log(np.maximum(fb @ power, mel_floor)).T  # [T, D]


@pytest.mark.parametrize(
    "preemphasis, window, mel_scale, mel_norm",
    [(0.97, "hann", "htk", None), (0.0, "hamming", "slaney", "slaney")],
)
def test_matches_librosa_on_padded_batch(preemphasis, window, mel_scale, mel_norm):
  n = 12000
  sigs = _signals(n)
  lengths = [n, 9000, 5003, 2560]  # every utterance but the first is padded
  audio = np.zeros((len(sigs), n), np.float32)
  pads = np.ones((len(sigs), n), np.float32)
  for b, (x, length) in enumerate(zip(sigs.values(), lengths)):
    audio[b, :length] = x[:length]
    pads[b, :length] = 0.0
  got, got_pads = features.log_mel(
      audio, pads, preemphasis=preemphasis, window=window, mel_scale=mel_scale, mel_norm=mel_norm
  )
  got, got_pads = np.asarray(got), np.asarray(got_pads)
  assert got.shape == (4, 1 + (n - WINDOW) // STEP, 80) and got.dtype == np.float32
  for b, length in enumerate(lengths):
    ref = _librosa_log_mel(
        audio[b, :length], preemphasis=preemphasis, window=window, htk=mel_scale == "htk", norm=mel_norm
    )
    num_valid = int(np.sum(got_pads[b] == 0))
    assert num_valid == ref.shape[0] == 1 + (length - WINDOW) // STEP
    assert np.all(got_pads[b, num_valid:] == 1.0)
    # Measured max |diff| 7.3e-4 log units (chirps: low-energy bands of a frame carry the
    # float32 FFT's rounding error of the whole frame), i.e. 3.5e-5 of the ~20 dynamic range.
    dynamic_range = ref.max() - ref.min()
    np.testing.assert_allclose(got[b, :num_valid], ref, rtol=0, atol=1e-4 * dynamic_range)
    assert np.all(got[b, num_valid:] == 0.0)


@pytest.mark.parametrize(
    "kwargs, htk, norm",
    [
        (dict(mel_scale="htk"), True, None),
        (dict(mel_scale="slaney", mel_norm="slaney"), False, "slaney"),
        (dict(mel_scale="htk", lower_edge_hz=125.0, upper_edge_hz=7600.0), True, None),
    ],
)
def test_mel_filterbank_matches_librosa(kwargs, htk, norm):
  ours = features.mel_filterbank(sample_rate=SR, fft_size=NFFT, num_mels=80, **kwargs)
  ref = librosa.filters.mel(
      sr=SR,
      n_fft=NFFT,
      n_mels=80,
      fmin=kwargs.get("lower_edge_hz", 0.0),
      fmax=kwargs.get("upper_edge_hz"),
      htk=htk,
      norm=norm,
      dtype=np.float64,
  )
  assert ours.shape == (NFFT // 2 + 1, 80)
  np.testing.assert_allclose(ours, ref.T, rtol=1e-6, atol=1e-9)


def test_mel_scale_hand_values():
  assert features.hz_to_mel(700.0, "htk") == pytest.approx(2595.0 * math.log10(2.0))
  assert features.hz_to_mel(1000.0, "slaney") == pytest.approx(15.0)
  assert features.hz_to_mel(6400.0, "slaney") == pytest.approx(15.0 + 27.0)  # log step: 6.4x per 27 mel
  hz = np.array([0.0, 300.0, 1000.0, 4000.0, 8000.0])
  for scale in ("htk", "slaney"):
    np.testing.assert_allclose(features.mel_to_hz(features.hz_to_mel(hz, scale), scale), hz, atol=1e-9)


def test_frame_counts_and_paddings_hand_derived():
  n = 1000  # T = 1 + (1000 - 400) // 160 = 4 frames, ending at 400, 560, 720, 880
  lengths = [1000, 880, 879, 560, 559, 400, 399, 0]
  expected_valid = [4, 4, 3, 2, 1, 1, 0, 0]
  rng = np.random.default_rng(1)
  audio = rng.uniform(-1, 1, size=(len(lengths), n)).astype(np.float32)
  pads = (np.arange(n)[None, :] >= np.array(lengths)[:, None]).astype(np.float32)
  feats, fpads = features.log_mel(audio, pads)
  assert feats.shape == (len(lengths), 4, 80) and fpads.shape == (len(lengths), 4)
  np.testing.assert_array_equal(np.sum(np.asarray(fpads) == 0.0, axis=1), expected_valid)
  for b, v in enumerate(expected_valid):
    np.testing.assert_array_equal(np.asarray(fpads[b]), [0.0] * v + [1.0] * (4 - v))
  assert np.all(np.isfinite(np.asarray(feats)))
  assert np.all(np.asarray(feats)[np.asarray(fpads) == 1.0] == 0.0)


def test_padding_invariance_with_garbage_in_padding():
  rng = np.random.default_rng(2)
  x = _signals(6000)["chirp_in_noise"].astype(np.float32)
  alone, alone_pads = features.log_mel(x[None], np.zeros((1, 6000), np.float32))
  garbage = 1e3 * rng.normal(size=2500)  # loud garbage after the end, NaN and inf included
  garbage[[5, 700, 2400]] = [np.nan, np.inf, -np.inf]
  audio = np.concatenate([x, garbage]).astype(np.float32)[None]
  pads = np.concatenate([np.zeros(6000), np.ones(2500)]).astype(np.float32)[None]
  padded, padded_pads = features.log_mel(audio, pads)
  t = alone.shape[1]
  np.testing.assert_array_equal(np.asarray(padded_pads[0, :t]), np.asarray(alone_pads[0]))
  assert np.all(np.asarray(padded_pads[0, t:]) == 1.0)
  np.testing.assert_allclose(np.asarray(padded[0, :t]), np.asarray(alone[0]), rtol=0, atol=1e-5)
  assert np.all(np.asarray(padded[0, t:]) == 0.0)


def test_silence_gives_log_floor():
  audio = np.zeros((2, 4000), np.float32)
  pads = np.zeros((2, 4000), np.float32)
  pads[1, 2000:] = 1.0
  feats, fpads = features.log_mel(audio, pads, mel_floor=1e-5)
  feats, fpads = np.asarray(feats), np.asarray(fpads)
  np.testing.assert_allclose(feats[fpads == 0.0], math.log(1e-5), rtol=1e-6)
  assert np.all(feats[fpads == 1.0] == 0.0)
  assert int(np.sum(fpads[1] == 0.0)) == 1 + (2000 - WINDOW) // STEP


@pytest.mark.parametrize("n", [0, 1, WINDOW - 1])
def test_input_shorter_than_one_window_gives_zero_frames(n):
  feats, fpads = features.log_mel(np.ones((3, n), np.float32), np.zeros((3, n), np.float32))
  assert feats.shape == (3, 0, 80) and fpads.shape == (3, 0)


def test_int16_scaling_shifts_log_features_by_constant():
  x = _signals(4000)["noise"].astype(np.float32)
  pads = np.zeros((1, 4000), np.float32)
  unit, _ = features.log_mel(x[None], pads)
  scaled, _ = features.log_mel(32768.0 * x[None], pads)
  np.testing.assert_allclose(np.asarray(scaled - unit), 2.0 * math.log(32768.0), atol=2e-4)


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="B, N"):
    features.log_mel(np.zeros((4000,), np.float32), np.zeros((4000,), np.float32))
  with pytest.raises(ValueError, match="B, N"):
    features.log_mel(np.zeros((1, 4000), np.float32), np.zeros((1, 3999), np.float32))
  with pytest.raises(ValueError, match="fft_size"):
    features.log_mel(np.zeros((1, 4000), np.float32), np.zeros((1, 4000), np.float32), fft_size=256)
  with pytest.raises(ValueError, match="window"):
    features.log_mel(np.zeros((1, 4000), np.float32), np.zeros((1, 4000), np.float32), window="povey")


def _numpy_cmvn(x: np.ndarray, epsilon: float) -> np.ndarray:
  x = np.asarray(x, np.float64)
  return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + epsilon)


def test_normalize_matches_numpy_and_is_padding_invariant():
  rng = np.random.default_rng(3)
  lengths, t, d = [7, 3, 1, 0], 7, 5
  x = (rng.normal(size=(4, t, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d) * 4).astype(np.float32)
  pads = (np.arange(t)[None, :] >= np.array(lengths)[:, None]).astype(np.float32)
  x_garbage = np.where(pads[..., None] == 1.0, np.nan, x).astype(np.float32)  # padded frames must not count
  x_garbage[1, 5] = 1e4
  out = np.asarray(features.normalize(x_garbage, pads, epsilon=1e-5))
  assert np.all(np.isfinite(out))
  for b, length in enumerate(lengths):
    if length:
      np.testing.assert_allclose(out[b, :length], _numpy_cmvn(x[b, :length], 1e-5), rtol=1e-5, atol=1e-5)
      single = np.asarray(features.normalize(x[b : b + 1, :length], np.zeros((1, length), np.float32)))
      np.testing.assert_allclose(out[b, :length], single[0], rtol=1e-6, atol=1e-6)
    assert np.all(out[b, length:] == 0.0)
  # One valid frame: centred to exactly zero. Mean-only variant keeps the scale.
  assert np.all(out[2, 0] == 0.0)
  cmn = np.asarray(features.normalize(x, pads, scale_variance=False))
  np.testing.assert_allclose(cmn[0], x[0] - x[0].mean(axis=0), rtol=1e-5, atol=1e-5)


def test_global_statistics_from_batched_moments_match_numpy():
  rng = np.random.default_rng(7)
  x = rng.normal(3.0, 2.0, size=(3, 20, 4)).astype(np.float32)
  pads = (np.arange(20)[None] >= np.array([[20], [12], [5]])).astype(np.float32)
  x[pads > 0] = 1e6  # garbage in padding must not count
  parts = [features.moments(jnp.asarray(x[i:i + 1]), jnp.asarray(pads[i:i + 1])) for i in range(3)]
  count = sum(float(p[0]) for p in parts)
  total = sum(np.asarray(p[1], np.float64) for p in parts)
  squares = sum(np.asarray(p[2], np.float64) for p in parts)
  valid = x[pads == 0].astype(np.float64)  # [37, 4]
  assert count == 37
  np.testing.assert_allclose(total / count, valid.mean(0), rtol=1e-5)
  np.testing.assert_allclose(squares / count - (total / count) ** 2, valid.var(0), rtol=1e-4)
  mean, std = valid.mean(0), valid.std(0)
  y = np.asarray(features.global_normalize(jnp.asarray(x), jnp.asarray(pads), mean, std))
  np.testing.assert_allclose(y[pads == 0], (valid - mean) / std, rtol=1e-5, atol=1e-5)
  assert not y[pads > 0].any()
  with pytest.raises(ValueError, match="do not match"):
    features.global_normalize(jnp.asarray(x), jnp.asarray(pads), mean[:3], std[:3])


# ----------------------------------------------------------------------------
# The global statistics the trainer computes (transducer_asr.make_feature_stats)
# ----------------------------------------------------------------------------


def _fake_split(lengths, seed=0):
  rng = np.random.default_rng(seed)
  split = []
  for i, n in enumerate(lengths):
    t = np.arange(n) / SR
    x = rng.uniform(0.01, 0.5) * rng.normal(size=n) + 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
    split.append({"id": f"s{i}", "audio": np.clip(np.round(x * 8000), -32768, 32767).astype(np.int16), "text": ""})
  return split


def _reference_stats(split, n):
  """NumPy mean/std over the frames of each utterance's own (unpadded) log-mel, float64."""
  frames = []
  for ex in split[:n]:
    a = ex["audio"].astype(np.float32)[None] / 32768.0
    f, p = features.log_mel(a, np.zeros_like(a))
    assert not np.asarray(p).any()  # unpadded input: every frame is valid
    frames.append(np.asarray(f[0], np.float64))
  valid = np.concatenate(frames)
  return valid.shape[0], valid.mean(axis=0), valid.std(axis=0)


def test_trainer_feature_statistics_match_numpy_over_the_valid_frames(tmp_path):
  import ml_collections


  # 21 utterances of very different lengths (two batches of 16 in the trainer, padded to
  # whole seconds: most frames of a batch are padding); one shorter than a window (no
  # frame); the last is loud and beyond stats_utterances = 20, so it must not count.
  lengths = [16_000, 400, 399, 31_000, 5_003, 17_000, 2_560, 9_000, 48_000, 801, 12_345, 20_000, 3_000, 7_777,
             16_001, 640, 25_000, 1_000, 4_000, 15_999, 30_000]
  split = _fake_split(lengths)
  split[20]["audio"] = (split[20]["audio"].astype(np.int32) * 4).clip(-32768, 32767).astype(np.int16)
  config = ml_collections.ConfigDict({"data": {"normalization": "global", "stats_utterances": 20}})
  mean, std = transducer_asr.make_feature_stats(config, split, str(tmp_path))
  count, ref_mean, ref_std = _reference_stats(split, 20)
  assert count == sum(features.num_frames(n, WINDOW, STEP) for n in lengths[:20])  # hand-derived frame total
  assert len(mean) == len(std) == 80
  np.testing.assert_allclose(mean, ref_mean, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(std, ref_std, rtol=1e-4, atol=1e-4)
  # written to the workdir and read back unchanged
  again = transducer_asr.make_feature_stats(config, None, str(tmp_path))
  assert again == (mean, std)


def test_moments_of_a_padded_batch_equal_numpy_on_the_unpadded_utterances():
  split = _fake_split([16_000, 4_000, 399, 9_999])
  longest = 16_000
  audio = np.zeros((4, longest), np.float32)
  pads = np.ones((4, longest), np.float32)
  for b, ex in enumerate(split):
    audio[b, : ex["audio"].size] = ex["audio"] / 32768.0
    pads[b, : ex["audio"].size] = 0.0
  count, total, squares = features.moments(*features.log_mel(audio, pads))
  n, mean, std = _reference_stats(split, 4)
  assert float(count) == n == 98 + 23 + 0 + 60  # 1 + (n - 400) // 160 frames each
  np.testing.assert_allclose(np.asarray(total) / n, mean, rtol=1e-4, atol=1e-4)
  var = np.asarray(squares, np.float64) / n - (np.asarray(total, np.float64) / n) ** 2
  np.testing.assert_allclose(np.sqrt(var), std, rtol=1e-3, atol=1e-4)
  with pytest.raises(ValueError, match=r"features \[B, T, D\] and paddings \[B, T\]"):
    features.moments(jnp.zeros((2, 5, 3)), jnp.zeros((2, 4)))


# ----------------------------------------------------------------------------
# Bad values: checked eagerly, loud under jit
# ----------------------------------------------------------------------------


def test_bad_values_are_refused_eagerly_and_loud_under_jit():
  x = np.zeros((2, 1000), np.float32)
  pads = np.zeros((2, 1000), np.float32)
  x[1, 500] = np.nan
  with pytest.raises(ValueError, match=r"audio has 1 non-finite valid sample\(s\), first nan at \[1, 500\]"):
    features.log_mel(x, pads)
  with pytest.raises(ValueError, match=r"non-finite"):
    features.log_mel(jnp.asarray(x), jnp.asarray(pads))  # device arrays too
  pads_ok = pads.copy()
  pads_ok[1, 500:] = 1.0  # the NaN is padding now: accepted, row 1 has 1 + (500 - 400) // 160 = 1 frame
  f, p = features.log_mel(x, pads_ok)
  assert np.isfinite(np.asarray(f)).all() and np.asarray(p).sum(axis=1).tolist() == [0.0, 4.0 - 1.0]
  half = pads.copy()
  half[0, 900:] = 0.5
  with pytest.raises(ValueError,
                     match=r"audio_paddings must be 0.0 \(valid\) or 1.0 \(padded\); got 0.5 at \[0, 900\]"):
    features.log_mel(np.zeros_like(x), half)
  holes = pads.copy()
  holes[1, 100:200] = 1.0
  with pytest.raises(ValueError, match=r"audio_paddings must be trailing .* row 1"):
    features.log_mel(np.zeros_like(x), holes)
  # under jit the values cannot be checked: a NaN valid sample gives NaN features (loud)
  jitted, _ = jax.jit(features.log_mel)(jnp.asarray(x), jnp.asarray(pads))
  assert np.isnan(np.asarray(jitted)[1]).any() and np.isfinite(np.asarray(jitted)[0]).all()


def test_all_padded_rows_give_no_valid_frames_and_zeros():
  x = np.random.default_rng(0).uniform(-1, 1, size=(3, 1200)).astype(np.float32)
  pads = np.ones((3, 1200), np.float32)
  pads[0] = 0.0
  f, p = features.log_mel(x, pads)
  assert np.asarray(p).tolist()[1:] == [[1.0] * 6] * 2 and not np.asarray(p)[0].any()
  assert not np.asarray(f)[1:].any()
  empty, empty_p = features.log_mel(np.zeros((0, 1200), np.float32), np.zeros((0, 1200), np.float32))
  assert empty.shape == (0, 6, 80) and empty_p.shape == (0, 6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_mels=0), r"num_mels must be an integer >= 1, got 0"),
    (dict(num_mels=256), r"num_mels=256 is too many for fft_size=512 .* cover no FFT bin"),
    (dict(sample_rate=0), r"sample_rate must be an integer >= 1"),
    (dict(mel_floor=float("nan")), r"mel_floor must be finite and > 0"),
    (dict(frame_step_ms=0.01), r"Frame length and step must be >= 1 sample"),
    (dict(upper_edge_hz=9000.0), r"upper_edge_hz <= sample_rate / 2"),
])
def test_bad_options_name_the_option(kwargs, match):
  with pytest.raises(ValueError, match=match):
    features.log_mel(np.zeros((1, 1000), np.float32), np.zeros((1, 1000), np.float32), **kwargs)


def test_bad_dtypes_are_refused():
  with pytest.raises(ValueError, match=r"audio must be a real numeric array, got dtype complex64"):
    features.log_mel(np.zeros((1, 1000), np.complex64), np.zeros((1, 1000), np.float32))
  with pytest.raises(ValueError, match=r"std finite and > 0"):
    features.global_normalize(jnp.zeros((1, 2, 3)), jnp.zeros((1, 2)), [0.0] * 3, [1.0, 0.0, 1.0])
