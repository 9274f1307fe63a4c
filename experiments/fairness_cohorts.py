r"""Dheram et al.'s table on our corpus: the bottom cohort's WER gap and share, geodemographic vs automatic cohorts.

  python experiments/evaluate.py --workdir=workdirs/demo/convrnnt --split=test
  python experiments/evaluate.py --workdir=workdirs/demo/convrnnt --split=dev
  python experiments/fairness_cohorts.py --workdir=workdirs/demo/convrnnt --sv_workdir=workdirs/sv/base_seed2 \
      --seeds=0,1,2,3,4

For each audit seed (`asrjax.fairness.audit.audit`: a seeded discovery half of the test
speakers, the k-means start, the bootstrap), every cohort method -- the geographic split
tree (Trinh et al.), geodemographic partitions and k-means over speaker embeddings
(Dheram et al.) -- is found on the discovery half and measured on both halves; k of the
automatic cohorts is chosen on the dev speakers (``--dev_eval_json``, default
``<workdir>/eval_dev_greedy.json`` when it exists). The table gives, per method, the gap of
the bottom cohort against the rest (relative %) and its share of speakers: mean and range
over the seeds, seed 0's speaker-bootstrap 95% interval, on discovery and held-out
speakers, beside the paper's figures (geodemographic 41.7% / 0.8%, automatic 65.0% /
10.0%). The held-out columns are the honest ones: a gap found and measured on the same
speakers includes its selection noise. Writes ``fairness_cohorts.md``, ``.json`` and
``fairness_map.png`` (seed 0's geographic regions over every test speaker) into
``--results_dir``.
"""

import json
import os

from absl import app, flags

from asrjax import atomic_file
from asrjax.fairness import audit, data

_WORKDIR = flags.DEFINE_string("workdir", None, "The ASR run whose evaluation is audited.")
_EVAL = flags.DEFINE_string("eval_json", None, "Evaluation JSON (default: <workdir>/eval_test_greedy.json).")
_DEV = flags.DEFINE_string("dev_eval_json", None, "Dev evaluation JSON, where k is chosen (default: "
                           "<workdir>/eval_dev_greedy.json when it exists; else k is chosen on the discovery half).")
