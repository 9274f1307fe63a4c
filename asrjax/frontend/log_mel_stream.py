"""Chunk-by-chunk log-mel for streaming: audio arrives in pieces, frames leave as soon as they are complete.

``LogMelStream(batch, **log_mel_options)`` keeps, per stream, the raw samples not yet
covered by a complete frame and the raw sample just before them; the jitted front end
pre-emphasises ``[previous, pending...]`` with `features.preemphasize` and drops the
first output, so pre-emphasis carries across chunk boundaries. ``accept(audio [B, n])`` returns the new frames
``[B, T_new, D]``; the concatenation over chunks equals `asrjax.frontend.features.log_mel`
of the whole signal (same framing, same pre-emphasis with ``x[-1] = 0``; equal to
~1 ulp, since the mel projection is a GEMM whose kernel XLA:CPU picks by row count).
All streams receive the same number of samples per call; the frames of an
incomplete last window are dropped, as `log_mel` drops them.

Input (`accept`): ``[B, n]`` chunks, ``n >= 0`` (an empty chunk returns no frames),
by `asrjax.data.audio.to_unit_float`'s contract -- the scale of the training pipeline,
whose train step feeds ``int16 / 32768`` to `log_mel`: int16 (or int32/int64 in the
int16 range) chunks are divided by 32768, float chunks must be in ``[-1, 1]``. A chunk
with NaN or infinity, out-of-range values or a non-numeric dtype is a `ValueError`
raised before any state changes, so the stream goes on as if it had not been sent.

The jitted log-mel sees buffers zero-padded to a power of two of samples (frames that
reach into the padding are discarded), so a stream compiles it a few times, not once
per chunk length.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.data import audio as audio_lib
from asrjax.frontend import features

_OPTIONS = {name: p.default for name, p in inspect.signature(features.log_mel).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


class LogMelStream:
  """Streaming `features.log_mel` for ``batch`` parallel streams.

  Args:
    batch: number of streams, >= 1.
    mean, std: optional ``[D]`` training-set statistics (both or neither; finite,
      ``std > 0``); when given, frames leave normalised by `features.global_normalize`
      (the streamable normalisation).
    **log_mel_options: `features.log_mel` keyword options (sample rate, frame sizes,
      pre-emphasis, mel options); unknown names and bad values are a `ValueError` here.
  """

  def __init__(self, batch: int, mean=None, std=None, **log_mel_options):
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
      raise ValueError(f"LogMelStream: batch must be an integer >= 1 (number of streams); got {batch!r}.")
    unknown = sorted(set(log_mel_options) - set(_OPTIONS))
    if unknown:
      raise ValueError(f"LogMelStream: unknown log_mel option(s) {unknown}; valid: {sorted(_OPTIONS)}.")
    if (mean is None) != (std is None):
      raise ValueError("LogMelStream: give both mean and std (global statistics) or neither.")
    features._log_mel_options(**{**_OPTIONS, **log_mel_options})  # bad option values fail here, not at accept()
    if mean is not None:
      d = log_mel_options.get("num_mels", _OPTIONS["num_mels"])
      m, sd = np.asarray(mean, np.float64), np.asarray(std, np.float64)
      if m.shape != (d,) or sd.shape != (d,):
        raise ValueError(f"LogMelStream: mean and std must be [{d}] (num_mels); got {m.shape} and {sd.shape}.")
      if not (np.all(np.isfinite(m)) and np.all(np.isfinite(sd)) and np.all(sd > 0)):
        raise ValueError("LogMelStream: mean must be finite and std finite and > 0.")
    self._batch = int(batch)
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
    """``audio [B, n]`` (int16 PCM or float in ``[-1, 1]``, see the module docstring) -> new frames ``[B, T_new, D]``.

    Raises:
      ValueError: for a chunk of another shape, dtype or range, or with NaN/inf; the
        stream's state is unchanged.
    """
    shape = np.shape(audio)
    if len(shape) != 2 or shape[0] != self._batch:
      raise ValueError(f"accept: expected audio [{self._batch}, n] (streams, samples); got shape {shape}.")
    audio = audio_lib.to_unit_float(audio, name="accept: audio chunk")
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
