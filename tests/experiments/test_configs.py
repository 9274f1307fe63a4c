"""Every model config loads in every variant, builds, and the four encoders are size-matched.

The configs load by file path from any current directory (as ml_collections' ``config_flags``
loads them) without editing ``sys.path``.
"""

import importlib.util
import os
import sys

from absl import flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import pytest

from asrjax.train import trainer
from asrjax.tasks import transducer_asr

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "experiments", "configs")
MODELS = ("convrnnt", "lstm_rnnt", "conformer", "contextnet")
VARIANTS = ("", "demo", "cpu_long", "full", "tiny")


def load_module(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(CONFIGS, name + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load(name, variant=""):
  return load_module(name).get_config(variant)


def load_with_config_flags(path):
  """``--config=<path>`` parsed by ml_collections' config_flags, on a private flag registry."""
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config file", flag_values=flag_values)
  flag_values(["prog", "--config=" + path])
  return flag_values.config


def encoder_params(config):
  model = trainer.build_model(config, vocab_size=30)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 48, 80)), jnp.zeros((1, 48)),
                          jnp.ones((1, 3), jnp.int32), jnp.zeros((1, 3)))
  return sum(x.size for x in jax.tree.leaves(shapes["params"]["encoder"]))


@pytest.mark.parametrize("variant", ["", "demo", "cpu_long", "full", "tiny"])
def test_every_config_variant_builds(variant):
  for name in MODELS:
    config = load(name, variant)
    assert config.model.name == name
    assert encoder_params(config) > 0
    transducer_asr.pipeline_config(config)  # label lengths match the buckets


def test_encoders_are_size_matched_within_10_percent():
  sizes = {name: encoder_params(load(name)) for name in MODELS}
  reference = sizes["convrnnt"]
  assert 1.0e6 < reference < 2.0e6
  for name, n in sizes.items():
    assert abs(n / reference - 1) < 0.10, sizes


@pytest.mark.parametrize("arg", ["huge", "variant=huge", "tiny,size=3", "size=3", "variant",
                                 "variant=tiny,variant=full"])
def test_unknown_variant_is_rejected_naming_the_variants(arg):
  for name in MODELS:
    with pytest.raises(ValueError, match="unknown config variant") as error:
      load(name, arg)
    assert str(VARIANTS) in str(error.value)


@pytest.mark.parametrize("name", MODELS)
def test_every_config_loads_by_path_from_another_directory_without_sys_path_edits(name, tmp_path, monkeypatch):
  expected = {v: load(name, v).to_json_best_effort(sort_keys=True) for v in VARIANTS}
  monkeypatch.chdir(tmp_path)
  path_before, modules_before = list(sys.path), set(sys.modules)
  relative = os.path.relpath(os.path.join(CONFIGS, name + ".py"), tmp_path)
  assert not os.path.isabs(relative)
  for v in VARIANTS:
    for path in (relative, os.path.join(CONFIGS, name + ".py")):
      config = load_with_config_flags(path + (":" + v if v else ""))
      assert config.to_json_best_effort(sort_keys=True) == expected[v], (path, v)
  config = load_with_config_flags(relative + ":variant=tiny")
  assert config.to_json_best_effort(sort_keys=True) == expected["tiny"]
  assert sys.path == path_before
  assert "common" not in set(sys.modules) - modules_before  # no plain `import common` any more


def test_variant_spellings_give_the_same_config():
  for name in MODELS:
    module = load_module(name)
    assert module.get_config(None).to_json_best_effort() == module.get_config("").to_json_best_effort()
    tiny = module.get_config("tiny").to_json_best_effort()
    assert tiny == module.get_config("variant=tiny").to_json_best_effort()
    assert tiny != module.get_config("").to_json_best_effort()


def test_a_config_loaded_twice_gives_independent_equal_configs():
  first = load("convrnnt", "tiny")
  first.model.transducer.embed_dim = 999
  first.data.name = "changed"
  second = load("convrnnt", "tiny")
  assert second.model.transducer.embed_dim == 16 and second.data.name == "synth_speech/tiny"
  assert load_module("convrnnt").common is not load_module("convrnnt").common  # each load reads common.py afresh


