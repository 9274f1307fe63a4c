"""Batched, jit-compiled transducer beam search with several labels per frame and LM fusion on device.

Modified adaptive expansion search (mAES, Kim et al. 2020), frame-synchronous and batched
over utterances and over the beam, with static shapes. Each utterance keeps ``beam``
hypotheses ``A_0`` (distinct label sequences with ``log P(y, frames < t)``). At frame t:

1. level 0: every hypothesis is scored by the joint network; ending the frame with blank
   puts it in the frame's *finished set* ``F``;
2. level j = 1 .. ``max_symbols_per_frame``: the ``expansion_beam`` (default ``beam``) best
   one-label extensions of the entries of level j-1 (over all their candidates, each
   scored ``log p(k | y, t)``, plus ``λ log P_LM(k | y) + β`` with an LM) form level j; a
   candidate is dropped when it scores below the ``beam``-th best of ``F`` (it could not
   enter the beam even if it ended the frame with probability 1: Graves' stopping rule),
   and, with ``expansion_gamma`` γ, when ``log p(k | y, t)`` is more than γ below the best
   label of ``y`` (mAES' prune-by-value). Level j is scored and its blank endings join ``F``.
   The levels stop early, for the whole batch, once no candidate is left;
3. ``F`` is kept merged: entries that denote the same label sequence (reached with
   different numbers of labels inside frame t) are summed with ``logaddexp`` and the
   ``beam`` best distinct sequences become the next frame's hypotheses.

A path through frame t is (a hypothesis of ``A_0``, the labels it emits in the frame), so
the entries of one level are distinct sequences and no alignment is counted twice: with
a beam wider than the number of reachable label sequences (nothing is pruned), every
final score is exactly ``log P(y|x)`` summed over the alignments with at most
``max_symbols_per_frame`` labels per frame (tested against brute force), and with an LM
exactly that ``+ λ log P_LM(y </s>) + β |y|`` (the LM factors depend on ``y`` alone) -- the
scoring rule of the host `beam_search`, whose numbers this search can be compared with.

Label sequences are compared by length and two 32-bit polynomial hashes (a collision
needs two different sequences of one length to agree on 64 bits).

*Shallow fusion on device*: ``lm`` is an `ngram_lm.NgramLM` or `word_lm.LexiconWordLM`,
laid out once by `device_lm.to_device` (cached per LM object); its state rides with each
hypothesis and is advanced with the labels, so the LM is evaluated once per hypothesis
per level, inside the compiled program. The finished hypotheses add ``λ log P_LM(</s> | y)``.

*Emission frames* (`NBest.frames`): a label emitted at frame t has frame t (absolute:
counted from the first frame of the stream). When entries are merged, the survivor keeps
the frames of its highest-scoring member (the first among ties).

*Streaming*: `maes_start` gives the state before the first frame, `maes_continue` decodes
more frames (one chunk) from a state and `maes_finish` returns the n-best of a state, so
decoding chunk by chunk equals decoding the whole utterance (tested). The state's label
buffers grow between chunks as needed; `maes_search` is the three in one call.

Inputs follow `asrjax.decoding.transducer`'s contract, checked in the Python wrappers before
the jitted search (trailing 0/1 ``enc_paddings``, finite valid frames, else `ValueError`;
padded frames are never read). ``B = 0`` gives an empty `NBest`, ``T = 0`` the empty
hypothesis with score 0 per row (``+ λ log P_LM(</s>)`` with an LM); traced under an outer
`jit`, a row breaking the contract gets NaN scores instead.

References:
  Kim, Lee, Shin, Ahn, Kim, Lee, "Accelerating RNN transducer inference via adaptive
  expansion search", IEEE Signal Processing Letters 27, 2020 (mAES; ESPnet's
  ``BeamSearchTransducer.modified_adaptive_expansion_search``).
  Graves, "Sequence transduction with recurrent neural networks", 2012 (prefix merging).
"""

from __future__ import annotations

import functools
from typing import Any

from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from asrjax.decoding import device_lm, transducer

