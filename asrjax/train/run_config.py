"""A workdir remembers its run: the resolved config is written there when training starts.

`save` writes ``<workdir>/config.json`` (atomically, process 0) with every field of
the config the run was started with, overrides included, so evaluation and the
benchmarks can take it from the workdir instead of repeating ``--config`` and its
overrides. `load` reads it back as a `ml_collections.ConfigDict` (JSON lists become
tuples again, as the configs write them). `check_compatible` refuses a config that
would build another parameter tree or front end than the run's (`DEFINING`), naming
the fields that differ; every other field (steps, evaluation, decoding) may change
between sittings.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections

from asrjax import atomic_file

FILENAME = "config.json"
# fields that fix the parameter tree, the tokenizer or the front end of a run
DEFINING = ("task", "model", "data.name", "data.tokenizer", "data.vocab_size", "data.normalization", "train.prune_range",
            "arw.variant", "arw.adversary_input", "arw.num_clusters", "arw.hidden")  # arw: the adversary's parameters


def path(workdir: str) -> str:
  return os.path.join(workdir, FILENAME)


def save(config, workdir: str) -> None:
  """Writes ``config`` (resolved: overrides applied) to ``<workdir>/config.json``."""
  if jax.process_index() == 0:
    with atomic_file.open(path(workdir)) as f:
      json.dump(config.to_dict(), f, indent=1, sort_keys=True)


def _tuples(x):
  if isinstance(x, dict):
    return {k: _tuples(v) for k, v in x.items()}
  if isinstance(x, list):
    return tuple(_tuples(v) for v in x)
  return x


def load(workdir: str) -> ml_collections.ConfigDict | None:
  """The config ``workdir``'s run was started with; None when the workdir has none (an older run).
  A config saved before tasks were named gets ``task = "transducer_asr"``.

  Raises:
    ValueError: the file exists but is not a config written by `save`.
  """
  p = path(workdir)
  if not os.path.exists(p):
    return None
  try:
    with open(p) as f:
      record = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"{p} is not a readable run config ({type(e).__name__}: {e}).") from None
  if not isinstance(record, dict) or not {"data", "model", "train"} <= set(record):
    raise ValueError(f"{p} is not a run config: it lacks the data, model and train sections.")
  # a run from before tasks were named trained the transducer task, the one there was
  return ml_collections.ConfigDict({"task": "transducer_asr", **_tuples(record)})


def _flat(tree, prefix: str = "") -> dict:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flat(v, f"{prefix}{k}."))
    return out
  return {prefix[:-1]: tree}


def differences(a, b, fields=DEFINING) -> list[str]:
  """``"field: a_value != b_value"`` for every leaf under ``fields`` where configs ``a`` and ``b`` differ."""
  fa, fb = _flat(_tuples(a.to_dict())), _flat(_tuples(b.to_dict()))
  keys = sorted(k for k in set(fa) | set(fb) if any(k == f or k.startswith(f + ".") for f in fields))
  missing = "<absent>"
  return [f"{k}: {fa.get(k, missing)!r} != {fb.get(k, missing)!r}" for k in keys if fa.get(k, missing) !=
          fb.get(k, missing)]


def check_compatible(config, workdir: str) -> None:
  """Raises `ValueError` when ``workdir`` holds a run whose defining fields differ from ``config``'s."""
  saved = load(workdir)
  if saved is None:
    return
  diffs = differences(saved, config)
  if diffs:
    raise ValueError(f"{workdir} holds a run with another model, tokenizer or front end than this config "
                     f"(run's value != this config's):\n  " + "\n  ".join(diffs[:10])
                     + (f"\n  ... and {len(diffs) - 10} more" if len(diffs) > 10 else "")
                     + f"\nUse the run's own config ({path(workdir)}: omit --config) or another workdir.")


def resolve(config, workdir: str) -> ml_collections.ConfigDict:
  """The config a launcher uses for ``workdir``: ``config`` (its ``--config``, overrides
  included) when given, else the one the run wrote there (`load`); a given one must not
  change what defines the run (`check_compatible`).

  Raises:
    ValueError: ``config`` is None and ``workdir`` holds no run config (or an unreadable
      one), or ``config`` would build another model or front end than the run's.
  """
  if config is not None:
    check_compatible(config, workdir)
    return config
  saved = load(workdir)
  if saved is None:
    raise ValueError(f"--config is needed: {path(workdir)} does not exist (a run of an older asrjax, or not a "
                     "training workdir).")
  return saved



def as_finetune(config, source_workdir: str, num_steps: int, learning_rate: float):
  """``config`` set to fine-tune from ``source_workdir``'s parameters: ``num_steps`` steps at peak
  ``learning_rate`` with a fresh optimizer and a short warm-up (min(50, num_steps / 5) steps).
  Returns ``config`` (changed in place), as the studies that start runs from one base run use it."""
  config.train.num_steps = num_steps
  config.train.init_from = source_workdir
  config.optimizer.learning_rate = learning_rate
  config.optimizer.warmup_steps = min(50, num_steps // 5)
  return config
