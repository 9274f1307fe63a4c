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

Input contract, the same for every decoder (`check_encoder_output`):
  * ``enc`` is a floating ``[B, T, D]`` array and ``enc_paddings`` ``[B, T]``, with
    ``enc_paddings[b, t] == 1`` for a padded frame; padding is trailing 0/1
    (`asrjax.losses.validate_paddings`);
  * every valid frame of ``enc`` is finite: NaN/inf there raises `ValueError` naming
    the rows. Padded frames are never read, so whatever they hold (NaN included)
    does not change the result;
  * ``B = 0`` gives an empty `NBest` (``[0, N, L]``); ``T = 0`` (no audio) and rows
    whose frames are all padded give one empty hypothesis per row with score 0
    (``log P(empty | no frames) = 0``), as a frame-less lattice has only that path.

These checks read values, so they run where the inputs are concrete: in the host-side
wrappers, before the jitted search (one reduction over ``enc``, one device sync).
Under an outer `jax.jit` the values are unknown; the jitted searches then mark a row
with invalid paddings or non-finite valid frames by a NaN score (loud), and
`NBest.to_lists` refuses NaN scores.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.losses import paddings_valid, validate_paddings
from asrjax.losses.contracts import is_concrete

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
    frames: ``[B, N, L]`` int32, the encoder frame (0-based, within the row's valid
      frames) at which each label was emitted -- its alignment in the decoder's best
      path of that hypothesis (see each decoder); 0 at padded positions. None when the
      producer did not track them (a hand-built `NBest`); every decoder here does.
  """

  labels: jax.Array
  label_paddings: jax.Array
  scores: jax.Array
  frames: jax.Array | None = None

  def to_lists(self) -> list[list[tuple[list[int], float]]]:
    """Host-side ``[batch][rank] -> (label ids, score)``, empty slots (-inf) dropped.

    Raises:
      ValueError: a score is NaN -- the mark a jitted decoder traced under an outer
        `jit` puts on a row whose encoder output or paddings broke the contract.
    """
    return [[(labels, score) for labels, score, _ in row] for row in self._host_lists(with_frames=False)]

  def to_timed_lists(self) -> list[list[tuple[list[int], float, list[int]]]]:
    """`to_lists` with each label's emission frame: ``[batch][rank] -> (label ids, score, frames)``,
    ``len(frames) == len(label ids)``.

    Raises:
      ValueError: as `to_lists`, or ``frames`` is None (this `NBest` carries no frames).
    """
    if self.frames is None:
      raise ValueError("this NBest has no frames (frames=None): it was not made by an asrjax decoder.")
    return self._host_lists(with_frames=True)

  def _host_lists(self, with_frames: bool) -> list[list[tuple[list[int], float, list[int] | None]]]:
    """`to_timed_lists` (frames None unless ``with_frames``): one transfer, the NaN check, the -inf slots dropped."""
    labels, pads, scores, frames = jax.device_get(
        (self.labels, self.label_paddings, self.scores, self.frames if with_frames else None))
    nan_rows = np.flatnonzero(np.isnan(np.asarray(scores, np.float64)).any(axis=-1)).tolist()
    if nan_rows:
      raise ValueError(f"n-best scores of rows {nan_rows} are NaN: the model gave NaN log-probs (non-finite "
                       "parameters or encoder output), or -- traced under jit, where a decoder cannot raise -- enc "
                       "had NaN/inf in a valid frame or enc_paddings were not trailing 0/1.")
    out = []
    for b in range(labels.shape[0]):
      row = []
      for n in range(labels.shape[1]):
        if not scores[b, n] > -jnp.inf:
          continue
        keep = pads[b, n] == 0
        row.append(([int(x) for x in labels[b, n][keep]], float(scores[b, n]),
                    [int(x) for x in frames[b, n][keep]] if with_frames else None))
      out.append(row)
    return out


def check_encoder_output(enc, enc_paddings) -> None:
  """Checks the decoders' input contract (module docstring) as far as the inputs allow.

  Shapes and dtype are always checked; when ``enc`` and ``enc_paddings`` are concrete
  (not tracers), also the paddings' values (`asrjax.losses.validate_paddings`) and the
  finiteness of every valid frame of ``enc`` (one jitted reduction).

  Args:
    enc: ``[B, T, D]`` floating encoder output.
    enc_paddings: ``[B, T]``, 1 = padded frame (trailing).

  Raises:
    ValueError: naming ``enc`` or ``enc_paddings`` and what was expected.
  """
  shape, dtype = np.shape(enc), getattr(enc, "dtype", None)
  if len(shape) != 3:
    raise ValueError(f"enc (encoder output) must be [B, T, D]; got shape {shape}.")
  if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(f"enc (encoder output) must be a floating-point [B, T, D] array; got dtype {dtype}.")
  if np.shape(enc_paddings) != shape[:2]:
    raise ValueError(f"enc_paddings must be [B, T] = {shape[:2]} like enc; got shape {np.shape(enc_paddings)}.")
  if not is_concrete(enc, enc_paddings):
    return
  validate_paddings(enc_paddings, "enc_paddings")
  if shape[0] * shape[1] == 0:
    return
  bad = np.flatnonzero(np.asarray(nonfinite_rows(enc, enc_paddings))).tolist()
  if bad:
    raise ValueError(f"enc (encoder output) rows {bad} contain NaN/inf in valid frames (enc_paddings == 0); "
                     "expected finite values there.")


@jax.jit
def nonfinite_rows(enc: jax.Array, enc_paddings: jax.Array) -> jax.Array:
  """``[B]`` bool: row b has a non-finite value in a valid frame (padded frames are ignored)."""
  return jnp.any(~jnp.all(jnp.isfinite(enc), axis=-1) & (enc_paddings == 0), axis=1)


def invalid_rows(enc: jax.Array, enc_paddings: jax.Array) -> jax.Array:
  """``[B]`` bool, jit-safe: the row breaks the input contract (paddings or non-finite valid frames).

  The in-graph twin of `check_encoder_output`; the jitted decoders give such rows a
  NaN score, so a contract broken under an outer `jit` is loud, not an empty or wrong
  hypothesis.
  """
  return ~paddings_valid(enc_paddings) | nonfinite_rows(enc, enc_paddings)


def positive_int(value, name: str) -> int:
  """``value`` as an int, or `ValueError` naming ``name`` unless it is an integer >= 1."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
  return int(value)


