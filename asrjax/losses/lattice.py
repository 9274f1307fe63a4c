r"""Forward-backward over the RNN-T output lattice, one anti-diagonal at a time.

The lattice of one utterance with ``T`` frames and ``U`` labels ``y_1..y_U``::

      u=U   o --> o --> o --> o ==> (T, U)   <- virtual end node
            ^     ^     ^     ^
            |     |     |     |     ^ emit[t, u]:  y_{u+1} emitted at node (t, u),
      u=1   o --> o --> o --> o       moves (t, u) -> (t, u + 1)
            ^     ^     ^     ^
            |     |     |     |     --> blank[t, u]: blank at node (t, u),
      u=0   o --> o --> o --> o         moves (t, u) -> (t + 1, u)
           t=0   t=1         t=T-1

Indices:
  ``blank[t, u] = log p(blank | x[:t+1] aligned with y[:u])`` and
  ``emit[t, u] = log p(y_{u+1} | x[:t+1] aligned with y[:u])``;
  ``alpha[t, u]`` is the log-probability of all partial paths from (0, 0) to (t, u),
  ``beta[t, u]`` the log-probability of all partial paths from (t, u) to the end,
  including the final blank that leaves (T-1, U) for the virtual node (T, U).
  ``log P(y|x) = alpha[T-1, U] + blank[T-1, U] = beta[0, 0]``.

Layout. Node (t, u) lies on anti-diagonal ``n = t + u``; every node of diagonal n
depends only on diagonal n - 1, so one `jax.lax.scan` step updates a whole
diagonal ``[B, U+1]`` at once. That is ``T + U`` sequential steps of O(U) work each,
against ``T`` steps of a log-cumsum along U for the frame-by-frame layout; the
frame layout needs ``alpha = c + cumlogsumexp(a - c)`` with ``c`` a running sum of
emission log-probs, which cancels catastrophically in fp32 when the emission
log-probs are large (e.g. logits of +-1e4). The diagonal form only ever adds two
log-probs and takes a `logaddexp`, so it is exact to fp32 rounding for any logits.
See BUILD_NOTES.md for the measurement behind the choice.

Variable lengths are handled by masking the edge weights to -inf outside each
utterance's own lattice (``t >= T_b``, ``u > U_b``) and by reading/injecting the
end node (T_b, U_b) per utterance, so padded nodes get zero occupancy exactly.

Memory: the skewed copies of blank/emit, alpha and beta are each
``[T + U + 1, B, U + 1]`` fp32 -- O(B.T.U), independent of the vocabulary.

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

NEG_INF = -jnp.inf


class Lattice(NamedTuple):
  """Forward-backward results for a batch of lattices.

  Attributes:
    alpha: ``[B, T, U+1]`` fp32 forward log-probabilities (see module docstring).
    beta: ``[B, T, U+1]`` fp32 backward log-probabilities; -inf outside each
      utterance's lattice.
    log_likelihood: ``[B]`` ``log P(y|x)``; -inf for an utterance with no frame.
    blank_occupancy: ``[B, T, U+1]`` posterior probability that a path takes the
      blank edge leaving (t, u); zero outside the lattice.
    emit_occupancy: ``[B, T, U+1]`` posterior probability that a path takes the
      emission edge leaving (t, u); zero outside the lattice and at u = U_b.
  """

  alpha: jax.Array
  beta: jax.Array
  log_likelihood: jax.Array
  blank_occupancy: jax.Array
  emit_occupancy: jax.Array


def skew(x: jax.Array, fill: float) -> jax.Array:
  """Rearranges ``[B, T, U1]`` by anti-diagonal: ``out[n, b, u] = x[b, n - u, u]``.

  Args:
    x: ``[B, T, U1]`` array.
    fill: value where ``n - u`` is outside ``[0, T)``.

  Returns:
    ``[T + U1, B, U1]`` array, diagonal-major so that `jax.lax.scan` walks diagonals.
  """
  _, t_max, u1 = x.shape
  n = jnp.arange(t_max + u1)[:, None]
  u = jnp.arange(u1)[None, :]
  t = n - u
  valid = (t >= 0) & (t < t_max)
  g = x[:, jnp.clip(t, 0, t_max - 1), u]  # [B, N, U1]
  g = jnp.where(valid[None], g, jnp.asarray(fill, x.dtype))
  return jnp.transpose(g, (1, 0, 2))


def unskew(y: jax.Array, t_max: int) -> jax.Array:
  """Inverse of `skew`: ``[N, B, U1] -> [B, T, U1]`` with ``out[b, t, u] = y[t + u, b, u]``."""
  u1 = y.shape[2]
  t = jnp.arange(t_max)[:, None]
  u = jnp.arange(u1)[None, :]
  g = y[t + u, :, u]  # [T, U1, B]
  return jnp.transpose(g, (2, 0, 1))


def _shift_up(x: jax.Array) -> jax.Array:
  """``[B, U1]``: ``out[:, u] = x[:, u - 1]``, -inf at u = 0."""
  return jnp.pad(x[:, :-1], ((0, 0), (1, 0)), constant_values=NEG_INF)


def _shift_down(x: jax.Array) -> jax.Array:
  """``[B, U1]``: ``out[:, u] = x[:, u + 1]``, -inf at u = U."""
  return jnp.pad(x[:, 1:], ((0, 0), (0, 1)), constant_values=NEG_INF)


def mask_edges(
    blank: jax.Array, emit: jax.Array, frame_lengths: jax.Array, label_lengths: jax.Array, dtype=jnp.float32
) -> tuple[jax.Array, jax.Array]:
  """Sets edge log-weights outside each utterance's lattice to -inf.

  Args:
    blank: ``[B, T, U1]`` blank log-probs.
    emit: ``[B, T, U1]`` next-label log-probs (``emit[:, :, U]`` is ignored).
    frame_lengths: ``[B]`` int, frames per utterance ``T_b``.
    label_lengths: ``[B]`` int, labels per utterance ``U_b``.
    dtype: of the result (fp32 for the loss; float64 for a high-precision reference).

  Returns:
    ``(blank, emit)`` in ``dtype``, -inf where ``t >= T_b``, and ``u > U_b`` (blank) or
    ``u >= U_b`` (emit). Uses `where`, so NaN in padded positions cannot leak.
  """
  _, t_max, u1 = blank.shape
  t = jnp.arange(t_max)[None, :, None]
  u = jnp.arange(u1)[None, None, :]
  in_time = t < frame_lengths[:, None, None]
  blank = jnp.where(in_time & (u <= label_lengths[:, None, None]), blank.astype(dtype), NEG_INF)
  emit = jnp.where(in_time & (u < label_lengths[:, None, None]), emit.astype(dtype), NEG_INF)
  return blank, emit


def forward_backward(
    blank: jax.Array, emit: jax.Array, frame_lengths: jax.Array, label_lengths: jax.Array
) -> Lattice:
  """Alpha, beta, likelihood and edge occupancies of a batch of RNN-T lattices.

  Not differentiable by design (callers define the gradient from the occupancies).

  Args:
    blank: ``[B, T, U+1]`` ``blank[b, t, u] = log p(blank | t, y[:u])``.
    emit: ``[B, T, U+1]`` ``emit[b, t, u] = log p(y_{u+1} | t, y[:u])``; the column
      ``u = U`` is ignored.
    frame_lengths: ``[B]`` int ``T_b`` (``0 <= T_b <= T``).
    label_lengths: ``[B]`` int ``U_b`` (``0 <= U_b <= U``).

  Returns:
    A `Lattice`. Occupancies of an utterance with ``T_b = 0`` are zero.
  """
  blank, emit = mask_edges(blank, emit, frame_lengths, label_lengths)
  blank, emit = jax.lax.stop_gradient((blank, emit))
  batch, t_max, u1 = blank.shape
  blank_d = skew(blank, NEG_INF)  # [N, B, U1], N = T + U1
  emit_d = skew(emit, NEG_INF)
  n_diag = blank_d.shape[0]
  batch_idx = jnp.arange(batch)
  end_diag = frame_lengths + label_lengths  # diagonal of the virtual end node (T_b, U_b)

  # alpha on diagonal n + 1 from diagonal n: blank edges keep u, emission edges u + 1.
  def alpha_step(a, edges):
    b, e = edges
    nxt = jnp.logaddexp(a + b, _shift_up(a + e))
    return nxt, nxt

  alpha0 = jnp.full((batch, u1), NEG_INF, jnp.float32).at[:, 0].set(0.0)
  _, alpha_rest = jax.lax.scan(alpha_step, alpha0, (blank_d[:-1], emit_d[:-1]))
  alpha_d = jnp.concatenate([alpha0[None], alpha_rest], axis=0)  # [N, B, U1]
  log_likelihood = alpha_d[end_diag, batch_idx, label_lengths]
  has_frames = frame_lengths > 0
  log_likelihood = jnp.where(has_frames, log_likelihood, NEG_INF)

  # beta on diagonal n from diagonal n + 1; the end node (T_b, U_b) is injected as 0.
  u_idx = jnp.arange(u1)[None, :]
  end_here = (u_idx == label_lengths[:, None]) & has_frames[:, None]

  def beta_step(bnext, xs):
    n, b, e = xs
    cur = jnp.logaddexp(bnext + b, _shift_down(bnext) + e)
    cur = jnp.where(end_here & (n == end_diag)[:, None], 0.0, cur)
    return cur, bnext

  beta_last = jnp.full((batch, u1), NEG_INF, jnp.float32)
  # The scan emits beta of diagonal n + 1 at step n, which the occupancies need.
  beta0, beta_next_d = jax.lax.scan(
      beta_step, beta_last, (jnp.arange(n_diag), blank_d, emit_d), reverse=True
  )
  # beta_next_d[n] = beta on diagonal n + 1; beta_d[n] = beta on diagonal n.
  beta_d = jnp.concatenate([beta0[None], beta_next_d[:-1]], axis=0)

  ll = jnp.where(has_frames, log_likelihood, 0.0)[None, :, None]
  occ_blank_d = jnp.exp(alpha_d + blank_d + beta_next_d - ll)
  occ_emit_d = jnp.exp(alpha_d + emit_d + _shift_down_diag(beta_next_d) - ll)
  keep = has_frames[None, :, None]
  occ_blank_d = jnp.where(keep, occ_blank_d, 0.0)
  occ_emit_d = jnp.where(keep, occ_emit_d, 0.0)
  return Lattice(
      alpha=unskew(alpha_d, t_max),
      beta=unskew(beta_d, t_max),
      log_likelihood=log_likelihood,
      blank_occupancy=unskew(occ_blank_d, t_max),
      emit_occupancy=unskew(occ_emit_d, t_max),
  )


def _shift_down_diag(x: jax.Array) -> jax.Array:
  """``[N, B, U1]``: ``out[:, :, u] = x[:, :, u + 1]``, -inf at u = U."""
  return jnp.pad(x[:, :, 1:], ((0, 0), (0, 0), (0, 1)), constant_values=NEG_INF)
