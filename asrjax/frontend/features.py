r"""Log-mel filterbank features and their normalisation (per utterance or global), in JAX.

Normalisation: `normalize` uses each utterance's own mean and variance -- it looks
at the whole utterance, so it cannot stream. `global_normalize` applies fixed
training-set statistics (`moments` accumulates them) and treats every frame on its
own: the streaming choice, as ESPnet's GlobalMVN.

``log_mel`` turns a padded batch of waveforms into log-mel filterbank energies:

1. padded samples are zeroed, then pre-emphasis ``y[n] = x[n] - a * x[n-1]`` is
   applied to the whole signal (``y[0] = x[0]``, i.e. ``x[-1] = 0``);
2. frames of ``frame_length`` samples start every ``frame_step`` samples, with no
   centering (Kaldi / lingvo convention): frame ``t`` covers samples
   ``[t * step, t * step + window)``. An utterance with ``n`` valid samples has
   ``1 + (n - window) // step`` valid frames (zero when ``n < window``); a frame that
   would reach past the last valid sample is a padded frame;
3. each frame is multiplied by a periodic window (Hann by default) placed at the
   start of an ``fft_size``-sample buffer, zero-padded on the right, and its power
   spectrum ``|rfft|^2`` is taken (``fft_size // 2 + 1`` bins);
4. the power spectrum is projected onto ``num_mels`` triangular filters whose
   corners are equally spaced on the **HTK mel scale** (``2595 log10(1 + f / 700)``)
   by default; the triangles are linear in Hz and, by default, not area-normalised
   (peak 1). This is exactly ``librosa.filters.mel(htk=True, norm=None)``; the Slaney
   scale and Slaney area normalisation are options (``mel_scale="slaney"``,
   ``mel_norm="slaney"``, librosa's defaults);
5. ``log(max(mel, mel_floor))``, so silence gives ``log(mel_floor)``, never -inf.

Paddings use the asrjax convention: ``paddings[b, i] == 1.0`` marks a padded
position (no data), ``0.0`` a valid one, and padding is trailing (each row is a
prefix of valid positions followed by padding). Padded output frames are zero.

There is no dither (the function is deterministic and takes no PRNG key) and no
DC-offset removal. The scale of the input is kept: waveforms in ``[-1, 1]`` and
int16-scaled waveforms (``[-32768, 32767]``) give features that differ by the
constant ``2 log(32768)`` (wherever the floor is not reached).

References:
  S. Young et al., "The HTK Book" (v3.4), sec. 5.4 (mel filterbank analysis).
  M. Slaney, "Auditory Toolbox", Interval Research Technical Report 1998-010
  (the Slaney mel scale and area normalisation).
  D. Povey et al., "The Kaldi speech recognition toolkit", ASRU 2011 (framing
  without centering, pre-emphasis, log-mel floor).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

_WINDOWS = ("hann", "hamming")
_MEL_SCALES = ("htk", "slaney")


# ----------------------------------------------------------------------------
# Static helpers (host-side NumPy, evaluated once per configuration)
# ----------------------------------------------------------------------------


def samples_per_frame(sample_rate: int, milliseconds: float) -> int:
  """Number of samples in ``milliseconds`` of audio, rounded to the nearest one."""
  return int(round(sample_rate * milliseconds / 1000.0))


def num_frames(num_samples: int, frame_length: int, frame_step: int) -> int:
  """Frames of ``frame_length`` every ``frame_step`` that fit in ``num_samples`` (no centering)."""
  if num_samples < frame_length:
    return 0
  return 1 + (num_samples - frame_length) // frame_step


def hz_to_mel(hz: np.ndarray, scale: str = "htk") -> np.ndarray:
  """Hertz to mel on the HTK (``2595 log10(1 + f/700)``) or Slaney scale (float64)."""
  hz = np.asarray(hz, np.float64)
  if scale == "htk":
    return 2595.0 * np.log10(1.0 + hz / 700.0)
  if scale == "slaney":
    # Linear (200/3 Hz per mel) up to 1 kHz = 15 mel, logarithmic above.
    log_step = math.log(6.4) / 27.0
    lin = hz / (200.0 / 3.0)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step
    return np.where(hz >= 1000.0, log, lin)
  raise ValueError(f"mel_scale must be one of {_MEL_SCALES}, got {scale!r}.")


def mel_to_hz(mel: np.ndarray, scale: str = "htk") -> np.ndarray:
  """Inverse of `hz_to_mel` (float64)."""
  mel = np.asarray(mel, np.float64)
  if scale == "htk":
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
  if scale == "slaney":
    log_step = math.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * (200.0 / 3.0))
  raise ValueError(f"mel_scale must be one of {_MEL_SCALES}, got {scale!r}.")


@functools.lru_cache(maxsize=32)
def mel_filterbank(
    *,
    sample_rate: int,
    fft_size: int,
    num_mels: int,
    lower_edge_hz: float = 0.0,
    upper_edge_hz: float | None = None,
    mel_scale: str = "htk",
    mel_norm: str | None = None,
) -> np.ndarray:
  """Triangular mel filters as a ``[fft_size // 2 + 1, num_mels]`` float32 matrix.

  Filter ``m`` rises linearly (in Hz) from corner ``m`` to corner ``m + 1`` and falls
  to corner ``m + 2``, where the ``num_mels + 2`` corners are equally spaced in mel
  between ``lower_edge_hz`` and ``upper_edge_hz`` (default: Nyquist). With
  ``mel_norm="slaney"`` each filter is scaled by ``2 / (corner[m+2] - corner[m])``
  (constant energy per filter).

  Returns:
    A read-only ``[K, M]`` float32 array, ``K = fft_size // 2 + 1`` FFT bins.
  """
  for arg, value, minimum in (("sample_rate", sample_rate, 1), ("fft_size", fft_size, 2), ("num_mels", num_mels, 1)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
      raise ValueError(f"{arg} must be an integer >= {minimum}, got {value!r}.")
  if upper_edge_hz is None:
    upper_edge_hz = sample_rate / 2.0
  if not 0.0 <= lower_edge_hz < upper_edge_hz <= sample_rate / 2.0:
    raise ValueError(
        f"Need 0 <= lower_edge_hz < upper_edge_hz <= sample_rate / 2, got {lower_edge_hz}, {upper_edge_hz}."
    )
  if mel_norm not in (None, "slaney"):
    raise ValueError(f"mel_norm must be None or 'slaney', got {mel_norm!r}.")
  bin_hz = np.linspace(0.0, sample_rate / 2.0, fft_size // 2 + 1)  # [K]
  corners_mel = np.linspace(hz_to_mel(lower_edge_hz, mel_scale), hz_to_mel(upper_edge_hz, mel_scale), num_mels + 2)
  corners = mel_to_hz(corners_mel, mel_scale)  # [M + 2]
  widths = np.diff(corners)  # [M + 1]
  offsets = corners[:, None] - bin_hz[None, :]  # [M + 2, K]
  rising = -offsets[:-2] / widths[:-1, None]
  falling = offsets[2:] / widths[1:, None]
  weights = np.maximum(0.0, np.minimum(rising, falling))  # [M, K]
  empty = np.nonzero(~np.any(weights > 0.0, axis=1))[0]
  if empty.size:
    raise ValueError(
        f"num_mels={num_mels} is too many for fft_size={fft_size} at {sample_rate} Hz between {lower_edge_hz} and "
        f"{upper_edge_hz} Hz: mel filters {empty[:8].tolist()}{'...' if empty.size > 8 else ''} cover no FFT bin "
        f"(their output would be constant); use fewer mels, a larger fft_size or a wider band.")
  if mel_norm == "slaney":
    weights *= (2.0 / (corners[2:] - corners[:-2]))[:, None]
  out = np.ascontiguousarray(weights.T, dtype=np.float32)
  out.flags.writeable = False
  return out


def periodic_window(name: str, length: int) -> np.ndarray:
  """Periodic (DFT-even) Hann or Hamming window of ``length`` samples, float32 ``[W]``."""
  phase = 2.0 * np.pi * np.arange(length) / length
  if name == "hann":
    w = 0.5 - 0.5 * np.cos(phase)
  elif name == "hamming":
    w = 0.54 - 0.46 * np.cos(phase)
  else:
    raise ValueError(f"window must be one of {_WINDOWS}, got {name!r}.")
  return w.astype(np.float32)


# ----------------------------------------------------------------------------
# Traced helpers
# ----------------------------------------------------------------------------


def valid_lengths(paddings: jax.Array) -> jax.Array:
  """Number of valid (``paddings == 0``) positions per row: ``[B, N] -> [B]`` int32."""
  return jnp.round(jnp.sum(1.0 - paddings.astype(jnp.float32), axis=-1)).astype(jnp.int32)


def preemphasize(audio: jax.Array, coefficient: float) -> jax.Array:
  """``y[n] = x[n] - coefficient * x[n - 1]`` along the last axis, with ``x[-1] = 0``."""
  if coefficient == 0.0:
    return audio
  previous = jnp.pad(audio[..., :-1], [(0, 0)] * (audio.ndim - 1) + [(1, 0)])
  return audio - coefficient * previous


def frame(signal: jax.Array, frame_length: int, frame_step: int) -> jax.Array:
  """Non-centred frames: ``[B, N] -> [B, T, frame_length]``, ``T = num_frames(N, ...)``."""
  t = num_frames(signal.shape[-1], frame_length, frame_step)
  index = np.arange(t)[:, None] * frame_step + np.arange(frame_length)[None, :]  # [T, W]
  return signal[:, index]


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------


def _is_traced(*xs) -> bool:
  return any(isinstance(x, jax.core.Tracer) for x in xs)


def _check_dtype(arg: str, x) -> None:
  dtype = np.dtype(x.dtype)
  if dtype.kind not in "iuf" + ("b" if arg.endswith("paddings") else ""):
    raise ValueError(f"{arg} must be a real numeric array, got dtype {dtype}.")


@functools.partial(jax.jit, static_argnames="xp")
def _value_problems(audio: jax.Array, paddings: jax.Array, xp=jnp) -> jax.Array:
  """``[3]`` int32 counts: non-finite valid samples, paddings not 0/1, valid-after-padded positions."""
  p = paddings.astype(xp.float32)
  valid = p == 0.0
  nonfinite = xp.sum(valid & ~xp.isfinite(audio.astype(xp.float32)))
  not_binary = xp.sum((p != 0.0) & (p != 1.0))
  not_trailing = xp.sum(valid[:, 1:] & ~valid[:, :-1])
  return xp.stack([nonfinite, not_binary, not_trailing]).astype(xp.int32)


def check_padded_inputs(audio, audio_paddings, *, arg: str = "audio") -> None:
  """Raises `ValueError` unless ``audio [B, N]`` is finite where valid and ``audio_paddings`` is 0/1 and trailing.

  `log_mel` runs this itself when called outside `jax.jit` on concrete arrays;
  under `jax.jit` it cannot (the values are not known when the function is traced),
  so call it on the host batch there. Without it, NaN or infinite valid samples give
  NaN features (loud in any loss), and fractional or non-trailing paddings are read
  as ``round(sum(1 - paddings))`` leading valid samples.
  """
  if isinstance(audio, np.ndarray) and isinstance(audio_paddings, np.ndarray):  # host batch: no device round trip
    counts = np.asarray(_value_problems.__wrapped__(audio, audio_paddings, xp=np))
  else:
    counts = np.asarray(_value_problems(audio, audio_paddings))
  if not counts.any():
    return
  x, p = np.asarray(audio, np.float32), np.asarray(audio_paddings, np.float32)
  if counts[0]:
    b, i = np.argwhere((p == 0.0) & ~np.isfinite(x))[0]
    raise ValueError(f"{arg} has {counts[0]} non-finite valid sample(s), first {x[b, i]} at [{b}, {i}]; "
                     f"audio must be finite where {arg}_paddings is 0.")
  if counts[1]:
    b, i = np.argwhere((p != 0.0) & (p != 1.0))[0]
    raise ValueError(f"{arg}_paddings must be 0.0 (valid) or 1.0 (padded); got {p[b, i]} at [{b}, {i}].")
  b = int(np.argwhere((p[:, 1:] == 0.0) & (p[:, :-1] != 0.0))[0, 0])
  raise ValueError(f"{arg}_paddings must be trailing (valid samples, then padding); row {b} has a valid sample "
                   f"after a padded one.")


def log_mel(
    audio: jax.Array,
    audio_paddings: jax.Array,
    *,
    sample_rate: int = 16000,
    num_mels: int = 80,
    frame_length_ms: float = 25.0,
    frame_step_ms: float = 10.0,
    fft_size: int | None = None,
    preemphasis: float = 0.97,
    window: str = "hann",
    mel_floor: float = 1e-5,
    lower_edge_hz: float = 0.0,
    upper_edge_hz: float | None = None,
    mel_scale: str = "htk",
    mel_norm: str | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Log-mel filterbank energies of a padded batch of waveforms (see module docstring).

  Args:
    audio: ``[B, N]`` waveforms (any real dtype, computed in float32), in ``[-1, 1]``
      or int16-scaled; finite wherever they are valid.
    audio_paddings: ``[B, N]``; 1.0 marks a padded sample (trailing), 0.0 a valid one.
      Padded samples never influence the output, whatever their values (NaN included).
      Called eagerly (outside `jax.jit`) the values are checked (`check_padded_inputs`):
      a non-finite valid sample, a padding that is not 0/1, or a valid sample after a
      padded one is a `ValueError`. Under `jax.jit` they cannot be; there a NaN valid
      sample gives NaN features, and paddings are read as ``round(sum(1 - paddings))``
      leading valid samples -- check the host batch with `check_padded_inputs`.
    sample_rate: Hz.
    num_mels: Number of mel filters ``D``.
    frame_length_ms: Window length; ``round(sample_rate * ms / 1000)`` samples (400).
    frame_step_ms: Hop between frame starts (160 samples at 16 kHz).
    fft_size: FFT length; ``None`` means the next power of two >= the window (512).
    preemphasis: Pre-emphasis coefficient ``a``; 0 disables it.
    window: ``"hann"`` or ``"hamming"`` (periodic, as ``scipy.signal.get_window``).
    mel_floor: Mel energies are clamped to at least this before the log.
    lower_edge_hz: Lowest filter corner.
    upper_edge_hz: Highest filter corner; ``None`` means ``sample_rate / 2``.
    mel_scale: ``"htk"`` (default) or ``"slaney"``.
    mel_norm: ``None`` (peak-1 triangles, default) or ``"slaney"`` (area-normalised).

  Returns:
    ``(features, feature_paddings)``: ``[B, T, D]`` float32 log-mel energies and
    ``[B, T]`` float32 paddings, ``T = 1 + (N - window) // step`` (0 when
    ``N < window``). Frame ``t`` of utterance ``b`` is valid (padding 0.0) iff
    ``t * step + window <= n_b``, ``n_b`` its number of valid samples; padded frames
    hold zeros.

  Raises:
    ValueError: for non-``[B, N]`` inputs, mismatched shapes, non-numeric dtypes, bad
      options, or (eagerly) invalid values as above.
  """
  if not hasattr(audio, "ndim"):
    audio = np.asarray(audio)
  if not hasattr(audio_paddings, "ndim"):
    audio_paddings = np.asarray(audio_paddings)
  if audio.ndim != 2 or audio_paddings.shape != audio.shape:
    raise ValueError(
        f"audio and audio_paddings must both be [B, N], got {audio.shape} and {audio_paddings.shape}."
    )
  _check_dtype("audio", audio)
  _check_dtype("audio_paddings", audio_paddings)
  options = dict(
      sample_rate=sample_rate, num_mels=num_mels, frame_length_ms=frame_length_ms, frame_step_ms=frame_step_ms,
      fft_size=fft_size, preemphasis=preemphasis, window=window, mel_floor=mel_floor, lower_edge_hz=lower_edge_hz,
      upper_edge_hz=upper_edge_hz, mel_scale=mel_scale, mel_norm=mel_norm)
  _log_mel_options(**options)  # option errors before any value is looked at
  if not _is_traced(audio, audio_paddings) and audio.size:
    check_padded_inputs(audio, audio_paddings)
  return _log_mel(audio, audio_paddings, **options)


def _log_mel_options(*, sample_rate, num_mels, frame_length_ms, frame_step_ms, fft_size, preemphasis, window,
                     mel_floor, lower_edge_hz, upper_edge_hz, mel_scale, mel_norm):
  """Checked static options: ``(frame_length, frame_step, fft_size, filters [K, D], taper [W])``."""
  if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1:
    raise ValueError(f"sample_rate must be an integer >= 1 (Hz), got {sample_rate!r}.")
  if not (math.isfinite(frame_length_ms) and math.isfinite(frame_step_ms)):
    raise ValueError(f"frame_length_ms and frame_step_ms must be finite, got {frame_length_ms}, {frame_step_ms}.")
  if not math.isfinite(preemphasis):
    raise ValueError(f"preemphasis must be finite, got {preemphasis}.")
  frame_length = samples_per_frame(sample_rate, frame_length_ms)
  frame_step = samples_per_frame(sample_rate, frame_step_ms)
  if frame_length < 1 or frame_step < 1:
    raise ValueError(f"Frame length and step must be >= 1 sample, got {frame_length} and {frame_step}.")
  if fft_size is None:
    fft_size = 1 << (frame_length - 1).bit_length()
  if fft_size < frame_length:
    raise ValueError(f"fft_size={fft_size} is shorter than the window ({frame_length} samples).")
  if not (mel_floor > 0.0 and math.isfinite(mel_floor)):
    raise ValueError(f"mel_floor must be finite and > 0, got {mel_floor}.")
  filters = mel_filterbank(
      sample_rate=sample_rate,
      fft_size=fft_size,
      num_mels=num_mels,
      lower_edge_hz=lower_edge_hz,
      upper_edge_hz=upper_edge_hz,
      mel_scale=mel_scale,
      mel_norm=mel_norm,
  )  # [K, D]
  taper = periodic_window(window, frame_length)  # [W]
  return frame_length, frame_step, fft_size, filters, taper


@functools.partial(
    jax.jit,
    static_argnames=(
        "sample_rate",
        "num_mels",
        "frame_length_ms",
        "frame_step_ms",
        "fft_size",
        "preemphasis",
        "window",
        "mel_floor",
        "lower_edge_hz",
        "upper_edge_hz",
        "mel_scale",
        "mel_norm",
    ),
)
def _log_mel(audio, audio_paddings, *, sample_rate, num_mels, frame_length_ms, frame_step_ms, fft_size, preemphasis,
             window, mel_floor, lower_edge_hz, upper_edge_hz, mel_scale, mel_norm):
  """`log_mel` after its checks (jitted; every option static)."""
  frame_length, frame_step, fft_size, filters, taper = _log_mel_options(
      sample_rate=sample_rate, num_mels=num_mels, frame_length_ms=frame_length_ms, frame_step_ms=frame_step_ms,
      fft_size=fft_size, preemphasis=preemphasis, window=window, mel_floor=mel_floor, lower_edge_hz=lower_edge_hz,
      upper_edge_hz=upper_edge_hz, mel_scale=mel_scale, mel_norm=mel_norm)
  audio_paddings = audio_paddings.astype(jnp.float32)
  signal = jnp.where(audio_paddings > 0.0, 0.0, audio.astype(jnp.float32))  # [B, N]; NaN-safe masking
  signal = preemphasize(signal, preemphasis)
  frames = frame(signal, frame_length, frame_step) * taper  # [B, T, W]
  spectrum = jnp.fft.rfft(frames, n=fft_size, axis=-1)  # [B, T, K]
  power = jnp.square(spectrum.real) + jnp.square(spectrum.imag)
  mel = jnp.einsum("btk,kd->btd", power, filters, precision=jax.lax.Precision.HIGHEST)
  features = jnp.log(jnp.maximum(mel, mel_floor))

  t = frames.shape[1]
  frame_end = jnp.arange(t) * frame_step + frame_length  # [T]
  feature_paddings = (frame_end[None, :] > valid_lengths(audio_paddings)[:, None]).astype(jnp.float32)
  features = jnp.where(feature_paddings[..., None] > 0.0, 0.0, features)
  return features, feature_paddings


@functools.partial(jax.jit, static_argnames=("epsilon", "scale_variance"))
def normalize(
    features: jax.Array,
    paddings: jax.Array,
    *,
    epsilon: float = 1e-5,
    scale_variance: bool = True,
) -> jax.Array:
  """Per-utterance mean (and variance) normalisation over valid frames.

  For each utterance and feature dimension, subtracts the mean over its valid frames
  and (if ``scale_variance``) divides by ``sqrt(var + epsilon)``, ``var`` the biased
  variance over the same frames. Padded frames neither contribute to the statistics
  nor keep their values: they are zero on output. An utterance without valid frames
  comes out all zero (no NaN).

  Args:
    features: ``[B, T, D]``.
    paddings: ``[B, T]``; 1.0 marks a padded frame.
    epsilon: Variance floor added before the square root.
    scale_variance: Whether to divide by the standard deviation (CMVN) or only
      subtract the mean (CMN).

  Returns:
    ``[B, T, D]`` float32 normalised features.
  """
  if features.ndim != 3 or paddings.shape != features.shape[:2]:
    raise ValueError(f"Expected features [B, T, D] and paddings [B, T], got {features.shape} and {paddings.shape}.")
  mask = (1.0 - paddings.astype(jnp.float32))[..., None]  # [B, T, 1]
  x = jnp.where(mask > 0.0, features.astype(jnp.float32), 0.0)  # NaN-safe: padded values never read
  count = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)  # [B, 1, 1]
  mean = jnp.sum(x, axis=1, keepdims=True) / count  # [B, 1, D]
  centred = (x - mean) * mask
  if not scale_variance:
    return centred
  variance = jnp.sum(jnp.square(centred), axis=1, keepdims=True) / count
  return centred * jax.lax.rsqrt(variance + epsilon)