def test_parse_arg():
  parse_arg = load_module("convrnnt").common.parse_arg
  assert parse_arg(None, variant="", runlocal=False).to_dict() == {"variant": "", "runlocal": False}
  assert parse_arg("tiny", variant="").variant == "tiny"  # one unnamed value: the first option
  assert parse_arg("tiny,res=128", variant="", res=224).to_dict() == {"variant": "tiny", "res": 128}  # first item
  got = parse_arg("runlocal,res=128,rate=0.5", variant="", runlocal=False, res=224, rate=1.0)
  assert got.to_dict() == {"variant": "", "runlocal": True, "res": 128, "rate": 0.5}
  assert parse_arg("runlocal", variant="", runlocal=False).runlocal is True  # a bare bool name is true
  assert parse_arg("runlocal=False", runlocal=True).runlocal is False
  for arg, match in (("res=big", "res='big': expected int"), ("runlocal=yes", "expected true or false"),
                     ("other=1", "unknown config argument 'other'"), ("res", "needs a value"),
                     ("res=1,res=2", "given twice")):
    with pytest.raises(ValueError, match=match):
      parse_arg(arg, runlocal=False, res=224)
  with pytest.raises(ValueError, match="takes none"):
    parse_arg("tiny")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("method", ["dense", "arbitrated", "sliding", "layerdrop"])
def test_the_cca_transformer_config_builds_every_method_at_the_others_size(variant, method):
  config = load("cca_transformer", f"{variant},method={method}" if variant else f"method={method}")
  assert config.model.name == "cca_transformer"
  transducer_asr.pipeline_config(config)
  if variant in ("", "demo"):
    n = encoder_params(config)
    assert abs(n / encoder_params(load("convrnnt")) - 1) < 0.10, n
    assert n == encoder_params(load("cca_transformer", variant))  # every method: the same parameters
  gating = config.model.encoder.gating
  assert gating == ("arbitrator" if method == "arbitrated" else "none")
  assert dict(config.train.loss_weights) == ({"encoder/compute": 1.0} if method == "arbitrated" else {})


def test_the_cca_transformer_options_reach_the_config():
  c = load("cca_transformer", "demo,method=arbitrated,lam=0.3,estimator=relaxed")
  assert c.train.loss_weights["encoder/compute"] == 0.3 and c.model.encoder.estimator == "relaxed"
  assert c.data.name == "synth_speech/full"
  c = load("cca_transformer", "demo,method=sliding,window=4")
  assert c.model.encoder.left_chunks == 4 and c.model.encoder.max_relative == 65
  assert load("cca_transformer", "method=layerdrop,layerdrop=0.3").model.encoder.layerdrop == 0.3
  with pytest.raises(ValueError, match="unknown method 'gated'"):
    load("cca_transformer", "demo,method=gated")


@pytest.mark.parametrize("name", MODELS + ("cca_transformer",))
def test_every_config_documents_its_launch_commands(name):
  doc = load_module(name).__doc__
  assert f"python experiments/train.py --config=experiments/configs/{name}.py --workdir=" in doc
  assert f"python experiments/train.py --config=experiments/configs/{name}.py:tiny --workdir=" in doc


def test_prune_range_must_exceed_the_labels_per_frame_limit():
  config = load("convrnnt", "tiny")
  config.train.prune_range = config.data.labels_per_frame
  with pytest.raises(ValueError, match="prune_range"):
    transducer_asr.make_loss_config(config, None)
  config.train.prune_range = config.data.labels_per_frame + 1
  assert transducer_asr.make_loss_config(config, None).prune_range == config.data.labels_per_frame + 1


def test_every_train_option_reaches_the_loss_config():
  config = load("convrnnt", "tiny")
  config.train.update(prune_range=config.data.labels_per_frame + 2, simple_loss_scale=0.3, pruned_warmup_steps=7,
                      simple_lm_only_scale=0.25, simple_am_only_scale=0.05, fastemit_lambda=0.01)
  step_config = transducer_asr.make_loss_config(config, None)
  for name in ("prune_range", "simple_loss_scale", "pruned_warmup_steps", "simple_lm_only_scale",
               "simple_am_only_scale", "fastemit_lambda"):
    assert getattr(step_config, name) == config.train[name], name
