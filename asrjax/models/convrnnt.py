"""ConvRNN-T encoder: causal local CNN + global CNN (running-mean SE) feeding stacked LSTMs.

Input log-mel frames are stacked (``stack`` x 10 ms). The *local* CNN is a stack of
causal convolutions (LayerNorm, swish, residual) that models short-range context.
The *global* CNN blocks add, after a causal depthwise convolution, a squeeze-and-
excitation whose summary is the running mean of the utterance so far
(`asrjax.nn.causal_se`), giving every frame a view of all past context without
looking ahead. Local and global outputs are concatenated and projected, then the
LSTM stack produces the encoder output. Look-ahead is zero frames.

Streaming: ``init_state(batch)`` and ``__call__(feats, paddings, state)`` with the
state carried between chunks (chunk lengths must be multiples of ``stack``); the
outputs match whole-utterance processing (LSTM and depthwise paths bit-identical,
dense convolutions to ~1 ulp; see `asrjax.nn.causal_conv`).

References:
  Radfar, Barnwal, Swaminathan, Peng, Mouchtaris, Liu, "ConvRNN-T: Convolutional
  augmented recurrent neural network transducers for streaming speech recognition",
  Interspeech 2022.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from asrjax.models import streaming_encoder
from asrjax.nn import causal_conv, causal_se, frame_stack, lstm


class _ConvBlock(nn.Module):
  channels: int
  kernel_size: int
  depthwise: bool
  squeeze_excite: bool

  @staticmethod
  def zero_state(batch, channels, kernel_size, squeeze_excite):
    state = {"conv": causal_conv.zero_state(batch, kernel_size, channels)}
    if squeeze_excite:
      state["se"] = causal_se.zero_state(batch, channels)
    return state

  @nn.compact
  def __call__(self, x, paddings, state):
    y, conv_state = causal_conv.CausalConv1D(self.channels, self.kernel_size, self.depthwise, name="conv")(
        nn.LayerNorm(name="norm")(x), paddings, state["conv"])
    y = nn.swish(y)
    new_state = {"conv": conv_state}
    if self.squeeze_excite:
      y, new_state["se"] = causal_se.CausalSqueezeExcite(name="se")(y, paddings, state["se"])
    y = x + y
    return jnp.where(paddings[..., None] > 0, 0.0, y), new_state


class ConvRNNTEncoder(streaming_encoder.ZeroLookahead, nn.Module):
  """``[B, T, F]`` log-mel -> ``[B, T // stack, output_dim]`` encoder output.

  Attributes:
    stack: input frames stacked per encoder frame.
    channels: CNN width.
    local_layers / local_kernel: causal local CNN depth and taps.
    global_blocks / global_kernel: global CNN (depthwise conv + running-mean SE) blocks.
    lstm_hidden / lstm_layers: the LSTM stack.
    dropout: dropout after each LSTM layer while training (see `asrjax.nn.lstm`).
    output_dim: encoder output size.
  """

  stack: int = 3
  channels: int = 128
  local_layers: int = 2
  local_kernel: int = 5
  global_blocks: int = 2
  global_kernel: int = 5
  lstm_hidden: int = 256
  lstm_layers: int = 3
  output_dim: int = 256
  dropout: float = 0.0

  def _blocks(self):
    local = [_ConvBlock(self.channels, self.local_kernel, False, False, name=f"local_{i}")
             for i in range(self.local_layers)]
    glob = [_ConvBlock(self.channels, self.global_kernel, True, True, name=f"global_{i}")
            for i in range(self.global_blocks)]
    return local, glob

  def init_state(self, batch: int) -> dict:
    local = [_ConvBlock.zero_state(batch, self.channels, self.local_kernel, False) for _ in range(self.local_layers)]
    glob = [_ConvBlock.zero_state(batch, self.channels, self.global_kernel, True) for _ in range(self.global_blocks)]
    return {"local": local, "global": glob, "lstm": lstm.zero_state(batch, self.lstm_hidden, self.lstm_layers)}

  @nn.compact
  def __call__(self, feats: jax.Array, paddings: jax.Array, state: dict):
    """Returns ``(enc [B, T', D], enc_paddings [B, T'], state)``."""
    x, pad = frame_stack.stack_frames(feats, paddings, self.stack)
    x = jnp.where(pad[..., None] > 0, 0.0, nn.Dense(self.channels, name="input_proj")(x))
    local_blocks, global_blocks = self._blocks()
    new_state = {"local": [], "global": []}
    h_local = x
    for block, s in zip(local_blocks, state["local"]):
      h_local, s = block(h_local, pad, s)
      new_state["local"].append(s)
    h_global = x
    for block, s in zip(global_blocks, state["global"]):
      h_global, s = block(h_global, pad, s)
      new_state["global"].append(s)
    h = nn.Dense(self.lstm_hidden, name="merge")(jnp.concatenate([h_local, h_global], axis=-1))
    h, new_state["lstm"] = lstm.StackedLSTM(self.lstm_hidden, self.lstm_layers, self.dropout, name="lstm")(h, pad, state["lstm"])
    out = nn.Dense(self.output_dim, name="output_proj")(h)
    return jnp.where(pad[..., None] > 0, 0.0, out), pad, new_state
