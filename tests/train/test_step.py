"""Train step: sharded over a (data, fsdp) mesh equals one device; non-finite steps are skipped."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from asrjax.models import convrnnt, transducer
from asrjax.train import sharding, step as step_lib

TINY = dict(stack=3, channels=16, local_layers=1, local_kernel=3, global_blocks=1, global_kernel=3,
            lstm_hidden=16, lstm_layers=1, output_dim=16)


def _setup():
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**TINY), vocab_size=7, embed_dim=8,
                                predictor_hidden=16, joint_hidden=16)
  rng = np.random.default_rng(0)
  lengths = rng.integers(5000, 8000, size=8)
  audio = (rng.normal(size=(8, 8000)) * 3000).astype(np.int16)
  audio_pad = (np.arange(8000)[None] >= lengths[:, None]).astype(np.float32)
  audio[audio_pad > 0] = 0
  labels = rng.integers(1, 7, size=(8, 5)).astype(np.int32)
  label_pad = (np.arange(5)[None] >= rng.integers(1, 6, size=8)[:, None]).astype(np.float32)
  batch = {"audio": audio, "audio_paddings": audio_pad, "labels": labels, "label_paddings": label_pad}
  config = step_lib.StepConfig(spec_augment=True, num_time_masks=1)
  feats, pads = step_lib.featurize(jax.tree.map(jnp.asarray, batch), jax.random.key(0), config, train=False)
  params = model.init(jax.random.key(1), feats, pads, jnp.asarray(labels), jnp.asarray(label_pad))
  tx = optax.adam(1e-3)
  fn = functools.partial(step_lib.train_step, model=model, tx=tx, config=config)
  return fn, step_lib.init_state(params, tx), batch


def test_sharded_step_equals_single_device():
  if jax.device_count() < 8:
    pytest.skip("needs 8 devices (conftest sets XLA_FLAGS)")
  fn, state, batch = _setup()
  key = jax.random.key(5)
  single = jax.jit(fn)
  s1 = state
  for i in range(2):
    s1, m1 = single(s1, batch, jax.random.fold_in(key, i))

  mesh = sharding.make_mesh(fsdp=2)
  state_sh = sharding.tree_shardings(mesh, state)
  sharded = jax.jit(fn, in_shardings=(state_sh, sharding.batch_sharding(mesh), sharding.replicated(mesh)),
                    out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=(0,))
  s2 = jax.device_put(state, state_sh)
  b2 = jax.device_put(batch, sharding.batch_sharding(mesh))
  for i in range(2):
    s2, m2 = sharded(s2, b2, jax.random.fold_in(key, i))
  specs = {leaf.sharding.spec for leaf in jax.tree.leaves(s2.params)}
  assert any(sharding.FSDP in tuple(s) for s in specs)  # some parameters really are split
  np.testing.assert_allclose(float(m2["loss"]), float(m1["loss"]), rtol=1e-5)
  for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-6)


def test_non_finite_step_is_skipped_and_counted():
  fn, state, batch = _setup()
  bad = dict(batch, labels=batch["labels"].copy())
  bad["labels"][0, 0] = 0  # blank as a label: NaN loss under jit
  new, metrics = jax.jit(fn)(state, bad, jax.random.key(0))
  assert not bool(metrics["finite"]) and int(new.skipped) == 1 and int(new.step) == 1
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  good, metrics = jax.jit(fn)(new, batch, jax.random.key(0))
  assert bool(metrics["finite"]) and int(good.skipped) == 1
  assert any(not np.array_equal(np.asarray(a), np.asarray(b))
             for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(good.params)))


def _setup_plain(tx, compute_dtype=jnp.float32):
  fn, state, batch = _setup()
  config = step_lib.StepConfig(spec_augment=False, compute_dtype=compute_dtype)
  fn = functools.partial(step_lib.train_step, model=fn.keywords["model"], tx=tx, config=config)
  return jax.jit(fn), step_lib.init_state(state.params, tx), batch


def test_bf16_compute_keeps_fp32_params_and_tracks_the_fp32_step():
  fp32_fn, fp32_state, batch = _setup_plain(optax.sgd(1.0))
  bf16_fn, bf16_state, _ = _setup_plain(optax.sgd(1.0), jnp.bfloat16)
  a, ma = fp32_fn(fp32_state, batch, jax.random.key(0))
  b, mb = bf16_fn(bf16_state, batch, jax.random.key(0))
  assert bool(mb["finite"])
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(b.params))  # master weights stay fp32
  np.testing.assert_allclose(float(mb["loss"]), float(ma["loss"]), rtol=0.03)  # bf16 has ~3 significant digits
  ua = np.concatenate([np.ravel(x - y) for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(fp32_state.params))])
  ub = np.concatenate([np.ravel(x - y) for x, y in zip(jax.tree.leaves(b.params), jax.tree.leaves(bf16_state.params))])
  cosine = ua @ ub / np.linalg.norm(ua) / np.linalg.norm(ub)
  assert cosine > 0.97, cosine  # the bf16 gradient points the same way


def test_gradient_accumulation_over_two_half_batches_equals_one_full_batch():
  full_fn, full_state, batch = _setup_plain(optax.adam(1e-2))
  acc_fn, acc_state, _ = _setup_plain(optax.MultiSteps(optax.adam(1e-2), 2))
  full, _ = full_fn(full_state, batch, jax.random.key(0))
  halves = [jax.tree.map(lambda x: x[:4], batch), jax.tree.map(lambda x: x[4:], batch)]
  acc, _ = acc_fn(acc_state, halves[0], jax.random.key(0))
  for a, b in zip(jax.tree.leaves(acc.params), jax.tree.leaves(acc_state.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # no update after the first micro-batch
  acc, _ = acc_fn(acc, halves[1], jax.random.key(0))
  for a, b in zip(jax.tree.leaves(acc.params), jax.tree.leaves(full.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_vtlp_warps_training_features_only():
  _, _, batch = _setup()
  batch = jax.tree.map(jnp.asarray, batch)
  plain = step_lib.StepConfig(spec_augment=False)
  warped = step_lib.StepConfig(spec_augment=False, vtlp_max_warp=0.1)
  base, pads = step_lib.featurize(batch, jax.random.key(0), plain, train=True)
  eval_feats, _ = step_lib.featurize(batch, jax.random.key(0), warped, train=False)
  train_feats, _ = step_lib.featurize(batch, jax.random.key(0), warped, train=True)
  np.testing.assert_array_equal(np.asarray(eval_feats), np.asarray(base))
  valid = np.asarray(pads) == 0
  assert np.abs(np.asarray(train_feats) - np.asarray(base))[valid].mean() > 0.05


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_training_loss_uses_dropout_from_the_step_key(dropout):
  _, _, batch = _setup()
  batch = jax.tree.map(jnp.asarray, batch)
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**TINY, dropout=dropout), vocab_size=7, embed_dim=8,
                                predictor_hidden=16, joint_hidden=16)
  config = step_lib.StepConfig(spec_augment=False)
  feats, pads = step_lib.featurize(batch, jax.random.key(0), config, train=False)
  params = model.init(jax.random.key(1), feats, pads, batch["labels"], batch["label_paddings"])
  losses = {float(step_lib.loss_fn(params, model, batch, jax.random.key(k), config)[0]) for k in range(3)}
  assert len(losses) == (3 if dropout else 1)


def test_pruned_objective_with_covering_windows_equals_the_full_loss_and_gradient():
  # Windows of U+1 positions cover the whole lattice, so the pruned loss must be the
  # full RNN-T loss, value and gradient (simple-loss weight 0, past the warm-up).
  _, _, batch = _setup()
  batch = jax.tree.map(jnp.asarray, batch)
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**TINY), vocab_size=7, embed_dim=8,
                                predictor_hidden=16, joint_hidden=16)
  full_cfg = step_lib.StepConfig(spec_augment=False)
  pruned_cfg = step_lib.StepConfig(spec_augment=False, prune_range=batch["labels"].shape[1] + 1,
                                   simple_loss_scale=0.0, pruned_warmup_steps=10)
  feats, pads = step_lib.featurize(batch, jax.random.key(0), full_cfg, train=False)
  params = model.init(jax.random.key(1), feats, pads, batch["labels"], batch["label_paddings"],
                      prune_range=pruned_cfg.prune_range, method=model.pruned_losses)
  assert {"simple_am", "simple_lm"} <= set(params["params"])
  grad = jax.grad(step_lib.loss_fn, has_aux=True)
  (full, full_aux) = step_lib.loss_fn(params, model, batch, jax.random.key(2), full_cfg)
  (pruned, pruned_aux) = step_lib.loss_fn(params, model, batch, jax.random.key(2), pruned_cfg, 10)
  np.testing.assert_allclose(float(pruned), float(full), rtol=1e-5)
  np.testing.assert_allclose(float(pruned_aux["loss_per_label"]), float(full_aux["loss_per_label"]), rtol=1e-5)
  assert float(pruned_aux["simple_loss"]) > 0
  g_full, _ = grad(params, model, batch, jax.random.key(2), full_cfg)
  g_pruned, _ = grad(params, model, batch, jax.random.key(2), pruned_cfg, 10)
  for name in ("encoder", "predictor", "joint_net"):
    for a, b in zip(jax.tree.leaves(g_full["params"][name]), jax.tree.leaves(g_pruned["params"][name])):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-6)
  # During the warm-up the objective mixes in the simple loss: 0.1 pruned + 1.0 simple at step 0.
  mixed, aux = step_lib.loss_fn(params, model, batch, jax.random.key(2), pruned_cfg, 0)
  np.testing.assert_allclose(float(mixed), float(aux["simple_loss"]) + 0.1 * float(aux["loss"]), rtol=1e-5)
  # Smoothing reaches the simple loss: LM-only (scale 1) leaves the acoustic projection without gradient.
  assert np.abs(np.asarray(grad(params, model, batch, jax.random.key(2), pruned_cfg, 0)[0]["params"]["simple_am"]
                           ["kernel"])).max() > 1e-6
  lm_only = dataclasses.replace(pruned_cfg, simple_lm_only_scale=1.0)
  g_lm_only, _ = grad(params, model, batch, jax.random.key(2), lm_only, 0)
  np.testing.assert_array_equal(np.asarray(g_lm_only["params"]["simple_am"]["kernel"]), 0.0)


def test_loss_scales_follow_the_warm_up_ramp():
  np.testing.assert_allclose(step_lib.loss_scales(0, 0.5, 100), (1.0, 0.1), rtol=1e-6)
  np.testing.assert_allclose(step_lib.loss_scales(50, 0.5, 100), (0.75, 0.55), rtol=1e-6)
  np.testing.assert_allclose(step_lib.loss_scales(400, 0.5, 100), (0.5, 1.0), rtol=1e-6)
  np.testing.assert_allclose(step_lib.loss_scales(0, 0.25, 0), (0.25, 1.0), rtol=1e-6)
