"""Causal ContextNet encoder: depthwise-separable convolution blocks with squeeze-excitation.

ContextNet (Han et al., 2020) is a CNN encoder whose blocks end in squeeze-and-
excitation over the whole utterance. Streaming forbids that global pooling, so
this causal variant summarises the utterance *so far* with the same running-mean
SE as ConvRNN-T's global CNN (`asrjax.nn.causal_se`) and uses causal convolutions
(`asrjax.nn.causal_conv`): zero look-ahead, like the other encoders in the
comparison. Each block is ``x -> [depthwise conv -> pointwise -> LayerNorm ->
swish] x layers -> SE -> + residual``. Subsampling is the shared frame stacking
(ContextNet's strided blocks would complicate bit-exact streaming for no gain in
this comparison).

Streaming: ``init_state(batch)`` / ``__call__(feats, paddings, state)``, chunks
multiples of ``stack`` input frames; outputs match whole-utterance processing to
~1 ulp (the dense layers; `asrjax.nn.causal_conv`).

References:
  Han et al., "ContextNet: Improving convolutional neural networks for automatic
  speech recognition with global context", Interspeech 2020.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from asrjax.models import streaming_encoder
from asrjax.nn import causal_conv, causal_se, frame_stack


class _Block(nn.Module):
  layers: int
  kernel_size: int

  @nn.compact
  def __call__(self, x, paddings, state):
    d = x.shape[-1]
    h, conv_states = x, []
    for i in range(self.layers):
      h, s = causal_conv.CausalConv1D(d, self.kernel_size, depthwise=True, name=f"depthwise_{i}")(
          h, paddings, state["conv"][i])
      h = nn.swish(nn.LayerNorm(name=f"norm_{i}")(nn.Dense(d, name=f"pointwise_{i}")(h)))
      conv_states.append(s)
    h, se_state = causal_se.CausalSqueezeExcite(name="se")(h, paddings, state["se"])
    return jnp.where(paddings[..., None] > 0, 0.0, x + h), {"conv": conv_states, "se": se_state}


class ContextNetEncoder(streaming_encoder.ZeroLookahead, nn.Module):
  """``[B, T, F]`` log-mel -> ``[B, T // stack, output_dim]``.

  Attributes:
    stack: input frames stacked per encoder frame.
    channels: block width.
    blocks / layers_per_block / kernel_size: the convolution stack.
    output_dim: encoder output size.
  """

  stack: int = 4
  channels: int = 256
  blocks: int = 6
  layers_per_block: int = 3
  kernel_size: int = 5
  output_dim: int = 256

  def init_state(self, batch: int) -> list:
    return [{"conv": [causal_conv.zero_state(batch, self.kernel_size, self.channels)
                      for _ in range(self.layers_per_block)],
             "se": causal_se.zero_state(batch, self.channels)} for _ in range(self.blocks)]

  @nn.compact
  def __call__(self, feats: jax.Array, paddings: jax.Array, state: list):
    """Returns ``(enc [B, T', D], enc_paddings [B, T'], state)``."""
    x, pad = frame_stack.stack_frames(feats, paddings, self.stack)
    x = jnp.where(pad[..., None] > 0, 0.0, nn.Dense(self.channels, name="input_proj")(x))
    new_state = []
    for i in range(self.blocks):
      x, s = _Block(self.layers_per_block, self.kernel_size, name=f"block_{i}")(x, pad, state[i])
      new_state.append(s)
    out = nn.Dense(self.output_dim, name="output_proj")(x)
    return jnp.where(pad[..., None] > 0, 0.0, out), pad, new_state
