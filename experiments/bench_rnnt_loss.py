r"""Benchmark: asrjax's RNN-T losses (XLA, Pallas kernel, pruned) against a plain-JAX reference and torchaudio.

Prints one table row per (size, dtype, implementation): milliseconds for
loss + gradient (best of --repeats after one warm-up: the
least noisy statistic on a shared 2-core machine), the XLA peak buffer
footprint of the compiled program (arguments + outputs + temporaries, from
``compiled.memory_analysis()``), the logits' own size for scale, and the largest
difference from the reference's loss/gradient. A second table compares the two
lattice layouts (anti-diagonal scan vs frame scan with a log-cumsum along U) on
speed and fp32 accuracy against a float64 computation.

  python experiments/bench_rnnt_loss.py                  # CPU sizes
  python experiments/bench_rnnt_loss.py --sizes=gpu      # the issue's GPU sizes
  python experiments/bench_rnnt_loss.py --sizes=tiny     # seconds, for a smoke run
  python experiments/bench_rnnt_loss.py --sizes=gpu --torchaudio --hbm_tbps=4.8   # one H200: the issue-22 table
  python experiments/bench_rnnt_loss.py --sizes=huge --dtypes=float32 --layouts=false  # > 2^31 logits, GPU only

Rows (``impl``): ``reference``; ``asrjax`` -- the XLA path (``kernel="xla"``); ``kernel`` --
the Pallas kernel (``kernel="pallas"``: compiled Triton on a GPU; on the CPU interpret
mode, timed only with ``--kernel_on_cpu``, for a smoke run, never as a figure);
``pruned`` -- k2's pruned loss with S = ``--prune_range`` (simple loss of the trivial
joiner from ``am [B, T, V]`` + ``lm [B, U+1, V]``, windows, pruned loss; its memory is
the point, its difference columns are against nothing and left empty); ``torchaudio``
(fp32, "kept" only; peak memory from ``torch.cuda.max_memory_allocated``). ``bound ms``
is the bandwidth bound of the full loss -- the logits read twice and the gradient
written once at ``--hbm_tbps`` -- and ``x bound`` the row's time over it.

The reference is what one writes without asrjax: ``log_softmax``, gather the
blank / next-label log-probs, the same anti-diagonal alpha scan, and
``jax.grad`` through all of it. With ``--torchaudio`` (GPU machine with torch)
torchaudio's ``rnnt_loss`` (fused_log_softmax) is timed too.
"""

from __future__ import annotations

import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from asrjax.losses import lattice, pruned_rnnt, rnnt_loss

SIZES = {
    "tiny": [(2, 20, 8, 16)],
    "cpu": [(8, 100, 40, 256), (8, 100, 40, 512), (2, 400, 80, 512)],
    "gpu": [(32, 250, 80, 512), (32, 250, 80, 1024), (8, 1000, 200, 1024), (16, 400, 100, 4096)],
    "huge": [(8, 1000, 300, 1024)],  # 2.47e9 logits (> 2^31): 9.9 GB fp32, the gradient as much again
}

_SIZES = flags.DEFINE_enum("sizes", "cpu", list(SIZES), "Which size set to run.")
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Logit dtypes.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repetitions (minimum reported).")
_TORCHAUDIO = flags.DEFINE_bool("torchaudio", False, "Also time torchaudio.functional.rnnt_loss.")
_LAYOUTS = flags.DEFINE_bool("layouts", True, "Also print the lattice-layout comparison.")
_PRUNE = flags.DEFINE_integer("prune_range", 5, "S of the pruned row (0 leaves it out).")
_KERNEL_CPU = flags.DEFINE_bool("kernel_on_cpu", False, "Time the Pallas kernel off a GPU too (interpret mode: slow).")
_HBM = flags.DEFINE_float("hbm_tbps", 0.0, "Memory bandwidth in TB/s for the bound column (H100 3.35, H200 4.8; "
                          "0 = no bound).")
_REF = flags.DEFINE_bool("reference", True, "Time the plain-JAX reference (it needs the most memory).")


# ----------------------------------------------------------------------------
# Plain-JAX reference: autodiff through log_softmax, gather and the scan.
# ----------------------------------------------------------------------------


def _logaddexp(x, y):
  """``jnp.logaddexp`` whose gradient is 0, not NaN, where both arguments are -inf (unreachable cells)."""
  m = jnp.maximum(x, y)
  m_safe = jnp.where(jnp.isfinite(m), m, 0.0)
  s = jnp.exp(x - m_safe) + jnp.exp(y - m_safe)
  reachable = s > 0
  return jnp.where(reachable, m_safe + jnp.log(jnp.where(reachable, s, 1.0)), -jnp.inf)


