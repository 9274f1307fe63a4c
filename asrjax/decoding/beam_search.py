"""Transducer beam search of Graves (2012) with prefix merging, as in ESPnet.

Frame-synchronous and per utterance. ``B`` holds the hypotheses alive after
frame t-1 with ``log P(y, frames < t)``. At frame t:

1. *prefix merging* -- each hypothesis y in B also gains the mass of every shorter
   hypothesis ŷ in B that is a prefix of y, extended to y inside frame t:
   ``A[y] = B[y] + sum_ŷ B[ŷ] prod_i p(y_{i+1} | y[:i], t)``;
2. *best-first expansion* -- the most probable y* is taken out of A, moves to the
   new set with ``+ log p(blank | y*, t)``, and its ``expand`` most probable
   one-label extensions enter A (an extension already in B was counted by step 1
   and is skipped, so no path is counted twice);
3. this stops once the new set holds ``beam`` hypotheses more probable than
   anything left in A, and the new set is cut to ``beam``.

Without pruning every path is counted once, so a hypothesis' final score is its
exact ``log P(y|x)`` summed over all alignments (tested against brute force). A
label sequence extended more than ``max_symbols_per_frame`` times within one frame
is not extended further -- a guard against runaway expansion, not part of the model.

*Emission frames* (`NBest.frames`): each hypothesis carries the frame of each of its
labels along one alignment, the one that built its score's largest term: a label
appended at frame t (best-first expansion) has frame t; when prefix merging adds to y
the mass of a shorter ŷ extended inside frame t, y keeps its own frames if its
start-of-frame score ``B[y]`` is the largest of the merged terms (ties included), else
takes those of the best ŷ with the labels past ŷ at frame t. So the frames are those of
the better-scoring of the merged paths (a Viterbi-like choice), not an average.

*Shallow fusion* (optional): with an `ngram_lm.NgramLM` and ``lm_weight`` λ, every
label k appended to y is scored ``log p(k | y, t) + λ log P_LM(k | y) + β`` (β =
``length_bonus``, against the deletions an LM weight causes), and a finished
hypothesis adds ``λ log P_LM(</s> | y)``. The LM factors depend on y alone, so without
pruning a final score is exactly ``log P(y|x) + λ log P_LM(y </s>) + β |y|`` (tested
against brute force).

Inputs follow `asrjax.decoding.transducer`'s contract, checked eagerly (the search runs
on the host, so the inputs are always concrete): trailing 0/1 ``enc_paddings`` and
finite valid frames, else `ValueError` naming the rows; padded frames are never read.
``B = 0`` gives an empty `NBest`; ``T = 0`` (or a row of padded frames only) gives the
empty hypothesis with score 0 (``+ λ log P_LM(</s>)`` with an LM). Options are checked
before any work: integers >= 1 for ``beam``/``expand``/``nbest``/``max_symbols_per_frame``,
a finite ``lm_weight >= 0`` (a negative weight times an LM's ``-inf`` would be ``+inf``)
and ``length_bonus``, and an LM over the joint network's ``V`` ids.

The search is inherently sequential; it runs on the host and calls jit-compiled
prediction/joint steps, caching the prediction network output per prefix. Each frame
costs one batched joint call for the prefixes known at its start plus one call per
new extension taken out of A (predictor step and joint fused). Use
`modified_beam_search` for a batched, jit-compiled search.

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012, alg. 1.
  Watanabe et al., "ESPnet: end-to-end speech processing toolkit", 2018
  (``espnet.nets.beam_search_transducer.default_beam_search``).
"""

from __future__ import annotations

import functools
import heapq

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.decoding import transducer
from asrjax.losses.contracts import is_concrete


@functools.partial(jax.jit, static_argnames=("fns",))
def _start(fns, params):
  """The prediction network primed with blank, for one hypothesis: ``(out [1, P], state)``."""
  return transducer.start_predictor(fns, params, 1)


