"""The task seam of the one trainer: named objective terms, terms weighted by configuration,
several parameter sets trained in alternation (and checkpointed), and ``train.init_from``."""

import functools
import json
import os
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from asrjax import tasks
from asrjax.data import tokenizer as tokenizer_lib
from asrjax.frontend.featurize import FrontEnd, featurize
from asrjax.models import convrnnt, transducer
from asrjax.tasks import transducer_asr
from asrjax.train import checkpoint, run_config, sharding, step as step_lib, task as task_lib, trainer

TINY = dict(stack=3, channels=16, local_layers=1, local_kernel=3, global_blocks=1, global_kernel=3,
            lstm_hidden=16, lstm_layers=1, output_dim=16)


# ------------------------------------------------------------------------------------- Objective


def test_a_single_term_of_weight_one_is_that_term_exactly():
  x = jnp.float32(0.1) + jnp.float32(0.2)
  assert task_lib.Objective({"loss": x}, {"loss": 1.0}).value() == x  # no leading 0 + ...
  o = task_lib.Objective({"a": jnp.float32(2.0), "b": jnp.float32(3.0), "c": jnp.float32(7.0)}, {"a": 0.5, "b": 2.0})
  assert float(o.value()) == 0.5 * 2.0 + 2.0 * 3.0  # c is logged only


def test_weights_by_name_set_and_refuse_unknown_terms():
  o = task_lib.Objective({"loss": jnp.float32(2.0), "cost": jnp.float32(4.0)}, {"loss": 1.0})
  assert float(task_lib.with_weights(o, {"cost": 0.25}).value()) == 2.0 + 1.0
  assert float(task_lib.with_weights(o, {"loss": 0.0, "cost": 1.0}).value()) == 4.0
  with pytest.raises(ValueError, match=r"train.loss_weights names \['latency'\].*terms are \['cost', 'loss'\]"):
    task_lib.with_weights(o, {"latency": 1.0})
  with pytest.raises(ValueError, match="no weighted term"):
    task_lib.Objective({"loss": jnp.float32(1.0)}, {}).value()


# ------------------------------------------------------------- a model's auxiliary term, by configuration


class SowingEncoder(convrnnt.ConvRNNTEncoder):
  """ConvRNN-T that also reports a differentiable "compute cost": 1e-3 * sum of its output squared."""

  @nn.compact
  def __call__(self, feats, paddings, state):
    enc, enc_pad, state = super().__call__(feats, paddings, state)
    self.sow("losses", "compute_cost", 1e-3 * jnp.sum(jnp.where(enc_pad[..., None] > 0, 0.0, enc) ** 2))
    return enc, enc_pad, state


def _batch():
  rng = np.random.default_rng(0)
  lengths = np.array([6000, 8000])
  audio = (rng.normal(size=(2, 8000)) * 3000).astype(np.int16)
  audio_pad = (np.arange(8000)[None] >= lengths[:, None]).astype(np.float32)
  audio[audio_pad > 0] = 0
  labels = np.array([[1, 2, 3], [4, 5, 0]], np.int32)
  label_pad = np.array([[0, 0, 0], [0, 0, 1]], np.float32)
  return {k: jnp.asarray(v) for k, v in dict(audio=audio, audio_paddings=audio_pad, labels=labels,
                                               label_paddings=label_pad).items()}


@pytest.fixture(scope="module")
def sowing():
  model = transducer.Transducer(SowingEncoder(**TINY), vocab_size=7, embed_dim=8, predictor_hidden=16,
                                joint_hidden=16)
  batch = _batch()
  params = transducer_asr.init_params(model, batch, jax.random.key(1))
  assert set(params) == {"params"}  # what was sown at initialisation is not a parameter
  return model, params, batch


def _cost_alone(model, params, batch):
  """The encoder's cost from its output, computed apart from the objective (the reference)."""
  feats, pads = featurize(batch, jax.random.key(0), FrontEnd(spec_augment=False), train=True)
  enc, enc_pad, _ = model.apply(params, feats, pads, method=transducer.Transducer.encode, mutable=["losses"])[0]
  return 1e-3 * jnp.sum(jnp.where(enc_pad[..., None] > 0, 0.0, enc) ** 2)


