"""Chunk-wise causal multi-head self-attention with a key/value cache, for streaming.

Frames are grouped into chunks of ``chunk_size``; a frame attends to every frame of
its own chunk (the look-ahead: at most ``chunk_size - 1`` frames) and of the
``left_chunks`` chunks before it, never to a later chunk (Chen et al., 2021;
Shi et al., 2021). ``chunk_size = 1`` is plain causal attention with a left window
(sliding-window attention: ``left_chunks`` sets the window).

Streaming: the state is the projected keys and values of the last
``left_chunks * chunk_size`` frames and their validity. Each call attends over
``[cache, chunk]``, so chunked and whole-utterance processing do the same
per-frame work; they agree to a few ulp (the softmax sums run over a different
number of masked, exactly-zero terms). Chunks fed in streaming must start at a
chunk boundary, i.e. every call but the last has a length divisible by ``chunk_size``.

Position: none by default (the causal mask and the Conformer's causal convolution
give the model its sense of order). ``max_relative > 0`` adds a learned bias per head
and query-key distance (Shaw et al., 2018; T5's bias without its log buckets,
distances past ``max_relative`` sharing the last entry). It depends only on the
distance, which the cache layout fixes, so it streams exactly with no frame counter in
the state (rotary or absolute encodings would need the absolute frame index).

Skipping queries (`__call__` with ``active``): keys and values are projected for every
frame (later frames may attend to any of them), but queries, scores, the weighted sum
and the output projection run only for the active frames, compacted per row into a
buffer of one of a few capacities (`asrjax.nn.frame_gates`), so the skipped work is not
computed at all; an inactive frame's output is exactly zero.

References:
  Vaswani et al., "Attention is all you need", NeurIPS 2017.
  Shaw et al., "Self-attention with relative position representations", NAACL 2018.
  Chen et al., "Developing real-time streaming transformer transducer for speech
  recognition on large-scale dataset", ICASSP 2021.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from asrjax.nn import frame_gates


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


def relative_index(num_queries: int, context: int, chunk_size: int, max_relative: int) -> jax.Array:
  """``[Tq, context + Tq]`` int: the bias entry of query ``i`` and key ``k`` of ``[cache, chunk]``.

  Entry ``clip(distance + chunk_size - 1, 0, max_relative - 1)`` with ``distance = i -
  (k - context)`` frames back (negative: look-ahead inside the chunk, at most
  ``chunk_size - 1``), so entry 0 is the furthest look-ahead.
  """
  distance = jnp.arange(num_queries)[:, None] - (jnp.arange(context + num_queries)[None, :] - context)
  return jnp.clip(distance + chunk_size - 1, 0, max_relative - 1)


class ChunkedStreaming:
  """Streaming facts of an encoder of stacked frames with chunk-wise attention, mixed into its
  module; it reads the module's ``stack``, ``chunk_size``, ``left_chunks``, ``heads`` and ``dim``."""

  @property
  def lookahead_frames(self) -> int:
    """Encoder frames a frame's output may depend on beyond itself (at most)."""
    return self.chunk_size - 1

  @property
  def chunk_multiple(self) -> int:
    """Streaming chunks must be multiples of this many input frames."""
    return self.stack * self.chunk_size

  def attention_state(self, batch: int) -> dict:
    """One block's empty key/value cache (`zero_state`)."""
    return zero_state(batch, self.chunk_size * self.left_chunks, self.heads, self.dim // self.heads)


class ChunkedSelfAttention(nn.Module):
  """``[B, T, D] -> [B, T, D]`` multi-head self-attention under `chunk_mask`.

  Attributes:
    heads: attention heads (``D`` divisible by it).
    chunk_size: frames per chunk (look-ahead ``chunk_size - 1``).
    left_chunks: earlier chunks visible to every frame.
    max_relative: entries of the learned relative-position bias per head (0 = none).
  """

  heads: int
  chunk_size: int = 1
  left_chunks: int = 16
  max_relative: int = 0

  @property
  def context(self) -> int:
    return self.chunk_size * self.left_chunks

  def init_state(self, batch: int, dim: int, dtype=jnp.float32) -> dict:
    return zero_state(batch, self.context, self.heads, dim // self.heads, dtype)

  @nn.compact
  def __call__(self, x: jax.Array, paddings: jax.Array, state: dict, active: jax.Array | None = None,
               capacities: tuple[int, ...] | int | None = None) -> tuple[jax.Array, dict]:
    """Args: ``x [B, T, D]``, ``paddings [B, T]``, ``state`` (`zero_state`); ``active [B, T]``
    bool (optional): only these frames' outputs are computed (the others are exactly 0),
    each row compacted to the smallest of ``capacities`` (default
    `frame_gates.capacity_buckets` of ``T``) that holds its active frames; an int is one
    static capacity (`frame_gates.compact_apply`: the caller guarantees it holds them).
    Returns ``(y, state)``."""
    b, t, d = x.shape
    if d % self.heads:
      raise ValueError(f"model dim {d} is not divisible by {self.heads} heads.")
    dh, c = d // self.heads, self.context
    kv = lambda name: nn.DenseGeneral((self.heads, dh), name=name)(x)  # [B, T, H, Dh]
    k, v = kv("key"), kv("value")
    keys = jnp.concatenate([state["key"].astype(k.dtype), k], axis=1)  # [B, C + T, H, Dh]
    values = jnp.concatenate([state["value"].astype(v.dtype), v], axis=1)
    valid = jnp.concatenate([state["valid"].astype(x.dtype), (paddings == 0).astype(x.dtype)], axis=1)
    bias_table = (self.param("rel_bias", nn.initializers.zeros, (self.heads, self.max_relative))
                  if self.max_relative else None)
    new_state = {"key": keys[:, keys.shape[1] - c:], "value": values[:, values.shape[1] - c:],
                 "valid": valid[:, valid.shape[1] - c:]}

    def attend(rows, xq):
      """Outputs ``[B, Q, D]`` of the queries at frames ``rows [B, Q]`` (inputs ``xq [B, Q, D]``)."""
      q = nn.DenseGeneral((self.heads, dh), name="query")(xq)  # [B, Q, H, Dh]
      mask = chunk_mask(t, c, self.chunk_size, self.left_chunks)[rows] & (valid[:, None, :] > 0)  # [B, Q, C+T]
      logits = jnp.einsum("bqhd,bkhd->bhqk", q, keys) / jnp.sqrt(jnp.asarray(dh, x.dtype))
      if bias_table is not None:
        index = relative_index(t, c, self.chunk_size, self.max_relative)[rows]  # [B, Q, C+T]
        logits = logits + jnp.moveaxis(bias_table[:, index], 0, 1).astype(logits.dtype)
      logits = jnp.where(mask[:, None], logits, jnp.finfo(x.dtype).min)
      weights = jax.nn.softmax(logits, axis=-1)  # every valid query sees itself, so no row is all-masked
      y = jnp.einsum("bhqk,bkhd->bqhd", weights, values)
      return nn.DenseGeneral(d, axis=(-2, -1), name="out")(y)

    if active is None or self.is_initializing():
      return attend(jnp.broadcast_to(jnp.arange(t), (b, t)), x), new_state
    fn = lambda mdl, rows, xq: attend(rows, xq)
    if isinstance(capacities, int):
      return frame_gates.compact_apply(self, fn, x, active, capacities), new_state
    caps = frame_gates.capacity_buckets(t) if capacities is None else tuple(capacities)
    y = frame_gates.compact_rows(self, fn, x, active, caps)
    return y, new_state
