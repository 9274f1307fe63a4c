"""Chunk-by-chunk `scipy.signal.resample_poly`: the samples it gives the whole signal, as the signal arrives.

``ResampleStream(from_rate, to_rate)`` keeps the input samples that outputs still to
come depend on. ``accept(x [n])`` returns every output sample whose filter support is
complete; ``flush()`` returns the rest, as ``resample_poly`` computes them with zeros
past the end (its default ``padtype='constant'``). The concatenation equals
``resample_poly(whole, up, down)`` (``up / down = to_rate / from_rate`` in lowest
terms) bit for bit, in float32 as in float64: the same Kaiser-window FIR filter is
designed, and each output is computed by `scipy.signal.upfirdn` on a stretch of input
that starts at a multiple of ``down`` samples and holds the output's whole support,
so every output is the same sum of the same products in the same order (tested on
random chunkings). Whole-file decoding (`asrjax.inference.recognizer.prepare`) and
streaming (`asrjax.inference.streaming.AudioStream`) therefore see the same 16 kHz
samples from audio at any rate.

A stream keeps at most ``~20 max(up, down) / up + down`` input samples (about 500 at
44.1 kHz -> 16 kHz). Its state is replaced, never changed in place, so a shallow
`copy.copy` is a snapshot.

References:
  P. P. Vaidyanathan, "Multirate Systems and Filter Banks", 1993, ch. 4 (polyphase
  interpolation and decimation); scipy.signal.resample_poly / upfirdn.
"""

from __future__ import annotations

import math

import numpy as np


class ResampleStream:
  """Streaming ``resample_poly(x, up, down)`` of one mono signal ``[N]`` (see the module docstring).

  Args:
    from_rate: input sample rate (Hz), a positive integer.
    to_rate: output sample rate (Hz), a positive integer.
    dtype: float32 or float64: the dtype of the input ``resample_poly`` would see (it
      designs its filter in that dtype).

  Raises:
    ValueError: a rate that is not a positive integer.
  """

  def __init__(self, from_rate: int, to_rate: int, dtype=np.float32):
    for name, rate in (("from_rate", from_rate), ("to_rate", to_rate)):
      if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ValueError(f"ResampleStream: {name} must be a positive integer (Hz); got {rate!r}.")
    g = math.gcd(int(from_rate), int(to_rate))
    self.up, self.down = int(to_rate) // g, int(from_rate) // g
    self._dtype = np.dtype(dtype)
    if self.up != self.down:
      from scipy import signal  # noqa: PLC0415 -- only needed off the output rate

      max_rate = max(self.up, self.down)
      half_len = 10 * max_rate
      h = np.asarray(signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)), self._dtype)
      h *= self.up
      pre_pad = self.down - half_len % self.down
      self._pre = (half_len + pre_pad) // self.down  # outputs resample_poly removes in front
      self._h = np.concatenate([np.zeros(pre_pad, self._dtype), h])  # [L]
      self._upfirdn = signal.upfirdn
    self.reset()

  def reset(self) -> None:
    """Starts a new signal."""
    self._buffer = np.zeros(0, self._dtype)  # input samples from index self._start on
    self._start = 0  # a multiple of `down`
    self._received = 0  # input samples so far
    self._emitted = 0  # output samples so far

  def accept(self, x) -> np.ndarray:
    """``x [n]`` (floating, already checked by the caller) -> the output samples completed ``[m]``."""
    x = np.asarray(x, self._dtype)
    if self.up == self.down:
      self._received += x.size
      return x.copy()
    self._buffer = np.concatenate([self._buffer, x])
    self._received += x.size
    ready = max(0, -(-self._received * self.up // self.down) - self._pre)  # outputs whose support is all here
    return self._emit(ready)

  def flush(self) -> np.ndarray:
    """The remaining output samples (zeros past the end, as ``resample_poly``); ``ceil(N up / down)`` in all."""
    total = -(-self._received * self.up // self.down)
    if self.up == self.down:
      return np.zeros(0, self._dtype)
    zeros = -(-(self._pre + 1) * self.down // self.up) + 1
    self._buffer = np.concatenate([self._buffer, np.zeros(zeros, self._dtype)])
    return self._emit(total)

  def _emit(self, end: int) -> np.ndarray:
    """Outputs ``[emitted, end)`` from the buffer; drops the input no later output needs."""
    if end <= self._emitted:
      return np.zeros(0, self._dtype)
    y = self._upfirdn(self._h, self._buffer, self.up, self.down)
    offset = self._pre - (self._start // self.down) * self.up  # global output n is y[n + offset]
    out = y[self._emitted + offset : end + offset]
    self._emitted = end
    first_needed = max(0, -(-((end + self._pre) * self.down - (self._h.size - 1)) // self.up))
    start = first_needed // self.down * self.down
    self._buffer = self._buffer[start - self._start :]
    self._start = start
    return out
