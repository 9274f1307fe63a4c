"""A hand-made training workdir for inference tests: a freshly initialised tiny ConvRNN-T."""

import json
import os

import jax

from asrjax.data import tokenizer as tokenizer_lib
from asrjax.tasks import transducer_asr
from asrjax.train import checkpoint, run_config, sharding, trainer
from tests.train.test_run_config import _config


def make(wd: str, config=None, seed: int = 3) -> str:
  """``wd`` holding config.json, a character tokenizer, global statistics (mean 0, std 1) and checkpoint 0
  of the initial state from ``jax.random.key(seed)``."""
  config = config or _config()
  tokenizer_lib.CharTokenizer.build(["the quick brown fox jumps over a lazy dog"]).save(os.path.join(wd, "tokenizer.json"))
  with open(os.path.join(wd, "feature_stats.json"), "w") as f:
    json.dump({"mean": [0.0] * 80, "std": [1.0] * 80, "utterances": 1}, f)
  run_config.save(config, wd)
  state = trainer.fresh_state(transducer_asr.TransducerASR.from_config(config, wd), jax.random.key(seed))
  mesh = sharding.make_mesh(devices=jax.devices()[:1])
  state = jax.device_put(state, sharding.tree_shardings(mesh, state))
  ckpt = checkpoint.Checkpointer(os.path.join(wd, "checkpoints"), save_interval_steps=1, async_save=False)
  ckpt.save(0, state, {"step": 0})
  ckpt.close()
  return wd
