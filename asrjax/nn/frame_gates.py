"""Per-frame gates: differentiable estimators for training, compaction that really skips work.

A gate ``g[b, t]`` in {0, 1} switches a sub-block on or off for one frame. Training
needs a gradient through the discrete choice; inference needs the switched-off frames
not to be computed at all.

Training estimators (`gate`), each from logits ``a`` with ``p = sigmoid(a)`` the
probability of "on":

* ``"gumbel_st"`` -- straight-through Gumbel-sigmoid (Jang et al., 2017; Bengio et al.,
  2013): logistic noise ``L``, soft ``s = sigmoid((a + L) / tau)``, forward the hard
  ``s > 1/2`` (on with probability exactly ``p``), backward the gradient of ``s``.
* ``"relaxed"`` -- the relaxed Bernoulli (binary Concrete, Maddison et al., 2017):
  forward and backward the soft ``s`` itself; inference then thresholds, a mismatch.
* ``"sigmoid_st"`` -- deterministic straight-through: forward ``a > 0``, backward
  ``sigmoid(a / tau)``.

Inference (no key): ``a > 0``, the mode of the gate.

Skipping: under ``vmap`` a per-frame ``lax.cond`` becomes a ``select`` that computes
both branches (jax-ml/jax #8409), and a mask multiplies work that was already done. So
`compact_rows` gathers each row's active frames into a buffer of static capacity,
runs the sub-block there and scatters the result back; the capacity is the smallest
of a few buckets (`capacity_buckets`) that holds the busiest row, chosen on device by
``lax.switch`` (a real conditional outside ``vmap``: only the chosen branch runs), so
jit compiles once per input shape, not once per gate pattern.

References:
  Xie et al., "Compute cost amortized Transformer for streaming ASR", Interspeech 2022.
  Jang et al., "Categorical reparameterization with Gumbel-softmax", ICLR 2017.
  Maddison et al., "The Concrete distribution", ICLR 2017.
  Bengio et al., "Estimating or propagating gradients through stochastic neurons", 2013.
"""

from __future__ import annotations

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

ESTIMATORS = ("gumbel_st", "relaxed", "sigmoid_st")
ONE_HOT_FRAMES = 64  # rows up to this long are compacted by one-hot matmuls (`compact_apply`)


def gate(logits: jax.Array, key: jax.Array | None, estimator: str = "gumbel_st",
         temperature: float = 1.0) -> jax.Array:
  """Gate values ``[...]`` from ``logits [...]``: training estimators with ``key``, hard ``logits > 0`` without.

  Raises:
    ValueError: unknown ``estimator`` or ``temperature <= 0``.
  """
  if estimator not in ESTIMATORS:
    raise ValueError(f"gate estimator must be one of {ESTIMATORS}; got {estimator!r}.")
  if not temperature > 0:
    raise ValueError(f"gate temperature must be > 0; got {temperature!r}.")
  hard_mode = (logits > 0).astype(logits.dtype)
  if key is None:
    return hard_mode
  if estimator == "sigmoid_st":
    soft = jax.nn.sigmoid(logits / temperature)
    return hard_mode + (soft - jax.lax.stop_gradient(soft))  # exactly 0 or 1 forward
  u = jax.random.uniform(key, logits.shape, logits.dtype, minval=1e-6, maxval=1.0 - 1e-6)
  soft = jax.nn.sigmoid((logits + jnp.log(u) - jnp.log1p(-u)) / temperature)
  if estimator == "relaxed":
    return soft
  hard = (soft > 0.5).astype(logits.dtype)
  return hard + (soft - jax.lax.stop_gradient(soft))


def capacity_buckets(n: int, steps: int = 8) -> tuple[int, ...]:
  """The buffer sizes a compaction of ``n`` frames may use: ``ceil(k n / steps)`` for ``k = 0..steps``.

  0 (nothing active: the sub-block is skipped) and ``n`` (everything) are always among them.
  """
  return tuple(sorted({math.ceil(k * n / steps) for k in range(steps + 1)}))


def bucket_index(counts: jax.Array, capacities: tuple[int, ...]) -> jax.Array:
  """Index of the smallest capacity ``>= max(counts)`` (``capacities`` ascending, the last ``>= T``)."""
  return jnp.searchsorted(jnp.asarray(capacities), jnp.max(counts), side="left")