def moments(features: jax.Array, paddings: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Sufficient statistics of the valid frames, to accumulate over batches.

  Args:
    features: ``[B, T, D]``; paddings ``[B, T]``.

  Returns:
    ``(count [], sum [D], sum of squares [D])`` over valid frames.
  """
  if features.ndim != 3 or paddings.shape != features.shape[:2]:
    raise ValueError(f"Expected features [B, T, D] and paddings [B, T], got {features.shape} and {paddings.shape}.")
  mask = (1.0 - paddings.astype(jnp.float32))[..., None]
  x = jnp.where(mask > 0.0, features.astype(jnp.float32), 0.0)
  return jnp.sum(mask), jnp.sum(x, axis=(0, 1)), jnp.sum(jnp.square(x), axis=(0, 1))


def global_normalize(features: jax.Array, paddings: jax.Array, mean, std) -> jax.Array:
  """``(x - mean) / std`` frame by frame with fixed ``mean``/``std [D]``; padded frames are zero.

  Causal by construction: a frame's output depends on that frame only. ``features``
  ``[B, T, D]``, ``paddings`` ``[B, T]``. Concrete ``mean``/``std`` are checked (finite,
  ``std > 0``: a `ValueError` otherwise); traced ones cannot be.
  """
  if features.ndim != 3 or paddings.shape != features.shape[:2]:
    raise ValueError(f"Expected features [B, T, D] and paddings [B, T], got {features.shape} and {paddings.shape}.")
  if not _is_traced(mean, std):
    m, sd = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(sd)) and np.all(sd > 0.0)):
      raise ValueError(f"global_normalize: mean must be finite and std finite and > 0; got mean {m.tolist()[:8]}..., "
                       f"std {sd.tolist()[:8]}... (a constant feature has std 0: floor it, e.g. max(std, 1e-5)).")
  mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
  if mean.shape != features.shape[-1:] or std.shape != mean.shape:
    raise ValueError(f"mean/std of shape {mean.shape}/{std.shape} do not match {features.shape[-1]} features.")
  y = (features.astype(jnp.float32) - mean) / std
  return jnp.where(paddings[..., None] > 0, 0.0, y)
