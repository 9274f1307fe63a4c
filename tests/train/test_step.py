"""Train step: sharded over a (data, fsdp) mesh equals one device; non-finite steps are skipped."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from asrjax.frontend.featurize import FrontEnd, featurize
from asrjax.models import convrnnt, transducer
from asrjax.tasks import transducer_asr
from asrjax.tasks.transducer_asr import LossConfig
from asrjax.train import sharding, step as step_lib
from tests import oracles

TINY = dict(stack=3, channels=16, local_layers=1, local_kernel=3, global_blocks=1, global_kernel=3,
            lstm_hidden=16, lstm_layers=1, output_dim=16)


def _loss(spec_augment=True, *, front_end=None, **kwargs) -> LossConfig:
  return LossConfig(front_end=front_end or FrontEnd(spec_augment=spec_augment), **kwargs)


def _step_fn(model, tx, config: LossConfig):
  """The trainer's step on the transducer task made of ``model``, ``config`` and ``tx``."""
  task = transducer_asr.TransducerASR(model, config, tx, init_batch=None)
  return functools.partial(step_lib.train_step, task=task, txs={"model": tx})


def _state(params, tx):
  return step_lib.init_state({"model": params}, {"model": tx}, ("model",))


def _loss_fn(params, model, batch, key, config, step=0):
  """``(objective value, {term or metric: value})`` of the transducer objective."""
  objective = transducer_asr.objective(params, model, batch, key, config, step)
  return objective.value(), {**objective.terms, **objective.metrics}


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
  config = _loss(front_end=FrontEnd(spec_augment=True, num_time_masks=1))
  feats, pads = featurize(jax.tree.map(jnp.asarray, batch), jax.random.key(0), config.front_end, train=False)
  params = model.init(jax.random.key(1), feats, pads, jnp.asarray(labels), jnp.asarray(label_pad))
  tx = optax.adam(1e-3)
  return _step_fn(model, tx, config), _state(params, tx), batch


@pytest.mark.slow  # suite budget (~60 s of compiles); `make test-slow`, which CI runs too
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


@pytest.mark.slow  # suite budget; `make test-slow`, which CI runs too
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
  config = _loss(False, compute_dtype=compute_dtype)
  return jax.jit(_step_fn(fn.keywords["task"].model, tx, config)), _state(state.params, tx), batch


@pytest.mark.slow  # 11 s; the default suite's 15-minute budget (BUILD_NOTES)
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


@pytest.mark.slow  # 18 s: default-suite budget (BUILD_NOTES, "Tests")
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
  plain = FrontEnd(spec_augment=False)
  warped = FrontEnd(spec_augment=False, vtlp_max_warp=0.1)
  base, pads = featurize(batch, jax.random.key(0), plain, train=True)
  eval_feats, _ = featurize(batch, jax.random.key(0), warped, train=False)
  train_feats, _ = featurize(batch, jax.random.key(0), warped, train=True)
  np.testing.assert_array_equal(np.asarray(eval_feats), np.asarray(base))
  valid = np.asarray(pads) == 0
  assert np.abs(np.asarray(train_feats) - np.asarray(base))[valid].mean() > 0.05


@pytest.mark.parametrize("dropout", [0.0, pytest.param(0.5, marks=pytest.mark.slow)])  # suite budget
def test_training_loss_uses_dropout_from_the_step_key(dropout):
  _, _, batch = _setup()
  batch = jax.tree.map(jnp.asarray, batch)
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**TINY, dropout=dropout), vocab_size=7, embed_dim=8,
                                predictor_hidden=16, joint_hidden=16)
  config = _loss(False)
  feats, pads = featurize(batch, jax.random.key(0), config.front_end, train=False)
  params = model.init(jax.random.key(1), feats, pads, batch["labels"], batch["label_paddings"])
  losses = {float(_loss_fn(params, model, batch, jax.random.key(k), config)[0]) for k in range(3)}
  assert len(losses) == (3 if dropout else 1)


