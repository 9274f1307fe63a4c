r"""Train-step time of a config's model with the full and the pruned RNN-T loss.

  python experiments/bench_train_step.py --config=experiments/configs/convrnnt.py:demo --prune_ranges=0,4,5

Times the trainer's own jitted `train_step` (log-mel, model, loss, AdamW update) on
synthetic batches of each audio bucket of the config (random audio, every label
slot used), best of ``--repeats`` after one compiling call, and prints one table:
bucket, label slots, prune range (0 = full loss), step ms, utterances/s. The batch is
split over every device of the trainer's mesh, as in training, so on a CPU

  XLA_FLAGS=--xla_force_host_platform_device_count=2 python experiments/bench_train_step.py ...

times data parallelism over two host "devices". Run it on a quiet machine.
"""

from __future__ import annotations

import functools
import string
import time

from absl import app, flags
import jax
import numpy as np
from ml_collections import config_flags

from asrjax.data import tokenizer
from asrjax.train import config_check, optimizer, sharding, step as step_lib, trainer
from asrjax.tasks import transducer_asr

_CONFIG = config_flags.DEFINE_config_file("config", None, "Model config (experiments/configs/<name>.py[:variant]).")
_PRUNE = flags.DEFINE_list("prune_ranges", ["0", "5"], "Prune ranges to time; 0 = the full loss.")
_BUCKETS = flags.DEFINE_list("buckets", ["1"], "Indices into config.data.buckets to time.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed steps per setting (the best is reported).")


def _batch(rng, batch_size, samples, label_slots, vocab):
  return {"audio": (rng.normal(size=(batch_size, samples)) * 3000).astype(np.int16),
          "audio_paddings": np.zeros((batch_size, samples), np.float32),
          "labels": rng.integers(1, vocab, size=(batch_size, label_slots)).astype(np.int32),
          "label_paddings": np.zeros((batch_size, label_slots), np.float32)}


def main(argv):
  del argv
  config = _CONFIG.value
  pcfg = transducer_asr.pipeline_config(config)
  rng = np.random.default_rng(0)
  tok = tokenizer.CharTokenizer.build([string.ascii_lowercase + " '"])  # the corpus' characters
  vocab = tok.vocab_size
  rows = []
  for prune in (int(p) for p in _PRUNE.value):
    config.train.prune_range = prune
    config.train.spec_augment = False
    task = transducer_asr.TransducerASR(  # no workdir: per-utterance CMVN (timing only)
        trainer.build_model(config, vocab), transducer_asr.make_loss_config(config, None),
        optimizer.make_optimizer(config.optimizer, config.train.num_steps), transducer_asr.shape_batch(config, tok))
    mesh = sharding.make_mesh(fsdp=config.train.fsdp)
    init = functools.partial(trainer.fresh_state, task)
    state_sh = sharding.tree_shardings(mesh, jax.eval_shape(init, jax.random.key(0)))
    batch_sh = sharding.batch_sharding(mesh)
    fn = jax.jit(functools.partial(step_lib.train_step, task=task, txs=task.optimizers()),
                 in_shardings=(state_sh, batch_sh, sharding.replicated(mesh)),
                 out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=(0,))
    for i in (int(b) for b in _BUCKETS.value):
      samples, slots = pcfg.buckets[i], pcfg.label_lengths[i]
      batch = jax.device_put(_batch(rng, config.data.batch_size, samples, slots, vocab), batch_sh)
      state = jax.jit(init, out_shardings=state_sh)(jax.random.key(0))
      state, _ = fn(state, batch, jax.random.key(1))
      jax.block_until_ready(state)
      times = []
      for r in range(_REPEATS.value):
        start = time.perf_counter()
        state, metrics = fn(state, batch, jax.random.key(2 + r))
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - start)
      best = min(times)
      rows.append((samples / 16_000, slots, prune or "full", best * 1e3, config.data.batch_size / best))
  print(f"\n{config.model.name}, batch {config.data.batch_size}, {jax.device_count()} {jax.devices()[0].platform} "
        "device(s)")
  print("| bucket s | label slots | loss (prune range) | step ms | utterances/s |")
  print("| --- | --- | --- | --- | --- |")
  for sec, slots, prune, ms, ups in rows:
    print(f"| {sec:.0f} | {slots} | {prune} | {ms:.0f} | {ups:.1f} |")


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  app.run(main, flags_parser=config_check.parse_flags)
