"""Bad-input sweep: the encoders and the transducer around them, and the training config.

References: shapes and errors by hand; "correct" streaming cases against the same
model run on the whole utterance (the streaming contract), padded-frame cases
against the clean input.
"""

import atexit
import importlib.util
import os
import shutil
import json
import tempfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from asrjax.models import transducer
from asrjax.train import config_check, run_config, trainer
from tests.sweep import cases
from tests.sweep.cases import Case

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TMP = tempfile.mkdtemp(prefix="sweep_models_")
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
MODELS = ("convrnnt", "lstm_rnnt", "conformer", "contextnet", "cca_transformer")
# the config each model's cases run (the gated Transformer with its arbitrators on: the compact skip path)
_SWEPT = {name: "tiny" for name in MODELS} | {"cca_transformer": "tiny,method=arbitrated"}
F, V, B = 20, 7, 2


def _config(name, variant="tiny"):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "experiments/configs", f"{name}.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(variant)


_BUILT = {}


def _built(name):
  """``(model, params, T)`` of the tiny model ``name``, T = 4 streaming chunks."""
  if name not in _BUILT:
    model = trainer.build_model(_config(name, _SWEPT[name]), V)
    t = 4 * model.encoder.chunk_multiple
    feats, pads = jnp.ones((B, t, F)), jnp.zeros((B, t))
    labels, lpads = jnp.ones((B, 3), jnp.int32), jnp.zeros((B, 3))
    _BUILT[name] = (model, model.init(jax.random.key(0), feats, pads, labels, lpads), t)
  return _BUILT[name]


def _feats(t, key=1):
  return jax.random.normal(jax.random.key(key), (B, t, F))


def _encode(name, feats, pads, state=None):
  model, params, _ = _built(name)
  return model.apply(params, feats, pads, state, method=transducer.Transducer.encode)


def _streamed_equals_whole(name):
  model, params, t = _built(name)
  x, p = _feats(t), jnp.zeros((B, t))
  whole = _encode(name, x, p)[0]
  state, outs, c = model.apply(params, B, method=transducer.Transducer.init_encode_state), [], t // 4
  for i in range(4):
    out, _, state = _encode(name, x[:, i * c:(i + 1) * c], p[:, i * c:(i + 1) * c], state)
    outs.append(out)
  return np.allclose(np.concatenate(outs, 1), whole, atol=1e-5)