@pytest.mark.slow  # suite budget; `make test-slow`, which CI runs too
def test_a_sown_term_is_logged_and_joins_the_objective_only_by_its_configured_weight(sowing):
  model, params, batch = sowing
  key = jax.random.key(2)
  plain = transducer_asr.LossConfig(front_end=FrontEnd(spec_augment=False))
  weighted = transducer_asr.LossConfig(front_end=FrontEnd(spec_augment=False),
                                       loss_weights=(("encoder/compute_cost", 0.5),))
  cost = float(_cost_alone(model, params, batch))
  o = transducer_asr.objective(params, model, batch, key, plain)
  assert set(o.terms) == {"loss", "encoder/compute_cost"} and cost > 0
  np.testing.assert_allclose(float(o.terms["encoder/compute_cost"]), cost, rtol=1e-5)
  assert float(o.value()) == float(o.terms["loss"])  # logged only
  w = transducer_asr.objective(params, model, batch, key, weighted)
  np.testing.assert_allclose(float(w.value()), float(o.terms["loss"]) + 0.5 * cost, rtol=1e-6)
  # the gradient is the loss's plus half the cost's, each taken on its own
  g = jax.grad(lambda p: transducer_asr.objective(p, model, batch, key, weighted).value())(params)
  g_loss = jax.grad(lambda p: transducer_asr.objective(p, model, batch, key, plain).value())(params)
  g_cost = jax.grad(lambda p: _cost_alone(model, p, batch))(params)
  for a, b, c in zip(jax.tree.leaves(g), jax.tree.leaves(g_loss), jax.tree.leaves(g_cost)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b) + 0.5 * np.asarray(c), rtol=2e-4, atol=1e-6)
  with pytest.raises(ValueError, match=r"names \['encoder/latency'\]"):
    transducer_asr.objective(params, model, batch, key, transducer_asr.LossConfig(
        front_end=FrontEnd(spec_augment=False), loss_weights=(("encoder/latency", 1.0),)))


def test_the_step_logs_every_term_and_the_objective(sowing):
  model, params, batch = sowing
  tx = optax.sgd(0.0)
  loss = transducer_asr.LossConfig(front_end=FrontEnd(spec_augment=False), loss_weights=(("encoder/compute_cost", 2.0),))
  task = transducer_asr.TransducerASR(model, loss, tx, init_batch=batch)
  state = step_lib.init_state({"model": params}, {"model": tx}, task.param_sets)
  _, metrics = jax.jit(functools.partial(step_lib.train_step, task=task, txs={"model": tx}))(
      state, batch, jax.random.key(3))
  assert {"loss", "encoder/compute_cost", "loss_per_label", "objective", "grad_norm", "finite"} <= set(metrics)
  np.testing.assert_allclose(float(metrics["objective"]),
                             float(metrics["loss"]) + 2.0 * float(metrics["encoder/compute_cost"]), rtol=1e-6)


# ------------------------------------------------------------- two parameter sets, trained in alternation


class MinimaxTask:
  """``model`` minimises (w - a)^2; ``adversary`` minimises a^2 - (w - a)^2 (hand-derivable updates).
  The batch carries a scale ``s`` multiplying both objectives (NaN poisons one step)."""

  param_sets = ("model", "adversary")
  batch_fields = ("s",)

  def __init__(self, lr_model=0.1, lr_adversary=0.05):
    self.txs = {"model": optax.sgd(lr_model), "adversary": optax.sgd(lr_adversary)}

  def optimizers(self):
    return self.txs

  def init(self, key):
    del key
    return {"model": {"w": jnp.float32(1.0)}, "adversary": {"a": jnp.float32(0.5)}}

  def objective(self, params, batch, key, step, *, trained):
    w, a, s = params["model"]["w"], params["adversary"]["a"], batch["s"][0]
    gap = s * (w - a) ** 2
    if trained == "model":
      return task_lib.Objective({"gap": gap}, {"gap": 1.0})
    return task_lib.Objective({"gap": gap, "size": s * a**2}, {"size": 1.0, "gap": -1.0})

  # what the trainer needs beyond the step
  @classmethod
  def from_config(cls, config, workdir, train_split=None):
    del config, workdir, train_split
    return cls()

  def batches(self, step):
    return _Ones(step)

  def describe(self):
    return "minimax toy"

  def evaluate(self, params, step):
    w, a = float(params["model"]["w"]), float(params["adversary"]["a"])
    return {"toy": ({"w": w, "a": a, "step": step}, {"w": w, "a": a})}


