"""Stacked unidirectional LSTM with carried state, for streaming encoders and predictors.

Each layer scans `flax.linen.OptimizedLSTMCell` over time; at a padded frame the
carry is kept and the output is zero, so padding never changes the state. The
state (one ``(c, h)`` pair per layer) is what a streaming caller carries between
chunks; the per-frame operations are the same in chunked and whole-utterance mode.

References:
  Hochreiter and Schmidhuber, "Long short-term memory", 1997.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class _MaskedCell(nn.Module):
  hidden: int

  @nn.compact
  def __call__(self, carry, inputs):
    x, valid = inputs  # [B, D], [B]
    new_carry, y = nn.OptimizedLSTMCell(self.hidden, name="cell")(carry, x)
    keep = valid[:, None] > 0
    carry = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new_carry, carry)
    return carry, jnp.where(keep, y, 0.0)


def zero_state(batch: int, hidden: int, num_layers: int, dtype=jnp.float32) -> list:
  """Zero ``(c, h)`` per layer, each ``[B, hidden]``."""
  zeros = jnp.zeros((batch, hidden), dtype)
  return [(zeros, zeros) for _ in range(num_layers)]


class StackedLSTM(nn.Module):
  """``[B, T, D] -> [B, T, hidden]`` through ``num_layers`` LSTM layers.

  Attributes:
    hidden: units per layer.
    num_layers: stacked layers.
  """

  hidden: int
  num_layers: int

  def init_state(self, batch: int, dtype=jnp.float32) -> list:
    """Zero ``(c, h)`` per layer, each ``[B, hidden]``."""
    return zero_state(batch, self.hidden, self.num_layers, dtype)

  @nn.compact
  def __call__(self, x: jax.Array, paddings: jax.Array, state: list) -> tuple[jax.Array, list]:
    valid = jnp.swapaxes((paddings == 0).astype(x.dtype), 0, 1)  # [T, B]
    h = jnp.swapaxes(x, 0, 1)  # [T, B, D]
    new_state = []
    for i in range(self.num_layers):
      scan = nn.scan(_MaskedCell, variable_broadcast="params", split_rngs={"params": False})
      carry, h = scan(self.hidden, name=f"layer_{i}")(tuple(state[i]), (h, valid))
      new_state.append(carry)
    return jnp.swapaxes(h, 0, 1), new_state
