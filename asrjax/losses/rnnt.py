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

Numerics: every log-prob is ``(z_v - max z) - log sum exp(z - max z)``, the max
subtracted before anything is rounded (as `jax.nn.log_softmax` does), so a common
offset on a row of logits, however large, leaves the loss and gradient exact to fp32
rounding of the log-probs (`_log_normaliser`).

Contracts. Paddings hold 0 (valid) or 1 (padded) and are trailing (a prefix of
valid frames/labels, then padding), as every asrjax pipeline produces
(`asrjax.losses.contracts`). The loss of an utterance with no valid frame is
``+inf`` with zero gradient (no alignment exists). Invalid labels (outside
``[0, V)`` or equal to ``blank_id``) and invalid paddings (a fractional value, NaN,
or a valid position after a padded one) raise `ValueError` naming the argument
when the arrays are concrete; under `jit`, where values cannot be inspected, that
utterance's loss is NaN, loudly, and the other rows are unaffected. Call
`asrjax.losses.validate_paddings` before a jitted step to get the error instead.
Shapes, dtypes and options (``blank_id``, a static finite ``fastemit_lambda >= 0``)
are always checked first.

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012.
  Yu et al., "FastEmit: Low-latency streaming ASR with sequence-level emission
  regularization", ICASSP 2021 (arXiv:2010.11148), eqs. 9-10.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import os

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.losses import lattice as lattice_lib
from asrjax.losses.contracts import is_concrete, paddings_valid, validate_paddings


# ----------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------


def _shape_dtype(x, name: str) -> tuple[tuple[int, ...], np.dtype]:
  """Shape and dtype of an array, tracer or array-like, without copying a device array."""
  if hasattr(x, "shape") and hasattr(x, "dtype"):
    return tuple(x.shape), np.dtype(x.dtype)
  try:
    a = np.asarray(x)
  except Exception as e:  # noqa: BLE001 -- ragged lists and the like
    raise ValueError(f"{name} must be an array; got {type(x).__name__} ({e}).") from None
  return a.shape, a.dtype


def _check_paddings_array(paddings, name: str, expected: tuple[int, ...], what: str) -> None:
  shape, dtype = _shape_dtype(paddings, name)
  if shape != expected:
    raise ValueError(f"{name} must be {what} = {expected} (1 = padded, 0 = valid); got shape {shape}.")
  if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating) or dtype == np.bool_):
    raise ValueError(f"{name} must be a float, int or bool array of 0 (valid) and 1 (padded); got dtype {dtype}.")


def check_blank_id(blank_id, vocab_size: int | None) -> int:
  """``blank_id`` as a Python int in ``[0, vocab_size)`` (any int when ``vocab_size`` is None)."""
  if isinstance(blank_id, bool) or isinstance(blank_id, jax.core.Tracer):
    raise ValueError(f"blank_id must be a Python int (a static option, not traced); got {blank_id!r}.")
  try:
    blank_id = operator.index(blank_id)
  except TypeError:
    raise ValueError(f"blank_id must be an int; got {blank_id!r} ({type(blank_id).__name__}).") from None
  if vocab_size is not None and not 0 <= blank_id < vocab_size:
    raise ValueError(f"blank_id={blank_id} must lie in [0, V) = [0, {vocab_size}).")
  return blank_id


def check_fastemit_lambda(fastemit_lambda) -> float:
  """``fastemit_lambda`` as a Python float: a finite, non-negative, static (not traced) number.

  FastEmit's weight multiplies the emission-edge gradients by ``1 + lam`` (Yu et al.
  2021); NaN or inf would silently zero or blow up the gradient, and a negative
  weight rewards late emission (the peers -- warp-transducer, NeMo, Paddle -- use it
  as a small non-negative weight, typically 1e-3 to 1e-2).

  Raises:
    ValueError: a tracer, a non-number, NaN, +-inf or a negative value.
  """
  if isinstance(fastemit_lambda, jax.core.Tracer):
    raise ValueError(
        "fastemit_lambda must be a static Python float, not a traced value: it selects the compiled "
        "gradient; pass it as a constant (e.g. functools.partial or jax.jit(..., static_argnames=...))."
    )
  if isinstance(fastemit_lambda, bool) or not isinstance(fastemit_lambda, (numbers.Real, np.ndarray, jax.Array)):
    raise ValueError(f"fastemit_lambda must be a finite float >= 0; got {fastemit_lambda!r}.")
  if np.ndim(fastemit_lambda) != 0:
    raise ValueError(f"fastemit_lambda must be a scalar float >= 0; got shape {np.shape(fastemit_lambda)}.")
  lam = float(fastemit_lambda)
  if not math.isfinite(lam) or lam < 0:
    raise ValueError(f"fastemit_lambda must be a finite float >= 0; got {lam}.")
  return lam