def _joint_log_probs(fns, params, enc_t, pred_outs):
  """``enc_t [D]`` and ``[K, P]`` prediction outputs -> ``[K, V]`` log-probs."""
  enc = jnp.broadcast_to(enc_t[None], (pred_outs.shape[0],) + enc_t.shape)
  return jax.nn.log_softmax(fns.joint(params, enc, pred_outs).astype(jnp.float32), axis=-1)


@functools.partial(jax.jit, static_argnames=("fns",))
def _log_probs_many(fns, params, enc_t, pred_outs):
  """``[K, P]`` prediction outputs at one frame -> ``[K, V]`` log-probs, in one call."""
  return _joint_log_probs(fns, params, enc_t, pred_outs)


@functools.partial(jax.jit, static_argnames=("fns",))
def _extend_and_score(fns, params, label, state, enc_t):
  """One label appended to a prefix and the result scored at a frame, in one call.

  Returns ``(out [1, P], state, log_probs [1, V])``.
  """
  out, state = fns.predictor_step(params, jnp.reshape(label, (1,)), state)
  return out, state, _joint_log_probs(fns, params, enc_t, out)


class _PrefixCache:
  """Prediction-network output and state for every prefix seen, computed lazily."""

  def __init__(self, fns, params):
    self._fns, self._params = fns, params
    out, state = _start(fns, params)
    self._cache = {(): (np.asarray(out), state)}

  def output(self, prefix: tuple[int, ...]) -> np.ndarray:
    """``[1, P]`` prediction-network output after the cached ``prefix`` (host copy: the search stacks them)."""
    return self._cache[prefix][0]

  def score(self, prefix: tuple[int, ...], enc_t: np.ndarray) -> np.ndarray:
    """``[V]`` log-probs of ``prefix`` at ``enc_t``: a joint call when it is cached (an
    extension made in an earlier frame), else one fused predictor step + joint that caches
    it (``prefix`` must then be one label past a cached prefix)."""
    if prefix in self._cache:
      return np.asarray(_log_probs_many(self._fns, self._params, enc_t, self._cache[prefix][0]), np.float64)[0]
    parent_state = self._cache[prefix[:-1]][1]
    out, state, lp = _extend_and_score(self._fns, self._params, np.int32(prefix[-1]), parent_state, enc_t)
    self._cache[prefix] = (np.asarray(out), state)
    return np.asarray(lp, np.float64)[0]


