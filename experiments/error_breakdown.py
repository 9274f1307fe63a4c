r"""Where the errors of a decoded split are: recording condition, voice variant, unseen words.

  python experiments/evaluate.py --config=experiments/configs/convrnnt.py:cpu_long \
      --workdir=workdirs/cpu_long --split=test --decoder=beam
  python experiments/error_breakdown.py --config=experiments/configs/convrnnt.py:cpu_long \
      --workdir=workdirs/cpu_long --eval_json=workdirs/cpu_long/eval_test_beam.json

Reads the references and hypotheses that `evaluate.py` wrote (in split order: its
first ``utterances`` examples) and the metadata of the same examples (checking that the
transcripts agree, so a JSON from another split is refused), then prints:

* the composition of the decoded examples: recording condition
  (`asrjax.data.conditions`), noise type x SNR, reverberation, telephone band;
* WER per recording condition and per espeak voice variant;
* out-of-vocabulary words (reference words absent from the training transcripts,
  ``<workdir>/train_transcripts.json``) and WER with and without them.
"""

import collections

from absl import app, flags
from ml_collections import config_flags

from asrjax.data import sources
from asrjax.metrics import oov, wer
from asrjax.inference import evaluation
from asrjax.train import config_check, run_config
from asrjax.tasks import transducer_asr

_CONFIG = config_flags.DEFINE_config_file("config", None, "The training configuration (default: the one the run "
                                          "wrote to <workdir>/config.json).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (cached training transcripts).")
_SPLIT = flags.DEFINE_string("split", None, "The split the eval JSON was decoded from (default: the one it "
                             "records; JSONs written before it recorded one need this flag).")
_EVAL_JSON = flags.DEFINE_string("eval_json", None, "A JSON written by experiments/evaluate.py.")
flags.mark_flags_as_required(["workdir", "eval_json"])


def _count_table(counts: collections.Counter, title: str) -> str:
  total = sum(counts.values())
  rows = [f"| {title} | utterances | % |", "| --- | --- | --- |"]
  rows += [f"| {k} | {v} | {100 * v / total:.1f} |" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))]
  return "\n".join(rows)


def main(argv):
  del argv
  try:
    config = run_config.resolve(_CONFIG.value, _WORKDIR.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  try:
    ev, split_name = evaluation.read_eval_json(_EVAL_JSON.value, dataset=config.data.name, split=_SPLIT.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  refs, hyps = ev["references"], ev["hypotheses"]
  split = sources.open_split(config.data.name, split_name, config.data.data_dir)
  try:
    evaluation.check_references(refs, split, _EVAL_JSON.value, f"{config.data.name} {split_name}")
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  groups, reverb = [], []
  for i in range(len(refs)):
    example = split[i]
    groups.append(evaluation.example_groups(example))
    reverb.append(int(example.get("reverb", 0)) > 0)
  total = wer.corpus_errors(refs, hyps)
  print(f"{config.data.name} {split_name}: {len(refs)} utterances, steps {ev.get('steps')}, "
        f"WER {wer.format_wer(total)}%")
  if all("condition" in g for g in groups):
    print(_count_table(collections.Counter(g["condition"] for g in groups), "condition"))
    print(_count_table(collections.Counter(f"{g['noise']} {g['snr_db']} dB" if g["noise"] != "none" else "none"
                                           for g in groups), "noise, SNR"))
    print(_count_table(collections.Counter(
        ("reverb" if r else "dry") + (", telephone band" if g["band_limited"] == "True" else "")
        for r, g in zip(reverb, groups)), "reverberation, band"))
  for field in ("condition", "variant"):
    if any(field in g for g in groups):
      print(wer.wer_table(wer.grouped_errors(refs, hyps, [g.get(field, evaluation.MISSING) for g in groups]), field))
  vocab = oov.vocabulary(transducer_asr.train_transcripts(config, None, _WORKDIR.value))
  unseen = [oov.oov_words(r, vocab) for r in refs]
  words = sum(len(r.split()) for r in refs)
  print(f"out-of-vocabulary: {sum(map(len, unseen))} of {words} reference words "
        f"({100 * sum(map(len, unseen)) / max(words, 1):.2f}%), in {sum(map(bool, unseen))} utterances; "
        f"{len(set(w for u in unseen for w in u))} distinct")
  print(wer.wer_table(wer.grouped_errors(refs, hyps, ["with OOV" if u else "no OOV" for u in unseen]),
                      "utterances"))


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
