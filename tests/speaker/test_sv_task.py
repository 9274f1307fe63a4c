"""The speaker-verification task's objective and ARW step (Jin et al. 2022), on a hand-built split.

References: the unweighted baseline objective (equal adversary weights must reproduce it
exactly), the pairwise loss recomputed in numpy with w_i + w_j, and the min-max contract
(an adversary step raises the weighted loss, an extractor step lowers it).
"""

import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.speaker import adversary as adversary_lib
from asrjax.tasks import speaker_verification as sv
from asrjax.train import config_check, step as step_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(arg):
  spec = importlib.util.spec_from_file_location("sv_ecapa", os.path.join(ROOT, "experiments/configs/sv_ecapa.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def _split(n_speakers=4, per=3, seconds=1.2):
  rng = np.random.default_rng(0)
  out = []
  for s in range(n_speakers):
    tone = 200 + 150 * s  # each speaker a different pitch: something to learn
    for u in range(per):
      t = np.arange(int(seconds * 16_000)) / 16_000
      wave = 0.3 * np.sin(2 * np.pi * tone * t) + 0.05 * rng.normal(size=t.shape)
      out.append({"audio": (wave * 32767).astype(np.int16), "speaker_id": f"s{s}".encode(), "id": f"s{s}u{u}".encode()})
  return out


def _task(tmp_path, arg="tiny", clusters=None, **train):
  config = _config(arg)
  config.train.update(train)
  if clusters is not None:
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps({"clusters": clusters}))
    config.arw.clusters_file = str(path)
  assert config_check.problems(config) == []
  return sv.SpeakerVerification(config, str(tmp_path), _split())


def _batch(task, step=0):
  b = task.batches(step).batch_at(step)
  return {k: jnp.asarray(b[k]) for k in task.batch_fields}


def _constant_adversary(params, value=0.7):
  """Adversary parameters that score every sample ``value``: equal weights."""
  p = jax.tree.map(jnp.zeros_like, params)
  p["params"]["score"]["bias"] = jnp.full_like(p["params"]["score"]["bias"], value)
  return p


# a smaller extractor than the tiny config's: one compile of three objectives must stay cheap
_SMALL = dict(channels=8, scale=2, aggregate=8, se_bottleneck=4, attention=4, embed_dim=8)


@pytest.mark.slow  # suite budget; `make test-slow`, which CI runs too
def test_equal_adversary_weights_give_exactly_the_baseline_objective_and_gradient(tmp_path):
  tasks = {}
  for name, arg in (("base", "tiny"), ("pw", "tiny,arw=pw,adversary_input=embedding"),
                    ("sample", "tiny,arw=sample,adversary_input=embedding")):
    config = _config(arg)
    config.model.extractor.update(_SMALL)
    config.sv.crop_seconds = 0.5
    tasks[name] = sv.SpeakerVerification(config, str(tmp_path / name), _split())
  params = tasks["pw"].init(jax.random.key(0))
  params["adversary"] = _constant_adversary(params["adversary"])
  batch, key = _batch(tasks["pw"]), jax.random.key(3)

  @jax.jit
  def all_three(model):  # one compile for the three objectives and their gradients
    def value(task, p):
      o = task.objective({**params, "model": p}, batch, key, 0, trained="model")
      return o.value(), o.terms
    return {n: jax.value_and_grad(lambda p, t=t: value(t, p), has_aux=True)(model) for n, t in tasks.items()}

  out = all_three(params["model"])
  (v_base, t_base), g_base = out["base"]
  for variant in ("pw", "sample"):
    (v, t), g = out[variant]
    np.testing.assert_allclose(float(v), float(v_base), rtol=1e-6)
    for k in ("aam", "pairwise"):
      np.testing.assert_allclose(float(t[k]), float(t_base[k]), rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6), g, g_base)


@pytest.mark.slow  # ~20 s (compiles the extractor): the suite budget
def test_the_pw_pairwise_term_weighs_each_pair_by_the_sum_of_its_sample_weights(tmp_path):
  task = _task(tmp_path, "tiny,arw=pw,adversary_input=embedding")
  params = task.init(jax.random.key(1))
  params["adversary"] = jax.tree.map(lambda x: x * 30.0, params["adversary"])  # spread the weights out
  batch, key = _batch(task), jax.random.key(2)
  o = task.objective(params, batch, key, 0, trained="model")
  from asrjax.frontend.featurize import featurize
  feats, pads = featurize(batch, key, task.options.front_end, train=True)
  e = np.asarray(task.extractor.apply(params["model"]["extractor"], feats, pads), np.float64)
  w = np.asarray(adversary_lib.normalised_weights(task.adversary.apply(params["adversary"], jnp.asarray(e),
                                                                       batch["cluster"])), np.float64)
  assert w.std() > 0.05 and np.isclose(w.mean(), 2.0)
  a = float(jax.nn.softplus(params["model"]["pair"]["scale"]))
  b = float(params["model"]["pair"]["offset"])
  spk = np.asarray(batch["speaker"])
  num = den = 0.0
  for i in range(len(e)):
    for j in range(i + 1, len(e)):
      z = a * e[i] @ e[j] / (np.linalg.norm(e[i]) * np.linalg.norm(e[j])) + b
      loss = np.logaddexp(0, z) - (spk[i] == spk[j]) * z
      num, den = num + (w[i] + w[j]) * loss, den + w[i] + w[j]
  np.testing.assert_allclose(float(o.terms["pairwise"]), num / den, rtol=2e-4)