def finite_number(value, name: str) -> float:
  """``value`` as a float, or `ValueError` naming ``name`` unless it is a finite real number."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
    raise ValueError(f"{name} must be a finite number; got {value!r}.")
  return float(value)


def check_fusion(fns: TransducerFns, vocab_size: int, lm, lm_weight, length_bonus) -> tuple[float, float]:
  """The shallow-fusion options every LM-fusing decoder takes, checked alike: ``(λ, β)`` as floats.

  ``lm`` is anything with ``vocab_size`` (the decoder checks its type first), or None.

  Raises:
    ValueError: λ or β not finite, λ < 0 (λ times an LM's -inf would be +inf), λ or β without an LM,
      an LM with a blank other than 0 (the LMs' ids are the tokenizer's, blank 0), or an LM over
      another number of ids than the joint network's ``vocab_size`` outputs.
  """
  lm_weight, length_bonus = finite_number(lm_weight, "lm_weight"), finite_number(length_bonus, "length_bonus")
  if lm_weight < 0:
    raise ValueError(f"lm_weight must be >= 0 (a negative weight turns the LM's -inf into +inf); got {lm_weight!r}.")
  if lm is None:
    if lm_weight or length_bonus:
      raise ValueError("lm_weight and length_bonus need an n-gram LM (lm=...); none was given.")
    return lm_weight, length_bonus
  if fns.blank_id != 0:
    raise ValueError(f"shallow fusion needs blank id 0 (the LM's token ids); the model's blank is {fns.blank_id}.")
  if lm.vocab_size != vocab_size:
    raise ValueError(f"lm has {lm.vocab_size} token ids (vocab_size) but the model's joint network has {vocab_size} "
                     "outputs; train the LM with the model's tokenizer.")
  return lm_weight, length_bonus


def check_blank_id(blank_id, vocab_size: int) -> None:
  """`ValueError` unless ``0 <= blank_id < vocab_size`` (the joint network's output size)."""
  if isinstance(blank_id, bool) or not isinstance(blank_id, (int, np.integer)) or not 0 <= blank_id < vocab_size:
    raise ValueError(f"TransducerFns.blank_id must be an integer in [0, {vocab_size}) (the joint network's "
                     f"{vocab_size} outputs); got {blank_id!r}.")


def joint_vocab_size(fns: TransducerFns, params: PyTree, enc_dim: int, dtype=jnp.float32) -> int:
  """``V``, the joint network's output size, from shapes alone (`jax.eval_shape`; no computation)."""
  def logits(p, enc):
    pred, _ = start_predictor(fns, p, 1)
    return fns.joint(p, enc, pred)
  enc = jax.ShapeDtypeStruct((1, enc_dim), jax.dtypes.canonicalize_dtype(dtype))
  return int(jax.eval_shape(logits, params, enc).shape[-1])


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
