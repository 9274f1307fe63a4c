"""Streaming log-mel: chunk by chunk equals `log_mel` of the whole signal, for random chunk sizes."""

import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.frontend import features, log_mel_stream


@pytest.mark.parametrize("seed", [0, 1])
def test_random_chunks_give_the_whole_signal_frames(seed):
  rng = np.random.default_rng(seed)
  audio = rng.normal(0, 0.1, size=(2, 7_000)).astype(np.float32)
  whole, _ = features.log_mel(jnp.asarray(audio), jnp.zeros_like(jnp.asarray(audio)))
  stream = log_mel_stream.LogMelStream(2)
  outs, start = [], 0
  while start < audio.shape[1]:
    size = int(rng.integers(0, 900))  # includes empty chunks and chunks shorter than a frame
    outs.append(stream.accept(audio[:, start : start + size]))
    start += size
  streamed = np.concatenate(outs, axis=1)
  assert streamed.shape == whole.shape == (2, 1 + (7_000 - 400) // 160, 80)
  np.testing.assert_allclose(streamed, np.asarray(whole), rtol=1e-5, atol=1e-4)


def test_preemphasis_crosses_the_chunk_boundary_and_reset_forgets_it():
  # the second chunk starts inside the ones: without the carried sample its first
  # pre-emphasised sample would be 1 instead of 1 - 0.97
  audio = np.concatenate([np.zeros((1, 400)), np.ones((1, 400))], axis=1).astype(np.float32)
  whole, _ = features.log_mel(jnp.asarray(audio), jnp.zeros((1, 800)))
  stream = log_mel_stream.LogMelStream(1)
  first = stream.accept(audio[:, :560])
  second = stream.accept(audio[:, 560:])
  np.testing.assert_allclose(np.concatenate([first, second], axis=1), np.asarray(whole), rtol=1e-5, atol=1e-4)
  # after 720 samples three frames are complete and 480 samples consumed: the next
  # frame's first sample follows a 1 (sample 479), which the stream must remember
  # (a Hamming window, since a Hann window gives a frame's first sample weight 0)
  audio2 = np.concatenate([np.zeros((1, 400)), np.ones((1, 800))], axis=1).astype(np.float32)
  whole2, _ = features.log_mel(jnp.asarray(audio2), jnp.zeros((1, 1_200)), window="hamming")
  stream2 = log_mel_stream.LogMelStream(1, window="hamming")
  parts = [stream2.accept(audio2[:, :720]), stream2.accept(audio2[:, 720:])]
  assert parts[0].shape[1] == 3
  np.testing.assert_allclose(np.concatenate(parts, axis=1), np.asarray(whole2), rtol=1e-5, atol=1e-4)
  stream.reset()
  restarted = stream.accept(audio[:, 400:])  # now x[-1] = 0 again: a different first frame
  alone, _ = features.log_mel(jnp.asarray(audio[:, 400:]), jnp.zeros((1, 400)))
  np.testing.assert_allclose(restarted, np.asarray(alone), rtol=1e-5, atol=1e-4)
  with pytest.raises(ValueError, match="expected audio"):
    stream.accept(np.zeros((2, 10), np.float32))


def test_global_statistics_are_applied_frame_by_frame():
  rng = np.random.default_rng(3)
  audio = rng.normal(0, 0.1, size=(1, 3_000)).astype(np.float32)
  mean, std = tuple(rng.normal(size=80).tolist()), tuple(rng.uniform(0.5, 2.0, size=80).tolist())
  whole, _ = features.log_mel(jnp.asarray(audio), jnp.zeros((1, 3_000)))
  stream = log_mel_stream.LogMelStream(1, mean=mean, std=std)
  streamed = np.concatenate([stream.accept(audio[:, :1_234]), stream.accept(audio[:, 1_234:])], axis=1)
  np.testing.assert_allclose(streamed, (np.asarray(whole) - np.asarray(mean)) / np.asarray(std), rtol=1e-4, atol=1e-4)


def test_int16_chunks_are_pcm_and_equal_the_float_scale():
  rng = np.random.default_rng(5)
  pcm = rng.integers(-20_000, 20_000, size=(1, 2_000)).astype(np.int16)
  as_float = log_mel_stream.LogMelStream(1).accept(pcm.astype(np.float32) / 32768.0)
  as_int = log_mel_stream.LogMelStream(1).accept(pcm)
  np.testing.assert_array_equal(as_int, as_float)  # same float32 samples in, same frames out
  whole, _ = features.log_mel(jnp.asarray(pcm, jnp.float32) / 32768.0, jnp.zeros((1, 2_000)))
  np.testing.assert_allclose(as_int, np.asarray(whole), rtol=1e-5, atol=1e-4)


def test_bad_chunks_are_refused_and_leave_the_stream_unchanged():
  rng = np.random.default_rng(6)
  audio = rng.normal(0, 0.1, size=(1, 3_000)).astype(np.float32)
  whole, _ = features.log_mel(jnp.asarray(audio), jnp.zeros((1, 3_000)))
  stream = log_mel_stream.LogMelStream(1)
  parts = [stream.accept(audio[:, :1_000])]
  bad = audio[:, 1_000:1_500].copy()
  bad[0, 7] = np.nan
  with pytest.raises(ValueError, match=r"audio chunk: audio has a non-finite sample \(nan\) at index 7"):
    stream.accept(bad)
  with pytest.raises(ValueError, match=r"float audio must be in \[-1, 1\].*peak \|x\| = 3000"):
    stream.accept(np.full((1, 10), 3000.0, np.float32))
  with pytest.raises(ValueError, match=r"dtype complex64"):
    stream.accept(np.zeros((1, 10), np.complex64))
  with pytest.raises(ValueError, match=r"expected audio \[1, n\] \(streams, samples\); got shape \(10,\)"):
    stream.accept(np.zeros(10, np.float32))
  parts.append(stream.accept(audio[:, 1_000:]))  # as if the bad chunks had never been sent
  np.testing.assert_allclose(np.concatenate(parts, axis=1), np.asarray(whole), rtol=1e-5, atol=1e-4)
  assert stream.accept(np.zeros((1, 0), np.float32)).shape == (1, 0, 80)


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch=0), r"batch must be an integer >= 1"),
    (dict(batch=1, num_mel=40), r"unknown log_mel option\(s\) \['num_mel'\]"),
    (dict(batch=1, window="povey"), r"window must be one of"),
    (dict(batch=1, mean=[0.0] * 80), r"give both mean and std"),
    (dict(batch=1, mean=[0.0] * 40, std=[1.0] * 40), r"mean and std must be \[80\] \(num_mels\)"),
    (dict(batch=1, mean=[0.0] * 80, std=[0.0] * 80), r"std finite and > 0"),
])
def test_bad_stream_options_are_refused_at_construction(kwargs, match):
  with pytest.raises(ValueError, match=match):
    log_mel_stream.LogMelStream(**kwargs)