@pytest.mark.slow  # 45 s; the pruned gradient also meets the oracle in test_fastemit_through_the_train_step[4]
def test_pruned_objective_with_covering_windows_equals_the_full_loss_and_gradient():
  # Windows of U+1 positions cover the whole lattice, so the pruned loss must be the
  # full RNN-T loss, value and gradient (simple-loss weight 0, past the warm-up).
  _, _, batch = _setup()
  batch = jax.tree.map(jnp.asarray, batch)
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**TINY), vocab_size=7, embed_dim=8,
                                predictor_hidden=16, joint_hidden=16)
  full_cfg = _loss(False)
  pruned_cfg = _loss(False, prune_range=batch["labels"].shape[1] + 1, simple_loss_scale=0.0, pruned_warmup_steps=10)
  feats, pads = featurize(batch, jax.random.key(0), full_cfg.front_end, train=False)
  params = model.init(jax.random.key(1), feats, pads, batch["labels"], batch["label_paddings"],
                      prune_range=pruned_cfg.prune_range, method=model.pruned_losses)
  assert {"simple_am", "simple_lm"} <= set(params["params"])
  grad = jax.grad(_loss_fn, has_aux=True)
  (full, full_aux) = _loss_fn(params, model, batch, jax.random.key(2), full_cfg)
  (pruned, pruned_aux) = _loss_fn(params, model, batch, jax.random.key(2), pruned_cfg, 10)
  np.testing.assert_allclose(float(pruned), float(full), rtol=1e-5)
  np.testing.assert_allclose(float(pruned_aux["loss_per_label"]), float(full_aux["loss_per_label"]), rtol=1e-5)
  assert float(pruned_aux["simple_loss"]) > 0
  g_full, _ = grad(params, model, batch, jax.random.key(2), full_cfg)
  g_pruned, _ = grad(params, model, batch, jax.random.key(2), pruned_cfg, 10)
  for name in ("encoder", "predictor", "joint_net"):
    for a, b in zip(jax.tree.leaves(g_full["params"][name]), jax.tree.leaves(g_pruned["params"][name])):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-6)
  # During the warm-up the objective mixes in the simple loss: 0.1 pruned + 1.0 simple at step 0.
  mixed, aux = _loss_fn(params, model, batch, jax.random.key(2), pruned_cfg, 0)
  np.testing.assert_allclose(float(mixed), float(aux["simple_loss"]) + 0.1 * float(aux["loss"]), rtol=1e-5)
  # Smoothing reaches the simple loss: LM-only (scale 1) leaves the acoustic projection without gradient.
  assert np.abs(np.asarray(grad(params, model, batch, jax.random.key(2), pruned_cfg, 0)[0]["params"]["simple_am"]
                           ["kernel"])).max() > 1e-6
  lm_only = dataclasses.replace(pruned_cfg, simple_lm_only_scale=1.0)
  g_lm_only, _ = grad(params, model, batch, jax.random.key(2), lm_only, 0)
  np.testing.assert_array_equal(np.asarray(g_lm_only["params"]["simple_am"]["kernel"]), 0.0)


def test_loss_scales_follow_the_warm_up_ramp():
  np.testing.assert_allclose(transducer_asr.loss_scales(0, 0.5, 100), (1.0, 0.1), rtol=1e-6)
  np.testing.assert_allclose(transducer_asr.loss_scales(50, 0.5, 100), (0.75, 0.55), rtol=1e-6)
  np.testing.assert_allclose(transducer_asr.loss_scales(400, 0.5, 100), (0.5, 1.0), rtol=1e-6)
  np.testing.assert_allclose(transducer_asr.loss_scales(0, 0.25, 0), (0.25, 1.0), rtol=1e-6)


# ------------------------------------------------------------------ FastEmit and non-finite gradients


def _capture_gradient() -> optax.GradientTransformation:
  """An "optimizer" that stores the gradient it is given as its state and leaves the parameters alone."""
  return optax.GradientTransformation(lambda params: jax.tree.map(jnp.zeros_like, params),
                                      lambda g, state, params=None: (jax.tree.map(jnp.zeros_like, g), g))


