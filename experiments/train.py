r"""Trains a transducer: ``python experiments/train.py --config=experiments/configs/convrnnt.py --workdir=DIR``.

Config overrides from the command line, e.g. ``--config.train.num_steps=100``.
Multi-host: pass --coordinator/--num_processes/--process_id (jax.distributed.initialize).
"""

from absl import app, flags, logging
import jax
from ml_collections import config_flags

from asrjax.train import config_check, trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training configuration.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, tokenizer and results go here.")
_COORDINATOR = flags.DEFINE_string("coordinator", None, "host:port of process 0 for multi-host runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Processes in a multi-host run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process' index.")
flags.mark_flags_as_required(["config", "workdir"])


def _check_config(config) -> None:
  """`app.UsageError` naming each bad config field (`config_check.validate`), before the data,
  tokenizer and feature statistics are prepared: a negative ``train.num_steps`` would otherwise
  "train" 0 steps and exit 0, a zero batch size fail minutes later."""
  try:
    config_check.validate(config)
  except ValueError as e:
    raise app.UsageError(f"{e}\n(from --config and its --config.* overrides)") from None


def main(argv):
  del argv
  _check_config(_CONFIG.value)
  if _COORDINATOR.value:
    # Cross-process collectives for the CPU backend (GPU/TPU backends ignore this option).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  logging.info("devices: %s", jax.devices())
  results = trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print({k: v for k, v in results.items() if k != "history"})
  print(f"process {jax.process_index()} params_digest {results['params_digest']}")


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
