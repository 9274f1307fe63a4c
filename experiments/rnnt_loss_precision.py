r"""Precision of the RNN-T loss gradient against a float64 autodiff reference.

  python experiments/rnnt_loss_precision.py                 # CPU sizes
  python experiments/rnnt_loss_precision.py --size_set=gpu --torchaudio

For each ``[B, T, U, V]`` the float64 reference (`bench_rnnt_loss.reference_rnnt_loss`
run in float64: ``jax.grad`` through the alpha recursion) gives the loss and the
gradient with respect to the logits; every float32 implementation is scored by its
largest absolute gradient difference and largest relative loss difference to it:
asrjax's hand-written gradient, the same reference in float32 (autodiff), and, with
``--torchaudio``, ``torchaudio.functional.rnnt_loss``. Prints one table.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_rnnt_loss as bench  # noqa: E402

SIZES = {"cpu": [(4, 60, 20, 32), (4, 250, 80, 64), (2, 500, 100, 32)],
         "gpu": [(8, 250, 80, 512), (8, 1000, 200, 256)]}
_SIZE_SET = flags.DEFINE_enum("size_set", "cpu", list(SIZES), "Which size set to run.")
# --torchaudio (defined by bench_rnnt_loss) also scores torchaudio.functional.rnnt_loss.


def _torchaudio(logits, t_len, labels, u_len):
  import torch
  import torchaudio

  dev = "cuda" if torch.cuda.is_available() else "cpu"
  x = torch.tensor(np.asarray(logits, np.float32), device=dev, requires_grad=True)
  loss = torchaudio.functional.rnnt_loss(
      x, torch.tensor(np.asarray(labels), dtype=torch.int32, device=dev),
      torch.tensor(np.asarray(t_len), dtype=torch.int32, device=dev),
      torch.tensor(np.asarray(u_len), dtype=torch.int32, device=dev), blank=0, reduction="none")
  loss.sum().backward()
  return loss.detach().cpu().numpy(), x.grad.cpu().numpy()


def main(argv):
  del argv
  print(f"backend: {jax.default_backend()}  jax {jax.__version__}")
  print(f"{'B,T,U,V':>18} {'impl':>22} {'max rel |dloss|':>16} {'max |dgrad|':>12} {'mean |dgrad|':>12}")
  for size in SIZES[_SIZE_SET.value]:
    logits, t_len, labels, u_len = bench._inputs(size, jnp.float32)
    t_pad, u_pad = bench.paddings(t_len, u_len, logits.shape[1], labels.shape[1])
    l64_each, g64 = _losses_and_grad(
        lambda x: bench.reference_rnnt_loss(x, t_len, labels, u_len, compute_dtype=jnp.float64),
        logits.astype(jnp.float64))
    rows = {
        "asrjax (hand-written)": _losses_and_grad(lambda x: bench.rnnt_loss(x, t_pad, labels, u_pad), logits),
        "reference f32 (autodiff)": _losses_and_grad(
            lambda x: bench.reference_rnnt_loss(x, t_len, labels, u_len), logits),
    }
    if bench._TORCHAUDIO.value:
      rows["torchaudio"] = _torchaudio(logits, t_len, labels, u_len)
    for name, (l, g) in rows.items():
      l, g = np.asarray(l, np.float64), np.asarray(g, np.float64)
      if not (np.isfinite(l).all() and np.isfinite(g).all()):
        print(f"{str(size):>18} {name:>22} {'non-finite':>16}")
        continue
      dl = np.max(np.abs(l - l64_each) / np.abs(l64_each))
      dg = np.abs(g - g64)
      print(f"{str(size):>18} {name:>22} {dl:16.2e} {dg.max():12.2e} {dg.mean():12.2e}")


def _losses_and_grad(per_utterance, x):
  """``per_utterance: [B, T, U+1, V] -> [B]`` at ``x`` -> (losses ``[B]``, gradient of their sum), as NumPy."""
  losses, vjp = jax.vjp(jax.jit(per_utterance), x)
  (grad,) = vjp(jnp.ones_like(losses))
  return np.asarray(losses), np.asarray(grad)


if __name__ == "__main__":
  app.run(main)
