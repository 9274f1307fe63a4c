r"""The audio contract of the input pipeline: which waveforms are accepted, and how they become int16.

Every utterance that enters `asrjax.data.pipeline` or `asrjax.data.catalog` goes
through `to_int16`; the streaming front end (`asrjax.frontend.log_mel_stream`) goes through
`to_unit_float`. The rules, for one utterance ``audio`` (``[N]``, mono, 16 kHz):

* **int16** is taken as it is (16-bit PCM sample values).
* **int32 / int64** (e.g. LibriSpeech's ``speech`` feature) are read as 16-bit PCM
  values too, and must lie in ``[-32768, 32767]``; anything outside is a `ValueError`,
  never wrapped around (``np.int16(40_000) == -25_536``).
* **float16 / float32 / float64** must be in ``[-1, 1]``, the convention of
  soundfile, torchaudio and librosa, and are scaled by ``32768`` and rounded:
  ``int16 = clip(round(32768 x), -32768, 32767)``. This is the exact inverse of the
  ``x = int16 / 32768`` the train step (`asrjax.train.step`) and those libraries use
  when reading 16-bit PCM, so float audio that came from int16 gives back the same
  samples (``x = 1.0`` gives 32767, one step short of ``32768``). Values beyond
  ``1 + FLOAT_TOLERANCE`` in magnitude are a `ValueError` (typically int16-scaled
  floats such as ``np.float32(int16_audio)``, or unnormalised mixes), as is NaN or
  infinity anywhere; values within the tolerance are clipped, which only absorbs
  codec/resampling rounding (``FLOAT_TOLERANCE = 1e-3``, about 33 int16 steps).
* Everything else is refused: unsigned or 8-bit integers (8-bit WAV is unsigned
  offset-binary; a cast would add a DC offset or give near-silence), booleans,
  complex values and non-numeric data.
* **Empty audio** (``N = 0``) is valid here; the batcher drops and counts such
  examples (`pipeline.usable`), and `pipeline.pad_batch` gives them an all-padded row.
* **Multi-channel audio** (any array that is not 1-D, including ``[N, 1]``) is a
  `ValueError`: mix down or pick a channel before, e.g. ``audio.mean(axis=-1)``.

Sample rate: the front end (`asrjax.frontend.features.log_mel`) assumes ``SAMPLE_RATE``
(16 kHz) and audio arrays carry no rate, so the rate is checked where it is known --
the dataset's description (`sources.open_split`, `catalog.Standardized`) -- and a
mismatch is refused with both rates named (`check_sample_rate`), not resampled:
resampling belongs to whoever brings the foreign audio (e.g.
``scipy.signal.resample_poly(x, 2, 1)`` for 8 kHz).
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
FLOAT_TOLERANCE = 1e-3
INT16_SCALE = 32768.0
_INT16_MIN, _INT16_MAX = -32768, 32767


def _as_array(audio, name: str) -> np.ndarray:
  try:
    array = np.asarray(audio)
  except (ValueError, TypeError) as e:  # ragged lists
    raise ValueError(
        f"{name}: audio must be a 1-D numeric array of samples [N]; got {type(audio).__name__}: {e}") from None
  if array.dtype.kind not in "iuf" or array.dtype == np.bool_:
    raise ValueError(
        f"{name}: audio must be int16, int32/int64 (16-bit PCM values) or float in [-1, 1]; got dtype {array.dtype}.")
  if array.ndim != 1:
    raise ValueError(
        f"{name}: audio must be mono [N] samples; got shape {array.shape}. Mix down or pick a channel "
        f"first (e.g. audio.mean(axis=-1) for [N, channels]).")
  if array.dtype.kind == "u" or array.dtype.itemsize < 2:
    raise ValueError(
        f"{name}: audio of dtype {array.dtype} is ambiguous (8-bit WAV is unsigned offset-binary); convert it to "
        f"int16 or to float in [-1, 1] first.")
  return array


def _check_float(array: np.ndarray, name: str) -> None:
  finite = np.isfinite(array)
  if not finite.all():
    i = int(np.argmin(finite))
    raise ValueError(f"{name}: audio has a non-finite sample ({array[i]}) at index {i}; audio must be finite.")
  peak = float(np.max(np.abs(array))) if array.size else 0.0
  if peak > 1.0 + FLOAT_TOLERANCE:
    raise ValueError(
        f"{name}: float audio must be in [-1, 1] (scaled by 32768 to int16); got a peak |x| = {peak:g}. "
        f"If these are int16-scaled values, cast to int16 first; if the signal clips, normalise or "
        f"np.clip(audio, -1, 1) it yourself.")


def to_int16(audio, *, name: str = "audio") -> np.ndarray:
  """One utterance as ``[N]`` int16 16-bit PCM samples, by the rules of the module docstring.

  Args:
    audio: ``[N]`` int16, int32/int64 (values in the int16 range) or float (in ``[-1, 1]``).
    name: what to call the utterance in error messages (e.g. ``"example 3 (id 'u3')"``).

  Returns:
    ``[N]`` int16 (``audio`` itself when it already is int16).

  Raises:
    ValueError: naming ``name``, for any audio the rules refuse.
  """
  array = _as_array(audio, name)
  if array.dtype == np.int16:
    return array
  if array.dtype.kind == "i":
    if array.size and (array.min() < _INT16_MIN or array.max() > _INT16_MAX):
      raise ValueError(
          f"{name}: integer audio is read as 16-bit PCM and must be within the int16 range "
          f"[{_INT16_MIN}, {_INT16_MAX}]; got values in [{array.min()}, {array.max()}] (dtype {array.dtype}). "
          f"Rescale it first (e.g. 24-bit PCM: x >> 8).")
    return array.astype(np.int16)
  _check_float(array, name)
  scaled = np.round(array.astype(np.float64) * INT16_SCALE)
  return np.clip(scaled, _INT16_MIN, _INT16_MAX).astype(np.int16)


def to_unit_float(audio, *, name: str = "audio") -> np.ndarray:
  """Audio chunk(s) ``[..., n]`` as float32 in ``[-1, 1]``: int16/int32/int64 PCM divided by 32768, float checked.

  Same rules as `to_int16` except that any rank is allowed (the streaming front end
  takes ``[B, n]``) and float input keeps its full precision (clipped only within
  the tolerance).
  """
  try:
    array = np.asarray(audio)
  except (ValueError, TypeError) as e:
    raise ValueError(f"{name}: audio must be a numeric array; got {type(audio).__name__}: {e}") from None
  flat = _as_array(array.reshape(-1), name)  # dtype rules; the rank is the caller's
  if flat.dtype.kind == "i":
    int16 = to_int16(flat, name=name)
    return (int16.astype(np.float32) / np.float32(INT16_SCALE)).reshape(array.shape)
  _check_float(flat, name)
  return np.clip(flat.astype(np.float32), -1.0, 1.0).reshape(array.shape)


def check_sample_rate(found: int | None, *, expected: int = SAMPLE_RATE, name: str = "audio") -> None:
  """Raises `ValueError` naming both rates unless ``found`` is ``expected`` Hz (``None``: unknown, not checked)."""
  if found is None:
    return
  if isinstance(found, bool) or not isinstance(found, (int, np.integer, float)) or found != int(found) or found <= 0:
    raise ValueError(f"{name}: sample_rate must be a positive integer (Hz); got {found!r}.")
  if int(found) != int(expected):
    raise ValueError(
        f"{name}: audio is sampled at {int(found)} Hz but {int(expected)} Hz is expected (the front end's "
        f"sample_rate). Resample the data to {int(expected)} Hz first (e.g. scipy.signal.resample_poly), or "
        f"ask for sample_rate={int(found)} and configure the features for it.")
