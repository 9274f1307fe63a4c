"""Stacked unidirectional LSTM with carried state, for streaming encoders and predictors.

Each layer scans one frame at a time (`jax.lax.scan`); both matmuls of a frame
(``x_t W_x`` and ``h W_h``) run inside the scan, so a frame's arithmetic does not
depend on how the utterance is cut into chunks and chunked processing is
bit-identical to whole-utterance processing. (Hoisting ``x W_x`` out of the scan as
one ``[T*B, D]`` GEMM was tried: no faster on XLA:CPU at these sizes -- 344 vs 329 ms
per ConvRNN-T train step -- and it costs that exactness, since XLA picks GEMM kernels
by row count.) At a padded frame the carry is kept and the output is zero, so padding
never changes the state. The state (one ``(c, h)`` pair per layer) is what a
streaming caller carries between chunks.

Gates (Hochreiter and Schmidhuber; Gers et al. forget gate)::

    i, f, g, o = split(x W_x + b + h W_h)
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
    h' = sigmoid(o) * tanh(c')

The forget-gate bias starts at 1 (Jozefowicz et al., 2015), ``W_h`` orthogonal.

References:
  Hochreiter and Schmidhuber, "Long short-term memory", 1997.
  Jozefowicz, Zaremba, Sutskever, "An empirical exploration of recurrent network
  architectures", ICML 2015.
  Zaremba, Sutskever, Vinyals, "Recurrent neural network regularization", 2014.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def zero_state(batch: int, hidden: int, num_layers: int, dtype=jnp.float32) -> list:
  """Zero ``(c, h)`` per layer, each ``[B, hidden]``."""
  zeros = jnp.zeros((batch, hidden), dtype)
  return [(zeros, zeros) for _ in range(num_layers)]


def _gate_bias_init(key, shape, dtype=jnp.float32):
  """Zeros except 1 for the forget gate (second quarter of ``[4H]``)."""
  del key
  hidden = shape[0] // 4
  return jnp.zeros(shape, dtype).at[hidden : 2 * hidden].set(1.0)


class LSTMLayer(nn.Module):
  """One LSTM layer over time-major input: ``[T, B, D] -> [T, B, hidden]``.

  Attributes:
    hidden: units.
  """

  hidden: int

  @nn.compact
  def __call__(self, x: jax.Array, valid: jax.Array, carry: tuple) -> tuple[tuple, jax.Array]:
    """``x [T, B, D]``, ``valid [T, B]`` (1 = real frame), ``carry (c, h)`` each ``[B, H]``."""
    w_x = self.param("kernel_x", nn.initializers.lecun_normal(), (x.shape[-1], 4 * self.hidden)).astype(x.dtype)
    w_h = self.param("kernel_h", nn.initializers.orthogonal(), (self.hidden, 4 * self.hidden)).astype(x.dtype)
    bias = self.param("bias", _gate_bias_init, (4 * self.hidden,)).astype(x.dtype)

    def step(carry, inputs):
      x_t, v = inputs
      c, h = carry
      i, f, g, o = jnp.split(x_t @ w_x + h.astype(x_t.dtype) @ w_h + bias, 4, axis=-1)
      new_c = (jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)).astype(c.dtype)
      new_h = (jax.nn.sigmoid(o) * jnp.tanh(new_c)).astype(h.dtype)
      keep = v[:, None] > 0
      return (jnp.where(keep, new_c, c), jnp.where(keep, new_h, h)), jnp.where(keep, new_h, 0.0)

    return jax.lax.scan(step, tuple(carry), (x, valid))


class StackedLSTM(nn.Module):
  """``[B, T, D] -> [B, T, hidden]`` through ``num_layers`` LSTM layers.

  Attributes:
    hidden: units per layer.
    num_layers: stacked layers.
    dropout_rate: dropout on each layer's output (Zaremba et al. 2014: between layers,
      never on the recurrent connection). Active only when the caller passes a
      ``"dropout"`` PRNG stream (``apply(..., rngs={"dropout": key})``), as the
      training step does; decoding and streaming never do, so they are deterministic.
  """

  hidden: int
  num_layers: int
  dropout_rate: float = 0.0

  def init_state(self, batch: int, dtype=jnp.float32) -> list:
    """Zero ``(c, h)`` per layer, each ``[B, hidden]``."""
    return zero_state(batch, self.hidden, self.num_layers, dtype)

  @nn.compact
  def __call__(self, x: jax.Array, paddings: jax.Array, state: list) -> tuple[jax.Array, list]:
    """``x [B, T, D]``, ``paddings [B, T]`` (1 = padded) -> ``([B, T, hidden], state)``."""
    valid = jnp.swapaxes((paddings == 0).astype(x.dtype), 0, 1)  # [T, B]
    h = jnp.swapaxes(x, 0, 1)  # [T, B, D]
    new_state = []
    for i in range(self.num_layers):
      carry, h = LSTMLayer(self.hidden, name=f"layer_{i}")(h, valid, state[i])
      new_state.append(carry)
      if self.dropout_rate > 0:
        h = nn.Dropout(self.dropout_rate, deterministic=not self.has_rng("dropout"))(h)
    return jnp.swapaxes(h, 0, 1), new_state
