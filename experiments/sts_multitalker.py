r"""Separator-transducer-segmenter vs its ablations and a single-speaker model, on two-talker mixtures.

  python experiments/build_corpus.py --config=full --data_dir=data/tfds    # synth_multitalker/full with it
  python experiments/sts_multitalker.py --workdir_root=workdirs/sts --baseline_workdir=workdirs/demo/convrnnt
  python experiments/sts_multitalker.py --variant=tiny --data_dir=/tmp/tfds_tiny --workdir_root=/tmp/sts \
      --limit=2 --results_dir=/tmp/sts/results   # a smoke run on synth_multitalker/tiny

Trains (`experiments/configs/sts_multitalker.py`, one workdir per run under
``--workdir_root``; a trained run resumes or is skipped) the full model and each of the
paper's ablations (``--runs``: ``full``, ``start_only``, ``no_penalty``, ``no_fastemit``; and,
ours, ``two_sided``: the full model with an early penalty too; ``pre_<run>``: that run started
from ``--baseline_workdir``'s parameters, which must then be a ConvRNN-T demo run),
decodes the first ``--limit`` test mixtures with each, and decodes them with a
single-speaker transducer (``--baseline_workdir``, e.g. the demo ConvRNN-T: the naive
baseline, one channel, no turns). Prints one table -- ORC-WER with its 95% session-bootstrap
interval, cpWER, tcpWER, turn-counting accuracy, end-of-turn latency P50 / P90, early-cutoff
rate, RTF -- overall and ORC-WER per overlap bin (SURT's 0L / 0S / OVxx), with the paper's
claims checked: turn counting >= 4.6 points above start-only, EOT P90 >= 30% lower with the
penalty than without at <= 3% relative ORC-WER cost, early cutoffs <= 2%. Each run's record
is kept as ``<results_dir>/<run>.json`` (a run found there is not decoded again); the table
goes to ``sts_multitalker.md`` and one decoded mixture to ``sts_mixture.png``.
"""

import importlib.util
import json
import os

from absl import app, flags

from asrjax import atomic_file
from asrjax.data import sources
from asrjax.inference import multitalker as mt_eval
from asrjax.metrics import multitalker as metrics
from asrjax.train import run_config, trainer

_HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = {"full": "", "start_only": "ablation=start_only", "no_penalty": "ablation=no_penalty",
        "no_fastemit": "ablation=no_fastemit", "two_sided": "ablation=two_sided",
        # started from --baseline_workdir's single-speaker ConvRNN-T (the config's `pretrained` option)
        "pre_full": "pretrained", "pre_start_only": "ablation=start_only,pretrained",
        "pre_no_penalty": "ablation=no_penalty,pretrained", "pre_two_sided": "ablation=two_sided,pretrained"}
_ROOT = flags.DEFINE_string("workdir_root", "workdirs/sts", "One workdir per run under here.")
_RUNS = flags.DEFINE_list("runs", list(RUNS), f"Runs to train and compare, of {list(RUNS)}.")
_BASELINE = flags.DEFINE_string("baseline_workdir", "", "A trained single-speaker transducer run (the naive "
                                "baseline; its kept record in --results_dir is used when there is one); '' leaves "
                                "it out.")
_VARIANT = flags.DEFINE_string("variant", "", "Config variant ('' or 'tiny').")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_LIMIT = flags.DEFINE_integer("limit", 400, "Test mixtures decoded per model (0 = all).")
_DRAWS = flags.DEFINE_integer("draws", 1000, "Session-bootstrap draws.")
_PICTURE = flags.DEFINE_string("picture_run", "full", "The run whose decoding of the first mixture is drawn "
                                "(sts_mixture.png); the first run when it is not among --runs.")
_RESULTS = flags.DEFINE_string("results_dir", os.path.join(_HERE, "results", "sts_multitalker"),
                               "Each run's record is kept here as <run>.json; a run found here is not decoded again.")