def check_inputs(
    logit_shape: tuple[int, ...],
    logit_paddings,
    labels,
    label_paddings,
    blank_id: int,
    vocab_size: int | None,
    logits_name: str = "logits",
) -> None:
  """Validates shapes and dtypes always, and values when the arrays are concrete.

  Args:
    logit_shape: ``(B, T, U+1, V)``, or ``(B, T, U+1)`` for gathered log-probs.
    logit_paddings: ``[B, T]``.
    labels: ``[B, U]`` int.
    label_paddings: ``[B, U]``.
    blank_id: blank index.
    vocab_size: ``V``; labels are only range-checked when it is given.
    logits_name: the name of the ``logit_shape`` argument in the caller's API.

  Raises:
    ValueError: naming the offending argument and what was expected.
  """
  b, t, u1 = logit_shape[:3]
  lab_shape, lab_dtype = _shape_dtype(labels, "labels")
  if len(lab_shape) != 2:
    raise ValueError(f"labels must be [B, U] (an int array); got shape {lab_shape}.")
  if not jnp.issubdtype(lab_dtype, jnp.integer):
    raise ValueError(f"labels must be an int array; got dtype {lab_dtype}.")
  if lab_shape[0] != b:
    raise ValueError(f"labels has batch size {lab_shape[0]} but {logits_name} {logit_shape} has B = {b}.")
  if lab_shape[1] != u1 - 1:
    raise ValueError(
        f"labels shape {lab_shape} does not match {logits_name} {logit_shape}: axis 2 of {logits_name} is U+1, "
        f"so labels must be (B, U) = ({b}, {u1 - 1})."
    )
  _check_paddings_array(label_paddings, "label_paddings", lab_shape, "[B, U] like labels")
  _check_paddings_array(logit_paddings, "logit_paddings", (b, t), "[B, T]")
  if vocab_size is not None:
    check_blank_id(blank_id, vocab_size)
  if is_concrete(logit_paddings):
    validate_paddings(logit_paddings, "logit_paddings")
  if is_concrete(label_paddings):
    validate_paddings(label_paddings, "label_paddings")
  if vocab_size is None or not is_concrete(labels, label_paddings):
    return
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
  return jnp.sum(1 - jnp.asarray(paddings).astype(jnp.int32), axis=1).astype(jnp.int32)


def _invalid_rows(labels, label_paddings, logit_paddings, blank_id, vocab_size) -> jax.Array:
  """``[B]`` bool, in-graph: the row breaks a contract that only values reveal.

  Either paddings array is not trailing 0/1 (`paddings_valid`), or (when
  ``vocab_size`` is given) a non-padded label lies outside ``[0, V)`` or equals blank.
  """
  invalid = ~paddings_valid(logit_paddings) | ~paddings_valid(label_paddings)
  if vocab_size is not None:
    labels, label_paddings = jnp.asarray(labels), jnp.asarray(label_paddings)
    bad = (labels < 0) | (labels >= vocab_size) | (labels == blank_id)
    invalid = invalid | jnp.any(bad & (label_paddings == 0), axis=1)
  return invalid


def _extend_labels(labels: jax.Array, blank_id: int, vocab_size: int) -> jax.Array:
  """``[B, U] -> [B, U+1]``: clipped into range, a dummy (blank) column appended."""
  labels = jnp.clip(labels, 0, vocab_size - 1).astype(jnp.int32)
  return jnp.pad(labels, ((0, 0), (0, 1)), constant_values=blank_id)


def _no_grad(x: jax.Array) -> np.ndarray:
  """The (empty) cotangent of an integer input of a `custom_vjp`."""
  return np.zeros(x.shape, jax.dtypes.float0)


