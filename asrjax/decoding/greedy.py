"""Batched greedy transducer search, one jit-compiled program.

At every frame the decoder repeatedly takes the joint network's argmax: a label is
emitted (and fed to the prediction network) until blank wins or
``max_symbols_per_frame`` labels were emitted, at which point the frame is left
as if blank had been chosen. The returned score is the log-probability of that
single alignment path, blank of every frame included.

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012, sec. 2.3.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from asrjax.decoding import transducer


@functools.partial(jax.jit, static_argnames=("fns", "max_symbols_per_frame"))
def _greedy(fns, params, enc, enc_paddings, max_symbols_per_frame):
  batch, t_max, _ = enc.shape
  max_len = t_max * max_symbols_per_frame
  lengths = transducer.frame_lengths(enc_paddings)
  pred_out, pred_state = transducer.start_predictor(fns, params, batch)
  carry = dict(
      pred_out=pred_out,
      pred_state=pred_state,
      labels=jnp.zeros((batch, max_len), jnp.int32),
      num_labels=jnp.zeros((batch,), jnp.int32),
      score=jnp.zeros((batch,), jnp.float32),
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
  return transducer.NBest(labels[:, None], label_paddings[:, None], carry["score"][:, None])


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
  transducer.check_encoder_output(enc, enc_paddings)
  if max_symbols_per_frame < 1:
    raise ValueError(f"max_symbols_per_frame must be >= 1; got {max_symbols_per_frame}.")
  return _greedy(fns, params, enc, enc_paddings, int(max_symbols_per_frame))
