r"""Pruned RNN-T loss: a cheap "simple" lattice chooses, per frame, the few label positions the joint network is evaluated at.

The full loss evaluates the joint network on every node of the ``T x (U+1)``
lattice (``[B, T, U+1, H]`` hidden, ``[B, T, U+1, V]`` logits). Kuang et al. (2022)
observe that nearly all of the posterior mass of a trained (or training) model
lies in a narrow band around the alignment, and prune in two passes:

1. **Simple loss.** A "trivial joiner" ``logits[t, u] = am[t] + lm[u]`` (two linear
   projections to the vocabulary, of the encoder and of the prediction network)
   has a log-normaliser that is a matrix product (`simple_log_probs`), so its full
   lattice costs ``O(B.T.U.V)`` multiply-adds and ``O(B.T.U)`` memory, never a
   ``[B, T, U+1, V]`` tensor. It is trained jointly (``simple_loss_scale``).
2. **Ranges.** From the simple lattice's node occupancies, frame t keeps the
   window ``[s_t, s_t + S)`` of label positions with the most posterior mass
   (`prune_ranges`), adjusted so that the windows still hold a complete path:
   ``s_0 = 0``, ``s_t <= s_{t+1} <= s_t + S - 1`` and the last frame's window holds
   ``U_b``.
3. **Pruned loss.** The real joint network runs on ``[B, T, S, H]`` only
   (`gather_windows` picks each frame's S predictor rows), and the RNN-T lattice
   is evaluated with every node outside the windows removed (`pruned_rnnt_loss`).
   It sums over a subset of the alignments, so it is >= the full loss, with
   equality once the windows hold all the mass (exactly when ``S > U``).

Nothing differentiates through the ranges (they are integers chosen from
stop-gradient occupancies). Both losses reuse the lattice of `asrjax.losses.lattice`
and its hand-written gradient.

Feasibility: windows of S positions let a path emit at most ``S - 1`` labels per
frame, so an utterance with ``U_b > (S - 1) T_b`` has no path left and its pruned
loss is ``+inf`` (a training step would then be skipped as non-finite). Choose
``S`` above the data's labels-per-frame limit (the trainer checks this).

References:
  Kuang, Guo, Kang, Lin, Luo, Povey, "Pruned RNN-T for fast, memory-efficient ASR
  training", Interspeech 2022 (arXiv:2206.13236).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.losses import lattice as lattice_lib
from asrjax.losses import rnnt as rnnt_lib

NEG_INF = -jnp.inf


def simple_log_probs(am: jax.Array, lm: jax.Array, labels: jax.Array, *, blank_id: int = 0,
                     lm_only_scale: float = 0.0, am_only_scale: float = 0.0, lm_row_mask: jax.Array | None = None):
  """Blank and next-label log-probabilities of the trivial joiner ``am[t] + lm[u]``.

  The normaliser ``log sum_v exp(am[t, v] + lm[u, v])`` is
  ``max am[t] + max lm[u] + log(exp(am[t] - max) . exp(lm[u] - max))``: one batched
  matrix product instead of a ``[B, T, U+1, V]`` tensor. Exact unless every term of
  the dot product underflows, i.e. unless the two projections disagree by more than
  ~87 nats on every symbol; the dot product is floored at the smallest normal fp32
  so that case stays finite (its log-probs are then too low; training never gets near
  such logits, as the simple loss itself pulls the two projections together).

  *Smoothing* (k2's ``rnnt_loss_smoothed``): with ``lm_only_scale`` l and
  ``am_only_scale`` a, every edge log-probability becomes the log-linear mix
  ``(1 - l - a) log P(k | t, u) + l log P_lm(k | u) + a log P_am(k | t)``, where
  ``P_lm = softmax(lm[u])`` and ``P_am ∝ exp(am[t]) * unigram``, the unigram being
  ``softmax(lm)`` averaged over the batch's rows (the valid ones, ``lm_row_mask``).
  It keeps the two projections individually meaningful (icefall trains with l = 0.25).

  Args:
    am: ``[B, T, V]`` encoder projection.
    lm: ``[B, U+1, V]`` prediction-network projection (row u has seen ``y[:u]``).
    labels: ``[B, U]`` int label ids (padding values are clipped, then ignored by
      the lattice).
    blank_id: blank index.
    lm_only_scale, am_only_scale: smoothing weights, ``>= 0`` with sum ``<= 1``.
    lm_row_mask: ``[B, U+1]``, 1.0 = a real row of ``lm`` (for the unigram); all
      rows when ``None``.

  Returns:
    ``(blank [B, T, U+1], emit [B, T, U+1])`` fp32; ``emit[:, :, u]`` scores
    ``y_{u+1}`` (column U is a dummy).
  """
  am = am.astype(jnp.float32)
  lm = lm.astype(jnp.float32)
  am_max = jax.lax.stop_gradient(jnp.max(am, axis=-1, keepdims=True))  # [B, T, 1]
  lm_max = jax.lax.stop_gradient(jnp.max(lm, axis=-1, keepdims=True))  # [B, U1, 1]
  am_max = jnp.where(jnp.isfinite(am_max), am_max, 0.0)
  lm_max = jnp.where(jnp.isfinite(lm_max), lm_max, 0.0)
  # Every log-prob is formed from max-subtracted logits, (am_k - am_max) + (lm_k - lm_max)
  # - log(dot): a common offset cancels before anything is rounded (as in
  # `rnnt._log_normaliser`); adding the maxes back into the normaliser would round it at
  # the offset's magnitude.
  am_c, lm_c = am - am_max, lm - lm_max
  dot = jnp.einsum("btv,buv->btu", jnp.exp(am_c), jnp.exp(lm_c))
  log_dot = jnp.log(jnp.maximum(dot, jnp.finfo(jnp.float32).tiny))
  labels_ext = rnnt_lib._extend_labels(labels, blank_id, am.shape[-1])  # [B, U1]
  blank = am_c[:, :, blank_id][:, :, None] + lm_c[:, :, blank_id][:, None, :]
  am_lab = jnp.take_along_axis(am_c, jnp.broadcast_to(labels_ext[:, None, :], am.shape[:2] + labels_ext.shape[1:]),
                               axis=2)
  lm_lab = jnp.take_along_axis(lm_c, labels_ext[:, :, None], axis=2)[:, :, 0]  # [B, U1]
  emit = am_lab + lm_lab[:, None, :]
  blank, emit = blank - log_dot, emit - log_dot
  if lm_only_scale < 0 or am_only_scale < 0 or lm_only_scale + am_only_scale > 1:
    raise ValueError(f"smoothing scales must be >= 0 with sum <= 1; got lm_only_scale={lm_only_scale}, "
                     f"am_only_scale={am_only_scale}.")
  if not (lm_only_scale or am_only_scale):
    return blank, emit
  combined = 1.0 - lm_only_scale - am_only_scale
  blank, emit = combined * blank, combined * emit
  lm_lp = jax.nn.log_softmax(lm, axis=-1)  # [B, U1, V]
  if lm_only_scale:
    blank = blank + lm_only_scale * lm_lp[:, None, :, blank_id]
    emit = emit + lm_only_scale * jnp.take_along_axis(lm_lp, labels_ext[:, :, None], axis=2)[:, None, :, 0]
  if am_only_scale:
    mask = jnp.ones(lm.shape[:2], jnp.float32) if lm_row_mask is None else lm_row_mask.astype(jnp.float32)
    unigram = jnp.einsum("buv,bu->v", jnp.exp(lm_lp), mask) / jnp.maximum(jnp.sum(mask), 1.0)
    log_unigram = jnp.log(unigram + jnp.finfo(jnp.float32).tiny)  # [V]
    am_norm = jax.nn.logsumexp(am_c + log_unigram, axis=-1)  # [B, T]; am_c: the offset is already gone
    blank = blank + am_only_scale * (am_c[:, :, blank_id] + log_unigram[blank_id] - am_norm)[:, :, None]
    emit = emit + am_only_scale * (am_lab + log_unigram[labels_ext][:, None, :] - am_norm[:, :, None])
  return blank, emit


def _labels_shape(labels) -> tuple[int, int]:
  """The ``[B, U]`` shape of ``labels`` (needed to build the lattice shape the other checks compare against)."""
  shape, _ = rnnt_lib._shape_dtype(labels, "labels")
  if len(shape) != 2:
    raise ValueError(f"labels must be [B, U] (an int array); got shape {shape}.")
  return shape


def simple_rnnt_loss(
    am: jax.Array,
    lm: jax.Array,
    logit_paddings: jax.Array,
    labels: jax.Array,
    label_paddings: jax.Array,
    *,
    blank_id: int = 0,
    lm_only_scale: float = 0.0,
    am_only_scale: float = 0.0,
):
  """RNN-T loss of the trivial joiner, and the node occupancies `prune_ranges` needs.

  Args:
    am: ``[B, T, V]``; lm: ``[B, U+1, V]`` (see `simple_log_probs`).
    logit_paddings: ``[B, T]``, 1.0 = padded frame (trailing).
    labels: ``[B, U]`` int; label_paddings: ``[B, U]``, 1.0 = padded (trailing).
    blank_id: blank index.
    lm_only_scale, am_only_scale: k2's smoothing (`simple_log_probs`); the loss and
      the occupancies are those of the smoothed lattice, as in k2.

  Returns:
    ``(loss [B], occupancy [B, T, U+1])``: ``-log P(y|x)`` under the trivial joiner
    (differentiable in ``am`` and ``lm``), and the posterior probability that an
    alignment visits node (t, u) (no gradient; zero outside each lattice). Exact for
    any common offset on ``am`` or ``lm``; ``+inf`` for an utterance without frames;
    NaN for a row with invalid paddings or labels under `jit` (as `rnnt_loss`).

  Raises:
    ValueError: wrong ranks, shapes or dtypes, a bad ``blank_id``; with concrete
      arrays, paddings that are not trailing 0/1 or invalid labels.
  """
  (am_shape, am_dtype), (lm_shape, lm_dtype) = rnnt_lib._shape_dtype(am, "am"), rnnt_lib._shape_dtype(lm, "lm")
  if len(am_shape) != 3 or len(lm_shape) != 3 or lm_shape[-1] != am_shape[-1] or lm_shape[0] != am_shape[0]:
    raise ValueError(f"am must be [B, T, V] and lm [B, U+1, V] (same B and V); got {am_shape} and {lm_shape}.")
  for name, dt in (("am", am_dtype), ("lm", lm_dtype)):
    if not jnp.issubdtype(dt, jnp.floating):
      raise ValueError(f"{name} must be a float array; got dtype {dt}.")
  b, t_max, vocab = am_shape
  if vocab < 1:
    raise ValueError(f"am and lm must have V >= 1 symbols on the last axis; got {am_shape}.")
  lab_shape = _labels_shape(labels)
  if lm_shape[1] != lab_shape[1] + 1:
    raise ValueError(f"lm has {lm_shape[1]} rows; labels {lab_shape} need U+1 = {lab_shape[1] + 1}.")
  rnnt_lib.check_inputs((b, t_max, lm_shape[1], vocab), logit_paddings, labels, label_paddings, blank_id, vocab,
                        "am/lm lattice")
  blank_id = rnnt_lib.check_blank_id(blank_id, vocab)
  am, lm, labels = jnp.asarray(am), jnp.asarray(lm), jnp.asarray(labels)
  logit_paddings, label_paddings = jnp.asarray(logit_paddings), jnp.asarray(label_paddings)
  label_lengths = rnnt_lib._lengths(label_paddings)
  lm_row_mask = jnp.arange(lm.shape[1])[None, :] <= label_lengths[:, None]  # rows 0 .. U_b
  blank, emit = simple_log_probs(am, lm, labels, blank_id=blank_id, lm_only_scale=lm_only_scale,
                                 am_only_scale=am_only_scale, lm_row_mask=lm_row_mask)
  loss = rnnt_lib.rnnt_loss_from_log_probs(blank, emit, logit_paddings, labels, label_paddings,
                                           vocab_size=vocab, blank_id=blank_id)
  if t_max == 0:  # no frames: no node is visited (the loss is +inf)
    return loss, jnp.zeros(blank.shape, jnp.float32)
  lat = lattice_lib.forward_backward(jax.lax.stop_gradient(blank), jax.lax.stop_gradient(emit),
                                     rnnt_lib._lengths(logit_paddings), label_lengths)
  return loss, lat.blank_occupancy + lat.emit_occupancy


def prune_ranges(occupancy: jax.Array, frame_lengths: jax.Array, label_lengths: jax.Array, prune_range: int):
  """Per-frame window starts ``s_t``: frame t keeps label positions ``[s_t, s_t + S)``.

  Each frame first takes the window with the most occupancy; the starts are then
  adjusted so that a complete path survives. A path emits at most ``S - 1`` labels
  per frame, so ``s_t`` is clipped into ``[U_b - S + 1 - (S - 1)(T_b - 1 - t),
  (S - 1) t]`` (the end stays reachable, and the start is reachable from (0, 0));
  from frame ``T_b - 1`` on (padded frames included) ``s = max(U_b - S + 1, 0)``, so
  the last window holds ``U_b``; a running max makes the starts non-decreasing; and
  a running min of ``s_t - (S - 1) t`` lowers starts that run more than ``S - 1``
  ahead of the previous frame's. Each step keeps the earlier properties, so
  ``s_0 = 0``, ``0 <= s_{t+1} - s_t <= S - 1`` and the last window holds ``U_b``
  whenever a path fits (``U_b <= (S - 1) T_b``); a single dominant alignment with at
  most ``S - 1`` labels per frame keeps all of its nodes (tested).

  Args:
    occupancy: ``[B, T, U+1]`` node occupancy (any non-negative score).
    frame_lengths: ``[B]`` int ``T_b``; label_lengths: ``[B]`` int ``U_b``.
    prune_range: ``S >= 2``, label positions kept per frame.

  Returns:
    ``[B, T]`` int32 starts, ``0 <= s_t <= max(U_b - S + 1, 0)``.
  """
  if isinstance(prune_range, bool) or not isinstance(prune_range, (int, np.integer)) or prune_range < 2:
    raise ValueError(f"prune_range must be an int >= 2 (a window of 1 allows no label); got {prune_range!r}.")
  occupancy = jax.lax.stop_gradient(occupancy)
  _, t_max, u1 = occupancy.shape
  s = prune_range
  csum = jnp.concatenate([jnp.zeros(occupancy.shape[:2] + (1,), occupancy.dtype), jnp.cumsum(occupancy, axis=2)],
                         axis=2)
  csum = jnp.pad(csum, ((0, 0), (0, 0), (0, s)), mode="edge")  # windows past U+1 sum what is there
  window = csum[:, :, s:s + u1] - csum[:, :, :u1]  # [B, T, U1]: mass of [start, start + S)
  max_start = jnp.maximum(label_lengths - s + 1, 0).astype(jnp.int32)  # [B]
  start_idx = jnp.arange(u1)[None, None, :]
  window = jnp.where(start_idx <= max_start[:, None, None], window, -1.0)
  starts = jnp.argmax(window, axis=2).astype(jnp.int32)  # [B, T]
  t = jnp.arange(t_max, dtype=jnp.int32)[None, :]
  last = frame_lengths[:, None].astype(jnp.int32) - 1
  lower = max_start[:, None] - (s - 1) * (last - t)
  upper = jnp.minimum((s - 1) * t, max_start[:, None])
  starts = jnp.minimum(jnp.maximum(starts, lower), upper)
  starts = jnp.where(t >= last, max_start[:, None], starts)
  starts = jax.lax.cummax(starts, axis=1)
  step = (s - 1) * t  # s_t <= s_{t'} + (S - 1)(t - t') for every t' < t
  starts = jax.lax.cummin(starts - step, axis=1) + step
  return starts


def gather_windows(x: jax.Array, starts: jax.Array, prune_range: int) -> jax.Array:
  """``x [B, U+1, ...], starts [B, T] -> [B, T, S, ...]`` with ``out[b, t, k] = x[b, starts[b, t] + k]``.

  Positions past ``U`` are clipped to row U (the pruned loss masks them).
  """
  u1 = x.shape[1]
  idx = jnp.minimum(starts[:, :, None] + jnp.arange(prune_range)[None, None, :], u1 - 1)  # [B, T, S]
  return jax.vmap(lambda xb, ib: xb[ib])(x, idx)


def pruned_rnnt_loss(
    logits: jax.Array,
    starts: jax.Array,
    logit_paddings: jax.Array,
    labels: jax.Array,
    label_paddings: jax.Array,
    *,
    blank_id: int = 0,
    fastemit_lambda: float = 0.0,
) -> jax.Array:
  """RNN-T loss over the alignments that stay inside the per-frame windows.

  Args:
    logits: ``[B, T, S, V]`` joint-network logits; ``logits[b, t, k]`` is node
      ``(t, starts[b, t] + k)`` (from `gather_windows` of the predictor side).
    starts: ``[B, T]`` int window starts (`prune_ranges`).
    logit_paddings: ``[B, T]``; labels ``[B, U]``; label_paddings ``[B, U]``, as in
      `asrjax.losses.rnnt_loss`.
    blank_id: blank index, an int in ``[0, V)``.
    fastemit_lambda: FastEmit weight, a static finite float ``>= 0``: the gradient
      is that of the windowed lattice with every emission-edge occupancy scaled by
      ``1 + lam`` (``d/dz = softmax * (g_blank + (1 + lam) g_emit) - [v = blank]
      g_blank - [v = y] (1 + lam) g_emit`` at each kept node), as in `rnnt_loss`;
      the returned value is the plain windowed negative log-likelihood.

  Returns:
    ``[B]`` ``-log`` of the probability mass of the kept alignments (>= the full
    loss; equal when the windows cover every node); ``+inf`` when no alignment
    fits, and NaN / `ValueError` for invalid paddings or labels exactly as in
    `asrjax.losses.rnnt_loss`.

  Raises:
    ValueError: wrong ranks, shapes or dtypes (``starts`` must be an int ``[B, T]``),
      a bad ``blank_id`` or ``fastemit_lambda``; with concrete arrays, paddings that
      are not trailing 0/1 or invalid labels.
  """
  shape, dtype = rnnt_lib._shape_dtype(logits, "logits")
  if len(shape) != 4:
    raise ValueError(f"logits must be a [B, T, S, V] array (S = prune_range); got shape {shape}.")
  if not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(f"logits must be a float array; got dtype {dtype}.")
  b, t_max, s, vocab = shape
  if vocab < 1 or s < 1:
    raise ValueError(f"logits must have S >= 1 window slots and V >= 1 symbols; got shape {shape}.")
  starts_shape, starts_dtype = rnnt_lib._shape_dtype(starts, "starts")
  if starts_shape != (b, t_max):
    raise ValueError(f"starts must be [B, T] = {(b, t_max)} like logits [B, T, S, V]; got shape {starts_shape}.")
  if not jnp.issubdtype(starts_dtype, jnp.integer):
    raise ValueError(f"starts must be an int array (window starts from prune_ranges); got dtype {starts_dtype}.")
  lab_shape = _labels_shape(labels)
  u1 = lab_shape[1] + 1
  rnnt_lib.check_inputs((b, t_max, u1, vocab), logit_paddings, labels, label_paddings, blank_id, vocab, "logits")
  blank_id = rnnt_lib.check_blank_id(blank_id, vocab)
  fastemit_lambda = rnnt_lib.check_fastemit_lambda(fastemit_lambda)
  logits, starts, labels = jnp.asarray(logits), jnp.asarray(starts), jnp.asarray(labels)
  lp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  labels_ext = rnnt_lib._extend_labels(labels, blank_id, vocab)  # [B, U1]
  pos = starts[:, :, None] + jnp.arange(s)[None, None, :]  # [B, T, S] label position of each window slot
  next_label = jax.vmap(lambda lb, pb: lb[jnp.minimum(pb, u1 - 1)])(labels_ext, pos)  # [B, T, S]
  blank_w = lp[..., blank_id]
  emit_w = jnp.take_along_axis(lp, next_label[..., None], axis=-1)[..., 0]
  # Back onto the [B, T, U+1] lattice: node u of frame t is window slot u - s_t.
  slot = jnp.arange(u1)[None, None, :] - starts[:, :, None]  # [B, T, U1]
  inside = (slot >= 0) & (slot < s)
  slot = jnp.clip(slot, 0, s - 1)
  blank = jnp.where(inside, jnp.take_along_axis(blank_w, slot, axis=2), NEG_INF)
  emit = jnp.where(inside, jnp.take_along_axis(emit_w, slot, axis=2), NEG_INF)
  return rnnt_lib.rnnt_loss_from_log_probs(blank, emit, logit_paddings, labels, label_paddings, vocab_size=vocab,
                                           blank_id=blank_id, fastemit_lambda=fastemit_lambda)
