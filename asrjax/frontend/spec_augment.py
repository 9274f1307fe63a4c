r"""SpecAugment frequency and (adaptive) time masking, in JAX.

Each utterance gets its own masks, all drawn from the explicit PRNG key:

* ``num_freq_masks`` frequency masks: width ``f ~ U{0, ..., max_freq_mask}`` (capped
  at ``F``), start ``f0 ~ U{0, ..., F - f}``; channels ``[f0, f0 + f)`` are set to
  ``mask_value`` in every valid frame (a contiguous band across time).
* ``num_time_masks`` time masks, adaptive to the utterance's valid length ``L``
  (Park et al. 2020): width ``t ~ U{0, ..., floor(max_time_mask_ratio * L)}``, start
  ``t0 ~ U{0, ..., L - t}``; frames ``[t0, t0 + t)`` (all valid) are set to
  ``mask_value``. With ``time_mask_multiplicity_ratio = p_M`` only the first
  ``min(num_time_masks, floor(p_M * L))`` masks are applied (adaptive multiplicity).

Masks may overlap. Padded frames (``paddings == 1.0``) are returned unchanged, so
zero-padded features stay zero and no mask ever lands in padding. Time warping
(Park et al. 2019, sec. 2) is not implemented: the paper found it the most expensive
and least influential of the three augmentations, and it is commonly left out.

References:
  D. S. Park et al., "SpecAugment: A simple data augmentation method for automatic
  speech recognition", Interspeech 2019 (arXiv:1904.08779), sec. 2.
  D. S. Park et al., "SpecAugment on large scale datasets", ICASSP 2020
  (arXiv:1912.05533), sec. 2 (adaptive time masking).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _uniform_int(key: jax.Array, upper: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Integers uniform on ``{0, ..., upper}`` (``upper`` >= 0, broadcast to ``shape``), int32."""
  u = jax.random.uniform(key, shape, jnp.float32)
  upper = jnp.broadcast_to(upper, shape).astype(jnp.float32)
  # floor(u * (upper + 1)) <= upper as u < 1; the minimum guards float rounding.
  return jnp.minimum(jnp.floor(u * (upper + 1.0)), upper).astype(jnp.int32)


def _band_masks(starts: jax.Array, widths: jax.Array, size: int) -> jax.Array:
  """Union of bands ``[start, start + width)``: ``[B, M]`` x2 -> ``[B, size]`` bool."""
  pos = jnp.arange(size)[None, None, :]  # [1, 1, S]
  inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])  # [B, M, S]
  return jnp.any(inside, axis=1)


def freq_mask(key: jax.Array, batch: int, num_channels: int, *, num_masks: int, max_width: int) -> jax.Array:
  """Frequency-mask union per utterance, ``[B, F]`` bool (True = masked)."""
  width_key, start_key = jax.random.split(key)
  shape = (batch, num_masks)
  widths = _uniform_int(width_key, jnp.asarray(min(max_width, num_channels)), shape)
  starts = _uniform_int(start_key, num_channels - widths, shape)
  return _band_masks(starts, widths, num_channels)


def time_mask(
    key: jax.Array,
    lengths: jax.Array,
    num_frames: int,
    *,
    num_masks: int,
    max_ratio: float,
    multiplicity_ratio: float | None = None,
) -> jax.Array:
  """Adaptive time-mask union per utterance, ``[B, T]`` bool (True = masked).

  Args:
    key: PRNG key.
    lengths: ``[B]`` int32 valid frames per utterance.
    num_frames: ``T``.
    num_masks: Maximum number of masks per utterance.
    max_ratio: Mask widths are at most ``floor(max_ratio * length)``.
    multiplicity_ratio: If set, only ``min(num_masks, floor(ratio * length))`` masks.
  """
  width_key, start_key = jax.random.split(key)
  shape = (lengths.shape[0], num_masks)
  max_widths = jnp.floor(max_ratio * lengths.astype(jnp.float32)).astype(jnp.int32)  # [B]
  widths = _uniform_int(width_key, max_widths[:, None], shape)
  if multiplicity_ratio is not None:
    count = jnp.floor(multiplicity_ratio * lengths.astype(jnp.float32)).astype(jnp.int32)  # [B]
    widths = jnp.where(jnp.arange(num_masks)[None, :] < count[:, None], widths, 0)
  starts = _uniform_int(start_key, lengths[:, None] - widths, shape)
  return _band_masks(starts, widths, num_frames)


