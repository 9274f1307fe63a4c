"""Batched greedy transducer search, one jit-compiled program.

At every frame the decoder repeatedly takes the joint network's argmax: a label is
emitted (and fed to the prediction network) until blank wins or
``max_symbols_per_frame`` labels were emitted, at which point the frame is left
as if blank had been chosen. The returned score is the log-probability of that
single alignment path, blank of every frame included.

The search is resumable: `greedy_start` gives the decoder state before the first
frame and `greedy_continue` decodes more frames from a state, returning the labels
emitted and the new state -- what a streaming recogniser calls once per chunk
(`asrjax.inference.streaming`). `greedy_search` is the two in one call.

Emission frames: a label emitted at frame t (0-based) has frame t; a frame emitting
several labels (up to ``max_symbols_per_frame``) gives them all that t. `greedy_search`
returns them in `NBest.frames`. Across chunks, `GreedyState.t0` ``[B]`` counts the valid
frames each stream consumed so far, so ``greedy_continue(..., with_frames=True)``
returns ``(labels, label_paddings, frames, state)`` with *absolute* frames ``t0 + t``
(the frame index in the concatenation of every chunk's valid frames -- what
`greedy_search` on the whole utterance gives); without ``with_frames`` it returns
``(labels, label_paddings, state)`` as before.

Inputs follow `asrjax.decoding.transducer`'s contract, checked in the Python wrappers
before the jitted search: trailing 0/1 ``enc_paddings`` and finite valid frames, else
`ValueError` naming the rows (padded frames are never read); ``T = 0`` gives the empty
hypothesis with score 0 per row and ``B = 0`` an empty `NBest`, without compiling.
Traced under an outer `jit`, a row breaking the contract gets a NaN score instead.

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012, sec. 2.3.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.decoding import transducer


class GreedyState(NamedTuple):
  """Decoder state between frames: prediction-network output and state, path score ``[B]``, and
  ``t0 [B]`` int32, the valid frames consumed so far (the offset of the next frame's index; None
  reads as 0)."""

  pred_out: jax.Array
  pred_state: Any
  score: jax.Array
  t0: jax.Array | None = None


def greedy_start(fns: transducer.TransducerFns, params, batch: int) -> GreedyState:
  """The state before the first frame (predictor primed with ``fns.blank_id``, which must
  be in ``[0, V)``: a jitted embedding lookup would clamp any other id silently)."""
  pred_out, pred_state = transducer.start_predictor(fns, params, batch)
  return GreedyState(pred_out, pred_state, jnp.zeros((batch,), jnp.float32), jnp.zeros((batch,), jnp.int32))


@functools.partial(jax.jit, static_argnames=("fns", "max_symbols_per_frame"))
def _greedy_frames(fns, params, enc, enc_paddings, state, max_symbols_per_frame):
  """The compiled search; ``state=None`` starts from `greedy_start` inside the program.

  Returns ``(labels [B, M], label_paddings [B, M], frames [B, M], state)``, ``M = T * max_symbols_per_frame``,
  frames absolute (``state.t0 + t``, 0 at padded positions).
  """
  batch, t_max, _ = enc.shape
  if state is None:
    state = greedy_start(fns, params, batch)
  t0 = jnp.zeros((batch,), jnp.int32) if state.t0 is None else jnp.asarray(state.t0, jnp.int32)
  # shapes are static: a blank id outside the joint's outputs fails once, at trace time
  transducer.check_blank_id(fns.blank_id, jax.eval_shape(fns.joint, params, enc[:, 0], state.pred_out).shape[-1])
  max_len = t_max * max_symbols_per_frame
  lengths = transducer.frame_lengths(enc_paddings)
  carry = dict(
      pred_out=state.pred_out,
      pred_state=state.pred_state,
      labels=jnp.zeros((batch, max_len), jnp.int32),
      frames=jnp.zeros((batch, max_len), jnp.int32),
      num_labels=jnp.zeros((batch,), jnp.int32),
      score=state.score,
  )

  def frame(carry, xs):
    enc_t, t = xs  # [B, D], scalar

    def cond(state):
      c, n_sym, active = state
      return jnp.any(active)

    def body(state):
      c, n_sym, active = state
      log_probs = jax.nn.log_softmax(fns.joint(params, enc_t, c["pred_out"]).astype(jnp.float32), axis=-1)
      best = jnp.argmax(log_probs, axis=-1).astype(jnp.int32)
      emit = active & (best != fns.blank_id) & (n_sym < max_symbols_per_frame)
      leave = active & ~emit
      chosen = jnp.where(emit, best, fns.blank_id)
      gained = jnp.take_along_axis(log_probs, chosen[:, None], axis=-1)[:, 0]
      new_out, new_state = fns.predictor_step(params, chosen, c["pred_state"])
      pos = jnp.minimum(c["num_labels"], max_len - 1)
      c = dict(
          pred_out=transducer.select_rows(emit, new_out, c["pred_out"]),
          pred_state=transducer.select_rows(emit, new_state, c["pred_state"]),
          labels=c["labels"].at[jnp.arange(batch), pos].set(
              jnp.where(emit, chosen, c["labels"][jnp.arange(batch), pos])
          ),
          frames=c["frames"].at[jnp.arange(batch), pos].set(
              jnp.where(emit, t0 + t, c["frames"][jnp.arange(batch), pos])
          ),
          num_labels=c["num_labels"] + emit.astype(jnp.int32),
          score=c["score"] + jnp.where(emit | leave, gained, 0.0),
      )
      return c, n_sym + emit.astype(jnp.int32), active & ~leave

    active = t < lengths
    carry, _, _ = jax.lax.while_loop(cond, body, (carry, jnp.zeros((batch,), jnp.int32), active))
    return carry, None

  carry, _ = jax.lax.scan(frame, carry, (jnp.swapaxes(enc, 0, 1), jnp.arange(t_max)))
  pos = jnp.arange(max_len)[None, :]
  label_paddings = (pos >= carry["num_labels"][:, None]).astype(jnp.float32)
  labels = jnp.where(label_paddings == 0, carry["labels"], 0)
  frames = jnp.where(label_paddings == 0, carry["frames"], 0)
  # only reachable under an outer jit (the wrapper raises on concrete inputs): loud, not silent
  score = jnp.where(transducer.invalid_rows(enc, enc_paddings), jnp.nan, carry["score"])
  return labels, label_paddings, frames, GreedyState(carry["pred_out"], carry["pred_state"], score, t0 + lengths)


def greedy_continue(fns: transducer.TransducerFns, params, enc: jax.Array, enc_paddings: jax.Array,
                    state: GreedyState, *, max_symbols_per_frame: int = 4, with_frames: bool = False):
  """Decodes frames ``enc [B, T, D]`` from ``state`` (``enc_paddings [B, T]``, 1 = padded).

  Returns:
    ``(labels [B, T * max_symbols_per_frame], label_paddings, state)``: the labels
    emitted on these frames (left-aligned) and the state after the last valid frame
    (its ``t0`` advanced by each row's valid frames). ``T = 0`` returns no labels and
    ``state`` itself. With ``with_frames=True``: ``(labels, label_paddings, frames, state)``,
    ``frames [B, T * max_symbols_per_frame]`` int32 the absolute frame of each label
    (``state.t0 + t``; 0 at padded positions).

  Raises:
    ValueError: shapes, paddings or non-finite valid frames break the contract
      (`transducer.check_encoder_output`), ``state`` is for another batch size, or
      ``max_symbols_per_frame`` is not an integer >= 1. ``state`` is a value, so it is
      untouched by a failed call.
  """
  max_symbols_per_frame = transducer.positive_int(max_symbols_per_frame, "max_symbols_per_frame")
  transducer.check_encoder_output(enc, enc_paddings)
  batch = enc.shape[0]
  if np.shape(state.score) != (batch,):
    raise ValueError(f"state is for {np.shape(state.score)[:1]} streams but enc has B = {batch} rows; "
                     f"start it with greedy_start(fns, params, {batch}).")
  return _decode(fns, params, enc, enc_paddings, state, max_symbols_per_frame, with_frames=with_frames)


def _decode(fns, params, enc, enc_paddings, state, max_symbols_per_frame, *, with_frames: bool = False):
  """`greedy_continue` on checked inputs (``state=None``: from the start); empty batches and
  frame-less chunks skip the compiled search, the state unchanged.

  Returns ``(labels, label_paddings, state)``, or with ``with_frames`` ``(labels, label_paddings, frames,
  state)`` (frames absolute, as `greedy_continue`)."""
  batch, t_max, _ = enc.shape
  if batch == 0 or t_max == 0:
    shape = (batch, t_max * max_symbols_per_frame)
    if state is None:
      state = GreedyState(None, None, jnp.zeros((batch,), jnp.float32), jnp.zeros((batch,), jnp.int32))
    out = jnp.zeros(shape, jnp.int32), jnp.ones(shape, jnp.float32), jnp.zeros(shape, jnp.int32), state
  else:
    out = _greedy_frames(fns, params, enc, enc_paddings, state, max_symbols_per_frame)
  return out if with_frames else (out[0], out[1], out[3])


def greedy_search(
    fns: transducer.TransducerFns,
    params,
    enc: jax.Array,
    enc_paddings: jax.Array,
    *,
    max_symbols_per_frame: int = 4,
) -> transducer.NBest:
  """Greedy (best-path) search.

  Args:
    fns: the transducer's pure functions.
    params: parameters passed to ``fns``.
    enc: ``[B, T, D]`` encoder output, finite in every valid frame.
    enc_paddings: ``[B, T]``, 1.0 = padded frame (trailing 0/1).
    max_symbols_per_frame: labels emitted at most per frame (an integer >= 1).

  Returns:
    `NBest` with ``N = 1`` and ``L = T * max_symbols_per_frame``, ``frames`` the frame t
    at which each label was emitted; ``T = 0`` gives each row the empty hypothesis with
    score 0, ``B = 0`` an empty ``[0, 1, L]`` result.

  Raises:
    ValueError: the input contract of `transducer.check_encoder_output` is broken
      (naming ``enc`` / ``enc_paddings`` and the rows), or ``max_symbols_per_frame``
      is not an integer >= 1.
  """
  max_symbols_per_frame = transducer.positive_int(max_symbols_per_frame, "max_symbols_per_frame")
  transducer.check_encoder_output(enc, enc_paddings)
  labels, label_paddings, frames, state = _decode(fns, params, enc, enc_paddings, None, max_symbols_per_frame,
                                                  with_frames=True)
  return transducer.NBest(labels[:, None], label_paddings[:, None], state.score[:, None], frames[:, None])