def compact_apply(module: nn.Module, fn: Callable, x: jax.Array, active: jax.Array, capacity: int) -> jax.Array:
  """``[B, T, D]``: ``fn`` on the first ``capacity`` active frames of each row, exactly zero elsewhere.

  Args:
    module: the linen module ``fn``'s parameters belong to.
    fn: ``fn(module, rows [B, Q], x_rows [B, Q, D]) -> [B, Q, D]``, frame-wise in the
      queries (row ``q`` of the output depends on ``x_rows[:, q]`` and ``rows[:, q]`` only).
    x: ``[B, T, D]``.
    active: ``[B, T]`` bool.
    capacity: the buffer size ``Q`` (static). A row with more active frames has its first
      ``capacity`` computed only: `compact_rows` chooses a capacity that holds them all; a
      caller passing its own (a cost measurement) must guarantee it.

  Each row's active frames are moved to the front (stable order), the buffer is computed
  and scattered back; unused slots of the buffer are computed but masked to zero. A
  capacity that holds the whole row computes it in place (no gather); rows of at most
  `ONE_HOT_FRAMES` frames (streaming chunks) gather and scatter by a one-hot matmul,
  longer ones by a sort and a scatter (on XLA:CPU the matmul costs 25 us less per call
  at 16 frames, and ``capacity x T x D`` multiply-adds, ~3% of an FFN there).
  """
  b, t = active.shape
  if capacity == 0:
    return jnp.zeros_like(x)
  if capacity >= t:
    return jnp.where(active[..., None], fn(module, jnp.broadcast_to(jnp.arange(t), (b, t)), x), 0.0).astype(x.dtype)
  if t <= ONE_HOT_FRAMES:
    slot = jnp.cumsum(active.astype(jnp.int32), axis=1) - 1  # [B, T]: each active frame's place in the buffer
    onehot = ((slot[:, None, :] == jnp.arange(capacity)[None, :, None]) & active[:, None, :]).astype(x.dtype)
    rows = jnp.einsum("bqt,t->bq", onehot, jnp.arange(t, dtype=x.dtype)).round().astype(jnp.int32)
    ok = jnp.sum(onehot, axis=2) > 0
    y = jnp.where(ok[..., None], fn(module, rows, jnp.einsum("bqt,btd->bqd", onehot, x)), 0.0)
    return jnp.einsum("bqt,bqd->btd", onehot, y.astype(x.dtype))
  rows = jnp.argsort(~active, axis=1, stable=True)[:, :capacity]  # active frames first
  ok = jnp.take_along_axis(active, rows, axis=1)
  y = fn(module, rows, jnp.take_along_axis(x, rows[..., None], axis=1))
  y = jnp.where(ok[..., None], y, 0.0)
  return jnp.zeros_like(x).at[jnp.arange(b)[:, None], rows].add(y.astype(x.dtype))


def compact_rows(module: nn.Module, fn: Callable, x: jax.Array, active: jax.Array,
                 capacities: tuple[int, ...]) -> jax.Array:
  """`compact_apply` at the smallest of ``capacities`` that holds the busiest row of ``active``.

  ``capacities`` ascending, the last ``>= T`` (`capacity_buckets`); chosen on device
  (``nn.switch``: one compiled branch per capacity, only the chosen one runs).

  Raises:
    ValueError: the largest capacity cannot hold a whole row.
  """
  t = active.shape[1]
  if not capacities or capacities[-1] < t:
    raise ValueError(f"the largest capacity of {tuple(capacities)} cannot hold all {t} frames of a row.")
  branches = [lambda mdl, x, active, c=c: compact_apply(mdl, fn, x, active, c) for c in capacities]
  counts = jnp.sum(active.astype(jnp.int32), axis=1)
  # the branches read parameters only (sown or captured intermediates would differ between them)
  return nn.switch(bucket_index(counts, capacities), branches, module, x, active, variables="params")


def compact_frames(module: nn.Module, fn: Callable, x: jax.Array, active: jax.Array,
                   capacities: tuple[int, ...] | int) -> jax.Array:
  """`compact_rows` over all ``B * T`` frames at once (one buffer for the batch), for a
  frame-wise ``fn(module, x [1, Q, D]) -> [1, Q, D]`` (a feed-forward sub-block).
  ``capacities`` are of ``B * T`` frames; an int is one static capacity (`compact_apply`)."""
  b, t, d = x.shape
  args = (module, lambda mdl, rows, xq: fn(mdl, xq), x.reshape(1, b * t, d), active.reshape(1, b * t))
  y = compact_apply(*args, capacities) if isinstance(capacities, int) else compact_rows(*args, capacities)
  return y.reshape(b, t, d)
