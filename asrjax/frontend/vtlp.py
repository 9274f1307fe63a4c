r"""Vocal tract length perturbation (VTLP) of log-mel features, in JAX.

Each utterance draws a warp factor ``alpha ~ U(1 - max_warp, 1 + max_warp)`` from the
explicit PRNG key and its spectrum is warped along frequency as if the speaker's
vocal tract were ``1 / alpha`` times as long (Jaitly and Hinton 2013, eq. 1): energy
at frequency ``f`` moves to

    f' = alpha f                                          if f <= F_hi min(alpha, 1) / alpha
    f' = f_max - (f_max - F_hi min(alpha, 1))
                 / (f_max - F_hi min(alpha, 1) / alpha) (f_max - f)   otherwise,

a piecewise-linear map that keeps 0 and ``f_max`` fixed. The warp is applied to the
log-mel filterbank output: each output channel, at its centre frequency ``f'``, takes
the log-mel value at the inverse-warped frequency ``f``, linearly interpolated
between the neighbouring mel channels (the channels are equally spaced on the HTK mel
scale, so the position of ``f`` is ``(mel(f) - mel_lo) / step - 1``). Interpolating
log energies instead of rebuilding the filterbank per utterance is the usual cheap
approximation. Padded frames are returned unchanged.

References:
  N. Jaitly and G. E. Hinton, "Vocal tract length perturbation (VTLP) improves speech
  recognition", ICML Workshop on Deep Learning for Audio, Speech and Language, 2013.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _hz_to_mel(hz):
  return 2595.0 * jnp.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel):
  return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def source_hz(target_hz: jax.Array, alpha: jax.Array, f_max: float, boundary_hz: float) -> jax.Array:
  """Inverse of the VTLP warp: the frequency whose energy lands at ``target_hz``.

  Args:
    target_hz: ``[..., F]`` output frequencies in Hz.
    alpha: warp factors broadcastable to ``[..., 1]``.
    f_max: the highest frequency (Nyquist or the filterbank's upper edge), fixed by the warp.
    boundary_hz: ``F_hi``; the warp is linear below ``F_hi min(alpha, 1)`` (output side).
  """
  knee_out = boundary_hz * jnp.minimum(alpha, 1.0)  # f' at the knee
  knee_in = knee_out / alpha  # f at the knee
  upper = f_max - (f_max - target_hz) * (f_max - knee_in) / (f_max - knee_out)
  return jnp.where(target_hz <= knee_out, target_hz / alpha, upper)


def warp(
    key: jax.Array,
    feats: jax.Array,
    paddings: jax.Array,
    *,
    max_warp: float = 0.1,
    sample_rate: int = 16000,
    lower_edge_hz: float = 0.0,
    upper_edge_hz: float | None = None,
    boundary_hz: float = 4800.0,
) -> jax.Array:
  """VTLP of HTK log-mel features ``[B, T, F]`` with one random warp per utterance.

  Args:
    key: PRNG key; utterance ``b`` uses ``alpha[b]`` drawn from it.
    feats: ``[B, T, F]`` log-mel features (`asrjax.frontend.features.log_mel` layout).
    paddings: ``[B, T]``, 1.0 at padded frames (left unchanged).
    max_warp: alpha is uniform on ``[1 - max_warp, 1 + max_warp]``.
    sample_rate, lower_edge_hz, upper_edge_hz: the filterbank the features came from.
    boundary_hz: ``F_hi`` of the piecewise-linear warp.

  Returns:
    ``[B, T, F]`` warped features.

  Raises:
    ValueError: for shapes other than ``[B, T, F]`` / ``[B, T]`` or options outside
      ``0 <= max_warp < 1``, ``0 <= lower_edge_hz < boundary_hz < upper_edge_hz <= sample_rate / 2``.
  """
  if feats.ndim != 3 or paddings.shape != feats.shape[:2]:
    raise ValueError(f"Expected feats [B, T, F] and paddings [B, T], got {feats.shape} and {paddings.shape}.")
  if not jnp.issubdtype(feats.dtype, jnp.floating):
    raise ValueError(f"feats must be a float array, got dtype {feats.dtype}.")
  if feats.shape[-1] < 2:
    raise ValueError(f"feats needs at least 2 mel channels to interpolate between, got F = {feats.shape[-1]}.")
  if not 0.0 <= max_warp < 1.0:
    raise ValueError(f"max_warp must be in [0, 1) (warp factors 1 +- max_warp stay positive), got {max_warp}.")
  if not sample_rate > 0:
    raise ValueError(f"sample_rate must be > 0, got {sample_rate}.")
  upper = sample_rate / 2.0 if upper_edge_hz is None else upper_edge_hz
  if not 0.0 <= lower_edge_hz < boundary_hz < upper <= sample_rate / 2.0:
    raise ValueError(
        f"Need 0 <= lower_edge_hz < boundary_hz < upper_edge_hz <= sample_rate / 2; got {lower_edge_hz}, "
        f"{boundary_hz}, {upper} at sample_rate {sample_rate}.")
  b = feats.shape[0]
  alpha = jax.random.uniform(key, (b, 1), jnp.float32, 1.0 - max_warp, 1.0 + max_warp)
  return warp_with(feats, paddings, alpha, lower_edge_hz=lower_edge_hz, upper_edge_hz=upper,
                   boundary_hz=boundary_hz)


def warp_with(feats, paddings, alpha, *, lower_edge_hz: float, upper_edge_hz: float, boundary_hz: float):
  """`warp` with given factors ``alpha [B, 1]``."""
  f = feats.shape[-1]
  mel_lo, mel_hi = _hz_to_mel(jnp.float32(lower_edge_hz)), _hz_to_mel(jnp.float32(upper_edge_hz))
  step = (mel_hi - mel_lo) / (f + 1)
  centres = _mel_to_hz(mel_lo + step * jnp.arange(1, f + 1, dtype=jnp.float32))  # [F]
  src = source_hz(centres[None, :], alpha, upper_edge_hz, boundary_hz)  # [B, F]
  pos = jnp.clip((_hz_to_mel(src) - mel_lo) / step - 1.0, 0.0, f - 1.0)
  lo = jnp.floor(pos).astype(jnp.int32)
  hi = jnp.minimum(lo + 1, f - 1)
  frac = (pos - lo)[:, None, :]  # [B, 1, F]
  take = lambda idx: jnp.take_along_axis(feats, jnp.broadcast_to(idx[:, None, :], feats.shape), axis=-1)
  warped = (1.0 - frac) * take(lo) + frac * take(hi)
  return jnp.where(paddings[..., None] > 0, feats, warped.astype(feats.dtype))
