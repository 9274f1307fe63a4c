"""Causal 1-D convolution over time with a carried left context, for streaming.

``y[t] = b + sum_k W[k] x[t - K + 1 + k]``: each output frame sees the current and
the ``K - 1`` previous input frames, never a future one. The layer keeps those
``K - 1`` frames as its state, so processing an utterance chunk by chunk with the
state carried gives the same outputs as one call on the whole utterance. The
convolution is written as a sum of per-tap matmuls over the concatenation
``[state, chunk]`` -- the same operations in both modes, frame by frame -- rather
than an XLA convolution, whose algorithm may change with the sequence length.
Depthwise convolutions are then bit-identical between chunked and whole-utterance
processing; dense ones agree to about 1 ulp, because XLA:CPU chooses its GEMM kernel
by the number of rows ``B x T`` (tests bound it at 1e-6).

Padded frames (``paddings == 1``) are zeroed on input, so they never leak into
valid frames.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def zero_state(batch: int, kernel_size: int, channels: int, dtype=jnp.float32) -> jax.Array:
  """``[B, K - 1, D]`` zeros: the left context before the first frame."""
  return jnp.zeros((batch, kernel_size - 1, channels), dtype)


class CausalConv1D(nn.Module):
  """``[B, T, D] -> [B, T, features]`` causal convolution.

  Attributes:
    features: output channels.
    kernel_size: taps ``K`` (look-back ``K - 1`` frames, no look-ahead).
    depthwise: one filter per channel (``features`` must equal ``D``).
  """

  features: int
  kernel_size: int
  depthwise: bool = False
  dtype: jnp.dtype = jnp.float32

  def init_state(self, batch: int, channels: int) -> jax.Array:
    """``[B, K - 1, D]`` zeros: the left context before the first frame."""
    return zero_state(batch, self.kernel_size, channels, self.dtype)

  @nn.compact
  def __call__(self, x: jax.Array, paddings: jax.Array, state: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Args: ``x [B, T, D]``, ``paddings [B, T]``, ``state [B, K-1, D]``. Returns ``(y [B, T, F], state)``."""
    d = x.shape[-1]
    if self.depthwise and self.features != d:
      raise ValueError(f"depthwise conv needs features == input channels ({self.features} != {d}).")
    x = jnp.where(paddings[..., None] > 0, 0.0, x).astype(self.dtype)
    shape = (self.kernel_size, d) if self.depthwise else (self.kernel_size, d, self.features)
    kernel = self.param("kernel", nn.initializers.lecun_normal(batch_axis=()), shape, jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    full = jnp.concatenate([state.astype(self.dtype), x], axis=1)  # [B, K-1+T, D]
    t = x.shape[1]
    y = jnp.zeros(x.shape[:2] + (self.features,), self.dtype) + bias.astype(self.dtype)
    for k in range(self.kernel_size):
      window = jax.lax.dynamic_slice_in_dim(full, k, t, axis=1)
      if self.depthwise:
        y = y + window * kernel[k].astype(self.dtype)
      else:
        y = y + jnp.einsum("btd,df->btf", window, kernel[k].astype(self.dtype))
    # New state: the last K-1 valid inputs. Padding is trailing, so at the end of a
    # chunk with padded frames the utterance is over and the state no longer matters.
    new_state = full[:, full.shape[1] - (self.kernel_size - 1):] if self.kernel_size > 1 else state
    return y, new_state