@functools.partial(
    jax.jit,
    static_argnames=(
        "num_freq_masks",
        "max_freq_mask",
        "num_time_masks",
        "max_time_mask_ratio",
        "time_mask_multiplicity_ratio",
        "mask_value",
    ),
)
def spec_augment(
    key: jax.Array,
    features: jax.Array,
    paddings: jax.Array,
    *,
    num_freq_masks: int = 2,
    max_freq_mask: int = 27,
    num_time_masks: int = 10,
    max_time_mask_ratio: float = 0.05,
    time_mask_multiplicity_ratio: float | None = None,
    mask_value: float = 0.0,
) -> jax.Array:
  """Applies per-utterance SpecAugment masks (see module docstring).

  Defaults are the LibriSpeech setting of the Conformer paper (Gulati et al. 2020):
  two frequency masks of width <= 27 and ten adaptive time masks of width <= 5% of
  the utterance.

  Args:
    key: PRNG key; the only source of randomness (same key -> same masks).
    features: ``[B, T, F]``, e.g. normalised log-mel features.
    paddings: ``[B, T]``; 1.0 marks a padded frame (trailing).
    num_freq_masks: Frequency masks per utterance.
    max_freq_mask: Maximum frequency-mask width ``F`` (inclusive).
    num_time_masks: Time masks per utterance (maximum, with a multiplicity ratio).
    max_time_mask_ratio: Maximum time-mask width as a fraction of the valid length.
    time_mask_multiplicity_ratio: Optional ``p_M`` of Park et al. 2020.
    mask_value: Value written into masked cells (0.0 = the mean of normalised features).

  Returns:
    ``[B, T, F]`` masked features, same dtype; padded frames unchanged.
  """
  if features.ndim != 3 or paddings.shape != features.shape[:2]:
    raise ValueError(f"Expected features [B, T, F] and paddings [B, T], got {features.shape} and {paddings.shape}.")
  if not jnp.issubdtype(features.dtype, jnp.floating):
    raise ValueError(f"features must be a float array, got dtype {features.dtype}.")
  for name, value in (("num_freq_masks", num_freq_masks), ("max_freq_mask", max_freq_mask),
                      ("num_time_masks", num_time_masks)):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      raise ValueError(f"{name} must be an integer >= 0, got {value!r}.")
  if not 0.0 <= max_time_mask_ratio <= 1.0:
    raise ValueError(f"max_time_mask_ratio must be in [0, 1], got {max_time_mask_ratio}.")
  if time_mask_multiplicity_ratio is not None and not 0.0 <= time_mask_multiplicity_ratio < float("inf"):
    raise ValueError(f"time_mask_multiplicity_ratio must be None or a finite value >= 0, "
                     f"got {time_mask_multiplicity_ratio}.")
  if not abs(mask_value) < float("inf"):
    raise ValueError(f"mask_value must be finite, got {mask_value}.")
  batch, num_frames, num_channels = features.shape
  freq_key, time_key = jax.random.split(key)
  valid = paddings.astype(jnp.float32) == 0.0  # [B, T]
  lengths = jnp.sum(valid, axis=1, dtype=jnp.int32)  # [B]
  masked_f = freq_mask(freq_key, batch, num_channels, num_masks=num_freq_masks, max_width=max_freq_mask)  # [B, F]
  masked_t = time_mask(
      time_key,
      lengths,
      num_frames,
      num_masks=num_time_masks,
      max_ratio=max_time_mask_ratio,
      multiplicity_ratio=time_mask_multiplicity_ratio,
  )  # [B, T]
  masked = (masked_f[:, None, :] | masked_t[:, :, None]) & valid[:, :, None]  # [B, T, F]
  return jnp.where(masked, jnp.asarray(mask_value, features.dtype), features)