def _search_one(fns, params, enc, beam, expand, max_symbols_per_frame, lm=None, lm_weight=0.0, length_bonus=0.0):
  """Beam search over one utterance ``enc [T, D]`` -> list of (labels, score, frames), best first
  (``frames``: the emission frame of each label, module docstring)."""
  cache = _PrefixCache(fns, params)
  enc = np.asarray(enc)  # per-frame rows are sliced on the host, not dispatched one by one

  def _fuse(lp, prefix):
    """Label scores of ``prefix`` at a frame: ``lp`` plus, with an LM, λ log P_LM + β off the blank."""
    if lm is None:
      return lp
    # λ = 0 adds nothing, also where the LM gives -inf (0 * -inf would be NaN)
    fused = lp + (lm_weight * lm.log_probs(prefix)[:-1] if lm_weight else 0.0) + length_bonus
    fused[fns.blank_id] = lp[fns.blank_id]
    return fused

  hyps = {(): 0.0}
  frames = {(): ()}  # hypothesis or open prefix -> the frame of each of its labels
  for t in range(enc.shape[0]):
    lp_cache = {}  # prefix -> label scores at this frame: log p(. | prefix, t) (+ LM and bonus off the blank)

    def log_probs(t, prefix):
      if prefix not in lp_cache:  # reached by expansion in this frame
        lp_cache[prefix] = _fuse(cache.score(prefix, enc[t]), prefix)
      return lp_cache[prefix]

    prev = hyps
    # Every hypothesis of the beam is scored at this frame (popped or merged), and so is
    # every prefix that prefix merging walks through; all of them are cached, so one
    # batched joint call scores them, padded to a power of two to bound recompilation.
    keys = list(prev)
    # merge_starts[y]: the lengths i < |y| at which y[:i] is itself in the beam
    merge_starts = {y: [i for i in range(len(y)) if y[:i] in prev] for y in prev}
    walked = {y[:j] for y, starts in merge_starts.items() if starts for j in range(starts[0], len(y))}
    keys += sorted(walked.difference(prev))
    outs = [cache.output(y) for y in keys]
    padded = 1 << max(len(keys) - 1, 0).bit_length()
    stacked = np.concatenate(outs + [outs[0]] * (padded - len(keys)), axis=0)
    many = np.asarray(_log_probs_many(fns, params, enc[t], stacked), np.float64)
    for i, y in enumerate(keys):
      lp_cache[y] = _fuse(many[i], y)
    # 1. prefix merging, from the start-of-frame scores in `prev`.
    a, prev_frames, frames = {}, frames, {}
    for y, score in prev.items():
      terms = [score]
      for i in merge_starts[y]:
        terms.append(prev[y[:i]] + sum(log_probs(t, y[:j])[y[j]] for j in range(i, len(y))))
      a[y] = float(np.logaddexp.reduce(terms))
      frames[y] = _merged_frames(y, terms, merge_starts[y], prev_frames, t)
    depth = {y: 0 for y in a}  # labels emitted in this frame
    # 2. best-first expansion: a max-heap of open prefixes (each prefix has one parent,
    # so it enters at most once) and a min-heap of the `beam` best finished scores.
    open_ = [(-score, y) for y, score in a.items()]
    heapq.heapify(open_)
    new, kept = {}, []
    while open_:
      neg, y = heapq.heappop(open_)
      score = -neg
      lp = log_probs(t, y)
      new[y] = score + lp[fns.blank_id]
      if len(kept) < beam:
        heapq.heappush(kept, new[y])
      else:
        heapq.heappushpop(kept, new[y])
      if depth[y] < max_symbols_per_frame:
        order = [int(k) for k in np.argsort(-lp) if k != fns.blank_id][:expand]
        for k in order:
          ext = y + (k,)
          if ext not in prev:
            heapq.heappush(open_, (-(score + lp[k]), ext))
            depth[ext] = depth[y] + 1
            frames[ext] = frames[y] + (t,)
      # 3. stop once `beam` finished hypotheses beat everything still open.
      if len(kept) >= beam and open_ and kept[0] >= -open_[0][0]:
        break
    hyps = dict(sorted(new.items(), key=lambda kv: -kv[1])[:beam])
    frames = {y: frames[y] for y in hyps}
  if lm is not None and lm_weight:
    hyps = {y: s + lm_weight * float(lm.log_probs(y)[lm.eos_id]) for y, s in hyps.items()}
  return [(y, s, frames[y]) for y, s in sorted(hyps.items(), key=lambda kv: -kv[1])]


def _merged_frames(y, terms, starts, prev_frames, t):
  """The frames of ``y`` after prefix merging at frame ``t``: those of its largest term.

  ``terms[0]`` is ``y``'s own start-of-frame score (frames ``prev_frames[y]``), ``terms[m]`` (m >= 1)
  the mass of prefix ``y[:starts[m - 1]]`` extended to ``y`` inside frame ``t`` (its frames, then ``t``
  for each label added). A tie keeps the earliest term, ``y``'s own frames first.
  """
  best = int(np.argmax(terms))
  if best == 0:
    return prev_frames[y]
  i = starts[best - 1]
  return prev_frames[y[:i]] + (t,) * (len(y) - i)


