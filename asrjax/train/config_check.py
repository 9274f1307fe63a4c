"""Checks a training config before any work is done: every field a run reads, by name.

`validate(config)` raises one `ValueError` naming each bad field (``train.num_steps``,
``data.batch_size``, ...) and what it expects, so that a typo on the command line
fails in a second with a message, not minutes later inside XLA or the input
pipeline (``modulo by zero``), and never as a run that trains on a silently
different setting. The trainer and the evaluation launcher call it first.

Only what a run reads is checked; other fields are left to the code that owns them
(the decoder options, for one, are checked by each decoder).
"""

from __future__ import annotations

import math
import sys

from absl import app

_DTYPES = ("float32", "bfloat16")


def _get(config, path: str):
  node = config
  for part in path.split("."):
    if part not in node:
      raise ValueError(f"config has no field {path!r}: is it a config made by experiments/configs/common.get_base?")
    node = node[part]
  return node


def _is_int(x) -> bool:
  return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def model_names() -> tuple[str, ...]:
  """The names `asrjax.models.ENCODERS` registers (``config.model.name``)."""
  from asrjax import models  # noqa: PLC0415
  return tuple(sorted(models.ENCODERS))


class Checker:
  """Collects ``"field: what is wrong"`` lines; `need` checks one field by name."""

  def __init__(self, config):
    self.config, self.out = config, []

  def need(self, path: str, ok, expected: str) -> None:
    try:
      value = _get(self.config, path)
    except ValueError as e:
      self.out.append(str(e))
      return
    try:
      good = ok(value)
    except Exception:  # noqa: BLE001 -- a value of the wrong type fails its test
      good = False
    if not good:
      self.out.append(f"{path}={value!r}: expected {expected}")


pos_int = lambda x: _is_int(x) and x > 0
nonneg_int = lambda x: _is_int(x) and x >= 0
nonneg = lambda x: _is_number(x) and x >= 0


def problems(config) -> list[str]:
  """Every problem of ``config`` as ``"field: what is wrong"`` (empty when it is valid): the
  fields the trainer reads, then those of the config's task (its ``config_problems``)."""
  c = Checker(config)
  need = c.need
  if "task" in config:
    need("task", lambda x: x in _task_names(), f"one of {_task_names()}")
    if c.out:
      return c.out
  need("data.name", lambda x: isinstance(x, str) and bool(x.strip()) and x.count("/") <= 1 and (
      "/" in x or not x.startswith(("espeak_", "synth_"))),
       "a TFDS 'dataset/config' name ('dataset' alone only for a catalogue set without configs, e.g. 'voxceleb')")
  need("data.batch_size", pos_int, "a positive integer")
  need("model.name", lambda x: isinstance(x, str) and x, "a model name")
  need("optimizer.learning_rate", lambda x: _is_number(x) and x > 0, "a finite number > 0")
  need("optimizer.end_learning_rate", nonneg, "a finite number >= 0")
  need("optimizer.warmup_steps", nonneg_int, "an integer >= 0")
  need("optimizer.weight_decay", nonneg, "a finite number >= 0")
  need("optimizer.clip_norm", lambda x: _is_number(x) and x > 0, "a finite number > 0")
  need("optimizer.grad_accum_steps", pos_int, "a positive integer")
  need("train.num_steps", nonneg_int, "an integer >= 0")
  if "init_from" in config.get("train", {}):
    need("train.init_from", lambda x: isinstance(x, str), "'<workdir>[:step]' or '' (train from scratch)")
  if "init_transfer" in config.get("train", {}):
    need("train.init_transfer", lambda x: x in ("exact", "overlap"), "'exact' or 'overlap'")
  if "loss_weights" in config.get("train", {}):
    need("train.loss_weights", lambda x: all(isinstance(k, str) and _is_number(v) for k, v in dict(x).items()),
         "{objective term name: finite number}")
  need("train.max_train_seconds", nonneg, "a finite number of seconds >= 0 (0 = no budget)")
  need("train.seed", _is_int, "an integer")
  need("train.fsdp", pos_int, "a positive integer (devices per FSDP group)")
  need("train.log_every", pos_int, "a positive integer")
  need("train.checkpoint_every", pos_int, "a positive integer")
  need("train.keep_checkpoints", pos_int, "a positive integer")
  need("train.max_consecutive_nonfinite", pos_int, "a positive integer")
  from asrjax import tasks  # noqa: PLC0415 -- the tasks import this module's users
  task = tasks.TASKS[tasks.task_name(config)]
  return c.out + list(task.config_problems(config)) if hasattr(task, "config_problems") else c.out


def _task_names() -> tuple[str, ...]:
  from asrjax import tasks  # noqa: PLC0415 -- the tasks import this module's users
  return tuple(sorted(tasks.TASKS))


def _decoders() -> tuple[str, ...]:
  from asrjax import decoding
  return tuple(decoding.DECODERS)


def validate(config) -> None:
  """Raises `ValueError` listing every bad field of ``config`` (see `problems`)."""
  found = problems(config)
  if found:
    raise ValueError("invalid config:\n  " + "\n  ".join(found))


def parse_flags(argv):
  """absl's flag parsing for the launchers with a config flag (``app.run(main, flags_parser=parse_flags)``).

  A ``--config.*`` override naming no field (``--config.train.num_step=5``) ends in one
  line naming it, not in ml_collections' chained KeyError/AttributeError traceback.
  """
  try:
    return app.parse_flags_with_usage(argv)
  except (KeyError, AttributeError) as e:
    overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
    inner = e.args[0] if e.args else e  # ml_collections wraps the KeyError in an AttributeError
    inner = inner.args[0] if isinstance(inner, KeyError) and inner.args else inner
    text = " ".join(str(inner).replace("'", "").split())
    named = [o for o in overrides if any(part and part in text for part in o[len("--config."):].split("."))]
    if not named:  # not an override's fault (a bug inside the config file, say): the real traceback
      raise
    sys.stderr.write(f"FATAL Flags parsing error: {named[0]} names no config field: {text}\n")
    sys.exit(1)
