"""The Pallas kernel path of the RNN-T loss (interpret mode on the CPU) against brute-force enumeration and the XLA
path: padding, FastEmit, bf16, several vocabulary tiles, large offsets, forced small chunks, and the pruned loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.losses import pruned_rnnt, rnnt, rnnt_kernel, rnnt_loss
from tests import oracles


def _case(seed, b=3, t=5, u=4, v=37, scale=2.0):
  rng = np.random.default_rng(seed)
  logits = (rng.normal(size=(b, t, u + 1, v)) * scale).astype(np.float32)
  t_len = np.array([t] + list(rng.integers(1, t + 1, b - 1)))
  u_len = np.array(list(rng.integers(0, u + 1, b - 1)) + [u])
  labels = rng.integers(1, v, size=(b, u))
  pads = lambda n, size: (np.arange(size)[None] >= n[:, None]).astype(np.float32)
  return logits, pads(t_len, t), labels, pads(u_len, u), t_len, u_len


def _loss_and_grad(logits, *args, **kw):
  weights = jnp.linspace(0.5, 1.5, logits.shape[0])
  f = lambda x: rnnt_loss(x, *args, **kw)
  loss, vjp = jax.vjp(f, jnp.asarray(logits))
  return loss, vjp(weights)[0], weights


@pytest.mark.parametrize("seed,fastemit,v", [(0, 0.0, 37), (1, 0.5, 37), (2, 0.0, 700)])
def test_kernel_equals_enumeration_and_the_xla_path(seed, fastemit, v):
  logits, lpad, labels, upad, t_len, u_len = _case(seed, v=v, b=2 if v > 512 else 3, t=3 if v > 512 else 5)
  loss, grad, w = _loss_and_grad(logits, lpad, labels, upad, fastemit_lambda=fastemit, kernel="pallas")
  for i in range(logits.shape[0]):
    ref, ref_grad, _, _ = oracles.rnnt_nll_and_grads(logits[i, :t_len[i], :u_len[i] + 1], labels[i, :u_len[i]],
                                                     0, fastemit)
    np.testing.assert_allclose(loss[i], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad[i, :t_len[i], :u_len[i] + 1], w[i] * ref_grad, atol=3e-5)
    np.testing.assert_array_equal(grad[i, t_len[i]:], 0.0)  # padded frames get no gradient
  xla_loss, xla_grad, _ = _loss_and_grad(logits, lpad, labels, upad, fastemit_lambda=fastemit, kernel="xla")
  np.testing.assert_allclose(loss, xla_loss, rtol=1e-6)
  np.testing.assert_allclose(grad, xla_grad, atol=5e-6)  # the online log-sum-exp over tiles rounds differently


def test_bf16_kernel_matches_the_xla_bf16_path():
  logits, lpad, labels, upad, *_ = _case(3)
  x = jnp.asarray(logits, jnp.bfloat16)
  loss, grad, _ = _loss_and_grad(x, lpad, labels, upad, kernel="pallas")
  xla_loss, xla_grad, _ = _loss_and_grad(x, lpad, labels, upad, kernel="xla")
  assert grad.dtype == jnp.bfloat16
  np.testing.assert_allclose(loss, xla_loss, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(grad, np.float32), np.asarray(xla_grad, np.float32), atol=1e-2)


def test_large_common_offsets_stay_exact():
  logits, lpad, labels, upad, t_len, u_len = _case(4, scale=1.0)
  loss, *_ = _loss_and_grad(logits + np.float32(1e6), lpad, labels, upad, kernel="pallas")
  ref, *_ = _loss_and_grad(logits, lpad, labels, upad, kernel="xla")
  np.testing.assert_allclose(loss, ref, rtol=2e-3)  # fp32 logits at 1e6 keep ~1/16 of a unit: rounding of the input


@pytest.mark.parametrize("max_elements", [pytest.param(37, marks=pytest.mark.slow), 100, 37 * 16 + 5])
def test_forced_small_chunks_equal_the_unchunked_path(max_elements):
  logits, lpad, labels, upad, *_ = _case(5)
  whole, whole_grad, _ = _loss_and_grad(logits, lpad, labels, upad, kernel="pallas")
  part, part_grad, _ = _loss_and_grad(logits, lpad, labels, upad, kernel="pallas", max_elements=max_elements)
  np.testing.assert_array_equal(part, whole)
  # the gradient to float32 rounding, not bit for bit: XLA:CPU may vectorise a row slice's exp and
  # its scalar remainder differently from the whole array's (1-ulp differences seen on one VM)
  np.testing.assert_allclose(part_grad, whole_grad, rtol=1e-5, atol=1e-9)


def test_row_chunks_by_hand():
  assert rnnt_kernel.row_chunks(10, 4, max_elements=12) == [(0, 3), (3, 6), (6, 9), (9, 10)]  # 3 rows < ROWS
  assert rnnt_kernel.row_chunks(40, 2, max_elements=40) == [(0, 16), (16, 32), (32, 40)]  # 20 rows -> 16
  assert rnnt_kernel.row_chunks(0, 4) == [(0, 0)]
  with pytest.raises(ValueError, match="exceeds max_elements"):
    rnnt_kernel.row_chunks(3, 50, max_elements=49)


def test_wide_pruned_windows_equal_the_kernel_full_loss():
  logits, lpad, labels, upad, t_len, u_len = _case(6)
  b, t, u1, _ = logits.shape
  starts = pruned_rnnt.prune_ranges(jnp.ones((b, t, u1)), jnp.asarray(t_len), jnp.asarray(u_len), u1)
  pruned = pruned_rnnt.pruned_rnnt_loss(jnp.asarray(logits), starts, lpad, labels, upad)
  full, *_ = _loss_and_grad(logits, lpad, labels, upad, kernel="pallas")
  np.testing.assert_allclose(pruned, full, rtol=1e-5)


def test_kernel_choice_and_bad_options():
  assert rnnt.choose_kernel("auto") == "xla"  # on every backend: the kernel failed its GPU tests
  if jax.default_backend() != "gpu":
    assert rnnt.choose_kernel("pallas") == "pallas"
  logits, lpad, labels, upad, *_ = _case(7)
  with pytest.raises(ValueError, match="kernel must be one of"):
    rnnt_loss(logits, lpad, labels, upad, kernel="triton")
  with pytest.raises(ValueError, match="max_elements must be an integer >= 1"):
    rnnt_loss(logits, lpad, labels, upad, kernel="pallas", max_elements=0)


def test_compiled_pallas_is_refused_on_a_gpu_unless_allowed(monkeypatch):
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  monkeypatch.delenv(rnnt.UNVALIDATED_GPU_ENV, raising=False)
  assert rnnt.choose_kernel("auto") == "xla"
  assert rnnt.choose_kernel("xla") == "xla"
  with pytest.raises(ValueError, match="refused on a GPU"):
    rnnt.choose_kernel("pallas")
  monkeypatch.setenv(rnnt.UNVALIDATED_GPU_ENV, "0")
  with pytest.raises(ValueError, match="refused on a GPU"):
    rnnt.choose_kernel("pallas")
  monkeypatch.setenv(rnnt.UNVALIDATED_GPU_ENV, "1")
  assert rnnt.choose_kernel("pallas") == "pallas"


def test_the_training_config_chooses_the_kernel():
  from asrjax.tasks import transducer_asr  # noqa: PLC0415
  from asrjax.train import config_check  # noqa: PLC0415

  spec = __import__("importlib").util.spec_from_file_location("c", "experiments/configs/convrnnt.py")
  mod = __import__("importlib").util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config("tiny")
  assert transducer_asr.make_loss_config(config, None).rnnt_kernel == "auto"
  config.train.rnnt_kernel = "pallas"
  assert transducer_asr.make_loss_config(config, None).rnnt_kernel == "pallas"
  config.train.rnnt_kernel = "triton"
  assert any("train.rnnt_kernel" in p for p in config_check.problems(config))
  with pytest.raises(ValueError, match="rnnt_kernel must be one of"):
    transducer_asr.LossConfig(rnnt_kernel="triton")
