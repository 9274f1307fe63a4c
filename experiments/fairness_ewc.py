r"""Mitigating the disparity of discovered cohorts with elastic weight consolidation, against plain and all-data fine-tuning.

  python experiments/fairness_ewc.py --base_workdir=workdirs/demo/convrnnt --workdir_root=workdirs/fair \
      --steps=300 --ewc_weights=1e4 --targets=2                                  # Trinh et al.: geographic regions
  python experiments/fairness_ewc.py --base_workdir=workdirs/demo/convrnnt --workdir_root=workdirs/fair \
      --cohorts=embedding_kmeans --sv_workdir=workdirs/sv/base_seed0 --targets=1 \
      --ewc_weights=1e2,1e3,1e4 --seeds=0,1                                      # lambda chosen on dev, two seeds
  python experiments/train.py --config=experiments/configs/convrnnt.py:tiny --workdir=/tmp/fair_tiny/base \
      --config.data.data_dir=/tmp/tfds_tiny --config.data.batch_size=2   # (tiny: batches the small subsets fill)
  python experiments/fairness_ewc.py --base_workdir=/tmp/fair_tiny/base --workdir_root=/tmp/fair_tiny \
      --steps=2 --fisher_batches=1 --limit=8 --dev_limit=8 --min_speakers=1 --min_words=1 --min_gap=-1 \
      --ewc_weights=1e2,1e4 --seeds=0,1 --results_dir=/tmp/fair_tiny/results   # a smoke run on a tiny base run

From a trained ASR run (``--base_workdir``): decode the dev split, find cohorts on the dev
speakers with ``--cohorts`` (the geographic split tree of Trinh et al. by default; the
geodemographic partition or k-means over ``--sv_workdir``'s speaker embeddings of Dheram et
al.), target the ``--targets`` highest-WER ones, and collect the *training* speakers they
hold; estimate the diagonal Fisher on the original training data (per-example gradients,
``--fisher_batches`` batches); then fine-tune the base run for ``--steps`` steps three ways,
each from the base parameters: ``ewc`` (targeted speakers, EWC penalty), ``plain``
(targeted speakers, no penalty: should forget) and ``all`` (every training speaker), once
per ``--seeds`` seed (the fine-tuning data order). With several ``--ewc_weights`` the
lambda is chosen on dev, never on test, with the first seed
(`asrjax.fairness.mitigation.choose_weight`: the lowest dev WER of the targeted cohorts
among the weights whose overall dev WER is no worse than the base model's), and only the
chosen one is decoded on test and run with the other seeds. Every model, the base
included, is decoded on test and reported: overall WER, the targeted and untargeted
cohorts' WER and gap, the cohorts' mean / max / variance, with speaker-bootstrap intervals
(first seed), and the relative change against the base model (mean and range over seeds).
Results go to ``--results_dir`` (default ``experiments/results/fairness_ewc/<cohorts>``),
one record per model; a record already there with the same recipe is not measured again.
"""

import hashlib
import json
import os

import numpy as np
from absl import app, flags

from asrjax import atomic_file
from asrjax.data import sources
from asrjax.fairness import audit
from asrjax.fairness import cohorts as cohorts_lib
from asrjax.fairness import data, ewc, mitigation
from asrjax.train import run_config, trainer

_BASE = flags.DEFINE_string("base_workdir", None, "The trained ASR run to mitigate.")
_ROOT = flags.DEFINE_string("workdir_root", "workdirs/fair", "The fine-tuned runs, Fisher and targets go here "
                            "(one root per base run).")
_COHORTS = flags.DEFINE_enum("cohorts", "geographic_tree", cohorts_lib.METHODS, "How the dev cohorts are found.")
_SV = flags.DEFINE_string("sv_workdir", "", "Speaker-verification run whose embeddings embedding_kmeans clusters.")
_K = flags.DEFINE_integer("k", 0, "k of embedding_kmeans (0: chosen on the dev speakers).")
_STEPS = flags.DEFINE_integer("steps", 300, "Fine-tuning steps of every run (equal steps).")
_LR = flags.DEFINE_float("lr", 3e-4, "Peak learning rate of the fine-tunes.")
_WEIGHTS = flags.DEFINE_list("ewc_weights", ["1e4"], "EWC lambdas (> 0); with several, the one used is chosen on dev.")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Fine-tuning seeds (train.seed: data order); every method runs each.")
_TARGETS = flags.DEFINE_integer("targets", 2, "Worst dev cohorts targeted.")
_DEPTH = flags.DEFINE_integer("max_depth", 3, "Depth of the geographic split tree.")
_MIN_SPK = flags.DEFINE_integer("min_speakers", 5, "Minimum speakers per cohort (dev; tree and geodemographic).")
_MIN_WORDS = flags.DEFINE_integer("min_words", 300, "Minimum reference words per cohort (dev; tree and geodemographic).")
_MIN_GAP = flags.DEFINE_float("min_gap", 0.0, "A region splits only where the WER difference exceeds this "
                              "(absolute; < 0 splits even equal sides: smoke runs of untrained models).")
