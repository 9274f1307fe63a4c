r"""The README main job: embedded corpus -> ConvRNN-T trained on the CPU -> WER next to pocketsphinx.

  python experiments/demo.py --data_dir=data/tfds --workdir=workdirs/demo

1. builds the config's corpus, ``espeak_speech/full`` (speech only; skipped when
   already built; ~15 min on 2 cores): 416 training voices and 40,000 sentences, so
   that 28 minutes of steps are ~2 epochs rather than ~15 of `small`'s 144 voices
   (BUILD_NOTES.md);
2. trains ConvRNN-T with ``experiments/configs/convrnnt.py:demo`` -- a 28-minute
   training budget that also spans restarts, pruned RNN-T loss -- and decodes the
   config's test utterances (the first 800; Graves beam search, beam 16, fused with a
   word 4-gram of the training text spelt out per character and a character 12-gram);
3. decodes the same test utterances with pocketsphinx and a trigram LM of the
   training text (~11 min; reused when ``<workdir>/pocketsphinx/results.json`` exists);
4. prints WER overall and per accent for both systems.

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


def main(argv):
  del argv
  model_dir = os.path.join(_WORKDIR.value, "convrnnt")
  ps_dir = os.path.join(_WORKDIR.value, "pocketsphinx")
  config = _CONFIG.value
  config_check.validate(config)  # before the corpus build and the training, each many minutes
  dataset, corpus = config.data.name.split("/")
  if dataset != "espeak_speech":
    raise ValueError(f"the demo runs on the embedded espeak_speech corpus; the config names {config.data.name}.")
  limit = f"--limit={config.eval.limit}"
  _run("build_corpus.py", f"--config={corpus}", "--datasets=speech", f"--data_dir={_DATA_DIR.value}")
  _run("train.py", f"--config={flags.FLAGS['config'].config_filename}", f"--workdir={model_dir}",
       f"--config.data.data_dir={_DATA_DIR.value}", "--config.eval.splits=('test',)",
       *[a for a in sys.argv[1:] if a.startswith("--config.")])  # the demo's own config overrides
  if not os.path.exists(os.path.join(ps_dir, "results.json")):
    _run("pocketsphinx_baseline.py", f"--corpus={corpus}", f"--data_dir={_DATA_DIR.value}", f"--workdir={ps_dir}",
         "--lms=train_text_lm", limit)
  with open(os.path.join(model_dir, "results.json")) as f:
    ours = json.load(f)
  with open(os.path.join(ps_dir, "results.json")) as f:
    ps = json.load(f)
  if len(ps["references"]) != ours["test"]["utterances"]:
    raise RuntimeError(f"pocketsphinx scored {len(ps['references'])} utterances, ConvRNN-T "
                       f"{ours['test']['utterances']}: delete {ps_dir} and rerun.")
  ps_accent = wer.grouped_errors(ps["references"], ps["train_text_lm"]["hypotheses"], ps["accents"])
  ps_total = wer.corpus_errors(ps["references"], ps["train_text_lm"]["hypotheses"])
  ours_accent = ours["test"]["per_group"]["accent"]
  print(f"\n{config.data.name} test, {len(ps['references'])} utterances. ConvRNN-T: {ours['steps']} steps in "
        f"{ours['train_seconds'] / 60:.1f} min of CPU training, {_decoding(ours['test'])}. pocketsphinx 5: "
        "trigram LM of the training text.\n")
  print("| accent | ConvRNN-T WER % | pocketsphinx WER % |")
  print("| --- | --- | --- |")
  print(f"| all | {100 * ours['test']['wer']:.1f} | {100 * ps_total.wer:.1f} |")
  for accent in sorted(ours_accent):
    print(f"| {accent} | {100 * ours_accent[accent]:.1f} | {100 * ps_accent[accent].wer:.1f} |")


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