_NEG_INF = -jnp.inf
_HASH_MULT = (0x9E3779B1, 0x85EBCA77)  # odd 32-bit multipliers of the two rolling hashes


class MaesState(struct.PyTreeNode):
  """Search state of ``B`` streams between frames (``K = beam``, ``L`` the label capacity).

  Attributes:
    scores: ``[B, K]`` float32 hypothesis scores, -inf for empty slots (NaN: a row that
      broke the input contract under an outer jit).
    labels, frames: ``[B, K, L]`` int32 label ids and their absolute emission frames.
    num_labels: ``[B, K]`` int32.
    hashes: ``[B, K, 2]`` uint32 rolling hashes of the label sequences.
    pred_out, pred_state: the prediction network after each hypothesis (leading dim ``B * K``).
    lm_state: the device LM's state per hypothesis (leading dim ``B * K``), or None.
    lm_lp: ``[B * K, V]`` the LM's log-probs of each hypothesis' next label (kept from when it was
      made: they do not change with the frame), or None.
    t0: ``[B]`` int32 valid frames consumed so far.
    lm: the device LM (`device_lm.to_device`), or None; lm_weight, length_bonus: λ and β.
    beam, max_symbols_per_frame, expansion_gamma, expansion_beam: the search options.
  """

  scores: jax.Array
  labels: jax.Array
  frames: jax.Array
  num_labels: jax.Array
  hashes: jax.Array
  pred_out: jax.Array
  pred_state: Any
  lm_state: Any
  lm_lp: Any
  t0: jax.Array
  lm: Any
  lm_weight: jax.Array
  length_bonus: jax.Array
  beam: int = struct.field(pytree_node=False)
  max_symbols_per_frame: int = struct.field(pytree_node=False)
  expansion_gamma: float | None = struct.field(pytree_node=False)
  expansion_beam: int = struct.field(pytree_node=False)


# ---------------------------------------------------------------------------- helpers
def _per_hyp(tree, batch: int, beam: int):
  """Leaves with leading dim ``B * K`` -> ``[B, K, ...]``."""
  return jax.tree.map(lambda x: x.reshape((batch, beam) + x.shape[1:]), tree)


def _flat(tree):
  """Leaves ``[B, K, ...]`` -> ``[B * K, ...]``."""
  return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)


def _take(tree, idx):
  """Leaves ``[B, M, ...]`` gathered along axis 1 at ``idx [B, K]``."""
  return jax.tree.map(lambda x: jnp.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1), tree)


def _hyps(state: MaesState) -> dict:
  """The per-hypothesis part of ``state`` with every leaf ``[B, K, ...]``."""
  b, k = state.scores.shape
  return dict(scores=state.scores, labels=state.labels, frames=state.frames, num_labels=state.num_labels,
              hashes=state.hashes, pred_out=_per_hyp(state.pred_out, b, k), pred_state=_per_hyp(state.pred_state, b, k),
              lm_state=_per_hyp(state.lm_state, b, k), lm_lp=_per_hyp(state.lm_lp, b, k))


def _merge(finished: dict, level: dict, ended: jax.Array, beam: int) -> dict:
  """``finished`` (``[B, K]`` merged) joined by ``level``'s hypotheses with scores ``ended`` (their
  blank endings): equal sequences summed, the ``beam`` best distinct ones kept, best first."""
  both = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), finished, dict(level, scores=ended))
  s, n, h = both["scores"], both["num_labels"], both["hashes"]
  alive = s > _NEG_INF
  same = (jnp.all(h[:, :, None] == h[:, None, :], axis=-1) & (n[:, :, None] == n[:, None, :])
          & alive[:, :, None] & alive[:, None, :])
  members = jnp.where(same, s[:, None, :], _NEG_INF)  # [B, 2K (entry), 2K (member)]
  best = jnp.argmax(members, axis=-1)  # the highest-scoring member represents the group
  total = jax.nn.logsumexp(members, axis=-1)
  merged = jnp.where(alive & (best == jnp.arange(s.shape[1])), total, jnp.where(jnp.isnan(s), s, _NEG_INF))
  top, idx = jax.lax.top_k(merged, beam)
  out = _take(both, idx)
  out["scores"] = top
  return out