def beam_search(
    fns: transducer.TransducerFns,
    params,
    enc: jax.Array,
    enc_paddings: jax.Array,
    *,
    beam: int = 4,
    expand: int | None = None,
    nbest: int | None = None,
    max_symbols_per_frame: int = 10,
    length_norm: bool = False,
    lm=None,
    lm_weight: float = 0.0,
    length_bonus: float = 0.0,
) -> transducer.NBest:
  """Graves/ESPnet beam search with prefix merging.

  Args:
    fns: the transducer's pure functions.
    params: parameters passed to ``fns``.
    enc: ``[B, T, D]`` encoder output, finite in every valid frame (concrete: the search
      runs on the host, not under `jit`).
    enc_paddings: ``[B, T]``, 1.0 = padded frame (trailing 0/1).
    beam: hypotheses kept per frame (an integer >= 1).
    expand: one-label extensions tried per popped hypothesis (default ``beam``; >= 1).
    nbest: hypotheses returned per utterance (default ``beam``; >= 1).
    max_symbols_per_frame: extensions of one hypothesis within a frame, at most (>= 1).
    length_norm: rank the final list by ``score / max(len, 1)`` (ESPnet's
      ``score_norm``); returned scores stay unnormalised log-probabilities.
    lm: an `ngram_lm.NgramLM` or `word_lm.LexiconWordLM` over the same ``V`` token ids
      as the joint network (blank 0) for shallow fusion.
    lm_weight: λ >= 0, finite, the LM's log-probability weight (needs ``lm``).
    length_bonus: β, finite, added per emitted label (needs ``lm``).

  Returns:
    `NBest` ``[B, nbest, L]`` whose scores are ``log P(y|x)`` summed over the alignments
    the search kept, plus ``λ log P_LM(y </s>) + β |y|`` with an LM; ``L >= 1``; ``frames``
    as in the module docstring.

  Raises:
    ValueError: the input contract of `transducer.check_encoder_output` is broken
      (naming ``enc`` / ``enc_paddings`` and the rows), or an option is out of range
      (naming it); all before any search.
    TypeError: ``enc`` or ``enc_paddings`` is a tracer (the search cannot be traced).
  """
  if not is_concrete(enc, enc_paddings):
    raise TypeError("beam_search runs on the host and cannot be traced (jit/vmap): pass concrete enc and "
                    "enc_paddings, or use modified_beam_search inside jit.")
  transducer.check_encoder_output(enc, enc_paddings)
  beam = transducer.positive_int(beam, "beam")
  expand = transducer.positive_int(beam if expand is None else expand, "expand")
  nbest = transducer.positive_int(beam if nbest is None else nbest, "nbest")
  max_symbols_per_frame = transducer.positive_int(max_symbols_per_frame, "max_symbols_per_frame")
  vocab = transducer.joint_vocab_size(fns, params, enc.shape[-1], enc.dtype)
  transducer.check_blank_id(fns.blank_id, vocab)
  if lm is not None and not all(hasattr(lm, a) for a in ("vocab_size", "eos_id", "log_probs")):
    raise ValueError(f"lm must have vocab_size, eos_id and log_probs (an NgramLM or LexiconWordLM); "
                     f"got {type(lm).__name__}.")
  lm_weight, length_bonus = transducer.check_fusion(fns, vocab, lm, lm_weight, length_bonus)
  lengths = np.asarray(transducer.frame_lengths(enc_paddings))
  results = []
  for b in range(enc.shape[0]):
    found = _search_one(fns, params, enc[b, : lengths[b]], beam, expand, max_symbols_per_frame, lm, lm_weight,
                        length_bonus)
    if length_norm:
      found.sort(key=lambda kv: -kv[1] / max(len(kv[0]), 1))
    results.append(found[:nbest])
  max_len = max([1] + [len(y) for r in results for y, _, _ in r])
  labels = np.zeros((len(results), nbest, max_len), np.int32)
  paddings = np.ones((len(results), nbest, max_len), np.float32)
  scores = np.full((len(results), nbest), -np.inf, np.float32)
  frames = np.zeros((len(results), nbest, max_len), np.int32)
  for b, r in enumerate(results):
    for n, (y, s, f) in enumerate(r):
      labels[b, n, : len(y)] = y
      paddings[b, n, : len(y)] = 0
      scores[b, n] = s
      frames[b, n, : len(y)] = f
  return transducer.NBest(jnp.asarray(labels), jnp.asarray(paddings), jnp.asarray(scores), jnp.asarray(frames))
