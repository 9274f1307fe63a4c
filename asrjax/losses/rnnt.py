r"""RNN-T (transducer) loss with a hand-written, fused gradient and FastEmit.

Public functions follow optax's `ctc_loss` conventions: (value, paddings) pairs,
``paddings[b, t] == 1.0`` marks a padded frame/label, options keyword-only, and a
per-sequence loss ``[B]`` whose reduction is the caller's.

``rnnt_loss`` takes full joint-network logits ``[B, T, U+1, V]``. Its gradient is
computed in one fused elementwise pass from the lattice occupancies
(`asrjax.losses.lattice`)::

  d loss / d logits[t, u, v] = softmax[t, u, v] * (g_blank[t, u] + (1 + lam) g_emit[t, u])
                               - [v = blank] g_blank[t, u] - [v = y_{u+1}] (1 + lam) g_emit[t, u]

with ``g_blank``, ``g_emit`` the posterior occupancies of the blank and emission
edges leaving node (t, u) and ``lam`` the FastEmit weight. Nothing is
differentiated through the scan: the residuals kept for the backward pass are
the logits themselves plus O(B.T.U) fp32 arrays (log-normaliser, occupancies), so
training holds at most the logits, their gradient and O(B.T.U) state.

``rnnt_loss_from_log_probs`` takes the two gathered log-prob tensors instead
(blank and next label, ``[B, T, U+1]`` each) so that a joint network which computes
only those ("function merging") never materialises a ``[B, T, U+1, V]`` gradient.

Padding must be trailing (a prefix of valid frames/labels, then padding), as every
asrjax pipeline produces. The loss of an utterance with no valid frame is ``+inf``
with zero gradient (no alignment exists). Invalid labels (outside ``[0, V)`` or
equal to ``blank_id``) raise `ValueError` when the inputs are concrete; under
`jit`, where values cannot be inspected, that utterance's loss is NaN, loudly.

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012.
  Yu et al., "FastEmit: Low-latency streaming ASR with sequence-level emission
  regularization", ICASSP 2021 (arXiv:2010.11148), eqs. 9-10.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.losses import lattice as lattice_lib


# ----------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------


def _is_concrete(*xs) -> bool:
  return not any(isinstance(x, jax.core.Tracer) for x in xs)


def _check_paddings(name: str, paddings: np.ndarray) -> None:
  """Raises unless each row of ``paddings`` is 0...0 1...1 (trailing padding)."""
  p = np.asarray(paddings)
  if not np.all((p == 0) | (p == 1)):
    raise ValueError(f"{name} must hold only 0.0 (valid) and 1.0 (padded).")
  if p.shape[1] > 1 and np.any(np.diff(p, axis=1) < 0):
    bad = int(np.nonzero(np.any(np.diff(p, axis=1) < 0, axis=1))[0][0])
    raise ValueError(
        f"{name} row {bad} has a valid position after a padded one; padding must be trailing."
    )


def check_inputs(
    logit_shape: tuple[int, ...],
    logit_paddings: jax.Array,
    labels: jax.Array,
    label_paddings: jax.Array,
    blank_id: int,
    vocab_size: int,
) -> None:
  """Validates shapes always, and values when the arrays are concrete.

  Args:
    logit_shape: ``(B, T, U+1, V)`` or ``(B, T, U+1)`` for gathered log-probs.
    logit_paddings: ``[B, T]``.
    labels: ``[B, U]`` int.
    label_paddings: ``[B, U]``.
    blank_id: blank index.
    vocab_size: ``V``.

  Raises:
    ValueError: with the offending shape or value named.
  """
  if len(logit_shape) not in (3, 4):
    raise ValueError(f"logits must be [B, T, U+1, V] (or [B, T, U+1] log-probs); got {logit_shape}.")
  b, t, u1 = logit_shape[:3]
  if labels.ndim != 2:
    raise ValueError(f"labels must be [B, U]; got shape {labels.shape}.")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(f"labels must be integers; got {labels.dtype}.")
  if labels.shape != (b, u1 - 1):
    raise ValueError(
        f"labels shape {labels.shape} does not match logits {logit_shape}: expected (B, U) = ({b}, {u1 - 1})."
    )
  if label_paddings.shape != labels.shape:
    raise ValueError(f"label_paddings shape {label_paddings.shape} != labels shape {labels.shape}.")
  if logit_paddings.shape != (b, t):
    raise ValueError(f"logit_paddings shape {logit_paddings.shape} != (B, T) = ({b}, {t}).")
  if t == 0:
    raise ValueError("logits have T = 0 frames.")
  if not 0 <= blank_id < vocab_size:
    raise ValueError(f"blank_id {blank_id} outside [0, {vocab_size}).")
  if not _is_concrete(logit_paddings, labels, label_paddings):
    return
  _check_paddings("logit_paddings", logit_paddings)
  _check_paddings("label_paddings", label_paddings)
  lab = np.asarray(labels)
  valid = np.asarray(label_paddings) == 0
  bad = valid & ((lab < 0) | (lab >= vocab_size) | (lab == blank_id))
  if np.any(bad):
    i, j = np.argwhere(bad)[0]
    raise ValueError(
        f"labels[{i}, {j}] = {lab[i, j]} is not a valid label: labels must lie in [0, {vocab_size}) "
        f"and differ from blank_id={blank_id}."
    )


def _lengths(paddings: jax.Array) -> jax.Array:
  return jnp.sum(1 - paddings.astype(jnp.int32), axis=1).astype(jnp.int32)


def _invalid_label_rows(labels, label_paddings, blank_id, vocab_size) -> jax.Array:
  """``[B]`` bool: the row holds a non-padded label outside [0, V) or equal to blank."""
  bad = (labels < 0) | (labels >= vocab_size) | (labels == blank_id)
  return jnp.any(bad & (label_paddings == 0), axis=1)


def _extend_labels(labels: jax.Array, blank_id: int, vocab_size: int) -> jax.Array:
  """``[B, U] -> [B, U+1]``: clipped into range, a dummy (blank) column appended."""
  labels = jnp.clip(labels, 0, vocab_size - 1).astype(jnp.int32)
  return jnp.pad(labels, ((0, 0), (0, 1)), constant_values=blank_id)


def _no_grad(x: jax.Array) -> np.ndarray:
  """The (empty) cotangent of an integer input of a `custom_vjp`."""
  return np.zeros(x.shape, jax.dtypes.float0)


def _nan_if_invalid(loss: jax.Array, invalid: jax.Array) -> jax.Array:
  """Marks rows with invalid labels (only detectable in-graph under `jit`) as NaN."""
  return jnp.where(invalid, jnp.nan, loss)


# ----------------------------------------------------------------------------
# Gathered log-probs
# ----------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _loss_from_log_probs(blank_lp, label_lp, frame_lengths, label_lengths, fastemit_lambda):
  lat = lattice_lib.forward_backward(blank_lp, label_lp, frame_lengths, label_lengths)
  return -lat.log_likelihood


def _loss_from_log_probs_fwd(blank_lp, label_lp, frame_lengths, label_lengths, fastemit_lambda):
  lat = lattice_lib.forward_backward(blank_lp, label_lp, frame_lengths, label_lengths)
  return -lat.log_likelihood, (lat.blank_occupancy, lat.emit_occupancy, frame_lengths, label_lengths)


def _loss_from_log_probs_bwd(fastemit_lambda, res, g):
  occ_blank, occ_emit, frame_lengths, label_lengths = res
  g = g[:, None, None]
  d_blank = -(g * occ_blank)
  d_label = -(g * (1.0 + fastemit_lambda) * occ_emit)
  return d_blank, d_label, _no_grad(frame_lengths), _no_grad(label_lengths)


_loss_from_log_probs.defvjp(_loss_from_log_probs_fwd, _loss_from_log_probs_bwd)
# jit so that eager callers reuse one compiled program per shape.
_loss_from_log_probs_jit = jax.jit(_loss_from_log_probs, static_argnums=(4,))


def rnnt_loss_from_log_probs(
    blank_log_probs: jax.Array,
    label_log_probs: jax.Array,
    logit_paddings: jax.Array,
    labels: jax.Array,
    label_paddings: jax.Array,
    *,
    vocab_size: int | None = None,
    blank_id: int = 0,
    fastemit_lambda: float = 0.0,
) -> jax.Array:
  """RNN-T loss from gathered log-probabilities (function merging).

  Args:
    blank_log_probs: ``(B, T, U+1)``-array, ``log p(blank | t, y[:u])``.
    label_log_probs: ``(B, T, U+1)``-array, ``log p(y_{u+1} | t, y[:u])``; column
      ``U`` (and any ``u >= U_b``) is ignored.
    logit_paddings: ``(B, T)``-array, 1.0 marks a padded frame (trailing).
    labels: ``(B, U)`` int array; only used for validation when ``vocab_size`` is
      given, and to define ``U``.
    label_paddings: ``(B, U)``-array, 1.0 marks a padded label (trailing).
    vocab_size: if given, labels are validated against ``[0, V)`` and ``blank_id``.
    blank_id: the blank index (validation only).
    fastemit_lambda: FastEmit weight; scales the gradient of emission edges by
      ``1 + fastemit_lambda``. The returned value is the plain negative
      log-likelihood.

  Returns:
    ``(B,)``-array ``-log P(y|x)``; the gradient flows to both log-prob inputs.
  """
  check_inputs(
      blank_log_probs.shape, logit_paddings, labels, label_paddings, blank_id, vocab_size or np.iinfo(np.int32).max
  )
  if label_log_probs.shape != blank_log_probs.shape:
    raise ValueError(f"label_log_probs {label_log_probs.shape} != blank_log_probs {blank_log_probs.shape}.")
  f32 = jnp.float32  # the lattice runs in fp32; autodiff casts the gradient back
  loss = _loss_from_log_probs_jit(
      blank_log_probs.astype(f32), label_log_probs.astype(f32), _lengths(logit_paddings), _lengths(label_paddings), float(fastemit_lambda)
  )
  if vocab_size is None:
    return loss
  return _nan_if_invalid(loss, _invalid_label_rows(labels, label_paddings, blank_id, vocab_size))


# ----------------------------------------------------------------------------
# Full logits, fused log-softmax gradient
# ----------------------------------------------------------------------------


def _log_normaliser(logits: jax.Array) -> jax.Array:
  """``[..., V] -> [...]`` fp32 ``logsumexp`` that never materialises an fp32 copy of bf16 logits.

  The max is taken in the logits' own dtype (exact), so the fp32 upcast happens
  inside the fused exp-sum; ``jax.nn.logsumexp(logits.astype(f32))`` made XLA:CPU
  write a full fp32 copy of the logits first (+2x logits memory, 2.7x slower).
  """
  m = jnp.max(logits, axis=-1, keepdims=True).astype(jnp.float32)
  m = jnp.where(jnp.isfinite(m), m, 0.0)
  return jnp.log(jnp.sum(jnp.exp(logits.astype(jnp.float32) - m), axis=-1)) + m[..., 0]


def _gathered_log_probs(logits, labels_ext, blank_id):
  """``[B, T, U1, V]`` logits -> (log-normaliser, blank log-prob, next-label log-prob), each ``[B, T, U1]`` fp32."""
  lse = _log_normaliser(logits)
  blank = _gather_last_axis(logits, jnp.full_like(labels_ext[:, None, :], blank_id)).astype(jnp.float32)
  nxt = _gather_last_axis(logits, labels_ext[:, None, :]).astype(jnp.float32)
  return lse, blank - lse, nxt - lse


def _gather_last_axis(x: jax.Array, idx: jax.Array) -> jax.Array:
  """``x[..., idx]`` elementwise over the leading axes: ``[B, T, U1, V], [B, 1, U1] -> [B, T, U1]``.

  16-bit floats are gathered as their bit patterns: XLA:CPU has no bf16 gather and
  otherwise upcasts the whole ``[B, T, U1, V]`` operand to fp32 first.
  """
  if x.dtype.itemsize == 2 and jnp.issubdtype(x.dtype, jnp.floating):
    bits = jax.lax.bitcast_convert_type(x, jnp.uint16)
    return jax.lax.bitcast_convert_type(_gather_last_axis(bits, idx), x.dtype)
  return jnp.take_along_axis(x, idx[..., None], axis=-1)[..., 0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _fused_loss(logits, labels_ext, frame_lengths, label_lengths, blank_id, fastemit_lambda):
  _, blank, nxt = _gathered_log_probs(logits, labels_ext, blank_id)
  return -lattice_lib.forward_backward(blank, nxt, frame_lengths, label_lengths).log_likelihood


def _fused_loss_fwd(logits, labels_ext, frame_lengths, label_lengths, blank_id, fastemit_lambda):
  lse, blank, nxt = _gathered_log_probs(logits, labels_ext, blank_id)
  lat = lattice_lib.forward_backward(blank, nxt, frame_lengths, label_lengths)
  res = (logits, lse, lat.blank_occupancy, lat.emit_occupancy, labels_ext, frame_lengths, label_lengths)
  return -lat.log_likelihood, res


def _fused_loss_bwd(blank_id, fastemit_lambda, res, g):
  logits, lse, occ_blank, occ_emit, labels_ext, frame_lengths, label_lengths = res
  # A barrier so XLA does not merge this pass's fp32 cast with the forward pass's
  # (a shared cast is materialised: +2x logits memory for bf16 on XLA:CPU).
  logits = jax.lax.optimization_barrier(logits)
  occ_emit = (1.0 + fastemit_lambda) * occ_emit
  coef = (occ_blank + occ_emit)[..., None]
  v = jax.lax.broadcasted_iota(jnp.int32, logits.shape, 3)
  grad = jnp.exp(logits.astype(jnp.float32) - lse[..., None]) * coef
  grad = grad - jnp.where(v == blank_id, occ_blank[..., None], 0.0)
  grad = grad - jnp.where(v == labels_ext[:, None, :, None], occ_emit[..., None], 0.0)
  # Nodes outside the lattice have zero occupancy; `where` keeps NaN/inf padding out.
  grad = jnp.where(coef > 0, grad * g[:, None, None, None], 0.0).astype(logits.dtype)
  return grad, _no_grad(labels_ext), _no_grad(frame_lengths), _no_grad(label_lengths)


_fused_loss.defvjp(_fused_loss_fwd, _fused_loss_bwd)
_fused_loss_jit = jax.jit(_fused_loss, static_argnums=(4, 5))


def rnnt_loss(
    logits: jax.Array,
    logit_paddings: jax.Array,
    labels: jax.Array,
    label_paddings: jax.Array,
    *,
    blank_id: int = 0,
    fastemit_lambda: float = 0.0,
) -> jax.Array:
  """Per-sequence RNN-T loss ``-log P(y|x)`` summed over all alignments.

  Args:
    logits: ``(B, T, U+1, V)``-array of joint-network outputs (unnormalised; fp32
      or bf16 -- accumulation is always fp32, the gradient has the logits' dtype).
      ``logits[b, t, u]`` scores the next output after frame t with ``y[:u]`` emitted.
    logit_paddings: ``(B, T)``-array; ``logit_paddings[b, t] == 1.0`` marks a padded
      frame. Padding must be trailing.
    labels: ``(B, U)`` int array of label ids in ``[0, V)``, never ``blank_id``.
    label_paddings: ``(B, U)``-array; 1.0 marks a padded label (trailing).
    blank_id: index of the blank symbol.
    fastemit_lambda: FastEmit regularisation weight ``lam >= 0``. The gradient of
      every label-emission edge is scaled by ``1 + lam`` (Yu et al. 2021, eq. 10);
      the returned value stays the plain negative log-likelihood.

  Returns:
    ``(B,)``-array of ``-log P(y|x)``: ``+inf`` (zero gradient) for an utterance
    with no valid frame; NaN for a row with an invalid label under `jit`.

  Raises:
    ValueError: on wrong ranks or shapes, and -- when the inputs are concrete -- on
      non-trailing paddings or invalid labels.
  """
  if logits.ndim != 4:
    raise ValueError(f"logits must be [B, T, U+1, V]; got {logits.shape}.")
  check_inputs(logits.shape, logit_paddings, labels, label_paddings, blank_id, logits.shape[-1])
  if fastemit_lambda < 0:
    raise ValueError(f"fastemit_lambda must be >= 0; got {fastemit_lambda}.")
  vocab = logits.shape[-1]
  labels_ext = _extend_labels(labels, blank_id, vocab)
  loss = _fused_loss_jit(
      logits, labels_ext, _lengths(logit_paddings), _lengths(label_paddings), int(blank_id), float(fastemit_lambda)
  )
  return _nan_if_invalid(loss, _invalid_label_rows(labels, label_paddings, blank_id, vocab))
