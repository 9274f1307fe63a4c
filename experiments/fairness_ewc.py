r"""Mitigating geographic disparity with elastic weight consolidation, against plain and all-data fine-tuning.

  python experiments/fairness_ewc.py --base_workdir=workdirs/demo/convrnnt --workdir_root=workdirs/fair \
      --steps=300 --ewc_weight=1e4 --targets=2
  python experiments/train.py --config=experiments/configs/convrnnt.py:tiny --workdir=/tmp/fair_tiny/base \
      --config.data.data_dir=/tmp/tfds_tiny --config.data.batch_size=2   # (tiny: batches the small subsets fill)
  python experiments/fairness_ewc.py --base_workdir=/tmp/fair_tiny/base --workdir_root=/tmp/fair_tiny \
      --steps=2 --fisher_batches=1 --limit=8 --dev_limit=8 --min_speakers=1 --min_words=1 --min_gap=-1 \
      --results_dir=/tmp/fair_tiny/results   # a smoke run on a tiny base run

From a trained ASR run (``--base_workdir``): decode the dev split, grow the geographic
split tree on the dev speakers (Trinh et al.), target the ``--targets`` highest-WER regions,
and collect the *training* speakers living there; estimate the diagonal Fisher on the
original training data (per-example gradients, ``--fisher_batches`` batches); then
fine-tune the base run for ``--steps`` steps three ways, each from the base parameters:
``ewc`` (targeted speakers, EWC penalty ``--ewc_weight``), ``plain`` (targeted speakers, no
penalty: should forget) and ``all`` (every training speaker). Every model, the base
included, is decoded on test and reported: overall WER, the targeted and untargeted
regions' WER, the regions' mean / max / variance, with speaker-bootstrap intervals, and
the relative change against the base model. Results (with the recipe) go to
``--results_dir``; a run already there is not trained again.
"""

import json
import os

from absl import app, flags

from asrjax import atomic_file
from asrjax.data import sources
from asrjax.fairness import cohorts as cohorts_lib
from asrjax.fairness import data, ewc, mitigation
from asrjax.train import run_config, trainer

_BASE = flags.DEFINE_string("base_workdir", None, "The trained ASR run to mitigate.")
_ROOT = flags.DEFINE_string("workdir_root", "workdirs/fair", "The fine-tuned runs, Fisher and targets go here.")
_STEPS = flags.DEFINE_integer("steps", 300, "Fine-tuning steps of every run (equal steps).")
_LR = flags.DEFINE_float("lr", 3e-4, "Peak learning rate of the fine-tunes.")
_WEIGHT = flags.DEFINE_float("ewc_weight", 1e4, "EWC lambda of the ewc run.")
_TARGETS = flags.DEFINE_integer("targets", 2, "Worst dev regions targeted.")
_DEPTH = flags.DEFINE_integer("max_depth", 3, "Depth of the geographic split tree.")
_MIN_SPK = flags.DEFINE_integer("min_speakers", 5, "Minimum speakers per region (dev).")
_MIN_WORDS = flags.DEFINE_integer("min_words", 300, "Minimum reference words per region (dev).")
_MIN_GAP = flags.DEFINE_float("min_gap", 0.0, "A region splits only where the WER difference exceeds this "
                              "(absolute; < 0 splits even equal sides: smoke runs of untrained models).")
_FISHER = flags.DEFINE_integer("fisher_batches", 20, "Training batches the Fisher is estimated on.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Test utterances decoded per model (0 = all).")
_DEV_LIMIT = flags.DEFINE_integer("dev_limit", 0, "Dev utterances decoded for region discovery (0 = all).")
_DRAWS = flags.DEFINE_integer("draws", 1000, "Speaker-bootstrap draws.")
_RESULTS = flags.DEFINE_string("results_dir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                           "fairness_ewc"), "Where the table and records are kept.")
flags.mark_flags_as_required(["base_workdir"])

METHODS = ("base", "ewc", "plain", "all")


def _kept(name: str, recipe: dict, make):
  """The record ``name`` kept in the results dir for this recipe, else ``make()`` (then kept)."""
  path = os.path.join(_RESULTS.value, f"{name}.json")
  if os.path.exists(path):
    with open(path) as f:
      stored = json.load(f)
    if stored.get("recipe") == recipe:
      return stored["record"]
    raise app.UsageError(f"{path} was measured with recipe {stored.get('recipe')}, not {recipe}: pass another "
                         "--results_dir (or remove it to measure again).")
  record = make()
  with atomic_file.open(path) as f:
    json.dump({"recipe": recipe, "record": record}, f)
  return record


def _finetune(name: str, train_speakers: str, weight: float, fisher_file: str) -> str:
  workdir = os.path.join(_ROOT.value, name)
  config = run_config.as_finetune(run_config.load(_BASE.value), _BASE.value, _STEPS.value, _LR.value)
  config.train.max_train_seconds = 0
  if "ewc" not in config.train or "train_speakers" not in config.data:  # a base run older than these fields
    raise app.UsageError(f"{_BASE.value} was trained before data.train_speakers and train.ewc existed: retrain it.")
  config.data.train_speakers = train_speakers
  config.train.ewc.update(dict(weight=weight, fisher_file=fisher_file if weight else ""))
  config.eval.splits = ()  # decoded below, on the same test utterances as the base model
  if not os.path.exists(os.path.join(workdir, "results.json")):
    trainer.train_and_evaluate(config, workdir)
  return workdir


def _fmt(x, interval=None):
  if x is None:
    return "-"
  s = f"{100 * x:.2f}"
  return s + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval and None not in interval else "")


