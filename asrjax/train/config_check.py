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


def problems(config) -> list[str]:
  """Every problem of ``config`` as ``"field: what is wrong"`` (empty when it is valid)."""
  out = []

  def need(path, ok, expected):
    try:
      value = _get(config, path)
    except ValueError as e:
      out.append(str(e))
      return
    try:
      good = ok(value)
    except Exception:  # noqa: BLE001 -- a value of the wrong type fails its test
      good = False
    if not good:
      out.append(f"{path}={value!r}: expected {expected}")

  pos_int = lambda x: _is_int(x) and x > 0
  nonneg_int = lambda x: _is_int(x) and x >= 0
  nonneg = lambda x: _is_number(x) and x >= 0
  if "task" in config:
    need("task", lambda x: x in _task_names(), f"one of {_task_names()}")
  need("data.name", lambda x: isinstance(x, str) and "/" in x, "a TFDS 'dataset/config' name")
  need("data.tokenizer", lambda x: x in ("char", "sentencepiece"), "'char' or 'sentencepiece'")
  need("data.vocab_size", lambda x: _is_int(x) and x >= 3, "an integer >= 3 (blank, unknown, one symbol)")
  need("data.normalization", lambda x: x in ("global", "utterance"), "'global' or 'utterance'")
  need("data.stats_utterances", pos_int, "a positive integer")
  need("data.batch_size", pos_int, "a positive integer")
  need("data.buckets", lambda x: len(x) > 0 and all(pos_int(b) for b in x) and list(x) == sorted(x),
       "a non-empty, non-decreasing tuple of positive sample counts")
  need("data.max_labels",
       lambda x: pos_int(x) or (len(x) == len(_get(config, "data.buckets")) and all(pos_int(m) for m in x)),
       "a positive integer, or one positive integer per bucket")
  need("data.labels_per_frame", pos_int, "a positive integer")
  need("model.name", lambda x: x in model_names(), f"one of {model_names()}")
  need("optimizer.learning_rate", lambda x: _is_number(x) and x > 0, "a finite number > 0")
  need("optimizer.end_learning_rate", nonneg, "a finite number >= 0")
  need("optimizer.warmup_steps", nonneg_int, "an integer >= 0")
  need("optimizer.weight_decay", nonneg, "a finite number >= 0")
  need("optimizer.clip_norm", lambda x: _is_number(x) and x > 0, "a finite number > 0")
  need("optimizer.grad_accum_steps", pos_int, "a positive integer")
  need("train.num_steps", nonneg_int, "an integer >= 0")
  if "init_from" in config.get("train", {}):
    need("train.init_from", lambda x: isinstance(x, str), "'<workdir>[:step]' or '' (train from scratch)")
  if "loss_weights" in config.get("train", {}):
    need("train.loss_weights", lambda x: all(isinstance(k, str) and _is_number(v) for k, v in dict(x).items()),
         "{objective term name: finite number}")
  need("train.max_train_seconds", nonneg, "a finite number of seconds >= 0 (0 = no budget)")
  need("train.seed", _is_int, "an integer")
  need("train.fsdp", pos_int, "a positive integer (devices per FSDP group)")
  need("train.compute_dtype", lambda x: x in _DTYPES, f"one of {_DTYPES}")
  need("train.fastemit_lambda", nonneg, "a finite number >= 0")
  need("train.prune_range", nonneg_int, "an integer >= 0 (0 = the full loss)")
  need("train.simple_loss_scale", nonneg, "a finite number >= 0")
  need("train.pruned_warmup_steps", nonneg_int, "an integer >= 0")
  need("train.simple_lm_only_scale", lambda x: _is_number(x) and 0 <= x <= 1, "a number in [0, 1]")
  need("train.simple_am_only_scale", lambda x: _is_number(x) and 0 <= x <= 1, "a number in [0, 1]")
  need("train.spec_augment", lambda x: isinstance(x, bool), "True or False")
  for k in ("num_freq_masks", "max_freq_mask", "num_time_masks"):
    need(f"train.spec_augment_options.{k}", nonneg_int, "an integer >= 0")
  need("train.spec_augment_options.max_time_mask_ratio", lambda x: _is_number(x) and 0 <= x <= 1,
       "a number in [0, 1]")
  need("train.vtlp_max_warp", lambda x: _is_number(x) and 0 <= x < 1, "a number in [0, 1)")
  need("train.log_every", pos_int, "a positive integer")
  need("train.checkpoint_every", pos_int, "a positive integer")
  need("train.keep_checkpoints", pos_int, "a positive integer")
  need("train.max_consecutive_nonfinite", pos_int, "a positive integer")
  need("eval.splits", lambda x: isinstance(x, (tuple, list)) and all(isinstance(s, str) and s for s in x),
       "a tuple of split names")
  need("eval.decoder", lambda x: x in _decoders(), f"one of {_decoders()}")
  need("eval.limit", nonneg_int, "an integer >= 0 (0 = all)")
  need("eval.lm.order", nonneg_int, "an integer >= 0 (0 = no LM)")
  need("eval.lm.discount", lambda x: _is_number(x) and 0 < x < 1, "a number in (0, 1)")
  need("eval.lm.weight", nonneg, "a finite number >= 0")
  need("eval.lm.length_bonus", _is_number, "a finite number")
  if not out:  # what the batcher and the train step make of the fields, as the trainer builds them
    from asrjax.tasks import transducer_asr  # noqa: PLC0415 -- the task imports this module's users
    for what, build in (("data.* (batching)", transducer_asr.pipeline_config),
                        ("train.* (train step)", lambda c: transducer_asr.make_loss_config(c, None))):
      try:
        build(config)
      except ValueError as e:
        out.append(f"{what}: {e}")
  return out


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