_FISHER = flags.DEFINE_integer("fisher_batches", 20, "Training batches the Fisher is estimated on.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Test utterances decoded per model (0 = all).")
_DEV_LIMIT = flags.DEFINE_integer("dev_limit", 0, "Dev utterances decoded per model (0 = all).")
_DRAWS = flags.DEFINE_integer("draws", 1000, "Speaker-bootstrap draws.")
_RESULTS = flags.DEFINE_string("results_dir", "", "Where the table and records are kept (default: "
                               "experiments/results/fairness_ewc/<cohorts>).")
flags.mark_flags_as_required(["base_workdir"])


def _results_dir() -> str:
  return _RESULTS.value or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fairness_ewc",
                                        _COHORTS.value)


def _kept(name: str, recipe: dict, make):
  """The record ``name`` kept in the results dir for this recipe, else ``make()`` (then kept)."""
  path = os.path.join(_results_dir(), f"{name}.json")
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


def _finetune(name: str, train_speakers: str, weight: float, fisher_file: str, seed: int) -> str:
  workdir = os.path.join(_ROOT.value, name)
  config = run_config.as_finetune(run_config.load(_BASE.value), _BASE.value, _STEPS.value, _LR.value)
  config.train.max_train_seconds = 0
  config.train.seed = seed
  if "ewc" not in config.train or "train_speakers" not in config.data:  # a base run older than these fields
    raise app.UsageError(f"{_BASE.value} was trained before data.train_speakers and train.ewc existed: retrain it.")
  config.data.train_speakers = train_speakers
  config.train.ewc.update(dict(weight=weight, fisher_file=fisher_file if weight else ""))
  config.eval.splits = ()  # decoded below, on the same utterances as the base model
  saved = run_config.load(workdir)  # a run of this name must have been trained with this very recipe
  diffs = run_config.differences(saved, config, fields=("data", "train", "optimizer")) if saved is not None else []
  if diffs:
    raise app.UsageError(f"{workdir} was fine-tuned with another recipe (run's value != this one's: "
                         f"{'; '.join(diffs[:3])}): pass another --workdir_root.")
  if not os.path.exists(os.path.join(workdir, "results.json")):
    trainer.train_and_evaluate(config, workdir)
  return workdir


def _fmt(x, interval=None):
  if x is None:
    return "-"
  s = f"{100 * x:.2f}"
  return s + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval and None not in interval else "")


def _parse(flag: str, values, kind):
  try:
    out = [kind(v) for v in values]
  except ValueError:
    raise app.UsageError(f"{flag} must be {kind.__name__}s; got {','.join(values)}.") from None
  if not out or len(set(out)) != len(out):
    raise app.UsageError(f"{flag} must be distinct and non-empty; got {','.join(values)}.")
  return out


def _relative(reports: list, base: dict, key: str) -> str:
  """Mean (and range over seeds) of the relative change of ``key`` against ``base``."""
  if base[key] is None or base[key] <= 0:  # (a gap <= 0 has no relative change: the targeted cohorts are not worse)
    return "-"
  vals = [r[key] / base[key] - 1 for r in reports if r[key] is not None]
  if not vals:
    return "-"
  text = f"{100 * np.mean(vals):+.1f}%"
  return text + (f" ({100 * min(vals):+.1f}..{100 * max(vals):+.1f})" if len(vals) > 1 else "")


def _mean(reports: list, get) -> float | None:
  vals = [get(r) for r in reports]
  return None if any(v is None for v in vals) else float(np.mean(vals))


