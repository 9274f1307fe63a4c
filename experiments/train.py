r"""Trains a transducer: ``python experiments/train.py --config=experiments/configs/convrnnt.py --workdir=DIR``.

Config overrides from the command line, e.g. ``--config.train.num_steps=100``.
Multi-host: pass --coordinator/--num_processes/--process_id (jax.distributed.initialize).
"""

from absl import app, flags, logging
import jax
from ml_collections import config_flags

from asrjax.train import trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training configuration.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, tokenizer and results go here.")
_COORDINATOR = flags.DEFINE_string("coordinator", None, "host:port of process 0 for multi-host runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Processes in a multi-host run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process' index.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  if _COORDINATOR.value:
    # Cross-process collectives for the CPU backend (GPU/TPU backends ignore this option).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  logging.info("devices: %s", jax.devices())
  results = trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print({k: v for k, v in results.items() if k != "history"})
  print(f"process {jax.process_index()} params_digest {results['params_digest']}")


if __name__ == "__main__":
  app.run(main)
