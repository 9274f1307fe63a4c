r"""Fused Pallas kernels for the RNN-T loss's vocabulary passes (Triton on GPU, interpret mode elsewhere).

The RNN-T loss (`asrjax.losses.rnnt`) spends its time in two passes over the
``[B, T, U+1, V]`` logits, not in the ``O(B T U)`` lattice:

* **stats** (forward): per lattice node, the row maximum ``m``, ``log s = log sum_v
  exp(z_v - m)`` and the blank and next-label logits -- one read of the logits, the
  vocabulary streamed in tiles of `VOCAB_TILE` with an online (running-max) log-sum-exp,
  so a row never has to fit in one block;
* **grad** (backward): ``d loss / d z_v = softmax_v * a - [v = blank] b - [v = y] e``
  (``a``, ``b``, ``e`` the occupancies times the cotangent, FastEmit folded into ``e``),
  one more read of the logits and one write of the gradient, tile by tile.

Rows are the flattened lattice nodes ``N = B T (U+1)``; blocks are `ROWS` x `VOCAB_TILE`
(powers of two, as Triton wants), the last row block and vocabulary tile masked in the
kernel (columns past ``V`` read as ``-inf``; rows past ``N`` are never written back).

Past 2^31 elements: a kernel's offsets are 32-bit, so `row_chunks` cuts the rows into
calls of at most ``max_elements`` logits each (default ``2^31 - 1``), every call on a
slice of at most that size; tests force tiny chunks on the CPU to check the cutting.

**Compiled on a GPU these kernels failed their tests** (H200, jax 0.11.2, 2026-12-04: zero
gradient rows with one partial vocabulary tile, a wrong loss with two tiles), so
`asrjax.losses.rnnt.choose_kernel` refuses them there unless told otherwise; interpret mode
(the CPU tests) is correct. BUILD_NOTES.md, "The kernel on a GPU", has the suspects.

The numerics are the XLA path's: log-probs are ``(z - m) - log s`` with ``m`` replaced
by 0 when it is not finite, the max subtracted before anything is rounded.

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012; Milakov and
  Gimelshein, "Online normalizer calculation for softmax", 2018 (the running-max
  log-sum-exp); Tillet et al., "Triton", MAPL 2019.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

ROWS = 16  # lattice nodes per block
VOCAB_TILE = 512  # vocabulary entries per block
MAX_ELEMENTS = 2**31 - 1  # logits per kernel call: 32-bit offsets


def default_interpret() -> bool:
  """Interpret mode (the kernel's Python semantics through XLA) off GPUs, compiled Triton on them."""
  return jax.default_backend() != "gpu"


def row_chunks(num_rows: int, vocab: int, max_elements: int = MAX_ELEMENTS) -> list[tuple[int, int]]:
  """``[(start, stop)]`` row ranges covering ``num_rows``, each of at most ``max_elements // vocab``
  rows (a multiple of `ROWS` when that many fit).

  Raises:
    ValueError: one row of ``vocab`` logits exceeds ``max_elements``.
  """
  if vocab > max_elements:
    raise ValueError(f"a row of V = {vocab} logits exceeds max_elements = {max_elements}.")
  per = max_elements // vocab
  if per >= ROWS:
    per -= per % ROWS
  return [(s, min(s + per, num_rows)) for s in range(0, num_rows, per)] or [(0, 0)]


def _tiles(vocab: int) -> tuple[int, int]:
  """``(tile, count)``: the vocabulary tile (a power of two, at most `VOCAB_TILE`) and tiles per row."""
  tile = min(VOCAB_TILE, 1 << max(vocab - 1, 0).bit_length())
  return tile, -(-vocab // tile)


def _stats_kernel(vocab, tile, num_tiles, blank_id, z_ref, label_ref, m_ref, s_ref, blank_ref, next_ref):
  j = pl.program_id(1)
  col = j * tile + jax.lax.broadcasted_iota(jnp.int32, z_ref.shape, 1)
  z = jnp.where(col < vocab, z_ref[...].astype(jnp.float32), -jnp.inf)

  @pl.when(j == 0)
  def _():
    m_ref[...] = jnp.full(m_ref.shape, -jnp.inf, jnp.float32)
    s_ref[...] = jnp.zeros(s_ref.shape, jnp.float32)
    blank_ref[...] = jnp.zeros(blank_ref.shape, jnp.float32)
    next_ref[...] = jnp.zeros(next_ref.shape, jnp.float32)

  m_old = m_ref[...]
  m_new = jnp.maximum(m_old, jnp.max(z, axis=1))
  safe_old = jnp.where(jnp.isfinite(m_old), m_old, 0.0)
  safe_new = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
  # the sum so far is relative to the old (safe) max; rescale it to the new one
  s_ref[...] = s_ref[...] * jnp.exp(safe_old - safe_new) + jnp.sum(jnp.exp(z - safe_new[:, None]), axis=1)
  m_ref[...] = m_new
  blank_ref[...] += jnp.sum(jnp.where(col == blank_id, z, 0.0), axis=1)
  next_ref[...] += jnp.sum(jnp.where(col == label_ref[...][:, None], z, 0.0), axis=1)

  @pl.when(j == num_tiles - 1)
  def _():
    m_ref[...] = jnp.where(jnp.isfinite(m_ref[...]), m_ref[...], 0.0)
    s_ref[...] = jnp.log(s_ref[...])


def _grad_kernel(vocab, tile, blank_id, z_ref, label_ref, m_ref, s_ref, a_ref, b_ref, e_ref, keep_ref, out_ref):
  j = pl.program_id(1)
  col = j * tile + jax.lax.broadcasted_iota(jnp.int32, z_ref.shape, 1)
  z = z_ref[...].astype(jnp.float32)
  soft = jnp.exp((z - m_ref[...][:, None]) - s_ref[...][:, None])
  g = soft * a_ref[...][:, None]
  g = g - jnp.where(col == blank_id, b_ref[...][:, None], 0.0)
  g = g - jnp.where(col == label_ref[...][:, None], e_ref[...][:, None], 0.0)
  g = jnp.where((keep_ref[...][:, None] > 0) & (col < vocab), g, 0.0)
  out_ref[...] = g.astype(out_ref.dtype)


def _row_spec(rows):
  return pl.BlockSpec((rows,), lambda i, j: (i,))


@functools.partial(jax.jit, static_argnames=("blank_id", "interpret"))
def _stats_call(z, labels, *, blank_id: int, interpret: bool):
  n, vocab = z.shape
  tile, num_tiles = _tiles(vocab)
  kernel = functools.partial(_stats_kernel, vocab, tile, num_tiles, blank_id)
  vec = jax.ShapeDtypeStruct((n,), jnp.float32)
  return pl.pallas_call(
      kernel, out_shape=(vec, vec, vec, vec), grid=(pl.cdiv(n, ROWS), num_tiles),
      in_specs=[pl.BlockSpec((ROWS, tile), lambda i, j: (i, j)), _row_spec(ROWS)],
      out_specs=tuple(_row_spec(ROWS) for _ in range(4)), interpret=interpret)(z, labels)


@functools.partial(jax.jit, static_argnames=("blank_id", "interpret"))
def _grad_call(z, labels, m, log_s, a, b, e, keep, *, blank_id: int, interpret: bool):
  n, vocab = z.shape
  tile, num_tiles = _tiles(vocab)
  kernel = functools.partial(_grad_kernel, vocab, tile, blank_id)
  return pl.pallas_call(
      kernel, out_shape=jax.ShapeDtypeStruct(z.shape, z.dtype), grid=(pl.cdiv(n, ROWS), num_tiles),
      in_specs=[pl.BlockSpec((ROWS, tile), lambda i, j: (i, j))] + [_row_spec(ROWS)] * 7,
      out_specs=pl.BlockSpec((ROWS, tile), lambda i, j: (i, j)), interpret=interpret)(
          z, labels, m, log_s, a, b, e, keep)


def row_stats(logits, labels, *, blank_id: int, max_elements: int = MAX_ELEMENTS, interpret: bool | None = None):
  """``(m, log_s, blank_logit, next_logit)``, each ``[N]`` fp32, of ``logits [N, V]`` with each
  row's next label ``labels [N]`` (module docstring), in `row_chunks` calls."""
  interpret = default_interpret() if interpret is None else interpret
  n, vocab = logits.shape
  parts = [_stats_call(logits[s:t], labels[s:t], blank_id=blank_id, interpret=interpret)
           for s, t in row_chunks(n, vocab, max_elements) if t > s]
  if not parts:
    empty = jnp.zeros((0,), jnp.float32)
    return empty, empty, empty, empty
  return tuple(jnp.concatenate([p[k] for p in parts]) for k in range(4))


def row_grad(logits, labels, m, log_s, a, b, e, keep, *, blank_id: int, max_elements: int = MAX_ELEMENTS,
             interpret: bool | None = None):
  """``[N, V]`` gradient in the logits' dtype: ``softmax * a - [blank] b - [next] e`` where
  ``keep > 0``, else 0 (module docstring), in `row_chunks` calls."""
  interpret = default_interpret() if interpret is None else interpret
  n, vocab = logits.shape
  parts = [_grad_call(logits[s:t], labels[s:t], m[s:t], log_s[s:t], a[s:t], b[s:t], e[s:t], keep[s:t],
                      blank_id=blank_id, interpret=interpret)
           for s, t in row_chunks(n, vocab, max_elements) if t > s]
  return jnp.concatenate(parts) if parts else jnp.zeros(logits.shape, logits.dtype)


__all__ = ["MAX_ELEMENTS", "ROWS", "VOCAB_TILE", "default_interpret", "row_chunks", "row_grad", "row_stats"]