class _Ones:
  """Batches of ``s = 1`` for every device, resumable."""

  dropped = 0

  def __init__(self, step):
    self.step = step

  def __next__(self):
    self.step += 1
    return {"s": np.ones(jax.device_count(), np.float32)}

  def state(self):
    return {"step": self.step}

  def close(self):
    pass


def test_sets_are_updated_in_order_each_on_its_own_objective():
  task = MinimaxTask()
  task_lib.check_task(task)
  state = step_lib.init_state(task.init(None), task.txs, task.param_sets)
  step = jax.jit(functools.partial(step_lib.train_step, task=task, txs=task.txs))
  w, a = 1.0, 0.5
  for i in range(3):
    state, metrics = step(state, {"s": jnp.ones(1)}, jax.random.key(i))
    w_new = w - 0.1 * 2 * (w - a)  # d/dw (w - a)^2
    a = a - 0.05 * (2 * a + 2 * (w_new - a))  # d/da [a^2 - (w - a)^2], w already updated
    w = w_new
    np.testing.assert_allclose(float(state.params["w"]), w, rtol=1e-6)
    np.testing.assert_allclose(float(state.others["adversary"].params["a"]), a, rtol=1e-6)
  assert {"gap", "objective", "grad_norm", "adversary/gap", "adversary/size", "adversary/objective",
          "adversary/grad_norm"} <= set(metrics)
  np.testing.assert_allclose(float(metrics["adversary/objective"]),
                             float(metrics["adversary/size"]) - float(metrics["adversary/gap"]), rtol=1e-6)
  assert int(state.step) == 3 and int(state.skipped) == 0
  before = state
  state, metrics = step(state, {"s": jnp.full(1, jnp.nan)}, jax.random.key(9))  # every set's objective NaN
  assert not bool(metrics["finite"]) and int(state.skipped) == 1 and int(state.step) == 4
  assert float(state.params["w"]) == float(before.params["w"])
  assert float(state.others["adversary"].params["a"]) == float(before.others["adversary"].params["a"])


def test_every_parameter_set_is_checkpointed_and_restored(tmp_path):
  task = MinimaxTask()
  step = jax.jit(functools.partial(step_lib.train_step, task=task, txs=task.txs))
  state = step_lib.init_state(task.init(None), task.txs, task.param_sets)
  for i in range(2):
    state, _ = step(state, {"s": jnp.ones(1)}, jax.random.key(i))
  ckpt = checkpoint.Checkpointer(str(tmp_path / "ckpt"), save_interval_steps=1, async_save=False)
  ckpt.save(int(state.step), state, {"step": int(state.step)})
  ckpt.close()
  abstract = trainer.abstract_state(task)
  mesh = sharding.make_mesh(devices=jax.devices()[:1])
  ckpt = checkpoint.Checkpointer(str(tmp_path / "ckpt"))
  restored, data, at = ckpt.restore_latest(checkpoint.abstract_like(abstract, sharding.tree_shardings(mesh, abstract)))
  assert at == 2 and data["step"] == 2
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert float(restored.others["adversary"].params["a"]) == float(state.others["adversary"].params["a"])
  # resuming continues exactly as the uninterrupted run
  a, _ = step(state, {"s": jnp.ones(1)}, jax.random.key(5))
  b, _ = step(restored, {"s": jnp.ones(1)}, jax.random.key(5))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_the_registry_builds_tasks_by_name_and_refuses_unknown_ones(tmp_path):
  from tests.experiments.test_configs import load
  config = load("convrnnt", "tiny")
  assert tasks.task_name(config) == "transducer_asr"
  assert set(tasks.TASKS) == {"transducer_asr", "speaker_verification", "multitalker_asr"}
  with config.unlocked():
    config.task = "diarization"
  with pytest.raises(ValueError, match=r"task must be one of \['multitalker_asr', 'speaker_verification', "
                                       r"'transducer_asr'\]; got "
                                       r"'diarization'"):
    tasks.build(config, str(tmp_path))