def _nan_if_invalid(loss: jax.Array, invalid: jax.Array) -> jax.Array:
  """Marks rows with invalid labels or paddings (only detectable in-graph under `jit`) as NaN."""
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
    blank_log_probs: ``(B, T, U+1)`` float array, ``log p(blank | t, y[:u])``.
    label_log_probs: ``(B, T, U+1)`` float array, ``log p(y_{u+1} | t, y[:u])``;
      column ``U`` (and any ``u >= U_b``) is ignored.
    logit_paddings: ``(B, T)``-array, 1 marks a padded frame; 0/1 values, trailing
      (see `asrjax.losses.validate_paddings`).
    labels: ``(B, U)`` int array; defines ``U``, and is validated when
      ``vocab_size`` is given (the log-probs already encode the labels).
    label_paddings: ``(B, U)``-array, 1 marks a padded label; 0/1, trailing.
    vocab_size: if given, labels are validated against ``[0, V)`` and ``blank_id``.
    blank_id: the blank index (validation only), an int ``>= 0`` (``< vocab_size``).
    fastemit_lambda: FastEmit weight, a static finite Python float ``>= 0``; scales
      the gradient of emission edges by ``1 + fastemit_lambda``. The returned value
      is the plain negative log-likelihood.

  Returns:
    ``(B,)`` fp32 array ``-log P(y|x)``; the gradient flows to both log-prob inputs.
    ``+inf`` (zero gradient) for an utterance with no valid frame (every row when
    ``T = 0``); ``(0,)`` when ``B = 0``. NaN for a row whose paddings are not
    trailing 0/1, or (with ``vocab_size``) whose labels are invalid, when those
    arrays are traced under `jit` (concrete ones raise instead).

  Raises:
    ValueError: wrong ranks, shapes or dtypes, a bad ``blank_id``/``vocab_size``/
      ``fastemit_lambda``; with concrete arrays, invalid paddings or labels.
  """
  shape, dtype = _shape_dtype(blank_log_probs, "blank_log_probs")
  if len(shape) != 3:
    raise ValueError(f"blank_log_probs must be a (B, T, U+1) array of log-probs; got shape {shape}.")
  label_shape, label_dtype = _shape_dtype(label_log_probs, "label_log_probs")
  if label_shape != shape:
    raise ValueError(f"label_log_probs must have the shape of blank_log_probs (B, T, U+1) = {shape}; got {label_shape}.")
  for name, dt in (("blank_log_probs", dtype), ("label_log_probs", label_dtype)):
    if not jnp.issubdtype(dt, jnp.floating):
      raise ValueError(f"{name} must be a float array of log-probs; got dtype {dt}.")
  if vocab_size is not None:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, numbers.Integral) or vocab_size < 1:
      raise ValueError(f"vocab_size must be None or an int >= 1; got {vocab_size!r}.")
  check_inputs(shape, logit_paddings, labels, label_paddings, blank_id, vocab_size, "blank_log_probs")
  blank_id = check_blank_id(blank_id, vocab_size if vocab_size is not None else np.iinfo(np.int32).max)
  fastemit_lambda = check_fastemit_lambda(fastemit_lambda)
  invalid = _invalid_rows(labels, label_paddings, logit_paddings, blank_id, vocab_size)
  if shape[1] == 0:  # no frames at all: no alignment exists (the documented +inf, zero gradient)
    return _nan_if_invalid(jnp.full((shape[0],), jnp.inf, jnp.float32), invalid)
  f32 = jnp.float32  # the lattice runs in fp32; autodiff casts the gradient back
  loss = _loss_from_log_probs_jit(
      jnp.asarray(blank_log_probs).astype(f32), jnp.asarray(label_log_probs).astype(f32), _lengths(logit_paddings),
      _lengths(label_paddings), fastemit_lambda
  )
  return _nan_if_invalid(loss, invalid)


# ----------------------------------------------------------------------------
# Full logits, fused log-softmax gradient
# ----------------------------------------------------------------------------


def _log_normaliser(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``[..., V] -> (m, log_s)``, each ``[...]`` fp32: ``logsumexp(z) = m + log_s``, kept apart.

  ``m`` is the row maximum and ``log_s = log sum_v exp(z_v - m)``. Every log-prob is
  then formed as ``(z_v - m) - log_s``, as `jax.nn.log_softmax` does: the
  subtraction of the max comes before anything is rounded, so a large common offset
  cancels exactly. Forming ``z_v - (m + log_s)`` instead rounds ``m + log_s`` at the
  offset's magnitude (ulp 8 at 1e8: the loss of all-equal logits at 1e8 came out
  negative).

  Memory: the max is taken in the logits' own dtype (exact), so the fp32 upcast
  happens inside the fused exp-sum; ``jax.nn.logsumexp(logits.astype(f32))`` made
  XLA:CPU write a full fp32 copy of the logits first (+2x logits memory, 2.7x slower).
  A non-finite max (an all -inf row, or an inf/NaN logit) is replaced by 0, so such
  rows come out -inf/NaN without poisoning their neighbours.
  """
  m = jnp.max(logits, axis=-1, keepdims=True).astype(jnp.float32)
  m = jnp.where(jnp.isfinite(m), m, 0.0)
  log_s = jnp.log(jnp.sum(jnp.exp(logits.astype(jnp.float32) - m), axis=-1))
  return m[..., 0], log_s


