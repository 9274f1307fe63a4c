"""Batched modified beam search (at most one label per frame), jit-compiled.

The search topology of icefall's ``modified_beam_search``: at each frame every
hypothesis either takes blank or emits exactly one label, and both moves consume
the frame. Per frame, the ``beam * V`` candidates of the ``beam`` hypotheses are
scored, candidates that denote the same label sequence are merged with
``logaddexp`` (a blank-extension of ``y + k`` meets the ``k``-extension of ``y``),
and the ``beam`` best survive. With a beam as wide as the number of distinct
label sequences, the scores are the exact ``log`` of the summed probability of all
one-label-per-frame alignments of each sequence (tested against brute force).

All shapes are static (``L = T``, since at most one label per frame), so the whole
search is one XLA program batched over utterances.

Emission frames (`NBest.frames`): every hypothesis carries the frame of each label
(``[B, beam, T]`` int32 in the scan carry); a label emitted at frame t has frame t.
When the k-extension of y is merged into the blank-extension of y + k, the survivor
keeps the frames of the higher-scoring of the merged candidates: its own, unless an
extension of some y scores strictly more, in which case it takes y's frames and t for k.

Inputs follow `asrjax.decoding.transducer`'s contract, checked in the Python wrapper
before the jitted search (trailing 0/1 ``enc_paddings``, finite valid frames, else
`ValueError`; padded frames are never read). ``B = 0`` gives an empty `NBest`, ``T = 0``
the empty hypothesis with score 0 per row, both without compiling; traced under an
outer `jit`, a row breaking the contract gets NaN scores instead.

References:
  Kang et al., "Fast and parallel decoding for transducer", ICASSP 2023 (icefall's
  ``modified_beam_search``); Saon et al., "Alignment-length synchronous decoding
  for RNN transducer", ICASSP 2020.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from asrjax.decoding import transducer

_NEG_INF = -jnp.inf


def _merge_duplicates(cand, labels, num_labels, scores, blank_id, frames, t):
  """Folds the k-extension of y into the blank-extension of y + k.

  Args:
    cand: ``[B, K, V]`` candidate scores (``cand[..., blank]`` = hypothesis kept).
    labels: ``[B, K, L]`` hypotheses; ``num_labels [B, K]``; ``scores [B, K]``.
    frames: ``[B, K, L]`` int32 emission frame of each label (0 at padded positions).
    t: the current frame (scalar int32).

  Returns:
    ``(cand, blank_frames)``: ``cand`` with merged mass on the blank entries and the
    merged-away entries -inf; ``blank_frames [B, K, L]`` the frames of each blank entry
    after merging -- the hypothesis' own, or, where the best extension merged into it
    scores strictly more than its own blank entry, that extension's (its parent's frames
    and ``t`` for the last label).
  """
  length = labels.shape[-1]
  pos = jnp.arange(length)
  n_i = num_labels[:, :, None]  # hypothesis i = y + k ...
  n_j = num_labels[:, None, :]  # ... and j = y
  same_prefix = jnp.all(
      (labels[:, :, None, :] == labels[:, None, :, :]) | (pos >= n_j[..., None]), axis=-1
  )  # [B, K(i), K(j)]
  alive = jnp.isfinite(scores)
  match = same_prefix & (n_i == n_j + 1) & alive[:, :, None] & alive[:, None, :]
  last_i = jnp.take_along_axis(labels, jnp.maximum(num_labels - 1, 0)[..., None], axis=-1)[..., 0]  # [B, K]
  # Mass of j's extension by last(i), for each matching (i, j).
  ext = jnp.take_along_axis(cand, jnp.broadcast_to(last_i[:, None, :], cand.shape[:2] + (cand.shape[1],)), axis=-1)
  # ext[b, j, i] = cand[b, j, last_i[b, i]]
  merged = jnp.where(jnp.swapaxes(match, 1, 2), ext, _NEG_INF)  # [B, K(j), K(i)]
  extra = jax.nn.logsumexp(merged, axis=1)  # [B, K(i)]
  # frames: the strictly best merged extension replaces i's own alignment
  best_j = jnp.argmax(merged, axis=1)  # [B, K(i)]
  wins = jnp.max(merged, axis=1) > cand[:, :, blank_id]  # [B, K(i)]
  ext_frames = jnp.take_along_axis(frames, best_j[..., None], axis=1)  # [B, K(i), L]: frames of the best j
  ext_frames = jnp.where(pos == n_i - 1, t, jnp.where(pos < n_i - 1, ext_frames, 0))
  blank_frames = jnp.where(wins[..., None], ext_frames, frames)
  cand = cand.at[:, :, blank_id].set(jnp.logaddexp(cand[:, :, blank_id], extra))
  vocab = cand.shape[-1]
  killed = jnp.einsum("bij,biv->bjv", match.astype(jnp.float32), jax.nn.one_hot(last_i, vocab)) > 0
  return jnp.where(killed, _NEG_INF, cand), blank_frames


@functools.partial(jax.jit, static_argnames=("fns", "beam"))
def _search(fns, params, enc, enc_paddings, beam):
  batch, t_max, _ = enc.shape
  lengths = transducer.frame_lengths(enc_paddings)
  flat = batch * beam
  pred_out, pred_state = transducer.start_predictor(fns, params, flat)
  # shapes are static: a blank id outside the joint's outputs fails once, at trace time
  transducer.check_blank_id(fns.blank_id, jax.eval_shape(fns.joint, params, enc[:, 0], pred_out[:batch]).shape[-1])
  carry = dict(
      labels=jnp.zeros((batch, beam, t_max), jnp.int32),
      frames=jnp.zeros((batch, beam, t_max), jnp.int32),
      num_labels=jnp.zeros((batch, beam), jnp.int32),
      scores=jnp.full((batch, beam), _NEG_INF).at[:, 0].set(0.0),
      pred_out=pred_out,
      pred_state=pred_state,
  )

  def frame(carry, xs):
    enc_t, t = xs  # [B, D]
    pred = carry["pred_out"].reshape(batch, beam, -1)
    logits = fns.joint(params, jnp.broadcast_to(enc_t[:, None], (batch, beam, enc_t.shape[-1])), pred)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)  # [B, K, V]
    vocab = log_probs.shape[-1]
    cand = carry["scores"][..., None] + log_probs
    cand, blank_frames = _merge_duplicates(cand, carry["labels"], carry["num_labels"], carry["scores"],
                                           fns.blank_id, carry["frames"], t)
    top, idx = jax.lax.top_k(cand.reshape(batch, beam * vocab), beam)  # [B, K]
    parent, token = idx // vocab, (idx % vocab).astype(jnp.int32)
    emit = token != fns.blank_id
    gather = lambda x: jnp.take_along_axis(x, parent.reshape(parent.shape + (1,) * (x.ndim - 2)), axis=1)
    labels, num_labels = gather(carry["labels"]), gather(carry["num_labels"])
    at_end = emit[..., None] & (jnp.arange(t_max) == num_labels[..., None])
    labels = jnp.where(at_end, token[..., None], labels)
    # an emitting child extends its parent's frames by t; a blank child takes the parent's merged frames
    frames = jnp.where(emit[..., None], jnp.where(at_end, t, gather(carry["frames"])), gather(blank_frames))
    num_labels = num_labels + emit.astype(jnp.int32)
    flat_parent = (parent + jnp.arange(batch)[:, None] * beam).reshape(flat)
    parent_out = carry["pred_out"][flat_parent]
    parent_state = jax.tree.map(lambda x: x[flat_parent], carry["pred_state"])
    new_out, new_state = fns.predictor_step(params, token.reshape(flat), parent_state)
    emit_flat = emit.reshape(flat)
    new = dict(
        labels=labels,
        frames=frames,
        num_labels=num_labels,
        scores=top,
        pred_out=transducer.select_rows(emit_flat, new_out, parent_out),
        pred_state=transducer.select_rows(emit_flat, new_state, parent_state),
    )
    valid = t < lengths  # [B]
    keep = dict(
        labels=valid, frames=valid, num_labels=valid, scores=valid,
        pred_out=jnp.repeat(valid, beam), pred_state=jnp.repeat(valid, beam),
    )
    return {k: transducer.select_rows(keep[k], new[k], carry[k]) for k in carry}, None

  carry, _ = jax.lax.scan(frame, carry, (jnp.swapaxes(enc, 0, 1), jnp.arange(t_max)))
  order = jnp.argsort(-carry["scores"], axis=1)
  scores = jnp.take_along_axis(carry["scores"], order, axis=1)
  # only reachable under an outer jit (the wrapper raises on concrete inputs): loud, not silent
  scores = jnp.where(transducer.invalid_rows(enc, enc_paddings)[:, None], jnp.nan, scores)
  labels = jnp.take_along_axis(carry["labels"], order[..., None], axis=1)
  num_labels = jnp.take_along_axis(carry["num_labels"], order, axis=1)
  paddings = (jnp.arange(t_max) >= num_labels[..., None]).astype(jnp.float32)
  frames = jnp.take_along_axis(carry["frames"], order[..., None], axis=1)
  return transducer.NBest(jnp.where(paddings == 0, labels, 0), paddings, scores, jnp.where(paddings == 0, frames, 0))


def modified_beam_search(
    fns: transducer.TransducerFns,
    params,
    enc: jax.Array,
    enc_paddings: jax.Array,
    *,
    beam: int = 4,
) -> transducer.NBest:
  """Batched beam search with at most one label per frame.

  Args:
    fns: the transducer's pure functions.
    params: parameters passed to ``fns``.
    enc: ``[B, T, D]`` encoder output, finite in every valid frame.
    enc_paddings: ``[B, T]``, 1.0 = padded frame (trailing 0/1).
    beam: hypotheses kept per utterance (an integer >= 1).

  Returns:
    `NBest` with ``N = beam``, ``L = T``, best first, ``frames`` as in the module docstring;
    unused slots score -inf. ``T = 0``
    gives each row the empty hypothesis with score 0, ``B = 0`` an empty
    ``[0, beam, T]`` result.

  Raises:
    ValueError: the input contract of `transducer.check_encoder_output` is broken
      (naming ``enc`` / ``enc_paddings`` and the rows), or ``beam`` is not an integer >= 1.
  """
  beam = transducer.positive_int(beam, "beam")
  transducer.check_encoder_output(enc, enc_paddings)
  batch, t_max, _ = enc.shape
  if batch == 0 or t_max == 0:
    scores = jnp.full((batch, beam), _NEG_INF).at[:, 0].set(0.0)
    return transducer.NBest(jnp.zeros((batch, beam, t_max), jnp.int32), jnp.ones((batch, beam, t_max), jnp.float32),
                            scores, jnp.zeros((batch, beam, t_max), jnp.int32))
  return _search(fns, params, enc, enc_paddings, beam)
