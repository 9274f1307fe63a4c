"""Squeeze-and-excitation over the utterance *so far* (ConvRNN-T's global context).

Standard SE (Hu et al., 2018) gates channels with a summary of the whole input --
a look at the future that a streaming model cannot take. ConvRNN-T's global CNN
(Radfar et al., 2022) instead summarises frames ``0..t`` with a running mean:
``s[t] = (1 / n_t) sum_{tau <= t, valid} x[tau]``, ``y[t] = x[t] * sigmoid(W2 relu(W1 s[t]))``.
The running sum and count are the streaming state. The sum is accumulated by a
sequential scan in both whole-utterance and chunked mode, so the two agree bit for
bit (a parallel cumsum would round differently).

References:
  Radfar et al., "ConvRNN-T: Convolutional augmented recurrent neural network
  transducers for streaming speech recognition", Interspeech 2022.
  Hu et al., "Squeeze-and-excitation networks", CVPR 2018.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def running_mean(x: jax.Array, paddings: jax.Array, total: jax.Array, count: jax.Array):
  """Mean of valid frames up to and including each frame.

  Args:
    x: ``[B, T, D]``; paddings ``[B, T]``; total ``[B, D]`` and count ``[B]``: the
      sums carried from earlier chunks.

  Returns:
    ``(means [B, T, D], total, count)``; a padded frame repeats the previous mean
    (zeros before any valid frame).
  """
  valid = (paddings == 0).astype(x.dtype)

  def step(carry, inputs):
    s, n = carry
    xt, vt = inputs
    s = s + jnp.where(vt[:, None] > 0, xt * vt[:, None], 0.0)  # a padded NaN must not enter the sums
    n = n + vt
    return (s, n), s / jnp.maximum(n, 1.0)[:, None]

  (total, count), means = jax.lax.scan(step, (total, count), (jnp.swapaxes(x, 0, 1), jnp.swapaxes(valid, 0, 1)))
  return jnp.swapaxes(means, 0, 1), total, count


def zero_state(batch: int, channels: int, dtype=jnp.float32) -> dict:
  """Running sum ``[B, D]`` and count ``[B]`` before the first frame."""
  return {"total": jnp.zeros((batch, channels), dtype), "count": jnp.zeros((batch,), dtype)}


class CausalSqueezeExcite(nn.Module):
  """``[B, T, D] -> [B, T, D]`` channel gating by the running-mean summary.

  Attributes:
    reduction: bottleneck width ``D // reduction``.
  """

  reduction: int = 8

  def init_state(self, batch: int, channels: int, dtype=jnp.float32):
    return zero_state(batch, channels, dtype)

  @nn.compact
  def __call__(self, x: jax.Array, paddings: jax.Array, state: dict):
    d = x.shape[-1]
    summary, total, count = running_mean(x, paddings, state["total"], state["count"])
    gate = nn.sigmoid(nn.Dense(d)(nn.relu(nn.Dense(max(d // self.reduction, 1))(summary))))
    return x * gate, {"total": total, "count": count}