def _gathered_log_probs(logits, labels_ext, blank_id):
  """``[B, T, U1, V]`` logits -> (max, log-sum, blank log-prob, next-label log-prob), each ``[B, T, U1]`` fp32."""
  m, log_s = _log_normaliser(logits)
  blank = _gather_last_axis(logits, jnp.full_like(labels_ext[:, None, :], blank_id)).astype(jnp.float32)
  nxt = _gather_last_axis(logits, labels_ext[:, None, :]).astype(jnp.float32)
  return m, log_s, (blank - m) - log_s, (nxt - m) - log_s


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
  _, _, blank, nxt = _gathered_log_probs(logits, labels_ext, blank_id)
  return -lattice_lib.forward_backward(blank, nxt, frame_lengths, label_lengths).log_likelihood


def _fused_loss_fwd(logits, labels_ext, frame_lengths, label_lengths, blank_id, fastemit_lambda):
  m, log_s, blank, nxt = _gathered_log_probs(logits, labels_ext, blank_id)
  lat = lattice_lib.forward_backward(blank, nxt, frame_lengths, label_lengths)
  res = (logits, m, log_s, lat.blank_occupancy, lat.emit_occupancy, labels_ext, frame_lengths, label_lengths)
  return -lat.log_likelihood, res


def _fused_loss_bwd(blank_id, fastemit_lambda, res, g):
  logits, m, log_s, occ_blank, occ_emit, labels_ext, frame_lengths, label_lengths = res
  # A barrier so XLA does not merge this pass's fp32 cast, or its ``z - m``, with the
  # forward pass's (a shared one is materialised: +2x logits memory for bf16 on XLA:CPU,
  # and a full fp32 copy when donated). ``m`` and ``log_s`` must go through it too: with
  # the logits alone, ``(z - m) - log_s`` doubled the donated peak (33.8 -> 64.7 MiB).
  logits, m, log_s = jax.lax.optimization_barrier((logits, m, log_s))
  occ_emit = (1.0 + fastemit_lambda) * occ_emit
  coef = (occ_blank + occ_emit)[..., None]
  v = jax.lax.broadcasted_iota(jnp.int32, logits.shape, 3)
  # softmax as (z - m) - log_s, the forward pass's exact form (see `_log_normaliser`).
  grad = jnp.exp((logits.astype(jnp.float32) - m[..., None]) - log_s[..., None]) * coef
  grad = grad - jnp.where(v == blank_id, occ_blank[..., None], 0.0)
  grad = grad - jnp.where(v == labels_ext[:, None, :, None], occ_emit[..., None], 0.0)
  # Nodes outside the lattice have zero occupancy; `where` keeps NaN/inf padding out.
  grad = jnp.where(coef > 0, grad * g[:, None, None, None], 0.0).astype(logits.dtype)
  return grad, _no_grad(labels_ext), _no_grad(frame_lengths), _no_grad(label_lengths)


_fused_loss.defvjp(_fused_loss_fwd, _fused_loss_bwd)
_fused_loss_jit = jax.jit(_fused_loss, static_argnums=(4, 5))


# ----------------------------------------------------------------------------
# The same loss with the vocabulary passes in Pallas kernels (`asrjax.losses.rnnt_kernel`)
# ----------------------------------------------------------------------------


def _kernel_rows(logits, labels_ext):
  b, t, u1, v = logits.shape
  return logits.reshape(b * t * u1, v), jnp.broadcast_to(labels_ext[:, None, :], (b, t, u1)).reshape(-1)


def _kernel_log_probs(logits, labels_ext, blank_id, max_elements, interpret):
  from asrjax.losses import rnnt_kernel  # noqa: PLC0415

  rows, row_labels = _kernel_rows(logits, labels_ext)
  m, log_s, blank, nxt = rnnt_kernel.row_stats(rows, row_labels, blank_id=blank_id, max_elements=max_elements,
                                               interpret=interpret)
  shape = logits.shape[:3]
  m, log_s = m.reshape(shape), log_s.reshape(shape)
  return m, log_s, (blank.reshape(shape) - m) - log_s, (nxt.reshape(shape) - m) - log_s


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6, 7))
def _kernel_loss(logits, labels_ext, frame_lengths, label_lengths, blank_id, fastemit_lambda, max_elements, interpret):
  _, _, blank, nxt = _kernel_log_probs(logits, labels_ext, blank_id, max_elements, interpret)
  return -lattice_lib.forward_backward(blank, nxt, frame_lengths, label_lengths).log_likelihood


