r"""The one-command fairness audit of a trained ASR model: every cohort method, the table and the map.

  python experiments/evaluate.py --workdir=workdirs/demo/convrnnt --split=test
  python experiments/fairness_audit.py --workdir=workdirs/demo/convrnnt \
      [--sv_workdir=workdirs/sv/base_seed0] [--dev_eval_json=workdirs/demo/convrnnt/eval_dev_greedy.json]

Reads the evaluation (``--eval_json``, default ``<workdir>/eval_test_greedy.json``: per-utterance
errors and speakers), the split's speaker metadata (location, area code, census-style
attributes) and, with ``--sv_workdir``, speaker embeddings from that speaker-verification
run (`asrjax.speaker.embed`) for the automatic cohorts (without it they are reported as
unavailable). Cohorts are found on a seeded half of the speakers and measured on both
halves (`asrjax.fairness.audit`); k of the automatic cohorts is chosen on
``--dev_eval_json``'s speakers when given. Writes ``fairness_audit.md`` (the table),
``fairness_audit.json`` (figures, intervals, cohorts) and ``fairness_map.png`` (the
geographic regions) into ``--out_dir`` (default: the workdir).
"""

import json
import os

from absl import app, flags

from asrjax import atomic_file
from asrjax.fairness import audit, data

_WORKDIR = flags.DEFINE_string("workdir", None, "The ASR run (its evaluation JSON and where results go).")
_EVAL = flags.DEFINE_string("eval_json", None, "Evaluation JSON (default: <workdir>/eval_test_greedy.json).")
_DEV = flags.DEFINE_string("dev_eval_json", None, "Evaluation JSON of a development split: k is chosen there.")
_SV = flags.DEFINE_string("sv_workdir", None, "A speaker-verification run whose extractor embeds the speakers.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_OUT = flags.DEFINE_string("out_dir", None, "Where the table, JSON and map go (default: --workdir).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the discovery / held-out split, k-means and the bootstrap.")
_DRAWS = flags.DEFINE_integer("draws", 1000, "Speaker-bootstrap draws.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  if _DRAWS.value < 1:
    raise app.UsageError(f"--draws must be >= 1; got {_DRAWS.value}.")
  try:
    record = data.load_evaluation(_EVAL.value or os.path.join(_WORKDIR.value, "eval_test_greedy.json"))
    dev_record = data.load_evaluation(_DEV.value) if _DEV.value else None
    embedder = data.embedder_of_run(_SV.value) if _SV.value else None
    dev = data.speakers_of_evaluation(dev_record, _DATA_DIR.value, embedder=embedder) if dev_record else None
    speakers = data.speakers_of_evaluation(record, _DATA_DIR.value, embedder=embedder)
  except (ValueError, FileNotFoundError) as e:  # no evaluation, the corpus not prepared here, no metadata
    raise app.UsageError(str(e)) from None
  result = audit.audit(speakers, seed=_SEED.value, dev=dev, draws=_DRAWS.value)
  out_dir = _OUT.value or _WORKDIR.value
  os.makedirs(out_dir, exist_ok=True)
  text = (f"Fairness audit of {record['dataset']} {record['split']} ({len(speakers)} speakers, seed "
          f"{_SEED.value}; cohorts found on the discovery half):\n\n" + audit.table(result))
  print(text)
  with atomic_file.open(os.path.join(out_dir, "fairness_audit.md")) as f:
    f.write(text + "\n")
  kept = audit.as_record(result)
  with atomic_file.open(os.path.join(out_dir, "fairness_audit.json")) as f:
    json.dump(kept, f, indent=1)
  tree = result.get("geographic_tree", {})
  if "cohorts" in tree:
    audit.write_map(os.path.join(out_dir, "fairness_map.png"), speakers, tree["cohorts"],
                    title=f"{record['dataset']} {record['split']}: geographic regions coloured by WER")
  print(f"wrote {out_dir}/fairness_audit.md, fairness_audit.json" + (", fairness_map.png" if "cohorts" in tree else ""))


if __name__ == "__main__":
  app.run(main)