def load_config(run: str):
  spec = importlib.util.spec_from_file_location("config_sts", os.path.join(_HERE, "configs", "sts_multitalker.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(",".join(x for x in (f"variant={_VARIANT.value}" if _VARIANT.value else "", RUNS[run])
                                      if x))
  config.data.data_dir = _DATA_DIR.value
  config.eval.splits = ()  # decoded below, on the same mixtures for every model
  if config.train.init_transfer == "overlap":  # starts from the single-speaker baseline's parameters
    if not os.path.exists(os.path.join(_BASELINE.value, "config.json")):
      raise app.UsageError(f"--runs={run} starts from --baseline_workdir's parameters: {_BASELINE.value!r} holds "
                           "no trained run (no config.json).")
    config.train.init_from = _BASELINE.value
  return config


def _record(name: str, make) -> dict:
  path = os.path.join(_RESULTS.value, f"{name}.json")
  if os.path.exists(path):
    with open(path) as f:
      stored = json.load(f)
    if stored.get("limit") == _LIMIT.value:
      return stored
  record = make()
  record["limit"] = _LIMIT.value
  with atomic_file.open(path) as f:
    json.dump(record, f)
  return record


def _evaluate(workdir: str) -> dict:
  """`evaluate_mixtures` of ``workdir``'s newest checkpoint (a multi-channel or a single-speaker run) on the test
  mixtures, with the ORC-WER's session-bootstrap interval."""
  config = run_config.load(workdir)
  task, params, steps = trainer.restore(config, workdir)
  split = sources.open_split(load_config("full").data.name, "test", _DATA_DIR.value)
  ev = mt_eval.evaluate_mixtures(task.model, params["model"], split, task.tokenizer, limit=_LIMIT.value,
                                 front_end=task.front_end)
  per = metrics.session_wers({sid: ([metrics.Turn(**t) for t in s["reference"]],
                                    [metrics.Turn(**t) for t in s["hypothesis"]]) for sid, s in ev["sessions"].items()})
  ev["orcwer_interval"] = list(metrics.session_interval(per, "orcwer", draws=_DRAWS.value))
  ev["steps"] = list(steps)
  return ev


def main(argv):
  del argv
  unknown = sorted(set(_RUNS.value) - set(RUNS))
  if unknown:
    raise app.UsageError(f"--runs: unknown {unknown}; choose from {list(RUNS)}.")
  if _LIMIT.value < 0 or _DRAWS.value < 1:
    raise app.UsageError(f"--limit must be >= 0 and --draws >= 1; got {_LIMIT.value}, {_DRAWS.value}.")
  kept_baseline = os.path.exists(os.path.join(_RESULTS.value, "single_speaker.json"))
  if _BASELINE.value and not os.path.exists(os.path.join(_BASELINE.value, "config.json")) and not kept_baseline:
    raise app.UsageError(f"--baseline_workdir: {_BASELINE.value} holds no trained run (no config.json) and "
                         f"{_RESULTS.value} keeps no single_speaker.json record of one.")
  os.makedirs(_RESULTS.value, exist_ok=True)
  records = {}
  for run in _RUNS.value:
    workdir = os.path.join(_ROOT.value, run)
    def make(run=run, workdir=workdir):
      if not os.path.exists(os.path.join(workdir, "results.json")):
        trainer.train_and_evaluate(load_config(run), workdir)
      return _evaluate(workdir)
    records[run] = _record(run, make)
  if _BASELINE.value:
    records["single-speaker"] = _record("single_speaker", lambda: _evaluate(_BASELINE.value))
  text = mt_eval.report_table(records) + "\n\n" + "\n".join(f"- {c}" for c in mt_eval.claims(records))
  print(text)
  with atomic_file.open(os.path.join(_RESULTS.value, "sts_multitalker.md")) as f:
    f.write(text + "\n")
  shown = _PICTURE.value if _PICTURE.value in records else next(iter(records))
  sid = next(iter(records[shown]["sessions"]))
  mt_eval.draw_session(os.path.join(_RESULTS.value, "sts_mixture.png"), records[shown]["sessions"][sid],
                       title=f"{sid}: reference turns and the {shown} model's channels")


if __name__ == "__main__":
  app.run(main)
