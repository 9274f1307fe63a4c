"""Chunk-wise causal multi-head self-attention with a key/value cache, for streaming.

Frames are grouped into chunks of ``chunk_size``; a frame attends to every frame of
its own chunk (the look-ahead: at most ``chunk_size - 1`` frames) and of the
``left_chunks`` chunks before it, never to a later chunk (Chen et al., 2021;
Shi et al., 2021). ``chunk_size = 1`` is plain causal attention with a left window.

Streaming: the state is the projected keys and values of the last
``left_chunks * chunk_size`` frames and their validity. Each call attends over
``[cache, chunk]``, so chunked and whole-utterance processing do the same
per-frame work; they agree to a few ulp (the softmax sums run over a different
number of masked, exactly-zero terms). Chunks fed in streaming must start at a
chunk boundary, i.e. every call but the last has a length divisible by ``chunk_size``.

There is no positional encoding: the causal mask and the Conformer's causal
convolution module give the model its sense of order (a sinusoidal or relative
encoding would need the absolute frame index in the state).

References:
  Vaswani et al., "Attention is all you need", NeurIPS 2017.
  Chen et al., "Developing real-time streaming transformer transducer for speech
  recognition on large-scale dataset", ICASSP 2021.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def zero_state(batch: int, context: int, heads: int, head_dim: int, dtype=jnp.float32) -> dict:
  """Empty cache: keys/values ``[B, context, H, Dh]`` and validity ``[B, context]`` (all invalid)."""
  kv = jnp.zeros((batch, context, heads, head_dim), dtype)
  return {"key": kv, "value": kv, "valid": jnp.zeros((batch, context), dtype)}


def chunk_mask(num_queries: int, context: int, chunk_size: int, left_chunks: int) -> jax.Array:
  """``[Tq, context + Tq]`` bool: may query ``i`` of this call see key ``k`` of ``[cache, chunk]``.

  The cache holds the ``context = left_chunks * chunk_size`` frames just before the
  call, which starts at a chunk boundary.
  """
  q_chunk = jnp.arange(num_queries) // chunk_size
  k_chunk = (jnp.arange(context + num_queries) - context) // chunk_size  # negative in the cache
  diff = q_chunk[:, None] - k_chunk[None, :]
  return (diff >= 0) & (diff <= left_chunks)


class ChunkedSelfAttention(nn.Module):
  """``[B, T, D] -> [B, T, D]`` multi-head self-attention under `chunk_mask`.

  Attributes:
    heads: attention heads (``D`` divisible by it).
    chunk_size: frames per chunk (look-ahead ``chunk_size - 1``).
    left_chunks: earlier chunks visible to every frame.
  """

  heads: int
  chunk_size: int = 1
  left_chunks: int = 16

  @property
  def context(self) -> int:
    return self.chunk_size * self.left_chunks

  def init_state(self, batch: int, dim: int, dtype=jnp.float32) -> dict:
    return zero_state(batch, self.context, self.heads, dim // self.heads, dtype)

  @nn.compact
  def __call__(self, x: jax.Array, paddings: jax.Array, state: dict) -> tuple[jax.Array, dict]:
    """Args: ``x [B, T, D]``, ``paddings [B, T]``, ``state`` (`zero_state`). Returns ``(y, state)``."""
    b, t, d = x.shape
    if d % self.heads:
      raise ValueError(f"model dim {d} is not divisible by {self.heads} heads.")
    dh = d // self.heads
    proj = lambda name: nn.DenseGeneral((self.heads, dh), name=name)(x)  # [B, T, H, Dh]
    q, k, v = proj("query"), proj("key"), proj("value")
    keys = jnp.concatenate([state["key"].astype(k.dtype), k], axis=1)  # [B, C + T, H, Dh]
    values = jnp.concatenate([state["value"].astype(v.dtype), v], axis=1)
    valid = jnp.concatenate([state["valid"].astype(x.dtype), (paddings == 0).astype(x.dtype)], axis=1)
    mask = chunk_mask(t, self.context, self.chunk_size, self.left_chunks)[None, None] & (valid[:, None, None, :] > 0)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, keys) / jnp.sqrt(jnp.asarray(dh, x.dtype))
    logits = jnp.where(mask, logits, jnp.finfo(x.dtype).min)
    weights = jax.nn.softmax(logits, axis=-1)  # every valid query sees itself, so no row is all-masked
    y = jnp.einsum("bhqk,bkhd->bqhd", weights, values)
    y = nn.DenseGeneral(d, axis=(-2, -1), name="out")(y)
    c = self.context
    new_state = {"key": keys[:, keys.shape[1] - c:], "value": values[:, values.shape[1] - c:],
                 "valid": valid[:, valid.shape[1] - c:]}
    return y, new_state
