r"""Where the compiled Pallas RNN-T kernels go wrong: each pass against plain jnp, by vocabulary shape.

  ASRJAX_UNVALIDATED_PALLAS_GPU=1 python experiments/diagnose_rnnt_kernel.py   # on a GPU (seconds)
  python experiments/diagnose_rnnt_kernel.py --interpret=true                   # the same table on the CPU

The H200 run of 2026-12-04 (BUILD_NOTES.md, "The kernel on a GPU") saw zero gradient rows at
V = 37 and a wrong loss at V = 700, but agreement at V = 512 and 1024. This prints, per
(rows N, vocabulary V), the largest error of each output of `rnnt_kernel.row_stats` (row max
``m``, ``log s``, blank and next-label logits) and of `rnnt_kernel.row_grad` against the same
quantities in plain jnp, so one short device call separates the suspects: a partial last
vocabulary tile (V not a multiple of the tile: 37, 700), several tiles (V > 512: the stats
kernel accumulates across the vocabulary grid axis), a partial last row block (N not a
multiple of `rnnt_kernel.ROWS`). Interpret mode should print zeros to rounding everywhere.
"""

from __future__ import annotations

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from asrjax.losses import rnnt_kernel

_INTERPRET = flags.DEFINE_bool("interpret", None, "Interpret mode (default: off on a GPU, on elsewhere).")
_SHAPES = flags.DEFINE_list("shapes", ["32x37", "37x37", "32x64", "32x512", "32x700", "37x700", "32x1024", "37x1024"],
                            "NxV row blocks to check.")


def reference(z, labels, m, log_s, a, b, e, keep, blank_id):
  """Plain-jnp row statistics and gradient (the kernels' module docstring)."""
  zf = z.astype(jnp.float32)
  m_ref = jnp.max(zf, axis=1)
  m_ref = jnp.where(jnp.isfinite(m_ref), m_ref, 0.0)
  log_s_ref = jnp.log(jnp.sum(jnp.exp(zf - m_ref[:, None]), axis=1))
  blank = zf[:, blank_id]
  nxt = jnp.take_along_axis(zf, labels[:, None], axis=1)[:, 0]
  soft = jnp.exp(zf - m[:, None] - log_s[:, None])
  col = jnp.arange(z.shape[1])[None]
  g = soft * a[:, None] - jnp.where(col == blank_id, b[:, None], 0.0) - jnp.where(col == labels[:, None], e[:, None], 0.0)
  return (m_ref, log_s_ref, blank, nxt), jnp.where(keep[:, None] > 0, g, 0.0)


def main(argv):
  del argv
  interpret = rnnt_kernel.default_interpret() if _INTERPRET.value is None else _INTERPRET.value
  shapes = []
  for shape in _SHAPES.value:
    parts = shape.split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
      raise app.UsageError(f"--shapes: {shape!r} is not NxV with N, V positive integers (e.g. 32x700).")
    shapes.append(tuple(int(p) for p in parts))
  print(f"backend {jax.default_backend()}  jax {jax.__version__}  interpret {interpret}")
  print("| N | V | tiles | max err m | log s | blank | next | grad | grad rows all 0 (want none) |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  for n, v in shapes:
    rng = np.random.default_rng(n * 10_000 + v)
    z = jnp.asarray(rng.normal(size=(n, v)) * 2, jnp.float32)
    labels = jnp.asarray(rng.integers(1, v, size=n) if v > 1 else np.zeros(n), jnp.int32)
    a, b, e = (jnp.asarray(rng.uniform(0.1, 1.0, size=n), jnp.float32) for _ in range(3))
    keep = jnp.ones((n,), jnp.float32)
    stats = rnnt_kernel.row_stats(z, labels, blank_id=0, interpret=interpret)
    grad = rnnt_kernel.row_grad(z, labels, stats[0], stats[1], a, b, e, keep, blank_id=0, interpret=interpret)
    want_stats, want_grad = reference(z, labels, stats[0], stats[1], a, b, e, keep, 0)
    errs = [float(jnp.max(jnp.abs(x - y))) for x, y in zip(stats, want_stats, strict=True)]
    g_err = float(jnp.max(jnp.abs(grad - want_grad)))
    zero_rows = np.flatnonzero(np.all(np.asarray(grad) == 0, axis=1)).tolist()
    tiles = -(-v // min(rnnt_kernel.VOCAB_TILE, 1 << max(v - 1, 0).bit_length()))
    print(f"| {n} | {v} | {tiles} | " + " | ".join(f"{x:.1e}" for x in errs) + f" | {g_err:.1e} | {zero_rows[:8]} |")


if __name__ == "__main__":
  app.run(main)
