"""Every model config loads in every variant, builds, and the four encoders are size-matched."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import pytest

from asrjax.train import trainer

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "experiments", "configs")
MODELS = ("convrnnt", "lstm_rnnt", "conformer", "contextnet")


def load(name, variant=""):
  spec = importlib.util.spec_from_file_location(name, os.path.join(CONFIGS, name + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


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
    trainer.pipeline_config(config)  # label lengths match the buckets


def test_encoders_are_size_matched_within_10_percent():
  sizes = {name: encoder_params(load(name)) for name in MODELS}
  reference = sizes["convrnnt"]
  assert 1.0e6 < reference < 2.0e6
  for name, n in sizes.items():
    assert abs(n / reference - 1) < 0.10, sizes


def test_unknown_variant_is_rejected():
  with pytest.raises(ValueError, match="unknown config variant"):
    load("convrnnt", "huge")


def test_prune_range_must_exceed_the_labels_per_frame_limit():
  config = load("convrnnt", "tiny")
  config.train.prune_range = config.data.labels_per_frame
  with pytest.raises(ValueError, match="prune_range"):
    trainer.make_step_config(config, None)
  config.train.prune_range = config.data.labels_per_frame + 1
  assert trainer.make_step_config(config, None).prune_range == config.data.labels_per_frame + 1


def test_every_train_option_reaches_the_step_config():
  config = load("convrnnt", "tiny")
  config.train.update(prune_range=config.data.labels_per_frame + 2, simple_loss_scale=0.3, pruned_warmup_steps=7,
                      simple_lm_only_scale=0.25, simple_am_only_scale=0.05, fastemit_lambda=0.01)
  step_config = trainer.make_step_config(config, None)
  for name in ("prune_range", "simple_loss_scale", "pruned_warmup_steps", "simple_lm_only_scale",
               "simple_am_only_scale", "fastemit_lambda"):
    assert getattr(step_config, name) == config.train[name], name
