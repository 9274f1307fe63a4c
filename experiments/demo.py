r"""The README main job: embedded corpus -> ConvRNN-T trained on the CPU -> WER next to pocketsphinx.

  python experiments/demo.py --data_dir=data/tfds --workdir=workdirs/demo

1. builds the config's corpus, ``synth_speech/full`` (speech only; skipped when
   already built; ~26 min on 2 idle cores): 40,000 training sentences read by 416
   espeak-ng speakers and 210 speakers widened from eight recorded talkers (flite,
   MBROLA, Pico), and the held-out festival family's ``test_unseen`` split
   (BUILD_NOTES.md);
2. trains ConvRNN-T with ``experiments/configs/convrnnt.py:demo`` -- a 28-minute
   training budget that also spans restarts, pruned RNN-T loss -- and decodes the
   config's test sets (the first 800 utterances of ``test`` and of ``test_unseen``, the
   same 800 sentences; the on-device mAES beam search, beam 16, fused with a word 4-gram
   of the training text spelt out per character and a character 12-gram);
3. decodes the same utterances with pocketsphinx and a trigram LM of the training text
   (~11 min a set; reused when ``<workdir>/pocketsphinx/<split>/results.json`` exists);
4. prints WER (with a 95% speaker-bootstrap interval) on the in-domain and the
   unseen-family test set, then per synthesizer family and per accent, for both systems.

Each stage is one of the project's launchers run as a subprocess, so a stage can be
rerun on its own; rerunning the demo resumes where it stopped. Config overrides
(``--config.train.seed=1``) need ``--config=`` given explicitly (an ml_collections
rule); they are passed on to ``train.py``.
"""

import json
import os
import subprocess
import sys

from absl import app, flags
from ml_collections import config_flags

from asrjax.metrics import wer
from asrjax.train import config_check

_HERE = os.path.dirname(os.path.abspath(__file__))
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/demo", "Output directory.")
_CONFIG_PATH = os.path.join(_HERE, "configs", "convrnnt.py:demo")
_CONFIG = config_flags.DEFINE_config_file("config", _CONFIG_PATH, "Training config (its corpus and test limit are used).")


def _run(script: str, *args: str) -> None:
  cmd = [sys.executable, os.path.join(_HERE, script), *args]
  print("+", " ".join(cmd), flush=True)
  subprocess.run(cmd, check=True)


def _decoding(result: dict) -> str:
  """E.g. "beam decoding (beam 16) + character 12-gram LM of the training text (weight 0.5)"."""
  options = result.get("decoder_options") or {}
  text = f"{result['decoder']} decoding" + (f" (beam {options['beam']})" if "beam" in options else "")
  lm = result.get("lm") or {}
  if lm.get("order"):
    text += f" + {lm['order']}-gram token LM of the training text (weight {lm['weight']})"
  if lm.get("word_order"):
    text += f" inside a {lm['word_order']}-gram word LM over the training vocabulary (char weight {lm['char_weight']})"
  return text


_SPLIT_NAMES = {"test": "in-domain test (espeak-ng, flite, MBROLA, Pico voices; unseen speakers)",
                "test_unseen": "unseen family (festival: never trained or tuned on)"}


def _percent(x) -> str:
  return "-" if x is None else f"{100 * x:.1f}"


def _pocketsphinx(ps_dir: str, dataset: str, corpus: str, split: str, limit: str) -> dict:
  out = os.path.join(ps_dir, split)
  if not os.path.exists(os.path.join(out, "results.json")):
    _run("pocketsphinx_baseline.py", f"--dataset={dataset}", f"--corpus={corpus}", f"--split={split}",
         f"--data_dir={_DATA_DIR.value}", f"--workdir={out}", "--lms=train_text_lm", limit)
  with open(os.path.join(out, "results.json")) as f:
    return json.load(f)


def main(argv):
  del argv
  model_dir = os.path.join(_WORKDIR.value, "convrnnt")
  ps_dir = os.path.join(_WORKDIR.value, "pocketsphinx")
  config = _CONFIG.value
  config_check.validate(config)  # before the corpus build and the training, each many minutes
  dataset, corpus = config.data.name.split("/")
  if dataset not in ("synth_speech", "espeak_speech"):
    raise ValueError(f"the demo runs on the embedded corpus (synth_speech or espeak_speech); the config names "
                     f"{config.data.name}.")
  splits = list(config.eval.splits)
  limit = f"--limit={config.eval.limit}"
  _run("build_corpus.py", f"--corpus={dataset.split('_')[0]}", f"--config={corpus}", "--datasets=speech",
       f"--data_dir={_DATA_DIR.value}")
  _run("train.py", f"--config={flags.FLAGS['config'].config_filename}", f"--workdir={model_dir}",
       f"--config.data.data_dir={_DATA_DIR.value}", f"--config.eval.splits={tuple(splits)!r}",
       *[a for a in sys.argv[1:] if a.startswith("--config.")])  # the demo's own config overrides
  with open(os.path.join(model_dir, "results.json")) as f:
    ours = json.load(f)
  ps = {split: _pocketsphinx(ps_dir, dataset, corpus, split, limit) for split in splits}
  for split in splits:
    if len(ps[split]["references"]) != ours[split]["utterances"]:
      raise RuntimeError(f"pocketsphinx scored {len(ps[split]['references'])} {split} utterances, ConvRNN-T "
                         f"{ours[split]['utterances']}: delete {os.path.join(ps_dir, split)} and rerun.")
  print(f"\n{config.data.name}, the first {config.eval.limit or 'all'} utterances of each test set. ConvRNN-T: "
        f"{ours['steps']} steps in {ours['train_seconds'] / 60:.1f} min of CPU training, {_decoding(ours[splits[0]])}. "
        "pocketsphinx 5: trigram LM of the training text. Intervals: 95%, speaker bootstrap.\n")
  print("| test set | ConvRNN-T WER % [95% interval] | pocketsphinx WER % |")
  print("| --- | --- | --- |")
  for split in splits:
    low, high = ours[split].get("wer_interval") or (None, None)
    print(f"| {_SPLIT_NAMES.get(split, split)} | {_percent(ours[split]['wer'])} [{_percent(low)}, {_percent(high)}] "
          f"| {100 * wer.corpus_errors(ps[split]['references'], ps[split]['train_text_lm']['hypotheses']).wer:.1f} |")
  if "test" in splits and "test_unseen" in splits and ours["test"]["wer"]:
    print(f"\nunseen-family / in-domain WER: ConvRNN-T {ours['test_unseen']['wer'] / ours['test']['wer']:.2f}x")
  for field, title in (("family", "synthesizer family"), ("accent", "accent")):
    rows = []
    for split in splits:
      ours_group = ours[split]["per_group"].get(field, {})
      labels = ps[split].get("families" if field == "family" else "accents")
      if not ours_group or not labels:
        continue
      ps_group = wer.grouped_errors(ps[split]["references"], ps[split]["train_text_lm"]["hypotheses"], labels)
      rows += [f"| {split} | {g} | {_percent(ours_group[g])} | {100 * ps_group[g].wer:.1f} |"
               for g in sorted(ours_group) if g in ps_group]
    if rows:
      print(f"\n| split | {title} | ConvRNN-T WER % | pocketsphinx WER % |\n| --- | --- | --- | --- |")
      print("\n".join(rows))


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
