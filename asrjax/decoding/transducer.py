"""The interface every transducer decoder searches over, and the n-best result.

A trained transducer is handed to a decoder as `TransducerFns`: three pure
functions with the parameters passed explicitly, so a decoder can `jit` them
without baking weights into the program. Any model (ConvRNN-T, Conformer, ...)
that exposes these three functions can use every decoder in `asrjax.decoding`.

Conventions:
  * the prediction network is primed with ``blank_id`` as its start-of-sequence
    input, as in ESPnet and icefall;
  * ``joint`` may be called with any leading batch shape ``[..., D]`` and
    ``[..., P]`` and returns unnormalised logits ``[..., V]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any


@dataclasses.dataclass(frozen=True)
class TransducerFns:
  """Pure functions of a transducer. Hashable, so decoders use it as a static arg.

  Attributes:
    predictor_init: ``batch -> state``, the prediction network's initial state for
      ``batch`` sequences (a pytree whose leaves have leading dim ``batch``).
    predictor_step: ``(params, labels [N] int32, state) -> (out [N, P], state)``;
      consumes one label per sequence.
    joint: ``(params, enc [..., D], pred [..., P]) -> logits [..., V]``.
    blank_id: index of blank in ``V``.
  """

  predictor_init: Callable[[int], PyTree]
  predictor_step: Callable[[PyTree, jax.Array, PyTree], tuple[jax.Array, PyTree]]
  joint: Callable[[PyTree, jax.Array, jax.Array], jax.Array]
  blank_id: int = 0


class NBest(NamedTuple):
  """Decoder output, the same for every decoder.

  Attributes:
    labels: ``[B, N, L]`` int32 hypotheses, best first; positions past a
      hypothesis' length are 0 and marked in ``label_paddings``.
    label_paddings: ``[B, N, L]`` float32, 1.0 = padding.
    scores: ``[B, N]`` float32 log-probability of each hypothesis under the
      decoder's search topology (see each decoder); -inf for empty slots.
  """

  labels: jax.Array
  label_paddings: jax.Array
  scores: jax.Array

  def to_lists(self) -> list[list[tuple[list[int], float]]]:
    """Host-side ``[batch][rank] -> (label ids, score)``, empty slots dropped."""
    labels = jax.device_get(self.labels)
    pads = jax.device_get(self.label_paddings)
    scores = jax.device_get(self.scores)
    out = []
    for b in range(labels.shape[0]):
      out.append([
          ([int(x) for x, p in zip(labels[b, n], pads[b, n]) if p == 0], float(scores[b, n]))
          for n in range(labels.shape[1])
          if scores[b, n] > -jnp.inf
      ])
    return out


def check_encoder_output(enc: jax.Array, enc_paddings: jax.Array) -> None:
  """Raises `ValueError` unless ``enc`` is ``[B, T, D]`` and paddings ``[B, T]``."""
  if enc.ndim != 3:
    raise ValueError(f"encoder output must be [B, T, D]; got shape {enc.shape}.")
  if enc_paddings.shape != enc.shape[:2]:
    raise ValueError(f"enc_paddings shape {enc_paddings.shape} != (B, T) = {enc.shape[:2]}.")


def frame_lengths(enc_paddings: jax.Array) -> jax.Array:
  """``[B, T]`` trailing paddings -> ``[B]`` int32 number of valid frames."""
  return jnp.sum(1 - enc_paddings.astype(jnp.int32), axis=1).astype(jnp.int32)


def start_predictor(fns: TransducerFns, params: PyTree, batch: int) -> tuple[jax.Array, PyTree]:
  """Primes the prediction network with ``blank_id``: ``(out [batch, P], state)``."""
  sos = jnp.full((batch,), fns.blank_id, jnp.int32)
  return fns.predictor_step(params, sos, fns.predictor_init(batch))


def select_rows(cond: jax.Array, new: PyTree, old: PyTree) -> PyTree:
  """Per-row choice between two pytrees whose leaves have leading dim ``N``: ``cond [N]``."""
  def pick(n, o):
    return jnp.where(cond.reshape(cond.shape + (1,) * (n.ndim - 1)), n, o)
  return jax.tree.map(pick, new, old)
