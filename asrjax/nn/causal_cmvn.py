"""Causal per-utterance mean/variance normalisation (streaming CMVN).

Utterance-level CMVN reads the whole utterance, so it cannot stream. Here frame ``t``
is normalised with the mean and variance of the valid frames ``0..t`` of its own
utterance, pooled with a prior of ``prior_frames`` pseudo-frames of mean 0 and
variance 1 (the features are already globally normalised, so the prior is the
training-set statistics) so that the first frames are not normalised by one or two
samples::

    mean_t = (sum_{s<=t} x_s) / (prior_frames + n_t)
    var_t  = (prior_frames + sum_{s<=t} x_s^2) / (prior_frames + n_t) - mean_t^2
    y_t    = (x_t - mean_t) / sqrt(var_t)

The running sums are `asrjax.nn.causal_se.running_mean`'s carried state, started at
the prior; a frame-by-frame scan, so chunked processing is bit-identical to
whole-utterance processing. Padded frames give zero.

References:
  Viikki and Laurila, "Cepstral domain segmental feature vector normalization for
  noise robust speech recognition", Speech Communication 1998 (CMVN).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from asrjax.nn import causal_se


def init_state(batch: int, dim: int, prior_frames: float, dtype=jnp.float32) -> dict:
  """The prior as running sums: ``total [B, 2D]`` (sums of x, then x^2) and ``count [B]``."""
  total = jnp.concatenate([jnp.zeros((batch, dim), dtype), jnp.full((batch, dim), prior_frames, dtype)], axis=-1)
  return {"total": total, "count": jnp.full((batch,), prior_frames, dtype)}


def causal_cmvn(x: jax.Array, paddings: jax.Array, state: dict, eps: float = 1e-5) -> tuple[jax.Array, dict]:
  """``x [B, T, D]``, ``paddings [B, T]`` -> ``(normalised [B, T, D], state)``."""
  moments, total, count = causal_se.running_mean(
      jnp.concatenate([x, x * x], axis=-1), paddings, state["total"], state["count"])
  mean, square = jnp.split(moments, 2, axis=-1)
  y = (x - mean) * jax.lax.rsqrt(jnp.maximum(square - mean * mean, eps))
  return jnp.where(paddings[..., None] > 0, 0.0, y), {"total": total, "count": count}