def _score(fns, params, enc_t, pred_out):
  """``enc_t [B, D]``, ``pred_out [B, K, P]`` -> ``[B, K, V]`` float32 log-probs."""
  enc = jnp.broadcast_to(enc_t[:, None], pred_out.shape[:2] + enc_t.shape[-1:])
  return jax.nn.log_softmax(fns.joint(params, enc, pred_out).astype(jnp.float32), axis=-1)


def _live_rows(fns, params, state: MaesState, enc_t, tokens, pred_state, lm_state, alive):
  """The prediction network and the LM advanced by ``tokens [R]`` and the joint's log-probs at
  ``enc_t [B, D]`` (row r belongs to utterance ``r // (R / B)``), computed for the ``alive [R]`` rows only.

  A level's rows are mostly pruned (-inf) after its first: the live ones are gathered to the front
  and processed ``ceil(R / 4)`` at a time in a while loop, so the cost follows the live rows, not
  ``R``. Dead rows keep their inputs and get zero log-probs (their scores are -inf). A chunk that
  runs past the live rows recomputes rows from the unchanged inputs: the same values.

  Returns ``(pred_out [R, P], pred_state, lm_state, lp [R, V], lm_lp [R, V] or None)``.
  """
  rows, batch = tokens.shape[0], enc_t.shape[0]
  width, chunk = rows // batch, max(1, -(-rows // 4))
  order = jnp.argsort(~alive, stable=True)  # live rows first
  live = jnp.sum(alive.astype(jnp.int32))

  def compute(sel):
    out, pstate = fns.predictor_step(params, tokens[sel], jax.tree.map(lambda x: x[sel], pred_state))
    lp = jax.nn.log_softmax(fns.joint(params, enc_t[sel // width], out).astype(jnp.float32), axis=-1)
    lstate = lm_lp = None
    if state.lm is not None:
      lstate = state.lm.advance(jax.tree.map(lambda x: x[sel], lm_state), tokens[sel])
      lm_lp = state.lm.log_probs(lstate)[:, :lp.shape[-1]]
    return out, pstate, lstate, lp, lm_lp

  shapes = jax.eval_shape(compute, order[:chunk])
  init = jax.tree.map(lambda sd: jnp.zeros((rows,) + sd.shape[1:], sd.dtype), shapes)
  init = (init[0], pred_state, lm_state) + tuple(init[3:])

  def more(c):
    return c[0] * chunk < live

  def body(c):
    i, acc = c
    sel = jax.lax.dynamic_slice(order, (jnp.minimum(i * chunk, rows - chunk),), (chunk,))
    return i + 1, jax.tree.map(lambda a, v: a.at[sel].set(v), acc, compute(sel))

  _, out = jax.lax.while_loop(more, body, (jnp.int32(0), init))
  return out


def _expand(fns, params, state: MaesState, level: dict, lp, threshold, enc_t):
  """Level j -> level j + 1: the ``expansion_beam`` best one-label extensions of ``level`` (``lp [B, K, V]``
  its log-probs at this frame; ``level["lm_lp"]`` its LM log-probs), those below ``threshold [B]``
  dropped; predictor and LM advanced and the new entries scored (`_live_rows`). The label goes to the
  in-frame ``suffix`` (the label buffers are written once per frame, `_frame_end`).

  Returns ``(level, lp)`` of level j + 1.
  """
  batch, beam, vocab = lp.shape
  blank = fns.blank_id
  fused = lp
  if state.lm is not None:
    # λ = 0 adds nothing, also where the LM gives -inf (0 * -inf would be NaN)
    fused = fused + jnp.where(state.lm_weight > 0, state.lm_weight * level["lm_lp"], 0.0) + state.length_bonus
  is_blank = jnp.arange(vocab) == blank
  if state.expansion_gamma is not None:
    best = jnp.max(jnp.where(is_blank, _NEG_INF, lp), axis=-1, keepdims=True)
    fused = jnp.where(lp >= best - state.expansion_gamma, fused, _NEG_INF)
  cand = level["scores"][..., None] + jnp.where(is_blank, _NEG_INF, fused)
  width = state.expansion_beam
  top, idx = jax.lax.top_k(cand.reshape(batch, beam * vocab), width)
  top = jnp.where(top >= threshold[:, None], top, _NEG_INF)
  parent, token = idx // vocab, (idx % vocab).astype(jnp.int32)
  new = _take(level, parent)
  new["suffix"] = jnp.where(jnp.arange(new["suffix"].shape[-1]) == new["count"][..., None], token[..., None],
                            new["suffix"])
  new["count"] = new["count"] + 1
  new["num_labels"] = new["num_labels"] + 1
  mult = jnp.asarray(_HASH_MULT, jnp.uint32)
  new["hashes"] = new["hashes"] * mult + (token.astype(jnp.uint32) + 1)[..., None]
  new["scores"] = top
  out, pstate, lstate, new_lp, lm_lp = _live_rows(fns, params, state, enc_t, token.reshape(-1),
                                                  _flat(new["pred_state"]), _flat(new["lm_state"]),
                                                  (top > _NEG_INF).reshape(-1))
  new["pred_out"], new["pred_state"] = _per_hyp(out, batch, width), _per_hyp(pstate, batch, width)
  new["lm_state"], new["lm_lp"] = _per_hyp(lstate, batch, width), _per_hyp(lm_lp, batch, width)
  return new, new_lp.reshape(batch, width, vocab)


def _frame_end(start: dict, finished: dict, t_abs) -> dict:
  """The next hypotheses: each finished entry's start-of-frame hypothesis (``origin``) with its in-frame
  ``suffix`` appended to the label buffers (frames ``t_abs [B]``)."""
  labels = _take(start["labels"], finished["origin"])
  frames = _take(start["frames"], finished["origin"])
  first = jnp.take_along_axis(start["num_labels"], finished["origin"], axis=1)[..., None]  # [B, K, 1]
  pos = jnp.arange(labels.shape[-1])
  inside = (pos >= first) & (pos < first + finished["count"][..., None])
  rel = jnp.clip(pos - first, 0, finished["suffix"].shape[-1] - 1)
  labels = jnp.where(inside, jnp.take_along_axis(finished["suffix"], rel, axis=-1), labels)
  frames = jnp.where(inside, t_abs[:, None, None], frames)
  out = {k: v for k, v in finished.items() if k not in ("origin", "suffix", "count")}
  return dict(out, labels=labels, frames=frames)


@functools.partial(jax.jit, static_argnames=("fns",))
def _continue(fns, params, enc, enc_paddings, state: MaesState) -> MaesState:
  batch, t_max, _ = enc.shape
  beam, max_symbols = state.beam, state.max_symbols_per_frame
  lengths = transducer.frame_lengths(enc_paddings)
  # shapes are static: a blank id outside the joint's outputs fails once, at trace time
  transducer.check_blank_id(fns.blank_id, jax.eval_shape(fns.joint, params, enc[:, 0], state.pred_out[:batch]).shape[-1])

  def frame(hyps, xs):
    enc_t, t = xs
    t_abs = state.t0 + t
    valid = t < lengths
    lp = _score(fns, params, enc_t, hyps["pred_out"])
    # a level's entries: a start-of-frame hypothesis (origin) and the labels it emitted in the frame;
    # past a row's last frame its entries are dead (-inf), so its padded frames compute no live rows
    level = {k: v for k, v in hyps.items() if k not in ("labels", "frames")}
    level["scores"] = jnp.where(valid[:, None], level["scores"], _NEG_INF)
    level.update(origin=jnp.broadcast_to(jnp.arange(beam), (batch, beam)),
                 suffix=jnp.zeros((batch, beam, max_symbols), jnp.int32), count=jnp.zeros((batch, beam), jnp.int32))
    empty = dict(level, scores=jnp.full_like(level["scores"], _NEG_INF))
    finished = _merge(empty, level, level["scores"] + lp[..., fns.blank_id], beam)

    def more(c):
      lev, _, fin, j = c
      return (j < max_symbols) & jnp.any(lev["scores"] > _NEG_INF)

    def step(c):
      lev, lev_lp, fin, j = c
      nxt, nxt_lp = _expand(fns, params, state, lev, lev_lp, fin["scores"][:, beam - 1], enc_t)
      return nxt, nxt_lp, _merge(fin, nxt, nxt["scores"] + nxt_lp[..., fns.blank_id], beam), j + 1

    # level 1 (from the beam's K hypotheses) outside the loop: from there on a level holds
    # expansion_beam entries, and a while loop's carry keeps one shape
    carry = step((level, lp, finished, jnp.int32(0)))
    _, _, finished, _ = jax.lax.while_loop(more, step, carry)
    new = _frame_end(hyps, finished, t_abs)
    return jax.tree.map(lambda a, b: jnp.where(valid.reshape((batch,) + (1,) * (a.ndim - 1)), a, b),
                        new, hyps), None

  hyps, _ = jax.lax.scan(frame, _hyps(state), (jnp.swapaxes(enc, 0, 1), jnp.arange(t_max)))
  # only reachable under an outer jit (the wrapper raises on concrete inputs): loud, not silent
  scores = jnp.where(transducer.invalid_rows(enc, enc_paddings)[:, None], jnp.nan, hyps["scores"])
  return state.replace(scores=scores, labels=hyps["labels"], frames=hyps["frames"], num_labels=hyps["num_labels"],
                       hashes=hyps["hashes"], pred_out=_flat(hyps["pred_out"]), pred_state=_flat(hyps["pred_state"]),
                       lm_state=_flat(hyps["lm_state"]), lm_lp=_flat(hyps["lm_lp"]), t0=state.t0 + lengths)


@jax.jit
def _finish(state: MaesState) -> transducer.NBest:
  scores = state.scores
  if state.lm is not None:
    eos = state.lm.log_probs(state.lm_state)[:, state.lm.eos_id].reshape(scores.shape)
    scores = scores + jnp.where(state.lm_weight > 0, state.lm_weight * eos, 0.0)
  order = jnp.argsort(-scores, axis=1)
  scores = jnp.take_along_axis(scores, order, axis=1)
  labels = jnp.take_along_axis(state.labels, order[..., None], axis=1)
  frames = jnp.take_along_axis(state.frames, order[..., None], axis=1)
  num_labels = jnp.take_along_axis(state.num_labels, order, axis=1)
  paddings = (jnp.arange(labels.shape[-1]) >= num_labels[..., None]).astype(jnp.float32)
  return transducer.NBest(jnp.where(paddings == 0, labels, 0), paddings, scores, jnp.where(paddings == 0, frames, 0))


# ---------------------------------------------------------------------------- public API
def _check_lm(fns, vocab: int, lm, lm_weight, length_bonus):
  """The LM options checked as `beam_search` checks them (`transducer.check_fusion`) against the
  joint's ``vocab``; returns ``(device lm or None, λ, β)``."""
  dev = None if lm is None else device_lm.to_device(lm)
  lm_weight, length_bonus = transducer.check_fusion(fns, vocab, dev, lm_weight, length_bonus)
  return dev, lm_weight, length_bonus


def maes_start(fns: transducer.TransducerFns, params, batch: int, *, enc_dim: int, beam: int = 4,
               max_symbols_per_frame: int = 4, expansion_gamma: float | None = None,
               expansion_beam: int | None = None, lm=None, lm_weight: float = 0.0, length_bonus: float = 0.0,
               capacity: int = 64) -> MaesState:
  """The search state of ``batch`` streams before their first frame.

  Args:
    fns, params: the transducer.
    batch: streams (``B >= 0``).
    enc_dim: ``D``, the encoder output width (to check the LM against the joint network's ``V``).
    beam: hypotheses kept per stream (>= 1).
    max_symbols_per_frame: labels one path may emit in a frame (>= 1).
    expansion_gamma: γ > 0 of mAES' prune-by-value, or None (off).
    expansion_beam: extensions kept per level (1 .. ``beam``; default ``beam``).
    lm: an `ngram_lm.NgramLM` or `word_lm.LexiconWordLM` over the model's ``V`` ids (blank 0), or its
      device layout; lm_weight: λ >= 0; length_bonus: β (both finite; need ``lm``).
    capacity: initial label capacity per hypothesis (grown by `maes_continue` as needed).

  Raises:
    ValueError: an option out of range (naming it), or an LM of another vocabulary.
  """
  beam = transducer.positive_int(beam, "beam")
  max_symbols_per_frame = transducer.positive_int(max_symbols_per_frame, "max_symbols_per_frame")
  if expansion_gamma is not None:
    expansion_gamma = transducer.finite_number(expansion_gamma, "expansion_gamma")
    if expansion_gamma <= 0:
      raise ValueError(f"expansion_gamma must be > 0 (or None: no prune-by-value); got {expansion_gamma!r}.")
  expansion_beam = transducer.positive_int(beam if expansion_beam is None else expansion_beam, "expansion_beam")
  if expansion_beam > beam:
    raise ValueError(f"expansion_beam must be <= beam ({beam}); got {expansion_beam}.")
  if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 0:
    raise ValueError(f"batch must be an integer >= 0; got {batch!r}.")
  vocab = transducer.joint_vocab_size(fns, params, enc_dim)  # traced once: ~40 ms a call
  transducer.check_blank_id(fns.blank_id, vocab)
  dev, lm_weight, length_bonus = _check_lm(fns, vocab, lm, lm_weight, length_bonus)
  flat = batch * beam
  pred_out, pred_state = _start_predictor(fns, params, flat)
  capacity = transducer.positive_int(capacity, "capacity")
  return MaesState(
      scores=jnp.full((batch, beam), _NEG_INF, jnp.float32).at[:, 0].set(0.0),
      labels=jnp.zeros((batch, beam, capacity), jnp.int32),
      frames=jnp.zeros((batch, beam, capacity), jnp.int32),
      num_labels=jnp.zeros((batch, beam), jnp.int32),
      hashes=jnp.zeros((batch, beam, 2), jnp.uint32),
      pred_out=pred_out, pred_state=pred_state,
      lm_state=None if dev is None else dev.start(flat),
      lm_lp=None if dev is None else _start_lm_log_probs(dev, flat),
      t0=jnp.zeros((batch,), jnp.int32),
      lm=dev, lm_weight=jnp.float32(lm_weight), length_bonus=jnp.float32(length_bonus),
      beam=beam, max_symbols_per_frame=max_symbols_per_frame, expansion_gamma=expansion_gamma,
      expansion_beam=expansion_beam)


@functools.partial(jax.jit, static_argnames=("fns", "batch"))
def _start_predictor(fns, params, batch):
  """`transducer.start_predictor` compiled (the parameters enter as arguments, also under an outer jit)."""
  return transducer.start_predictor(fns, params, batch)


@functools.partial(jax.jit, static_argnames=("rows",))
def _start_lm_log_probs(lm, rows):
  """``[rows, V]`` the LM's log-probs of a sentence's first label (entry V, end-of-sentence, dropped)."""
  return lm.log_probs(lm.start(rows))[:, :lm.vocab_size]


def _with_capacity(state: MaesState, needed: int) -> MaesState:
  """``state`` with label buffers of at least ``needed`` positions (grown to a power of two)."""
  have = state.labels.shape[-1]
  if have >= needed:
    return state
  size = 1 << (needed - 1).bit_length()
  pad = ((0, 0), (0, 0), (0, size - have))
  return state.replace(labels=jnp.pad(state.labels, pad), frames=jnp.pad(state.frames, pad))


def maes_continue(fns: transducer.TransducerFns, params, enc: jax.Array, enc_paddings: jax.Array,
                  state: MaesState) -> MaesState:
  """Decodes frames ``enc [B, T, D]`` (``enc_paddings [B, T]``, 1 = padded) from ``state``.

  Returns the state after each row's last valid frame (``t0`` advanced by its valid frames);
  ``T = 0`` returns ``state`` itself. The label buffers grow first if this chunk could
  overflow them (a host read of ``num_labels``).

  Raises:
    ValueError: the input contract (`transducer.check_encoder_output`) is broken, or ``state``
      is for another batch size. ``state`` is a value, untouched by a failed call.
  """
  transducer.check_encoder_output(enc, enc_paddings)
  batch, t_max, _ = enc.shape
  if state.scores.shape[0] != batch:
    raise ValueError(f"state is for {state.scores.shape[0]} streams but enc has B = {batch} rows; "
                     f"start it with maes_start(fns, params, {batch}, ...).")
  if batch == 0 or t_max == 0:
    return state
  longest = int(jax.device_get(jnp.max(state.num_labels)))
  state = _with_capacity(state, longest + t_max * state.max_symbols_per_frame)
  return _continue(fns, params, enc, enc_paddings, state)


def maes_finish(state: MaesState) -> transducer.NBest:
  """The n-best of ``state``: ``[B, beam, L]``, best first, each score plus ``λ log P_LM(</s> | y)``
  with an LM; empty slots score -inf."""
  if state.scores.shape[0] == 0:
    shape = state.labels.shape
    return transducer.NBest(jnp.zeros(shape, jnp.int32), jnp.ones(shape, jnp.float32), state.scores,
                            jnp.zeros(shape, jnp.int32))
  return _finish(state)


def maes_search(
    fns: transducer.TransducerFns,
    params,
    enc: jax.Array,
    enc_paddings: jax.Array,
    *,
    beam: int = 4,
    max_symbols_per_frame: int = 4,
    expansion_gamma: float | None = None,
    expansion_beam: int | None = None,
    lm=None,
    lm_weight: float = 0.0,
    length_bonus: float = 0.0,
) -> transducer.NBest:
  """Batched mAES beam search on device (module docstring).

  Args:
    fns: the transducer's pure functions.
    params: parameters passed to ``fns``.
    enc: ``[B, T, D]`` encoder output, finite in every valid frame.
    enc_paddings: ``[B, T]``, 1.0 = padded frame (trailing 0/1).
    beam: hypotheses kept per utterance (an integer >= 1).
    max_symbols_per_frame: labels one path may emit in a frame (an integer >= 1).
    expansion_gamma: γ > 0, mAES' prune-by-value (labels more than γ below a hypothesis' best
      label are not expanded), or None (off: only the beam prunes).
    expansion_beam: extensions a level keeps per utterance, 1 .. ``beam`` (default ``beam``): the
      predictor, joint and LM run on this many rows per level past the first, so a smaller one
      makes a wide beam cheaper (module docstring).
    lm: an `ngram_lm.NgramLM` or `word_lm.LexiconWordLM` over the joint network's ``V`` ids
      (blank 0) for shallow fusion, or its `device_lm` layout.
    lm_weight: λ >= 0, finite (needs ``lm``).
    length_bonus: β, finite, added per emitted label (needs ``lm``).

  Returns:
    `NBest` ``[B, beam, L]`` best first (``L = T * max_symbols_per_frame``, at least 1);
    scores as in the module docstring; unused slots score -inf.

  Raises:
    ValueError: the input contract of `transducer.check_encoder_output` is broken (naming
      ``enc`` / ``enc_paddings`` and the rows), or an option is out of range (naming it).
  """
  transducer.check_encoder_output(enc, enc_paddings)
  batch, t_max, enc_dim = enc.shape
  state = maes_start(fns, params, batch, enc_dim=enc_dim, beam=beam, max_symbols_per_frame=max_symbols_per_frame,
                     expansion_gamma=expansion_gamma, expansion_beam=expansion_beam, lm=lm, lm_weight=lm_weight,
                     length_bonus=length_bonus,
                     capacity=max(1, t_max * max_symbols_per_frame))
  if batch and t_max:
    state = _continue(fns, params, enc, enc_paddings, state)
  return maes_finish(state)