def reference_rnnt_loss(logits, frame_lengths, labels, label_lengths, blank_id=0, compute_dtype=jnp.float32):
  """``[B, T, U+1, V]`` -> ``[B]`` negative log-likelihood, differentiable by jax.grad."""
  lp = jax.nn.log_softmax(logits.astype(compute_dtype), axis=-1)
  b, t_max, u1, _ = lp.shape
  ext = jnp.pad(labels, ((0, 0), (0, 1)))
  blank = lp[..., blank_id]
  emit = jnp.take_along_axis(lp, ext[:, None, :, None], axis=-1)[..., 0]
  blank, emit = lattice.mask_edges(blank, emit, frame_lengths, label_lengths, dtype=compute_dtype)
  blank_d, emit_d = lattice.skew(blank, -jnp.inf), lattice.skew(emit, -jnp.inf)

  def step(a, xs):
    bl, em = xs
    up = jnp.pad((a + em)[:, :-1], ((0, 0), (1, 0)), constant_values=-jnp.inf)
    nxt = _logaddexp(a + bl, up)  # jnp.logaddexp's gradient is NaN at (-inf, -inf)
    return nxt, nxt

  a0 = jnp.full((b, u1), -jnp.inf, lp.dtype).at[:, 0].set(0.0)
  _, rest = jax.lax.scan(step, a0, (blank_d[:-1], emit_d[:-1]))
  alpha_d = jnp.concatenate([a0[None], rest])
  return -alpha_d[frame_lengths + label_lengths, jnp.arange(b), label_lengths]


def frame_layout_log_likelihood(blank, emit):
  """Frame-by-frame alpha with ``cumlogsumexp`` along U (the layout not chosen), full lengths."""
  b, t_max, u1 = blank.shape
  cum = jnp.concatenate([jnp.zeros((b, t_max, 1)), jnp.cumsum(emit[:, :, :-1], axis=-1)], axis=-1)

  def step(a, xs):
    bl_prev, c = xs  # vertical moves from frame t-1, then emissions within frame t
    v = a + bl_prev
    nxt = c + jax.lax.cumlogsumexp(v - c, axis=1)
    return nxt, None

  a0 = cum[:, 0]
  a_last, _ = jax.lax.scan(step, a0, (jnp.swapaxes(blank[:, :-1], 0, 1), jnp.swapaxes(cum[:, 1:], 0, 1)))
  return a_last[:, -1] + blank[:, -1, -1]


# ----------------------------------------------------------------------------
# Measurement
# ----------------------------------------------------------------------------


def _inputs(size, dtype, seed=0, scale=1.0):
  b, t, u, v = size
  rng = np.random.default_rng(seed)
  logits = jnp.asarray(rng.normal(size=(b, t, u + 1, v)).astype(np.float32) * scale, dtype)
  labels = jnp.asarray(rng.integers(1, v, size=(b, u)), jnp.int32)
  t_len = np.full(b, t)
  t_len[1::2] = t - t // 5  # half the batch padded, as in real batches
  u_len = np.full(b, u)
  u_len[1::2] = u - u // 5
  return logits, jnp.asarray(t_len, jnp.int32), labels, jnp.asarray(u_len, jnp.int32)


def _time(fn, args, repeats, donate=False):
  """Best wall time in ms; with ``donate`` each call gets a fresh copy of args[0] (copied untimed)."""
  times = []
  for i in range(repeats + 1):
    call_args = ((jnp.array(args[0], copy=True),) + tuple(args[1:])) if donate else args
    jax.block_until_ready(call_args)
    start = time.perf_counter()
    jax.block_until_ready(fn(*call_args))
    if i:  # the first call compiles
      times.append(time.perf_counter() - start)
  return 1e3 * float(np.min(times))


def _peak_mib(fn, args):
  """Arguments + outputs + temporaries of the compiled program, minus donated (aliased) bytes."""
  mem = fn.lower(*args).compile().memory_analysis()
  if mem is None:
    return float("nan")
  total = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes - mem.alias_size_in_bytes
  return total / 2**20


def paddings(t_len, u_len, t_max: int, u_max: int):
  """Lengths ``[B]`` -> ``(frame paddings [B, t_max], label paddings [B, u_max])``, 1.0 = padded."""
  t_pad = (jnp.arange(t_max)[None] >= t_len[:, None]).astype(jnp.float32)
  u_pad = (jnp.arange(u_max)[None] >= u_len[:, None]).astype(jnp.float32)
  return t_pad, u_pad


def _asrjax_step(logits, t_len, labels, u_len, kernel="xla"):
  t_pad, u_pad = paddings(t_len, u_len, logits.shape[1], labels.shape[1])
  return jax.value_and_grad(lambda x: rnnt_loss(x, t_pad, labels, u_pad, kernel=kernel).sum())(logits)


def _kernel_step(logits, t_len, labels, u_len):
  return _asrjax_step(logits, t_len, labels, u_len, kernel="pallas")