@pytest.fixture(scope="module")
def small():
  """A tiny model and a batch of 2 short utterances (U = 3 and 2 labels); parameters made through
  `Transducer.pruned_losses`, so they serve the full loss (which ignores the simple projections) too."""
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**TINY), vocab_size=5, embed_dim=8,
                                predictor_hidden=16, joint_hidden=16)
  rng = np.random.default_rng(3)
  lengths = np.array([3_200, 4_000])
  audio = (rng.normal(size=(2, 4_000)) * 3000).astype(np.int16)
  audio_pad = (np.arange(4_000)[None] >= lengths[:, None]).astype(np.float32)
  audio[audio_pad > 0] = 0
  labels = np.array([[1, 3, 2], [4, 4, 0]], np.int32)
  label_pad = np.array([[0, 0, 0], [0, 0, 1]], np.float32)
  batch = {k: jnp.asarray(v) for k, v in
           dict(audio=audio, audio_paddings=audio_pad, labels=labels, label_paddings=label_pad).items()}
  feats, pads = jax.jit(lambda b: featurize(b, jax.random.key(0), FrontEnd(spec_augment=False), train=True))(batch)
  init = jax.jit(lambda key: model.init(key, feats, pads, batch["labels"], batch["label_paddings"],
                                        prune_range=labels.shape[1] + 1, method=model.pruned_losses))
  return model, init(jax.random.key(1)), batch, (feats, pads)


def _oracle_gradients(model, params, batch, feats, pads, fastemit_lambdas):
  """Mean-over-utterances loss and parameter gradient per FastEmit weight, from the brute-force oracle
  (`tests/oracles.py`): enumerated alignments give d loss / d logits with FastEmit's (1 + lam) on
  emission edges, and the model's own VJP carries it to the parameters (the chain rule is trusted,
  not the step or the loss)."""
  logits_fn = jax.jit(lambda p: model.apply(p, feats, pads, batch["labels"], batch["label_paddings"]))
  (logits, enc_pads), vjp = jax.vjp(logits_fn, params)
  vjp = jax.jit(vjp)
  logits, enc_pads = np.asarray(logits, np.float64), np.asarray(enc_pads)
  labels, label_pads = np.asarray(batch["labels"]), np.asarray(batch["label_paddings"])
  num_utts, out = logits.shape[0], []
  for lam in fastemit_lambdas:
    cotangent, losses = np.zeros(logits.shape, np.float32), []
    for b in range(num_utts):
      t, u = int(np.sum(enc_pads[b] == 0)), int(np.sum(label_pads[b] == 0))
      nll, d_logits, _, _ = oracles.rnnt_nll_and_grads(logits[b, :t, : u + 1], labels[b, :u], fastemit_lambda=lam)
      cotangent[b, :t, : u + 1] = d_logits / num_utts
      losses.append(nll)
    (grads,) = vjp((jnp.asarray(cotangent), jnp.zeros_like(enc_pads)))
    out.append((float(np.mean(losses)), grads))
  return out


def _assert_trees_close(actual, expected, names=("encoder", "predictor", "joint_net")):
  for name in names:
    for a, e in zip(jax.tree.leaves(actual["params"][name]), jax.tree.leaves(expected["params"][name])):
      np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=2e-3, atol=1e-6)


def _relative_difference(x, y, names=("encoder", "predictor", "joint_net")) -> float:
  flat = lambda t: np.concatenate([np.ravel(leaf) for n in names for leaf in jax.tree.leaves(t["params"][n])])
  return float(np.linalg.norm(flat(x) - flat(y)) / np.linalg.norm(flat(y)))


# 0: the full loss (slow: FastEmit's gradient is also checked in tests/losses); 4 = U + 1: pruned windows cover the lattice
@pytest.mark.parametrize("prune_range", [pytest.param(0, marks=pytest.mark.slow), 4])
def test_fastemit_through_the_train_step_is_the_oracle_gradient(small, prune_range):
  model, params, batch, (feats, pads) = small
  lam = 0.5
  assert oracles.rnnt_nll_and_grads  # the reference: enumeration, not asrjax's lattice
  (loss, expected), (_, plain) = _oracle_gradients(model, params, batch, feats, pads, (lam, 0.0))
  assert _relative_difference(expected, plain) > 0.05  # FastEmit really changes the gradient here
  tx = _capture_gradient()
  config = _loss(False, fastemit_lambda=lam, prune_range=prune_range, simple_loss_scale=0.0,
                 pruned_warmup_steps=0)  # pruned: objective = pruned loss
  step = jax.jit(_step_fn(model, tx, config))
  new, metrics = step(_state(params, tx), batch, jax.random.key(7))
  assert bool(metrics["finite"]) and int(new.skipped) == 0
  np.testing.assert_allclose(float(metrics["loss"]), loss, rtol=1e-5)  # the value stays the plain NLL
  _assert_trees_close(new.opt_state, expected)
  for name in ("simple_am", "simple_lm"):
    # unused by the full loss; weight 0 in the pruned objective: no gradient reaches the simple projections
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(new.opt_state["params"][name]))