# ------------------------------------------------------------------------------------ train.init_from


def _workdir(path, encoder=None, seed=0):
  """A run in ``path``: config.json, tokenizer, statistics, one checkpoint of random parameters."""
  from tests.experiments.test_configs import load
  config = load("convrnnt", "tiny")
  config.model.encoder.update(encoder or {})
  os.makedirs(path)
  tokenizer_lib.CharTokenizer.build(["the quick brown fox"]).save(os.path.join(path, "tokenizer.json"))
  with open(os.path.join(path, "feature_stats.json"), "w") as f:
    json.dump({"mean": [0.5] * 80, "std": [2.0] * 80, "utterances": 1}, f)
  run_config.save(config, path)
  task = transducer_asr.TransducerASR.from_config(config, path)
  state = trainer.fresh_state(task, jax.random.key(seed))
  state = jax.tree.map(lambda x: x + 1.0 if jnp.issubdtype(x.dtype, jnp.floating) else x, state)  # not an init
  ckpt = checkpoint.Checkpointer(os.path.join(path, "checkpoints"), save_interval_steps=1, async_save=False)
  ckpt.save(4, state, {"step": 4})
  ckpt.close()
  return config, task, state


@pytest.mark.slow  # suite budget; `make test-slow`, which CI runs too
def test_init_from_starts_from_the_other_runs_parameters(tmp_path):
  src = str(tmp_path / "src")
  _, _, src_state = _workdir(src)
  from tests.experiments.test_configs import load
  config = load("convrnnt", "tiny")
  config.train.init_from = f"{src}:4"
  new = str(tmp_path / "new")
  transducer_asr.inherit_files(config, src, new)
  for name in ("tokenizer.json", "feature_stats.json"):  # the labels and features the parameters know
    with open(os.path.join(src, name)) as a, open(os.path.join(new, name)) as b:
      assert a.read() == b.read()
  task = transducer_asr.TransducerASR.from_config(config, new)
  params = trainer.initial_params(config, task, trainer.abstract_state(task))
  for a, b in zip(jax.tree.leaves(src_state.params), jax.tree.leaves(params["model"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  config.train.init_from = ""
  assert trainer.initial_params(config, task, trainer.abstract_state(task)) is None


def test_init_from_refuses_another_tree_naming_the_first_differing_leaf(tmp_path):
  src = str(tmp_path / "src")
  _workdir(src, encoder={"lstm_hidden": 48})
  from tests.experiments.test_configs import load
  config = load("convrnnt", "tiny")
  config.train.init_from = src
  new = str(tmp_path / "new")
  transducer_asr.inherit_files(config, src, new)
  task = transducer_asr.TransducerASR.from_config(config, new)
  # in path order the first leaf that depends on lstm_hidden is the first LSTM layer's bias: 4 gates x hidden
  with pytest.raises(checkpoint.CheckpointMismatch, match=re.escape(
      "its parameters do not fit this model: ['model']['params']['encoder']['lstm']['layer_0']['bias'] is "
      f"({4 * 48},) float32 there, ({4 * 32},) float32 here")):
    trainer.initial_params(config, task, trainer.abstract_state(task))


@pytest.mark.parametrize("value, expected", [
    ("workdirs/demo", ("workdirs/demo", None)),
    ("workdirs/demo:4918", ("workdirs/demo", 4918)),
    ("/a:b/c", ("/a:b/c", None)),
    ("/a:b/c:0", ("/a:b/c", 0)),
])
def test_init_from_is_a_workdir_and_an_optional_step(value, expected):
  assert trainer.parse_init_from(value) == expected


@pytest.mark.parametrize("value", [":5", ""])
def test_init_from_without_a_workdir_is_refused(value):
  with pytest.raises(ValueError, match="train.init_from must be"):
    trainer.parse_init_from(value)


# ------------------------------------------------------------------- train.init_transfer='overlap'


def _trees():
  """This model (zeros: "fresh") and another run's (twos, threes, fours), vocabulary 5 -> 7."""
  z, f = np.zeros, np.full
  fresh = {"model": {"params": {"encoder": {"w": z((3, 4))}, "embed": z((7, 2)),
                                "joint": {"out": {"kernel": z((5, 7)), "bias": z(7)}}, "separator_0": {"w": z((2, 2))}}}}
  source = {"model": {"params": {"encoder": {"w": f((3, 4), 1.0)}, "embed": f((5, 2), 2.0),
                                 "joint": {"out": {"kernel": f((5, 5), 3.0), "bias": f(5, 4.0)}},
                                 "lm_proj": f(2, 9.0)}}}
  return fresh, source


def test_overlap_copies_shared_leaves_grows_the_vocabulary_and_keeps_the_rest_fresh():
  fresh, source = _trees()
  plan = trainer.transfer_plan(fresh, source, vocab_growth=(5, 7))
  p = "['model']['params']"
  assert plan == {f"{p}['encoder']['w']": "copy", f"{p}['embed']": "grow", f"{p}['joint']['out']['kernel']": "grow",
                  f"{p}['joint']['out']['bias']": "grow", f"{p}['separator_0']['w']": "fresh", f"{p}['lm_proj']": "unused"}
  for out in (trainer.apply_transfer(plan, fresh, source), jax.jit(functools.partial(trainer.apply_transfer, plan))(
      fresh, source)):
    m = out["model"]["params"]
    np.testing.assert_array_equal(m["encoder"]["w"], np.ones((3, 4)))
    np.testing.assert_array_equal(m["embed"], np.r_[np.full((5, 2), 2.0), np.zeros((2, 2))])  # <sot>, <eot> fresh
    np.testing.assert_array_equal(m["joint"]["out"]["kernel"], np.c_[np.full((5, 5), 3.0), np.zeros((5, 2))])
    np.testing.assert_array_equal(m["joint"]["out"]["bias"], [4, 4, 4, 4, 4, 0, 0])
    np.testing.assert_array_equal(m["separator_0"]["w"], np.zeros((2, 2)))
    assert "lm_proj" not in m
  assert "3 leaves grown" in trainer.describe_plan(plan) and "1 leaves fresh (e.g." in trainer.describe_plan(plan)


def test_overlap_refuses_a_size_that_differs_and_a_model_with_nothing_shared():
  fresh, source = _trees()
  with pytest.raises(ValueError, match=re.escape("['embed'] is (5, 2) there, (7, 2) here: the models' sizes")):
    trainer.transfer_plan(fresh, source)  # no vocabulary growth declared
  with pytest.raises(ValueError, match="only a vocabulary axis may grow, 5 -> 6"):
    trainer.transfer_plan(fresh, source, vocab_growth=(5, 6))
  source["model"]["params"]["encoder"]["w"] = np.ones((3, 5))  # a hidden size of the model differs
  with pytest.raises(ValueError, match=re.escape("['encoder']['w'] is (3, 5) there, (3, 4) here")):
    trainer.transfer_plan(fresh, source, vocab_growth=(5, 7))
  with pytest.raises(ValueError, match="share no parameter"):
    trainer.transfer_plan(fresh, {"model": {"params": {"other": np.ones(2)}}})


@pytest.mark.slow  # suite budget; `make test-slow`, which CI runs too
def test_a_multitalker_run_starts_from_a_single_speaker_run(tmp_path):
  """The STS config's `pretrained` option, from a tiny ConvRNN-T run: its encoder, prediction and joint
  network are the other run's (old tokens' rows), the separators, the recognition encoder and
  the turn tokens' rows a fresh initialisation's."""
  from asrjax.tasks import multitalker_asr
  from tests.experiments.test_configs import load
  src = str(tmp_path / "src")
  _, _, src_state = _workdir(src)
  config = load("sts_multitalker", "variant=tiny,ablation=two_sided,pretrained")
  config.train.init_from = src
  new = str(tmp_path / "new")
  transducer_asr.inherit_files(config, src, new)
  task = multitalker_asr.MultitalkerASR.from_config(config, new)
  abstract = trainer.abstract_state(task)
  mesh = sharding.make_mesh(fsdp=1)
  state = trainer.starting_state(config, task, task.optimizers(), abstract, sharding.tree_shardings(mesh, abstract))
  got, old = state.params["params"], src_state.params["params"]
  init = task.init(jax.random.key(config.train.seed))["model"]["params"]
  same = lambda a, b: jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)
  same(got["encoder"], old["encoder"])
  same(got["predictor"]["lstm"], old["predictor"]["lstm"])
  v = task.tokenizer.base.vocab_size
  assert task.tokenizer.vocab_size == v + 2
  emb, old_emb = got["predictor"]["embed"]["embedding"], old["predictor"]["embed"]["embedding"]
  np.testing.assert_array_equal(emb[:v], old_emb)
  np.testing.assert_array_equal(emb[v:], init["predictor"]["embed"]["embedding"][v:])
  joint, old_joint = got["joint_net"], old["joint_net"]
  same(joint["enc_proj"], old_joint["enc_proj"])
  np.testing.assert_array_equal(joint["out"]["kernel"][:, :v], old_joint["out"]["kernel"])
  np.testing.assert_array_equal(joint["out"]["bias"][:v], old_joint["out"]["bias"])
  np.testing.assert_array_equal(joint["out"]["kernel"][:, v:], init["joint_net"]["out"]["kernel"][:, v:])
  for name in ("separator_0", "separator_1", "recognition_encoder"):
    same(got[name], init[name])
  assert int(state.step) == 0


def test_the_one_trainer_runs_another_task_and_resumes_it(tmp_path, monkeypatch):
  """`train_and_evaluate` on the two-set toy task: every term logged, both sets checkpointed, a run
  stopped at step 3 and resumed to 6 ends where an uninterrupted run to 6 ends, and the task's own
  evaluator fills results.json."""
  from tests.experiments.test_configs import load
  monkeypatch.setitem(tasks.TASKS, "minimax", MinimaxTask)
  from asrjax.data import sources
  monkeypatch.setattr(sources, "open_split", lambda *a, **k: None)  # the toy reads no corpus

  def run(workdir, steps):
    config = load("convrnnt", "tiny")
    config.task = "minimax"
    config.train.update(num_steps=steps, checkpoint_every=3, log_every=1)
    return trainer.train_and_evaluate(config, str(workdir))

  straight = run(tmp_path / "a", 6)
  run(tmp_path / "b", 3)
  resumed = run(tmp_path / "b", 6)
  assert straight["steps"] == resumed["steps"] == 6 and straight["toy"]["step"] == 6
  assert (straight["toy"]["w"], straight["toy"]["a"]) == (resumed["toy"]["w"], resumed["toy"]["a"])
  w, a = 1.0, 0.5
  for _ in range(6):  # the hand-derived alternation (test_sets_are_updated_in_order_each_on_its_own_objective)
    w_new = w - 0.1 * 2 * (w - a)
    a, w = a - 0.05 * (2 * a + 2 * (w_new - a)), w_new
  np.testing.assert_allclose((straight["toy"]["w"], straight["toy"]["a"]), (w, a), rtol=1e-5)
  assert {"gap", "objective", "adversary/size", "adversary/objective", "adversary/grad_norm"} <= set(
      straight["history"][0])
  with open(tmp_path / "a" / "results.json") as f:
    assert json.load(f)["toy"]["w"] == straight["toy"]["w"]