def _kernel_loss_fwd(logits, labels_ext, frame_lengths, label_lengths, blank_id, fastemit_lambda, max_elements,
                     interpret):
  m, log_s, blank, nxt = _kernel_log_probs(logits, labels_ext, blank_id, max_elements, interpret)
  lat = lattice_lib.forward_backward(blank, nxt, frame_lengths, label_lengths)
  res = (logits, m, log_s, lat.blank_occupancy, lat.emit_occupancy, labels_ext, frame_lengths, label_lengths)
  return -lat.log_likelihood, res


def _kernel_loss_bwd(blank_id, fastemit_lambda, max_elements, interpret, res, g):
  from asrjax.losses import rnnt_kernel  # noqa: PLC0415

  logits, m, log_s, occ_blank, occ_emit, labels_ext, frame_lengths, label_lengths = res
  occ_emit = (1.0 + fastemit_lambda) * occ_emit
  coef = occ_blank + occ_emit
  scale = g[:, None, None]
  rows, row_labels = _kernel_rows(logits, labels_ext)
  flat = lambda x: x.reshape(-1)
  grad = rnnt_kernel.row_grad(rows, row_labels, flat(m), flat(log_s), flat(coef * scale), flat(occ_blank * scale),
                              flat(occ_emit * scale), flat((coef > 0).astype(jnp.float32)), blank_id=blank_id,
                              max_elements=max_elements, interpret=interpret)
  return grad.reshape(logits.shape), _no_grad(labels_ext), _no_grad(frame_lengths), _no_grad(label_lengths)


_kernel_loss.defvjp(_kernel_loss_fwd, _kernel_loss_bwd)
_kernel_loss_jit = jax.jit(_kernel_loss, static_argnums=(4, 5, 6, 7))

KERNELS = ("auto", "xla", "pallas")
# Compiled (Triton) Pallas kernels failed their tests on an H200 (2026-12-04, jax 0.11.2: wrong
# gradient rows at V = 37, a wrong loss at V = 700 -- BUILD_NOTES, "The kernel on a GPU"), so
# on a GPU backend "pallas" is refused unless this variable is "1" (the device check
# `experiments/gpu_rnnt_loss.sh` sets it, to test a fix).
UNVALIDATED_GPU_ENV = "ASRJAX_UNVALIDATED_PALLAS_GPU"


def choose_kernel(kernel: str = "auto") -> str:
  """``"pallas"`` or ``"xla"``: ``kernel`` itself, or for ``"auto"`` the XLA path on every backend
  (on an H200 it was as fast as the Pallas kernel at every size measured, with half its
  memory when the logits are donated, and the kernel failed its GPU tests).

  Raises:
    ValueError: ``kernel`` is not one of `KERNELS`, or ``"pallas"`` on a GPU backend, where
      the compiled kernel gives wrong answers, unless `UNVALIDATED_GPU_ENV` is ``"1"``.
  """
  if kernel not in KERNELS:
    raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}.")
  if kernel == "auto":
    return "xla"
  if kernel == "pallas" and jax.default_backend() == "gpu" and os.environ.get(UNVALIDATED_GPU_ENV) != "1":
    raise ValueError("kernel='pallas' is refused on a GPU: the compiled Triton kernel failed its tests on an H200 "
                     "(wrong gradients and losses; BUILD_NOTES, 'The kernel on a GPU'). Use kernel='xla' (as fast "
                     f"there), or set {UNVALIDATED_GPU_ENV}=1 to run it anyway while testing a fix.")
  return kernel