def _poisoned_gradient(value):
  """Identity whose backward pass returns ``value`` everywhere: a finite loss with a non-finite gradient
  (that a skipped step then trains normally is `test_non_finite_step_is_skipped_and_counted`'s)."""
  @jax.custom_vjp
  def poison(x):
    return x
  poison.defvjp(lambda x: (x, None), lambda _, g: (jnp.full_like(g, value),))
  return poison


def test_finite_loss_with_a_non_finite_gradient_is_skipped(small, monkeypatch):
  model, params, batch, _ = small
  poison = _poisoned_gradient(np.nan)
  real_loss = transducer_asr.rnnt_loss
  monkeypatch.setattr(transducer_asr, "rnnt_loss", lambda *a, **k: poison(real_loss(*a, **k)))
  tx = optax.adam(1e-2)
  step = jax.jit(_step_fn(model, tx, _loss(False)))
  state = _state(params, tx)
  new, metrics = step(state, batch, jax.random.key(0))
  assert np.isfinite(float(metrics["loss"])) and not np.isfinite(float(metrics["grad_norm"]))
  assert not bool(metrics["finite"]) and int(new.skipped) == 1 and int(new.step) == 1
  for a, b in zip(jax.tree.leaves((state.params, state.opt_state)), jax.tree.leaves((new.params, new.opt_state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("cls, field, value, match", [
    (FrontEnd, "num_freq_masks", -1, "num_freq_masks must be an integer >= 0"),
    (FrontEnd, "max_freq_mask", 2.5, "max_freq_mask must be an integer >= 0"),
    (FrontEnd, "num_time_masks", -3, "num_time_masks must be an integer >= 0"),
    (FrontEnd, "max_time_mask_ratio", -0.1, "max_time_mask_ratio must be a finite number >= 0.0, <= 1.0"),
    (FrontEnd, "max_time_mask_ratio", 1.5, "max_time_mask_ratio must be a finite number >= 0.0, <= 1.0"),
    (LossConfig, "fastemit_lambda", float("nan"), "fastemit_lambda must be a finite number >= 0"),
    (LossConfig, "fastemit_lambda", -0.1, "fastemit_lambda must be a finite number >= 0"),
    (LossConfig, "prune_range", -1, "prune_range must be an integer >= 0"),
    (FrontEnd, "vtlp_max_warp", 1.0, "vtlp_max_warp must be a finite number >= 0.0, < 1.0"),
    (LossConfig, "compute_dtype", "float8", r"compute_dtype must be one of \['float32', 'bfloat16', 'float16'\]"),
    (LossConfig, "compute_dtype", jnp.int32, "compute_dtype must be one of"),
    (LossConfig, "simple_lm_only_scale", 0.8, r"simple_lm_only_scale \+ simple_am_only_scale must be <= 1"),
    (FrontEnd, "spec_augment", 1, "spec_augment must be a bool"),
    (FrontEnd, "feature_mean", (0.0,), "feature_mean and feature_std must be given together"),
    (LossConfig, "loss_weights", (("compute", float("inf")),), "loss_weights must map term names to finite numbers"),
])
def test_loss_and_front_end_options_name_a_bad_field(cls, field, value, match):
  kwargs = {field: value}
  if field == "simple_lm_only_scale":
    kwargs["simple_am_only_scale"] = 0.5
  with pytest.raises(ValueError, match=f"{cls.__name__}." + match):
    cls(**kwargs)


def test_options_normalise_dtype_and_statistics():
  front_end = FrontEnd(feature_mean=[0.0, 1.0], feature_std=np.array([1.0, 2.0]))
  config = LossConfig(compute_dtype="bfloat16", front_end=front_end)
  assert config.compute_dtype == jnp.bfloat16 and front_end.feature_mean == (0.0, 1.0)
  assert front_end.feature_std == (1.0, 2.0)
  hash(config)  # a static argument of the jitted step
  with pytest.raises(ValueError, match="feature_std finite and > 0"):
    FrontEnd(feature_mean=(0.0,), feature_std=(0.0,))