@pytest.mark.slow  # ~20 s (compiles the train step): the suite budget
def test_an_adversary_step_raises_the_weighted_loss_and_an_extractor_step_lowers_it(tmp_path):
  # no SpecAugment: the adversary's half of the step draws its own masks, the check here one fixed draw
  task = _task(tmp_path, "tiny,arw=pw", clusters=[i % 3 for i in range(12)], spec_augment=False)
  task.config.optimizer.warmup_steps = 0  # the warm-up's first learning rate is 0
  txs = task.optimizers()
  state = step_lib.init_state(task.init(jax.random.key(0)), txs, task.param_sets)
  batch, key = _batch(task), jax.random.key(5)

  def weighted(model, adv):
    o = task.objective({"model": model, "adversary": adv}, batch, key, 0, trained="model")
    return float(o.value())

  before = weighted(state.params, state.others["adversary"].params)
  new, _ = jax.jit(lambda s, b, k: step_lib.train_step(s, b, k, task=task, txs=txs))(state, batch, key)
  after_model = weighted(new.params, state.others["adversary"].params)  # the extractor's update alone
  after_both = weighted(new.params, new.others["adversary"].params)  # then the adversary's
  assert after_model < before
  assert after_both > after_model


@pytest.mark.slow  # ~10 s (runs the extractor): the suite budget
def test_aam_weight_zero_leaves_the_pairwise_loss_alone_for_both_players(tmp_path):
  config = _config("tiny,arw=pw,adversary_input=embedding")
  config.model.extractor.update(_SMALL)
  config.sv.crop_seconds, config.sv.aam_weight = 0.5, 0.0
  task = sv.SpeakerVerification(config, str(tmp_path), _split())
  params = task.init(jax.random.key(0))
  batch, key = _batch(task), jax.random.key(3)
  model = task.objective(params, batch, key, 0, trained="model")
  assert float(model.terms["aam"]) > 1.0  # the AAM term is there, and large, but weighs nothing
  np.testing.assert_allclose(float(model.value()), float(model.terms["pairwise"]), rtol=1e-6)
  adversary = task.objective(params, batch, key, 0, trained="adversary")
  np.testing.assert_allclose(float(adversary.value()), -float(model.terms["pairwise"]), rtol=1e-6)


def test_bad_clusters_files_are_refused(tmp_path):
  with pytest.raises(ValueError, match=r"expected one cluster in \[0, 3\) per training utterance \(12\); got 5"):
    _task(tmp_path, "tiny,arw=pw", clusters=[0, 1, 2, 0, 1])
  with pytest.raises(ValueError, match=r"expected one cluster in \[0, 3\).*got 12 values in \[0, 3\]"):
    _task(tmp_path, "tiny,arw=pw", clusters=[3] + [0] * 11)


def test_config_problems_name_the_fields():
  c = _config("tiny,arw=pw")
  c.sv.utterances_per_speaker = 1
  c.arw.variant = "adversarial"
  found = config_check.problems(c)
  assert any(p.startswith("sv.utterances_per_speaker=1: expected an integer >= 2") for p in found)
  assert any(p.startswith("arw.variant='adversarial': expected one of ('none', 'pw', 'sample')") for p in found)
  c = _config("tiny")
  c.sv.aam_weight = -1.0
  c.train.loss_weights = {"aam": 0.0}  # read by the transducer task, not this one: refused, not ignored
  found = config_check.problems(c)
  assert any(p.startswith("sv.aam_weight=-1.0: expected a finite number >= 0") for p in found)
  assert any(p.startswith("train.loss_weights={'aam': 0.0}: this task weighs its terms by sv.aam_weight") for p in found)
  del c.sv["aam_weight"]  # the configs of runs made before the field existed
  c.train.loss_weights = {}
  assert config_check.problems(c) == []
  c = _config("tiny")
  c.sv.protocol = "built"  # a built protocol's fields are checked only when it is asked for
  c.sv.test_speakers, c.sv.trials_per_utterance, c.sv.train_split = "", (2, -1), " "
  found = config_check.problems(c)
  assert any(p.startswith("sv.test_speakers='': expected speakers held out for testing") for p in found)
  assert any(p.startswith("sv.trials_per_utterance=(2, -1): expected (targets, non-targets)") for p in found)
  assert any(p.startswith("sv.train_split=' ': expected a split name") for p in found)
  assert config_check.problems(_config("voxceleb")) == []
  c = _config("tiny")
  c.data.batch_size = 9
  assert config_check.problems(c) == ["data.batch_size=9: expected sv.speakers_per_batch * sv.utterances_per_speaker "
                                      "= 8"]
