"""Streaming Conformer encoder: chunk-wise causal attention and causal convolution.

Frame stacking (``stack`` x 10 ms) and a linear projection replace the usual
convolutional subsampling (the same front end as the other encoders, so the
comparison isolates the encoder body). Each block is the Conformer macaron
``x + FFN/2 -> x + MHSA -> x + Conv -> x + FFN/2 -> LayerNorm`` with

* attention restricted by `asrjax.nn.chunked_attention` (look-ahead ``chunk_size - 1``
  stacked frames, ``left_chunks`` chunks of history), and
* a causal depthwise convolution module (`asrjax.nn.causal_conv`) with LayerNorm in
  place of BatchNorm, whose batch statistics would differ between training and
  streaming.

Streaming: ``init_state(batch)`` and ``__call__(feats, paddings, state)``; chunks fed
in must be multiples of ``stack * chunk_size`` input frames. Outputs match whole-
utterance processing to a few ulp (the attention softmax; see
`asrjax.nn.chunked_attention`).

References:
  Gulati et al., "Conformer: Convolution-augmented transformer for speech
  recognition", Interspeech 2020.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from asrjax.nn import causal_conv, chunked_attention, frame_stack


class _FeedForward(nn.Module):
  mult: int

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    return nn.Dense(d, name="down")(nn.swish(nn.Dense(d * self.mult, name="up")(nn.LayerNorm(name="norm")(x))))


class _ConvModule(nn.Module):
  kernel_size: int

  @nn.compact
  def __call__(self, x, paddings, state):
    d = x.shape[-1]
    h = nn.glu(nn.Dense(2 * d, name="pointwise_in")(nn.LayerNorm(name="norm")(x)))
    h, state = causal_conv.CausalConv1D(d, self.kernel_size, depthwise=True, name="depthwise")(h, paddings, state)
    h = nn.swish(nn.LayerNorm(name="conv_norm")(h))
    return nn.Dense(d, name="pointwise_out")(h), state


class _Block(nn.Module):
  heads: int
  ff_mult: int
  conv_kernel: int
  chunk_size: int
  left_chunks: int

  @nn.compact
  def __call__(self, x, paddings, state):
    x = x + 0.5 * _FeedForward(self.ff_mult, name="ff_1")(x)
    y, att_state = chunked_attention.ChunkedSelfAttention(self.heads, self.chunk_size, self.left_chunks, name="mhsa")(
        nn.LayerNorm(name="mhsa_norm")(x), paddings, state["attention"])
    x = x + y
    y, conv_state = _ConvModule(self.conv_kernel, name="conv")(x, paddings, state["conv"])
    x = x + y
    x = x + 0.5 * _FeedForward(self.ff_mult, name="ff_2")(x)
    x = nn.LayerNorm(name="out_norm")(x)
    return jnp.where(paddings[..., None] > 0, 0.0, x), {"attention": att_state, "conv": conv_state}


class ConformerEncoder(chunked_attention.ChunkedStreaming, nn.Module):
  """``[B, T, F]`` log-mel -> ``[B, T // stack, output_dim]``.

  Attributes:
    stack: input frames stacked per encoder frame.
    dim / heads / ff_mult / conv_kernel / layers: Conformer body.
    chunk_size: attention chunk in encoder frames (1 = causal, no look-ahead).
    left_chunks: chunks of attention history.
    output_dim: encoder output size.
  """

  stack: int = 4
  dim: int = 144
  heads: int = 4
  ff_mult: int = 4
  conv_kernel: int = 15
  layers: int = 8
  chunk_size: int = 1
  left_chunks: int = 64
  output_dim: int = 256

  def init_state(self, batch: int) -> list:
    return [{"attention": self.attention_state(batch), "conv": causal_conv.zero_state(batch, self.conv_kernel, self.dim)}
            for _ in range(self.layers)]

  @nn.compact
  def __call__(self, feats: jax.Array, paddings: jax.Array, state: list):
    """Returns ``(enc [B, T', D], enc_paddings [B, T'], state)``."""
    x, pad = frame_stack.stack_frames(feats, paddings, self.stack)
    x = jnp.where(pad[..., None] > 0, 0.0, nn.Dense(self.dim, name="input_proj")(x))
    new_state = []
    for i in range(self.layers):
      x, s = _Block(self.heads, self.ff_mult, self.conv_kernel, self.chunk_size, self.left_chunks,
                    name=f"block_{i}")(x, pad, state[i])
      new_state.append(s)
    out = nn.Dense(self.output_dim, name="output_proj")(x)
    return jnp.where(pad[..., None] > 0, 0.0, out), pad, new_state
