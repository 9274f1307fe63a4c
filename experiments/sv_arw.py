r"""Speaker verification: baseline vs adversarial reweighting (Jin et al., Interspeech 2022).

  python experiments/sv_arw.py --workdir_root=workdirs/sv --seeds=0,1,2
  python experiments/sv_arw.py --variant=tiny --data_dir=data/tfds --workdir_root=/tmp/sv --seeds=0 \
      --baseline_steps=4 --arw_steps=2 --results_dir=/tmp/sv/results   # a smoke run on synth_speech/tiny

Per seed (`asrjax.speaker.study`): the baseline ECAPA-TDNN lite for ``--baseline_steps``;
k-means (``arw.num_clusters``) over its embeddings of every training utterance (the first
3 s), written to ``<root>/clusters_seed<s>.json``; then from the baseline, for
``--arw_steps`` each: the baseline continued (the reference) and every ``--arw`` variant
(``pw``: the paper's pair weight; ``sample``: weights on the AAM loss; ``pw_cluster_only``:
PW with the k-means cluster as the adversary's only input). A run whose workdir holds
``results.json`` is not trained again (resumable), and a run whose results are in
``--results_dir`` (``<run>.json``, committed under ``experiments/results/sv_arw``) is not
trained at all: the table survives a lost workdir. A baseline is trained again (same seed,
same recipe) only when one of its fine-tunes is still to run and its workdir is gone.

Prints the table (cosine and AS-norm scoring): overall EER, minDCF, female / male EER and
the gap, EER std and max - min across accents, relative changes against the continued
baseline with the seeds' spread, the paper's relative changes beside them; and the
baseline's EER per acoustic condition (clean / noisy / telephone), the check that the
task is neither trivial nor hopeless here. Writes ``<results_dir>/sv_arw.json``.

References:
  Jin et al., "Adversarial reweighting for speaker verification fairness", Interspeech 2022.
"""

import importlib.util
import json
import os

from absl import app, flags, logging
import jax
import numpy as np