def main(argv):
  del argv
  for name, v in (("--steps", _STEPS.value), ("--targets", _TARGETS.value), ("--fisher_batches", _FISHER.value),
                  ("--draws", _DRAWS.value)):
    if v < 1:
      raise app.UsageError(f"{name} must be >= 1; got {v}.")
  if _WEIGHT.value <= 0:
    raise app.UsageError(f"--ewc_weight must be > 0 (the plain run is the weight-0 one); got {_WEIGHT.value}.")
  if not os.path.exists(os.path.join(_BASE.value, "config.json")):
    raise app.UsageError(f"--base_workdir: {_BASE.value} holds no trained run (no config.json).")
  os.makedirs(_RESULTS.value, exist_ok=True)
  os.makedirs(_ROOT.value, exist_ok=True)
  config = run_config.load(_BASE.value)
  recipe = {"base": os.path.abspath(_BASE.value), "steps": _STEPS.value, "lr": _LR.value, "ewc_weight": _WEIGHT.value,
            "targets": _TARGETS.value, "max_depth": _DEPTH.value, "min_speakers": _MIN_SPK.value,
            "min_words": _MIN_WORDS.value, "min_gap": _MIN_GAP.value, "fisher_batches": _FISHER.value, "limit": _LIMIT.value,
            "dev_limit": _DEV_LIMIT.value}
  # ---------------------------------------------------------------- regions on dev, targets, their training speakers
  try:
    meta = {s: data.speaker_metadata(sources.open_split(config.data.name, s, config.data.data_dir), s)
            for s in ("train", "dev", "test")}
  except (ValueError, FileNotFoundError) as e:  # the base run's corpus is not prepared here, or lacks a split
    raise app.UsageError(str(e)) from None
  dev_record = _kept("dev_base", recipe, lambda: mitigation.evaluate_run(_BASE.value, "dev", limit=_DEV_LIMIT.value))
  dev = data.speakers_from_eval(dev_record, meta["dev"])
  regions = cohorts_lib.geographic_tree(dev, min_speakers=_MIN_SPK.value, min_words=_MIN_WORDS.value,
                                        max_depth=_DEPTH.value, min_gap=_MIN_GAP.value)
  if len(regions) < 2:
    raise app.UsageError(f"the split tree finds one region on the {len(dev)} dev speakers: no WER difference to "
                         "mitigate (a model that fails everyone alike, or --min_speakers / --min_words too large).")
  targeted = mitigation.targeted_regions(regions, dev, _TARGETS.value)
  train_speakers = mitigation.speakers_in(regions, targeted, meta["train"])
  if not train_speakers:
    raise app.UsageError(f"no training speaker lives in the targeted regions {[regions.names[k] for k in targeted]}.")
  speakers_file = os.path.join(_ROOT.value, "targeted_speakers.json")
  with atomic_file.open(speakers_file) as f:
    json.dump({"speakers": train_speakers, "regions": [regions.names[k] for k in targeted]}, f)
  fisher_file = os.path.join(_ROOT.value, "fisher.msgpack")
  if not os.path.exists(fisher_file):
    ewc.save_fisher(fisher_file, mitigation.transducer_fisher(_BASE.value, num_batches=_FISHER.value))
  # ---------------------------------------------------------------- the three fine-tunes and the test decodes
  workdirs = {"base": _BASE.value,
              "ewc": lambda: _finetune("ewc", speakers_file, _WEIGHT.value, fisher_file),
              "plain": lambda: _finetune("plain", speakers_file, 0.0, ""),
              "all": lambda: _finetune("all", "", 0.0, "")}
  reports = {}
  for method in METHODS:
    def run(method=method):
      wd = workdirs[method] if method == "base" else workdirs[method]()
      return mitigation.evaluate_run(wd, "test", limit=_LIMIT.value)
    record = _kept(f"test_{method}", recipe, run)
    reports[method] = mitigation.report(data.speakers_from_eval(record, meta["test"]), regions, targeted,
                                        draws=_DRAWS.value)
  # ---------------------------------------------------------------- the table
  base = reports["base"]
  rel = lambda r, k: "-" if not (r[k] and base[k]) else f"{100 * (r[k] / base[k] - 1):+.1f}%"
  lines = [f"Targeted regions (dev, {len(dev)} speakers): {[regions.names[k] for k in targeted]}; "
           f"{len(train_speakers)} training speakers live there. {_STEPS.value} fine-tuning steps each.", "",
           "| model | WER % | targeted WER % | untargeted WER % | region WER mean / max % | region var (pts^2) | "
           "rel. overall | rel. targeted | rel. untargeted |", "| --- " * 9 + "|"]
  for method, r in reports.items():
    f = r["regions"]["figures"]
    lines.append(f"| {method} | {_fmt(r['wer'], r['wer_interval'])} | {_fmt(r['targeted_wer'], r['targeted_wer_interval'])}"
                 f" | {_fmt(r['untargeted_wer'], r['untargeted_wer_interval'])} | {100 * f['cohort_wer_mean']:.2f} / "
                 f"{100 * f['cohort_wer_max']:.2f} | {1e4 * f['cohort_wer_var']:.2f} | {rel(r, 'wer')} | "
                 f"{rel(r, 'targeted_wer')} | {rel(r, 'untargeted_wer')} |")
  lines.append("| paper (Trinh et al.): EWC | | | | | | -1.3% | -3.2% (worst region) | |")
  text = "\n".join(lines)
  print(text)
  with atomic_file.open(os.path.join(_RESULTS.value, "fairness_ewc.md")) as f:
    f.write(text + "\n")
  with atomic_file.open(os.path.join(_RESULTS.value, "fairness_ewc.json")) as f:
    json.dump({"recipe": recipe, "regions": json.loads(regions.to_json()), "targeted": targeted,
               "reports": reports}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