def _nan_in_padding_is_ignored(name):
  _, _, t = _built(name)
  x = _feats(t)
  p = jnp.zeros((B, t)).at[1, t // 2:].set(1.0)
  clean = _encode(name, x, p)
  dirty = _encode(name, x.at[1, t // 2:].set(jnp.nan), p)
  valid = np.asarray(clean[1]) == 0
  return bool(np.isfinite(np.asarray(dirty[0])).all()) and np.allclose(np.asarray(dirty[0])[valid],
                                                                        np.asarray(clean[0])[valid])


def _nan_in_valid_frame_is_loud(name):
  _, _, t = _built(name)
  out = _encode(name, _feats(t).at[0, 1].set(jnp.nan), jnp.zeros((B, t)))[0]
  return bool(np.isnan(np.asarray(out)[0]).any())


def _other_batch_state(name):
  model, params, t = _built(name)
  state = model.apply(params, B + 1, method=transducer.Transducer.init_encode_state)
  return _encode(name, _feats(t), jnp.zeros((B, t)), state)


def _teacher_forced(name, labels, lpads):
  model, params, t = _built(name)
  return model.apply(params, _feats(t), jnp.zeros((B, t)), labels, lpads)


def _model_cases(name):
  t = lambda: _built(name)[2]
  return [
      Case(f"models/{name}/feats-rank-2", lambda: _encode(name, jnp.ones((B, t())), jnp.zeros((B, t()))),
           raises=ValueError, match=r"feats must be \[B, T, F\]"),
      Case(f"models/{name}/feats-rank-4", lambda: _encode(name, jnp.ones((B, t(), F, 1)), jnp.zeros((B, t()))),
           raises=ValueError, match=r"feats must be \[B, T, F\]"),
      Case(f"models/{name}/feats-int", lambda: _encode(name, jnp.ones((B, t(), F), jnp.int32), jnp.zeros((B, t()))),
           raises=ValueError, match="feats must be a float"),
      Case(f"models/{name}/paddings-shape", lambda: _encode(name, _feats(t()), jnp.zeros((B, t() + 1))),
           raises=ValueError, match=r"paddings must be \[B, T\]"),
      Case(f"models/{name}/state-other-batch", lambda: _other_batch_state(name), raises=ValueError,
           match="state was made for batch size"),
      Case(f"models/{name}/streamed-equals-whole", lambda: name, check=_streamed_equals_whole),
      Case(f"models/{name}/nan-in-padded-frames", lambda: name, check=_nan_in_padding_is_ignored),
      Case(f"models/{name}/nan-in-valid-frame-is-nan", lambda: name, check=_nan_in_valid_frame_is_loud),
      Case(f"models/{name}/labels-float", lambda: _teacher_forced(name, jnp.ones((B, 3)), jnp.zeros((B, 3))),
           raises=ValueError, match="labels must be integer"),
      Case(f"models/{name}/labels-other-batch",
           lambda: _teacher_forced(name, jnp.ones((B + 1, 3), jnp.int32), jnp.zeros((B + 1, 3))),
           raises=ValueError, match=r"labels and label_paddings must both be \[B, U\]"),
      Case(f"models/{name}/label-paddings-shape",
           lambda: _teacher_forced(name, jnp.ones((B, 3), jnp.int32), jnp.zeros((B, 4))),
           raises=ValueError, match=r"labels and label_paddings must both be \[B, U\]"),
      Case(f"models/{name}/vocab-1", lambda: trainer.build_model(_config(name), 1).init(
          jax.random.key(0), jnp.ones((1, 12, F)), jnp.zeros((1, 12)), jnp.ones((1, 2), jnp.int32), jnp.zeros((1, 2))),
           raises=ValueError, match="vocab_size must be >= 2"),
  ]


def _cca(**fields):
  """Teacher-forced tiny arbitrated CCA Transformer with encoder ``fields`` changed."""
  c = _config("cca_transformer", _SWEPT["cca_transformer"])
  c.model.encoder.update(fields)
  t = 4 * 3
  return trainer.build_model(c, V).init(jax.random.key(0), jnp.ones((B, t, F)), jnp.zeros((B, t)),
                                        jnp.ones((B, 3), jnp.int32), jnp.zeros((B, 3)))


def _forced(gates):
  """The tiny CCA encoder with the arbitrators overridden by ``gates`` (a dict of arrays)."""
  model, params, t = _built("cca_transformer")
  return model.apply(params, _feats(t), jnp.zeros((B, t)), None, gates=gates, method=transducer.Transducer.encode)


def _cca_gate_shape():
  model, _, t = _built("cca_transformer")
  enc = model.encoder
  return (enc.layers, B, t // enc.stack)


_BAD_CCA_FIELDS = [
    ("gating", "always", r"gating must be one of \('none', 'arbitrator'\); got 'always'"),
    ("estimator", "reinforce", r"estimator must be one of .*got 'reinforce'"),
    ("arbitrator_input", "labels", r"arbitrator_input must be one of .*got 'labels'"),
    ("inference", "cond", r"inference must be one of \('compact', 'masked'\); got 'cond'"),
    ("layerdrop", 1.0, r"layerdrop must be in \[0, 1\); got 1.0"),
    ("layerdrop", -0.1, r"layerdrop must be in \[0, 1\); got -0.1"),
    ("layers_to_keep", (0, 0), r"layers_to_keep must be distinct block indices in \[0, 2\); got \(0, 0\)"),
    ("layers_to_keep", (2,), r"layers_to_keep must be distinct block indices in \[0, 2\); got \(2,\)"),
    ("capacity_steps", 0, r"capacity_steps must be >= 1; got 0"),
]

CCA_CASES = [
    Case(f"models/cca_transformer/{field}={value!r}", lambda field=field, value=value: _cca(**{field: value}),
         raises=ValueError, match=match)
    for field, value, match in _BAD_CCA_FIELDS
] + [
    Case("models/cca_transformer/gates-missing-ffn",
         lambda: _forced({"mha": jnp.ones(_cca_gate_shape())}), raises=ValueError,
         match=r"gates must be a dict with exactly the keys 'mha' and 'ffn'; got \['mha'\]"),
    Case("models/cca_transformer/gates-unstacked-frames",
         lambda: _forced({k: jnp.ones(_cca_gate_shape()[:2] + (_built("cca_transformer")[2],)) for k in ("mha", "ffn")}),
         raises=ValueError, match=r"gates\['mha'\] must be \[layers, B, T'\] = \[2, 2, 4\].*got \[2, 2, 12\]"),
]


def _with(path, value, base="convrnnt"):
  c = _config(base, "tiny")
  node = c
  *parents, leaf = path.split(".")
  for p in parents:
    node = node[p]
  node[leaf] = value
  return c


BAD_FIELDS = [
    ("data.tokenizer", "bpe"), ("data.vocab_size", 1), ("data.normalization", "none"), ("data.batch_size", 0),
    ("data.batch_size", -4), ("data.buckets", ()), ("data.buckets", (64_000, 32_000)),
("data.buckets", (0,)), ("data.max_labels", (56,)), ("data.max_labels", (0, 0, 0, 0)),
    ("data.labels_per_frame", 0), ("data.stats_utterances", 0), ("data.name", "espeak_speech"),
    ("model.name", "transformer"), ("optimizer.learning_rate", 0.0), ("optimizer.learning_rate", float("nan")),
    ("optimizer.end_learning_rate", -1e-5), ("optimizer.warmup_steps", -1), ("optimizer.weight_decay", float("inf")),
    ("optimizer.clip_norm", 0.0), ("optimizer.grad_accum_steps", 0), ("train.num_steps", -1),
    ("train.max_train_seconds", -1), ("train.fsdp", 0), ("train.compute_dtype", "float16"),
    ("train.fastemit_lambda", -0.1), ("train.fastemit_lambda", float("nan")), ("train.prune_range", -1),
    ("train.simple_loss_scale", -1.0), ("train.simple_lm_only_scale", 1.5), ("train.spec_augment_options.num_freq_masks", -1), ("train.spec_augment_options.max_time_mask_ratio", 2.0),
    ("train.vtlp_max_warp", 1.0), ("train.log_every", 0), ("train.checkpoint_every", 0), ("train.keep_checkpoints", 0),
    ("train.max_consecutive_nonfinite", 0), ("eval.decoder", "viterbi"), ("eval.limit", -1),
    ("eval.lm.order", -1), ("eval.lm.discount", 1.0), ("eval.lm.weight", float("nan")),
]


def _no_field():
  c = _config("convrnnt", "tiny")
  del c.train["keep_checkpoints"]
  return c


# values of another type are refused by the ConfigDict itself, as a command-line override would be
WRONG_TYPES = [("data.batch_size", 2.5), ("train.num_steps", 10.5), ("train.spec_augment", "yes"),
               ("train.seed", "zero"), ("eval.limit", "all")]

CONFIG_CASES = [
    Case(f"config/{path}={value!r}", lambda path=path, value=value: config_check.validate(_with(path, value)),
         raises=ValueError, match=r"invalid config:\s+" + path.replace(".", r"\.") + "=")
    for path, value in BAD_FIELDS
] + [
    Case(f"config/{path}={value!r}", lambda path=path, value=value: config_check.validate(_with(path, value)),
         raises=TypeError, match=f"Could not override field '{path.split('.')[-1]}'")
    for path, value in WRONG_TYPES
] + [
    Case(f"config/valid/{name}:{variant}", lambda name=name, variant=variant: config_check.problems(
        _config(name, variant)), check=lambda found: found == [])
    for name in MODELS for variant in ("", "demo", "tiny")
] + [
    Case("config/prune_range-not-above-labels_per_frame", lambda: config_check.validate(_with("train.prune_range", 2)),
         raises=ValueError, match=r"train step\): train\.prune_range=2 keeps too few label positions"),
    Case("config/missing-field", lambda: config_check.validate(_no_field()), raises=ValueError,
         match="no field 'train.keep_checkpoints'"),
    Case("config/two-bad-fields-both-named", lambda: config_check.validate(_two_bad()), raises=ValueError,
         match=r"data\.batch_size=0.*train\.log_every=0"),
    Case("config/not-a-config", lambda: config_check.validate(ml_collections.ConfigDict()), raises=ValueError,
         match="config has no field"),
    Case("config/unknown-task", lambda: config_check.validate(_with("task", "diarization")),
         raises=ValueError, match=r"task='diarization': expected one of \('multitalker_asr', 'speaker_verification', "
         r"'transducer_asr'\)"),
    Case("config/init_from-not-a-string", lambda: _with("train.init_from", 5), raises=TypeError,
         match="Could not override field 'init_from'"),  # the ConfigDict keeps the field a string
    Case("config/init_transfer-unknown", lambda: config_check.validate(_with("train.init_transfer", "partial")),
         raises=ValueError, match=r"train\.init_transfer='partial': expected 'exact' or 'overlap'"),
    Case("config/loss_weights-not-numbers",
         lambda: config_check.validate(_with("train.loss_weights", {"encoder/compute_cost": "high"})),
         raises=ValueError, match=r"train\.loss_weights=.*expected \{objective term name: finite number\}"),
]


def _two_bad():
  c = _with("data.batch_size", 0)
  c.train.log_every = 0
  return c


def _run_dir(contents=None, config=None):
  """A fresh folder holding ``contents`` as config.json, or ``config`` saved by `run_config.save`."""
  d = tempfile.mkdtemp(dir=_TMP)
  if contents is not None:
    with open(os.path.join(d, "config.json"), "w") as f:
      f.write(contents)
  if config is not None:
    run_config.save(config, d)
  return d


def _other_model():
  c = _config("convrnnt")
  c.model.encoder.lstm_hidden = 64
  return c


RUN_CONFIG_CASES = [
    Case("run_config/load/none-written", lambda: run_config.load(_run_dir()), check=lambda c: c is None),
    Case("run_config/load/not-json", lambda: run_config.load(_run_dir("{oops")), raises=ValueError,
         match="config.json is not a readable run config"),
    Case("run_config/load/a-list", lambda: run_config.load(_run_dir("[1, 2]")), raises=ValueError,
         match="lacks the data, model and train sections"),
    Case("run_config/load/round-trip", lambda: run_config.load(_run_dir(config=_config("convrnnt"))),
         check=lambda c: c.to_dict() == _config("convrnnt").to_dict()),
    Case("run_config/check_compatible/other-model",
         lambda: run_config.check_compatible(_other_model(), _run_dir(config=_config("convrnnt"))),
         raises=ValueError, match=r"model\.encoder\.lstm_hidden: 32 != 64"),
    Case("run_config/check_compatible/other-model-name",
         lambda: run_config.check_compatible(_config("lstm_rnnt"), _run_dir(config=_config("convrnnt"))),
         raises=ValueError, match=r"model\.name: 'convrnnt' != 'lstm_rnnt'"),
    Case("run_config/check_compatible/more-steps-is-fine",
         lambda: run_config.check_compatible(_with("train.num_steps", 60), _run_dir(config=_config("convrnnt"))),
         check=lambda r: r is None),
    Case("run_config/check_compatible/other-task",
         lambda: run_config.check_compatible(_with("task", "speaker_verification"),
                                             _run_dir(config=_config("convrnnt"))),
         raises=ValueError, match=r"task: 'transducer_asr' != 'speaker_verification'"),
    Case("run_config/load/before-tasks-were-named",
         lambda: run_config.load(_run_dir(json.dumps({k: v for k, v in _tuple_free(_config("convrnnt")).items()
                                                      if k != "task"}))),
         check=lambda c: c.task == "transducer_asr"),
    Case("run_config/resolve/no-config-no-run", lambda: run_config.resolve(None, _run_dir()), raises=ValueError,
         match="--config is needed: .*config.json does not exist"),
    Case("run_config/resolve/the-runs-own", lambda: run_config.resolve(None, _run_dir(config=_with("train.seed", 7))),
         check=lambda c: c.train.seed == 7),
    Case("run_config/resolve/another-model-refused",
         lambda: run_config.resolve(_other_model(), _run_dir(config=_config("convrnnt"))), raises=ValueError,
         match=r"model\.encoder\.lstm_hidden: 32 != 64"),
]


def _tuple_free(config) -> dict:
  return json.loads(json.dumps(config.to_dict()))

CASES = [c for name in MODELS for c in _model_cases(name)] + CCA_CASES + CONFIG_CASES + RUN_CONFIG_CASES


# the streamed-equals-whole cases repeat the encoders' own streaming tests (tests/models): test-slow
_PARAMS = [pytest.param(c, marks=pytest.mark.slow) if c.id.endswith("streamed-equals-whole") else c for c in CASES]


@pytest.mark.parametrize("case", _PARAMS, ids=cases.ids(CASES))
def test_sweep(case):
  cases.assert_case(case)