def rnnt_loss(
    logits: jax.Array,
    logit_paddings: jax.Array,
    labels: jax.Array,
    label_paddings: jax.Array,
    *,
    blank_id: int = 0,
    fastemit_lambda: float = 0.0,
    kernel: str = "auto",
    max_elements: int | None = None,
) -> jax.Array:
  """Per-sequence RNN-T loss ``-log P(y|x)`` summed over all alignments.

  Args:
    logits: ``(B, T, U+1, V)``-array of joint-network outputs (unnormalised; fp32
      or bf16 -- accumulation is always fp32, the gradient has the logits' dtype).
      ``logits[b, t, u]`` scores the next output after frame t with ``y[:u]`` emitted.
      Log-probs are formed as ``(z - max z) - log sum exp(z - max z)``, so a common
      offset on a row of logits (even 1e8) does not change the loss.
    logit_paddings: ``(B, T)``-array; ``logit_paddings[b, t] == 1`` marks a padded
      frame, 0 a valid one. Values must be 0/1 and padding trailing (once 1, then 1
      to the end of the row; `asrjax.losses.validate_paddings`).
    labels: ``(B, U)`` int array of label ids in ``[0, V)``, never ``blank_id``.
    label_paddings: ``(B, U)``-array; 1 marks a padded label (0/1, trailing).
    blank_id: index of the blank symbol, an int in ``[0, V)``.
    fastemit_lambda: FastEmit regularisation weight ``lam``, a static, finite Python
      float ``>= 0`` (a traced value is rejected: it selects the compiled gradient).
      The gradient of every label-emission edge is scaled by ``1 + lam`` (Yu et al.
      2021, eq. 10); the returned value stays the plain negative log-likelihood.
    kernel: the vocabulary passes' implementation: ``"xla"`` (fused XLA, the portable
      path), ``"pallas"`` (`asrjax.losses.rnnt_kernel`: Triton on a GPU, interpret mode
      elsewhere -- slow, for tests; refused on a GPU, where it failed its tests:
      `choose_kernel`), ``"auto"`` (XLA). Both give the same loss and gradient to float
      rounding in interpret mode.
    max_elements: Pallas only: logits per kernel call (default ``2^31 - 1``, so 32-bit
      offsets never overflow; smaller values force chunking, for tests).

  Returns:
    ``(B,)`` fp32 array of ``-log P(y|x)``. ``+inf`` (zero gradient) for an
    utterance with no valid frame (every row when ``T = 0``); ``(0,)`` when
    ``B = 0``. Under `jit`, where values cannot be inspected, a row with an invalid
    label or with paddings that are not trailing 0/1 gets NaN (loudly; the other
    rows are unaffected). A NaN/inf logit inside an utterance's lattice gives NaN
    (or inf); padded positions may hold anything.

  Raises:
    ValueError: on wrong ranks, shapes or dtypes, a bad ``blank_id`` or
      ``fastemit_lambda``, and -- when those arrays are concrete -- on paddings that
      are not trailing 0/1 or on invalid labels; the message names the argument.
  """
  shape, dtype = _shape_dtype(logits, "logits")
  if len(shape) != 4:
    raise ValueError(f"logits must be a (B, T, U+1, V) array; got shape {shape}.")
  if not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(f"logits must be a float array (fp32 or bf16); got dtype {dtype}.")
  vocab = shape[-1]
  if vocab < 1:
    raise ValueError(f"logits must have V >= 1 symbols on the last axis; got shape {shape}.")
  check_inputs(shape, logit_paddings, labels, label_paddings, blank_id, vocab)
  blank_id = check_blank_id(blank_id, vocab)
  fastemit_lambda = check_fastemit_lambda(fastemit_lambda)
  invalid = _invalid_rows(labels, label_paddings, logit_paddings, blank_id, vocab)
  if shape[1] == 0:  # no frames at all: no alignment exists (the documented +inf, zero gradient)
    return _nan_if_invalid(jnp.full((shape[0],), jnp.inf, jnp.float32), invalid)
  labels_ext = _extend_labels(jnp.asarray(labels), blank_id, vocab)
  lengths = (_lengths(logit_paddings), _lengths(label_paddings))
  if choose_kernel(kernel) == "pallas":
    from asrjax.losses import rnnt_kernel  # noqa: PLC0415

    if max_elements is None:
      max_elements = rnnt_kernel.MAX_ELEMENTS
    if isinstance(max_elements, bool) or not isinstance(max_elements, numbers.Integral) or max_elements < 1:
      raise ValueError(f"max_elements must be an integer >= 1; got {max_elements!r}.")
    loss = _kernel_loss_jit(jnp.asarray(logits), labels_ext, *lengths, blank_id, fastemit_lambda, int(max_elements),
                            rnnt_kernel.default_interpret())
  else:
    loss = _fused_loss_jit(jnp.asarray(logits), labels_ext, *lengths, blank_id, fastemit_lambda)
  return _nan_if_invalid(loss, invalid)