def _pruned_inputs(size, dtype, seed=0):
  """``(am [B, T, V], lm [B, U+1, V], t_len, labels, u_len)`` of ``size``: the trivial joiner's inputs."""
  b, t, u, v = size
  rng = np.random.default_rng(seed)
  am = jnp.asarray(rng.normal(size=(b, t, v)).astype(np.float32), dtype)
  lm = jnp.asarray(rng.normal(size=(b, u + 1, v)).astype(np.float32), dtype)
  _, t_len, labels, u_len = _inputs((b, 1, u, 2), jnp.float32, seed)
  t_len = jnp.asarray(np.where(np.arange(b) % 2, t - t // 5, t), jnp.int32)
  return am, lm, t_len, labels, u_len


def _pruned_step(am, lm, t_len, labels, u_len, prune_range):
  """Simple loss, windows from its occupancies, pruned loss on ``am + lm`` windows; gradient to both."""
  t_pad, u_pad = paddings(t_len, u_len, am.shape[1], labels.shape[1])

  def loss(am, lm):
    simple, occupancy = pruned_rnnt.simple_rnnt_loss(am, lm, t_pad, labels, u_pad)
    starts = pruned_rnnt.prune_ranges(occupancy, t_len, u_len, prune_range)
    logits = am[:, :, None, :] + pruned_rnnt.gather_windows(lm, starts, prune_range)  # [B, T, S, V]
    return (0.5 * simple + pruned_rnnt.pruned_rnnt_loss(logits, starts, t_pad, labels, u_pad)).sum()

  return jax.value_and_grad(loss, argnums=(0, 1))(am, lm)


def _reference_step(logits, t_len, labels, u_len):
  return jax.value_and_grad(lambda x: reference_rnnt_loss(x, t_len, labels, u_len).sum())(logits)


def _torchaudio_ms(logits, t_len, labels, u_len, repeats):
  import torch
  import torchaudio

  dev = "cuda" if torch.cuda.is_available() else "cpu"
  x = torch.tensor(np.asarray(logits, np.float32), device=dev, requires_grad=True)
  y = torch.tensor(np.asarray(labels), dtype=torch.int32, device=dev)
  tl = torch.tensor(np.asarray(t_len), dtype=torch.int32, device=dev)
  ul = torch.tensor(np.asarray(u_len), dtype=torch.int32, device=dev)

  def run():
    x.grad = None
    torchaudio.functional.rnnt_loss(x, y, tl, ul, blank=0, reduction="sum").backward()
    if dev == "cuda":
      torch.cuda.synchronize()

  run()
  if dev == "cuda":
    torch.cuda.reset_peak_memory_stats()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  peak = torch.cuda.max_memory_allocated() / 2**20 if dev == "cuda" else float("nan")
  return 1e3 * float(np.min(times)), peak


def _bound_ms(logits) -> float:
  """Bandwidth bound of the full loss: the logits read twice, the gradient written once."""
  if not _HBM.value:
    return float("nan")
  return 3 * logits.size * logits.dtype.itemsize / (_HBM.value * 1e12) * 1e3


def main(argv):
  del argv
  on_gpu = jax.default_backend() == "gpu"
  if _SIZES.value == "huge" and not on_gpu:
    raise app.UsageError("--sizes=huge is 2.47e9 logits (9.9 GB fp32, the gradient as much again): a GPU's size, not "
                         f"this {jax.default_backend()} backend's.")
  print(f"backend: {jax.default_backend()}  devices: {jax.devices()}  jax {jax.__version__}")
  header = (f"{'B,T,U,V':>18} {'dtype':>9} {'impl':>11} {'logits':>8} {'ms':>9} {'peak MiB':>9} {'logits MiB':>10} "
            f"{'speed-up':>8} {'bound ms':>8} {'x bound':>7} {'max|dloss|':>10} {'max|dgrad|':>10}")
  print(header)
  print("-" * len(header))
  # "kept": the caller keeps its logits, so the gradient needs a new buffer.
  # "donated": the logits die with the loss, as inside a jit-compiled train step
  # where the joint network produced them, so XLA may write the gradient in place.
  for size in SIZES[_SIZES.value]:
    for dtype in _DTYPES.value:
      args = _inputs(size, jnp.dtype(dtype))
      logits_mib = args[0].size * args[0].dtype.itemsize / 2**20
      bound = _bound_ms(args[0])
      with_kernel = on_gpu or _KERNEL_CPU.value
      l_ours, g_ours = jax.jit(_asrjax_step)(*args)
      truth = jax.jit(_reference_step)(*args) if _REF.value else (l_ours, g_ours)
      diff = lambda lg: (f"{float(jnp.max(jnp.abs(lg[0] - truth[0]))):.2e}",
                         f"{float(jnp.max(jnp.abs(lg[1].astype(jnp.float32) - truth[1].astype(jnp.float32)))):.2e}")
      d_ours = diff((l_ours, g_ours))
      d_kernel = diff(jax.jit(_kernel_step)(*args)) if with_kernel else ("", "")
      del g_ours, truth
      for mode in ("kept", "donated"):
        donate = mode == "donated"
        jit = lambda f: jax.jit(f, donate_argnums=(0,) if donate else ())
        fns = {"asrjax": jit(_asrjax_step)}
        if _REF.value:
          fns = {"reference": jit(_reference_step), **fns}
        if with_kernel:
          fns["kernel"] = jit(_kernel_step)
        times = {name: _time(fn, args, _REPEATS.value, donate) for name, fn in fns.items()}
        base = times.get("reference", times["asrjax"])
        rows = [(name, ms, _peak_mib(fns[name], args), base / ms,
                 *({"asrjax": d_ours, "kernel": d_kernel}.get(name, ("", "")))) for name, ms in times.items()]
        if _PRUNE.value and not donate:
          p_args = _pruned_inputs(size, jnp.dtype(dtype))
          p_fn = jax.jit(lambda *a: _pruned_step(*a, _PRUNE.value))
          p_ms = _time(p_fn, p_args, _REPEATS.value)
          rows.append((f"pruned S={_PRUNE.value}", p_ms, _peak_mib(p_fn, p_args), base / p_ms, "", ""))
        if _TORCHAUDIO.value and dtype == "float32" and not donate:
          ta_ms, ta_peak = _torchaudio_ms(*args, _REPEATS.value)
          rows.append(("torchaudio", ta_ms, ta_peak, base / ta_ms, "", ""))
        for name, ms, peak, speed, a, b in rows:
          print(
              f"{str(size):>18} {dtype:>9} {name:>11} {mode:>8} {ms:9.1f} {peak:9.1f} {logits_mib:10.1f} "
              f"{speed:8.2f} {bound:8.2f} {ms / bound if bound == bound else float('nan'):7.1f} {a:>10} {b:>10}"
          )
  if _LAYOUTS.value:
    _layout_table()


def _layout_table():
  """Anti-diagonal vs frame layout: forward time and fp32 error against float64."""
  print("\nlattice layout (forward only, full lengths): ms and |log P error| vs float64")
  print(f"{'B,T,U':>14} {'logit scale':>11} {'diag ms':>8} {'frame ms':>8} {'diag err':>9} {'frame err':>9}")
  b, t, u = (8, 100, 40) if _SIZES.value != "tiny" else (2, 20, 8)
  for scale in (1.0, 1e4):
    rng = np.random.default_rng(0)
    lp = rng.normal(size=(b, t, u + 1, 2)) * scale
    lp = lp - np.logaddexp(lp[..., :1], lp[..., 1:])  # two-way normalised: blank vs next label
    blank64, emit64 = lp[..., 0], lp[..., 1]
    full_t, full_u = jnp.full((b,), t, jnp.int32), jnp.full((b,), u, jnp.int32)
    blank32, emit32 = jnp.asarray(blank64, jnp.float32), jnp.asarray(emit64, jnp.float32)
    diag = jax.jit(lambda bl, em: lattice.forward_backward(bl, em, full_t, full_u).log_likelihood)
    frame = jax.jit(frame_layout_log_likelihood)
    # Truth on the fp32-rounded inputs, so only the algorithms' own rounding counts.
    truth = _numpy_log_likelihood(np.asarray(blank32, np.float64), np.asarray(emit32, np.float64))
    d_err = np.max(np.abs(np.asarray(diag(blank32, emit32), np.float64) - truth))
    f_err = np.max(np.abs(np.asarray(frame(blank32, emit32), np.float64) - truth))
    print(
        f"{str((b, t, u)):>14} {scale:11.0e} {_time(diag, (blank32, emit32), 5):8.1f} "
        f"{_time(frame, (blank32, emit32), 5):8.1f} {d_err:9.2e} {f_err:9.2e}"
    )


def _numpy_log_likelihood(blank, emit):
  """float64 alpha recursion node by node, vectorised over the batch only."""
  b, t_max, u1 = blank.shape
  alpha = np.full((b, t_max, u1), -np.inf)
  for t in range(t_max):
    for u in range(u1):
      if t == 0 and u == 0:
        alpha[:, 0, 0] = 0.0
        continue
      terms = []
      if t > 0:
        terms.append(alpha[:, t - 1, u] + blank[:, t - 1, u])
      if u > 0:
        terms.append(alpha[:, t, u - 1] + emit[:, t, u - 1])
      alpha[:, t, u] = np.logaddexp.reduce(terms, axis=0)
  return alpha[:, -1, -1] + blank[:, -1, -1]


if __name__ == "__main__":
  app.run(main)
