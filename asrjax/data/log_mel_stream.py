"""Chunk-by-chunk log-mel for streaming: audio arrives in pieces, frames leave as soon as they are complete.

``LogMelStream(batch, **log_mel_options)`` keeps, per stream, the raw samples not yet
covered by a complete frame and the raw sample just before them; the jitted front end
pre-emphasises ``[previous, pending...]`` with `features.preemphasize` and drops the
first output, so pre-emphasis carries across chunk boundaries. ``accept(audio [B, n])`` returns the new frames
``[B, T_new, D]``; the concatenation over chunks equals `asrjax.data.features.log_mel`
of the whole signal (same framing, same pre-emphasis with ``x[-1] = 0``; equal to
~1 ulp, since the mel projection is a GEMM whose kernel XLA:CPU picks by row count).
All streams receive the same number of samples per call; the frames of an
incomplete last window are dropped, as `log_mel` drops them.

The jitted log-mel sees buffers zero-padded to a power of two of samples (frames that
reach into the padding are discarded), so a stream compiles it a few times, not once
per chunk length.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.data import features


class LogMelStream:
  """Streaming `features.log_mel` for ``batch`` parallel streams.

  Args:
    batch: number of streams.
    mean, std: optional ``[D]`` training-set statistics; when given, frames leave
      normalised by `features.global_normalize` (the streamable normalisation).
    **log_mel_options: `features.log_mel` keyword options (sample rate, frame sizes,
      pre-emphasis, mel options).
  """

  def __init__(self, batch: int, mean=None, std=None, **log_mel_options):
    self._batch = batch
    sample_rate = log_mel_options.get("sample_rate", 16000)
    self._window = features.samples_per_frame(sample_rate, log_mel_options.get("frame_length_ms", 25.0))
    self._step = features.samples_per_frame(sample_rate, log_mel_options.get("frame_step_ms", 10.0))
    self._preemphasis = log_mel_options.get("preemphasis", 0.97)
    self._num_mels = log_mel_options.get("num_mels", 80)
    options = {**log_mel_options, "preemphasis": 0.0}  # applied below, across chunk boundaries

    def front_end(x):  # x [B, 1 + n]: the raw sample before the pending ones, then those
      y = features.preemphasize(x, self._preemphasis)[:, 1:]
      feats, pads = features.log_mel(y, jnp.zeros_like(y), **options)
      return feats if mean is None else features.global_normalize(feats, pads, mean, std)

    self._log_mel = jax.jit(front_end)
    self.reset()

  def reset(self) -> None:
    """Starts new streams."""
    self._prev = np.zeros((self._batch, 1), np.float32)  # x[-1] = 0, as `features.preemphasize`
    self._pending = np.zeros((self._batch, 0), np.float32)

  def accept(self, audio) -> np.ndarray:
    """``audio [B, n]`` (float, the scale `log_mel` expects) -> new frames ``[B, T_new, D]``."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 2 or audio.shape[0] != self._batch:
      raise ValueError(f"expected audio [{self._batch}, n]; got {audio.shape}.")
    if audio.shape[1]:
      self._pending = np.concatenate([self._pending, audio], axis=1)
    n = self._pending.shape[1]
    frames = 0 if n < self._window else 1 + (n - self._window) // self._step
    if frames == 0:
      return np.zeros((self._batch, 0, self._num_mels), np.float32)
    used = (frames - 1) * self._step + self._window
    size = 1 << used.bit_length()  # > used: room for the previous sample in front
    buffer = np.zeros((self._batch, size), np.float32)
    buffer[:, :1] = self._prev
    buffer[:, 1 : used + 1] = self._pending[:, :used]
    out = np.asarray(self._log_mel(buffer))[:, :frames]
    consumed = frames * self._step
    self._prev = self._pending[:, consumed - 1 : consumed]
    self._pending = self._pending[:, consumed:]
    return out
