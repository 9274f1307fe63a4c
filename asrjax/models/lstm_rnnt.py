"""Vanilla LSTM RNN-T encoder: frame stacking, a projection, stacked unidirectional LSTMs.

The baseline of ConvRNN-T's comparison (He et al., 2019): no convolution, no
look-ahead. Streaming carries the LSTM state (`asrjax.nn.lstm`); chunked and
whole-utterance outputs are bit-identical on CPU in fp32 apart from the input and
output projections (~1 ulp, see `asrjax.nn.causal_conv` on GEMM row counts).

References:
  He et al., "Streaming end-to-end speech recognition for mobile devices", ICASSP 2019.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from asrjax.models import streaming_encoder
from asrjax.nn import frame_stack, lstm


class LSTMEncoder(streaming_encoder.ZeroLookahead, nn.Module):
  """``[B, T, F]`` log-mel -> ``[B, T // stack, output_dim]``.

  Attributes:
    stack: input frames stacked per encoder frame.
    lstm_hidden / lstm_layers: the LSTM stack.
    dropout: dropout after each LSTM layer while training (see `asrjax.nn.lstm`).
    output_dim: encoder output size.
  """

  stack: int = 4
  lstm_hidden: int = 320
  lstm_layers: int = 3
  output_dim: int = 256
  dropout: float = 0.0

  def init_state(self, batch: int) -> list:
    return lstm.zero_state(batch, self.lstm_hidden, self.lstm_layers)

  @nn.compact
  def __call__(self, feats: jax.Array, paddings: jax.Array, state: list):
    """Returns ``(enc [B, T', D], enc_paddings [B, T'], state)``."""
    x, pad = frame_stack.stack_frames(feats, paddings, self.stack)
    x = nn.Dense(self.lstm_hidden, name="input_proj")(x)
    h, state = lstm.StackedLSTM(self.lstm_hidden, self.lstm_layers, self.dropout, name="lstm")(x, pad, state)
    out = nn.Dense(self.output_dim, name="output_proj")(h)
    return jnp.where(pad[..., None] > 0, 0.0, out), pad, state