from asrjax import atomic_file, tasks
from asrjax.speaker import clusters as clusters_lib, data, evaluation, study
from asrjax.train import config_check, run_config, trainer

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = flags.DEFINE_string("workdir_root", "workdirs/sv", "One workdir per run under here.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_VARIANT = flags.DEFINE_string("variant", "demo", "Config variant of experiments/configs/sv_ecapa.py.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds.")
_ARW = flags.DEFINE_list("arw", list(study.VARIANTS), f"ARW variants, of {sorted(study.VARIANTS)}.")
_BASE_STEPS = flags.DEFINE_integer("baseline_steps", 3000, "Steps of each baseline.")
_ARW_STEPS = flags.DEFINE_integer("arw_steps", 1000, "Steps of every run started from a baseline.")
_RESULTS = flags.DEFINE_string("results_dir", os.path.join(_HERE, "results", "sv_arw"),
                               "Each trained run's results.json is kept here as <run>.json; a run found here is "
                               "not trained again, and is in the table even without its workdir.")
_ARW_LR = flags.DEFINE_float("arw_lr", 5e-4, "Peak learning rate of the runs started from a baseline.")
_FT_AAM = flags.DEFINE_float("finetune_aam_weight", 1.0,
                             "Weight of the AAM term in every run started from a baseline (the continued one "
                             "included); 0 fine-tunes on the pairwise loss alone, the loss PW reweights.")


def load_config(arg: str):
  spec = importlib.util.spec_from_file_location("config_sv_ecapa", os.path.join(_HERE, "configs", "sv_ecapa.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def run_config_of(run: dict, root: str):
  config = load_config(",".join(x for x in (_VARIANT.value, run["arg"]) if x))
  config.train.seed = run["seed"]
  config.data.data_dir = _DATA_DIR.value
  if run["init"] is None:
    config.train.num_steps = _BASE_STEPS.value
  else:
    run_config.as_finetune(config, os.path.join(root, run["init"]), _ARW_STEPS.value, _ARW_LR.value)
    if _FT_AAM.value != 1.0:
      config.sv.aam_weight = _FT_AAM.value
    if config.arw.variant != "none":
      config.arw.clusters_file = os.path.join(root, f"clusters_seed{run['seed']}.json")
  config_check.validate(config)
  return config


def write_clusters(base_workdir: str, path: str, seed: int) -> None:
  """k-means over the baseline's embeddings of every training utterance (first 3 s)."""
  config = run_config.load(base_workdir)
  _, params, _ = trainer.restore(config, base_workdir)
  split = tasks.open_train_split(config, base_workdir)
  table = data.speaker_table(split, os.path.join(base_workdir, "speaker_table.json"))
  from asrjax.speaker import ecapa  # noqa: PLC0415
  extractor = ecapa.ECAPATDNN(**dict(config.model.extractor))
  emb = evaluation.embed_utterances(extractor, params["model"]["extractor"], split, np.arange(len(table.ids)),
                                    max_samples=48_000)
  labels = clusters_lib.kmeans_clusters(emb, config.arw.num_clusters, seed=seed)
  clusters_lib.write_clusters(path, labels, k=config.arw.num_clusters, source=base_workdir)
  logging.info("clusters of %s: sizes %s", base_workdir, np.bincount(labels).tolist())


def _fmt(x, scale=100.0, digits=2):
  return "-" if x is None else f"{scale * x:.{digits}f}"


def print_table(lines, scoring: str) -> None:
  print(f"\n{scoring} scoring | seeds | EER % | minDCF | EER female / male % | gender gap (pts) | accent EER std / "
        "max-min (pts) | rel. EER % | rel. gender gap % | rel. accent std %")
  print("| --- " * 10 + "|")
  for s in lines:
    rel = lambda k, s=s: "-" if s[f"rel_{k}"] is None else f"{s[f'rel_{k}']:+.1f} ± {s[f'rel_{k}_spread']:.1f}"
    print(f"| {s['method']} | {','.join(map(str, s['seeds']))} | {_fmt(s['eer'])} | {_fmt(s['min_dcf'], 1, 3)} | "
          f"{_fmt(s['eer_female'])} / {_fmt(s['eer_male'])} | {_fmt(s['gender_gap'])} | {_fmt(s['accent_std'])} / "
          f"{_fmt(s['accent_range'])} | {rel('eer')} | {rel('gender_gap')} | {rel('accent_std')} |")
  p = study.PAPER
  print(f"| paper: PW (Jin et al. 2022, VoxCeleb) | - | 1.08 | - | - | 0.58 | 0.19 | {p['eer']:+.1f} | "
        f"{p['gender_gap']:+.0f} | {p['accent_std']:+.0f} |")


def _stored_results(path: str, recipe: dict) -> dict:
  """The results kept at ``path``, refused when measured with another recipe."""
  with open(path) as f:
    stored = json.load(f)
  if stored.get("recipe") != recipe:
    raise app.UsageError(f"{path} was measured with recipe {stored.get('recipe')}, not {recipe}: pass another "
                         "--results_dir (or remove that file to measure again).")
  return stored["results"]


def main(argv):
  del argv
  root = _ROOT.value
  try:
    seeds = [int(s) for s in _SEEDS.value]
  except ValueError as e:
    raise app.UsageError(f"--seeds takes integers: {e}") from None
  runs = study.planned_runs(seeds, _ARW.value)
  for run in runs:
    if run["init"] is None:
      run_config_of(run, root)  # the baselines' configs, checked before any training
  os.makedirs(_RESULTS.value, exist_ok=True)
  recipe = {"variant": _VARIANT.value, "baseline_steps": _BASE_STEPS.value, "arw_steps": _ARW_STEPS.value,
            "arw_lr": _ARW_LR.value, **({"finetune_aam_weight": _FT_AAM.value} if _FT_AAM.value != 1.0 else {})}
  kept = lambda name: os.path.join(_RESULTS.value, f"{name}.json")
  trained = lambda name: os.path.exists(os.path.join(root, name, "results.json"))
  stored = {r["name"]: _stored_results(kept(r["name"]), recipe) for r in runs if os.path.exists(kept(r["name"]))}
  todo = {r["name"] for r in runs if r["name"] not in stored and not trained(r["name"])}
  todo |= {r["init"] for r in runs if r["name"] in todo and r["init"] and not trained(r["init"])}
  results = {}
  for run in runs:
    workdir = os.path.join(root, run["name"])
    if run["name"] in todo:
      if run["init"] is not None and run["arg"]:
        path = os.path.join(root, f"clusters_seed{run['seed']}.json")
        if not os.path.exists(path):
          write_clusters(os.path.join(root, run["init"]), path, run["seed"])
      logging.info("training %s", run["name"])
      trainer.train_and_evaluate(run_config_of(run, root), workdir)
    if run["name"] in stored:
      results[run["name"]] = stored[run["name"]]
    else:
      with open(os.path.join(workdir, "results.json")) as f:
        results[run["name"]] = json.load(f)
      if jax.process_index() == 0:
        with atomic_file.open(kept(run["name"])) as f:
          json.dump({"recipe": recipe, "results": results[run["name"]]}, f, indent=1)
  if jax.process_index():
    return
  out = {"runs": runs, "paper": study.PAPER}
  for scoring in ("cosine", "as_norm"):
    out[scoring] = study.summarise(results, runs, scoring)
    print_table(out[scoring], scoring)
  print("\nbaseline EER % per condition (cosine):")
  for run in runs:
    if run["method"] == "baseline":
      per = study.trial_record(results[run["name"]])["cosine"]["per_condition"]
      print(f"  seed {run['seed']}: " + ", ".join(f"{k} {100 * v:.2f}" for k, v in sorted(per.items())))
  with atomic_file.open(os.path.join(_RESULTS.value, "sv_arw.json")) as f:
    json.dump(out, f, indent=1)


if __name__ == "__main__":
  app.run(main)