_SV = flags.DEFINE_string("sv_workdir", None, "A speaker-verification run whose extractor embeds the speakers.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Audit seeds.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_DRAWS = flags.DEFINE_integer("draws", 1000, "Speaker-bootstrap draws.")
_RESULTS = flags.DEFINE_string("results_dir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                           "fairness_cohorts"), "Where the table, JSON and map go.")
flags.mark_flags_as_required(["workdir"])

# Dheram et al., Interspeech 2022, table of discovered cohorts: gap of the bottom cohort vs the
# rest (relative %) and its share of speakers (%).
PAPER = {"geodemographic": (41.7, 0.8), "embedding_kmeans": (65.0, 10.0), "geographic_tree": (None, None)}


def _spread(entry, half, name):
  s = entry[half][name]
  return f"{s['mean']:.1f} [{s['min']:.1f}, {s['max']:.1f}]"


def _seed0(result, method, half, name):
  r = result[method]
  if "error" in r:
    return "-"
  v, (lo, hi) = r[half]["figures"][name], r[half]["intervals"][name]
  return f"{v:.1f} [{lo:.1f}, {hi:.1f}]"


def table(summary: dict, first: dict, seeds: list) -> str:
  """Markdown: per method, the paper's gap / share, then ours (mean [min, max] over seeds) on
  discovery and held-out speakers, and seed 0's bootstrap interval of the held-out gap."""
  rows = [f"Bottom cohort vs the rest, relative WER gap %, and its share of speakers %; ours: mean [min, max] over "
          f"audit seeds {seeds}, and seed {seeds[0]}'s 95% speaker-bootstrap interval.", "",
          "| method | paper gap % | paper share % | gap, discovery | gap, held-out | gap, held-out "
          f"(seed {seeds[0]}, 95% CI) | share, discovery | share, held-out |", "| --- " * 8 + "|"]
  for method, entry in summary.items():
    paper = PAPER.get(method, (None, None))
    p = [("-" if x is None else f"{x:.1f}") for x in paper]
    if "discovery" not in entry:
      rows.append(f"| {method} | {p[0]} | {p[1]} | not available: {entry.get('error', '')} | | | | |")
      continue
    note = f" ({entry['failed_seeds']} seeds failed: {entry['error']})" if "error" in entry else ""
    rows.append(f"| {method}{note} | {p[0]} | {p[1]} | {_spread(entry, 'discovery', 'gap_vs_rest')} | "
                f"{_spread(entry, 'held_out', 'gap_vs_rest')} | {_seed0(first, method, 'held_out', 'gap_vs_rest')} | "
                f"{_spread(entry, 'discovery', 'bottom_share')} | {_spread(entry, 'held_out', 'bottom_share')} |")
  return "\n".join(rows)


def main(argv):
  del argv
  try:
    seeds = [int(s) for s in _SEEDS.value]
  except ValueError:
    raise app.UsageError(f"--seeds must be integers; got {_SEEDS.value}.") from None
  if not seeds or len(set(seeds)) != len(seeds):
    raise app.UsageError(f"--seeds must be distinct integers, at least one; got {_SEEDS.value}.")
  if _DRAWS.value < 1:
    raise app.UsageError(f"--draws must be >= 1; got {_DRAWS.value}.")
  dev_path = _DEV.value or os.path.join(_WORKDIR.value, "eval_dev_greedy.json")
  try:
    record = data.load_evaluation(_EVAL.value or os.path.join(_WORKDIR.value, "eval_test_greedy.json"))
    dev_record = data.load_evaluation(dev_path) if (_DEV.value or os.path.exists(dev_path)) else None
    embedder = data.embedder_of_run(_SV.value) if _SV.value else None
    speakers = data.speakers_of_evaluation(record, _DATA_DIR.value, embedder=embedder)
    dev = data.speakers_of_evaluation(dev_record, _DATA_DIR.value, embedder=embedder) if dev_record else None
  except (ValueError, FileNotFoundError) as e:  # no evaluation, the corpus not prepared here, no metadata
    raise app.UsageError(str(e)) from None
  results = [audit.audit(speakers, seed=s, dev=dev, draws=_DRAWS.value) for s in seeds]
  summary = audit.across_seeds(results)
  text = (f"{record['dataset']} {record['split']}, {len(speakers)} speakers ({_WORKDIR.value}); k of the automatic "
          f"cohorts chosen on {'dev' if dev else 'the discovery half'}.\n\n" + table(summary, results[0], seeds))
  print(text)
  os.makedirs(_RESULTS.value, exist_ok=True)
  with atomic_file.open(os.path.join(_RESULTS.value, "fairness_cohorts.md")) as f:
    f.write(text + "\n")
  per_seed = [audit.as_record(r) for r in results]
  with atomic_file.open(os.path.join(_RESULTS.value, "fairness_cohorts.json")) as f:
    json.dump({"workdir": os.path.abspath(_WORKDIR.value), "sv_workdir": _SV.value, "seeds": seeds,
               "speakers": len(speakers), "paper": PAPER, "summary": summary, "per_seed": per_seed}, f, indent=1)
  tree = results[0].get("geographic_tree", {})
  if "cohorts" in tree:
    audit.write_map(os.path.join(_RESULTS.value, "fairness_map.png"), speakers, tree["cohorts"],
                    title=f"{record['dataset']} {record['split']}: seed {seeds[0]}'s geographic regions by WER")
  print(f"wrote {_RESULTS.value}/fairness_cohorts.md, .json" + (", fairness_map.png" if "cohorts" in tree else ""))


if __name__ == "__main__":
  app.run(main)
