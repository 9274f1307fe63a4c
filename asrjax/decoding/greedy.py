"""Batched greedy transducer search, one jit-compiled program.

At every frame the decoder repeatedly takes the joint network's argmax: a label is
emitted (and fed to the prediction network) until blank wins or
``max_symbols_per_frame`` labels were emitted, at which point the frame is left
as if blank had been chosen. The returned score is the log-probability of that
single alignment path, blank of every frame included.

The search is resumable: `greedy_start` gives the decoder state before the first
frame and `greedy_continue` decodes more frames from a state, returning the labels
emitted and the new state -- what a streaming recogniser calls once per chunk
(`asrjax.decoding.streaming`). `greedy_search` is the two in one call.

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012, sec. 2.3.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from asrjax.decoding import transducer


class GreedyState(NamedTuple):
  """Decoder state between frames: prediction-network output and state, path score ``[B]``."""

  pred_out: jax.Array
  pred_state: Any
  score: jax.Array


def greedy_start(fns: transducer.TransducerFns, params, batch: int) -> GreedyState:
  """The state before the first frame (predictor primed with blank)."""
  pred_out, pred_state = transducer.start_predictor(fns, params, batch)
  return GreedyState(pred_out, pred_state, jnp.zeros((batch,), jnp.float32))


@functools.partial(jax.jit, static_argnames=("fns", "max_symbols_per_frame"))
def _greedy_frames(fns, params, enc, enc_paddings, state, max_symbols_per_frame):
  batch, t_max, _ = enc.shape
  max_len = t_max * max_symbols_per_frame
  lengths = transducer.frame_lengths(enc_paddings)
  carry = dict(
      pred_out=state.pred_out,
      pred_state=state.pred_state,
      labels=jnp.zeros((batch, max_len), jnp.int32),
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
  return labels, label_paddings, GreedyState(carry["pred_out"], carry["pred_state"], carry["score"])


def _check(enc, enc_paddings, max_symbols_per_frame):
  transducer.check_encoder_output(enc, enc_paddings)
  if max_symbols_per_frame < 1:
    raise ValueError(f"max_symbols_per_frame must be >= 1; got {max_symbols_per_frame}.")


def greedy_continue(fns: transducer.TransducerFns, params, enc: jax.Array, enc_paddings: jax.Array,
                    state: GreedyState, *, max_symbols_per_frame: int = 4):
  """Decodes frames ``enc [B, T, D]`` from ``state``.

  Returns:
    ``(labels [B, T * max_symbols_per_frame], label_paddings, state)``: the labels
    emitted on these frames (left-aligned) and the state after the last valid frame.
  """
  _check(enc, enc_paddings, max_symbols_per_frame)
  return _greedy_frames(fns, params, enc, enc_paddings, state, int(max_symbols_per_frame))





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
    enc: ``[B, T, D]`` encoder output.
    enc_paddings: ``[B, T]``, 1.0 = padded frame (trailing).
    max_symbols_per_frame: labels emitted at most per frame (>= 1).

  Returns:
    `NBest` with ``N = 1`` and ``L = T * max_symbols_per_frame``.
  """
  labels, label_paddings, state = greedy_continue(
      fns, params, enc, enc_paddings, greedy_start(fns, params, enc.shape[0]),
      max_symbols_per_frame=max_symbols_per_frame)
  return transducer.NBest(labels[:, None], label_paddings[:, None], state.score[:, None])