def main(argv):
  del argv
  for name, v in (("--steps", _STEPS.value), ("--targets", _TARGETS.value), ("--fisher_batches", _FISHER.value),
                  ("--draws", _DRAWS.value)):
    if v < 1:
      raise app.UsageError(f"{name} must be >= 1; got {v}.")
  weights = _parse("--ewc_weights", _WEIGHTS.value, float)
  seeds = _parse("--seeds", _SEEDS.value, int)
  if min(weights) <= 0:
    raise app.UsageError(f"--ewc_weights must be > 0 (the plain run is the weight-0 one); got {_WEIGHTS.value}.")
  kmeans = _COHORTS.value == "embedding_kmeans"
  if kmeans and not _SV.value:
    raise app.UsageError("--cohorts=embedding_kmeans clusters speaker embeddings: pass --sv_workdir.")
  if not os.path.exists(os.path.join(_BASE.value, "config.json")):
    raise app.UsageError(f"--base_workdir: {_BASE.value} holds no trained run (no config.json).")
  os.makedirs(_results_dir(), exist_ok=True)
  os.makedirs(_ROOT.value, exist_ok=True)
  config = run_config.load(_BASE.value)
  recipe = {"base": os.path.abspath(_BASE.value), "cohorts": _COHORTS.value,
            "sv": os.path.abspath(_SV.value) if kmeans else "", "k": _K.value if kmeans else 0,
            "steps": _STEPS.value, "lr": _LR.value, "targets": _TARGETS.value, "max_depth": _DEPTH.value,
            "min_speakers": _MIN_SPK.value, "min_words": _MIN_WORDS.value, "min_gap": _MIN_GAP.value,
            "fisher_batches": _FISHER.value, "limit": _LIMIT.value, "dev_limit": _DEV_LIMIT.value}
  of_run = lambda **kw: dict(recipe, **kw)  # a fine-tune's record also depends on its weight and seed
  # ---------------------------------------------------------------- cohorts on dev, targets, their training speakers
  try:
    splits = {s: sources.open_split(config.data.name, s, config.data.data_dir) for s in ("train", "dev", "test")}
  except (ValueError, FileNotFoundError) as e:  # the base run's corpus is not prepared here, or lacks a split
    raise app.UsageError(str(e)) from None
  meta = {s: data.speaker_metadata(split, s) for s, split in splits.items()}
  embedder = data.embedder_of_run(_SV.value) if kmeans else None
  embeddings = {}

  def speakers(record, split_name):
    if embedder is not None and split_name not in embeddings:
      embeddings[split_name] = data.speaker_embeddings(*embedder, splits[split_name], sorted(set(record["speakers"])))
    return data.speakers_from_eval(record, meta[split_name], embeddings=embeddings.get(split_name))

  dev_base = _kept("dev_base", recipe, lambda: mitigation.evaluate_run(_BASE.value, "dev", limit=_DEV_LIMIT.value))
  dev = speakers(dev_base, "dev")
  options = {"geographic_tree": dict(min_speakers=_MIN_SPK.value, min_words=_MIN_WORDS.value, max_depth=_DEPTH.value,
                                     min_gap=_MIN_GAP.value),
             "geodemographic": dict(min_speakers=_MIN_SPK.value, min_words=_MIN_WORDS.value),
             "embedding_kmeans": dict(k=_K.value or None)}[_COHORTS.value]
  try:
    cohorts = audit.discover(_COHORTS.value, dev, options=options)
  except ValueError as e:
    raise app.UsageError(f"--cohorts={_COHORTS.value} on the {len(dev)} dev speakers: {e}") from None
  if len(cohorts) < 2:
    raise app.UsageError(f"--cohorts={_COHORTS.value} finds one cohort on the {len(dev)} dev speakers: no WER "
                         "difference to mitigate (a model that fails everyone alike, or --min_speakers / --min_words "
                         "too large).")
  try:
    targeted = mitigation.targeted_regions(cohorts, dev, _TARGETS.value)
  except ValueError as e:
    raise app.UsageError(f"--targets: {e}") from None
  if embedder is not None:  # the training speakers are placed in the dev cohorts by their own embeddings
    embeddings["train"] = data.speaker_embeddings(*embedder, splits["train"])
    meta["train"] = {s: meta["train"][s] for s in embeddings["train"]}  # speakers with training utterances
  train_speakers = mitigation.speakers_in(cohorts, targeted, meta["train"], embeddings=embeddings.get("train"))
  if not train_speakers:
    raise app.UsageError(f"no training speaker falls in the targeted cohorts {[cohorts.names[k] for k in targeted]}.")
  text = json.dumps({"speakers": train_speakers, "cohorts": [cohorts.names[k] for k in targeted]})
  # named by its content, so a fine-tune's config (which names the file) changes when the targets do
  speakers_file = os.path.join(_ROOT.value, f"targeted_speakers_{_COHORTS.value}_"
                                            f"{hashlib.sha256(text.encode()).hexdigest()[:10]}.json")
  with atomic_file.open(speakers_file) as f:
    f.write(text)
  fisher_file = os.path.join(_ROOT.value, f"fisher_{_FISHER.value}_step{max(dev_base['steps'])}.msgpack")
  if not os.path.exists(fisher_file):
    ewc.save_fisher(fisher_file, mitigation.transducer_fisher(_BASE.value, num_batches=_FISHER.value))
  report = lambda record, split_name: mitigation.report(speakers(record, split_name), cohorts, targeted,
                                                        draws=_DRAWS.value)
  tag = _COHORTS.value
  ewc_run = lambda w, seed: _finetune(f"{tag}_ewc_{w:g}_seed{seed}", speakers_file, w, fisher_file, seed)
  # ---------------------------------------------------------------- lambda on dev (first seed)
  dev_reports = {}
  if len(weights) > 1:
    for w in weights:
      record = _kept(f"dev_ewc_{w:g}_seed{seeds[0]}", of_run(weight=w, seed=seeds[0]),
                     lambda w=w: mitigation.evaluate_run(ewc_run(w, seeds[0]), "dev", limit=_DEV_LIMIT.value))
      dev_reports[w] = report(record, "dev")
  dev_report = report(dev_base, "dev")
  weight = mitigation.choose_weight(dev_reports, dev_report) if dev_reports else weights[0]
  # ---------------------------------------------------------------- the fine-tunes and the test decodes
  runs = {"base": lambda seed: _BASE.value,
          "ewc": lambda seed: ewc_run(weight, seed),
          "plain": lambda seed: _finetune(f"{tag}_plain_seed{seed}", speakers_file, 0.0, "", seed),
          "all": lambda seed: _finetune(f"all_seed{seed}", "", 0.0, "", seed)}
  reports = {}
  for method, run in runs.items():
    reports[method] = []
    for seed in seeds if method != "base" else seeds[:1]:
      name, rec = (("test_base", recipe) if method == "base" else
                   (f"test_{method}_seed{seed}", of_run(weight=weight if method == "ewc" else 0.0, seed=seed,
                                                        all_speakers=method == "all")))
      record = _kept(name, rec, lambda run=run, seed=seed: mitigation.evaluate_run(run(seed), "test",
                                                                                      limit=_LIMIT.value))
      reports[method].append(report(record, "test"))
  # ---------------------------------------------------------------- the tables
  base = reports["base"][0]
  names = [cohorts.names[k] for k in targeted]
  lines = [f"Cohorts: {_COHORTS.value} on {len(dev)} dev speakers ({len(cohorts)} cohorts); targeted {names}; "
           f"{len(train_speakers)} training speakers in them. {_STEPS.value} fine-tuning steps each; seeds {seeds}; "
           f"EWC lambda {weight:g}" + (f" (chosen on dev of {[f'{w:g}' for w in weights]})." if dev_reports else "."),
           ""]
  if dev_reports:
    lines += [f"Dev (lambda selection, seed {seeds[0]}):", "", "| lambda | dev WER % | targeted % | untargeted % |",
              "| --- | --- | --- | --- |",
              f"| base | {_fmt(dev_report['wer'])} | {_fmt(dev_report['targeted_wer'])} | "
              f"{_fmt(dev_report['untargeted_wer'])} |"]
    lines += [f"| {w:g}{' (chosen)' if w == weight else ''} | {_fmt(r['wer'])} | {_fmt(r['targeted_wer'])} | "
              f"{_fmt(r['untargeted_wer'])} |" for w, r in dev_reports.items()]
    lines.append("")
  lines += ["Test (WER: mean over seeds, first seed's speaker-bootstrap 95% interval; relative: mean (range) over seeds):",
            "", "| model | WER % | targeted WER % | untargeted WER % | gap % | cohort WER mean / max % | cohort var (pts^2) | "
            "rel. overall | rel. targeted | rel. untargeted | rel. gap |", "| --- " * 11 + "|"]
  for method, rs in reports.items():
    fig = lambda k, rs=rs: _mean(rs, lambda r: r["regions"]["figures"][k])
    first = rs[0]
    mean_of = lambda k, rs=rs: _mean(rs, lambda r: r[k])
    rel = (lambda k: "") if method == "base" else (lambda k, rs=rs: _relative(rs, base, k))
    lines.append(f"| {method}{f' (lambda {weight:g})' if method == 'ewc' else ''} | "
                 f"{_fmt(mean_of('wer'), first['wer_interval'])} | "
                 f"{_fmt(mean_of('targeted_wer'), first['targeted_wer_interval'])} | "
                 f"{_fmt(mean_of('untargeted_wer'), first['untargeted_wer_interval'])} | {_fmt(mean_of('gap'))} | "
                 f"{_fmt(fig('cohort_wer_mean'))} / {_fmt(fig('cohort_wer_max'))} | "
                 f"{1e4 * fig('cohort_wer_var'):.2f} | {rel('wer')} | {rel('targeted_wer')} | {rel('untargeted_wer')} | "
                 f"{rel('gap')} |")
  lines.append("| paper (Trinh et al.): EWC | | | | | | | -1.3% | -3.2% (worst region) | | |")
  text = "\n".join(lines)
  print(text)
  with atomic_file.open(os.path.join(_results_dir(), "fairness_ewc.md")) as f:
    f.write(text + "\n")
  with atomic_file.open(os.path.join(_results_dir(), "fairness_ewc.json")) as f:
    json.dump({"recipe": recipe, "seeds": seeds, "weights": weights, "weight": weight,
               "cohorts": json.loads(cohorts.to_json()), "targeted": targeted,
               "dev_reports": {f"{w:g}": r for w, r in dev_reports.items()}, "dev_base": dev_report,
               "reports": reports}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
