r"""Files through `transcribe.py` against the corpus through `evaluate.py`: same hypotheses, same speed.

  python experiments/transcribe_vs_evaluate.py --workdir=workdirs/demo/convrnnt --utterances=200 \
      --out_dir=/tmp/tve

Writes the first ``--utterances`` utterances of ``--split`` as 16 kHz wav files
(soundfile), then runs both launchers as a user would, each in its own process, with the
run's own config (``<workdir>/config.json``) and decoder (``--decoder`` for another):
``evaluate.py --limit=N`` and ``transcribe.py --json`` on the files. Prints a table:
how many hypotheses are identical, the WER of each, and each launcher's real-time factor
(decoding wall time / audio duration, as each reports it). Exit status 1 when any
hypothesis differs.
"""

import json
import os
import re
import subprocess
import sys

from absl import app, flags
import numpy as np

from asrjax import decoding
from asrjax.data import catalog, sources
from asrjax.metrics import wer
from asrjax.train import run_config

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir with its config.json.")
_SPLIT = flags.DEFINE_string("split", "test", "Split whose first utterances are written out.")
_UTTERANCES = flags.DEFINE_integer("utterances", 200, "Utterances to compare.")
_DECODER = flags.DEFINE_enum("decoder", None, sorted(decoding.DECODERS), "Decoder (default: the config's).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where the wav files and the two outputs go.")
flags.mark_flags_as_required(["workdir", "out_dir"])

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
  done = subprocess.run(cmd, capture_output=True, text=True)
  if done.returncode not in (0, 1):
    sys.exit(f"{' '.join(cmd[:3])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
  return done


def main(argv):
  del argv
  import soundfile  # noqa: PLC0415

  config = run_config.load(_WORKDIR.value)
  if config is None:
    raise app.UsageError(f"{run_config.path(_WORKDIR.value)} does not exist: train with a current asrjax.")
  decoder = _DECODER.value or config.eval.decoder
  split = sources.open_split(config.data.name, _SPLIT.value, config.data.data_dir)
  n = min(_UTTERANCES.value, len(split))
  os.makedirs(_OUT_DIR.value, exist_ok=True)
  paths, refs = [], []
  for i in range(n):
    ex = split[i]
    paths.append(os.path.join(_OUT_DIR.value, f"{i:05d}.wav"))
    soundfile.write(paths[-1], np.asarray(ex["audio"], np.int16), 16_000, subtype="PCM_16")
    refs.append(catalog.as_text(ex["text"]))
  eval_json = os.path.join(_OUT_DIR.value, "evaluate.json")
  _run([sys.executable, os.path.join(HERE, "evaluate.py"), f"--workdir={_WORKDIR.value}",
        f"--split={_SPLIT.value}", f"--limit={n}", f"--decoder={decoder}", f"--out={eval_json}"])
  with open(eval_json) as f:
    evaluated = json.load(f)
  tr = _run([sys.executable, os.path.join(HERE, "transcribe.py"), f"--workdir={_WORKDIR.value}",
             f"--decoder={decoder}", "--json", *paths])
  with open(os.path.join(_OUT_DIR.value, "transcribe.jsonl"), "w") as f:
    f.write(tr.stdout)
  by_path = {r["path"]: r for r in map(json.loads, tr.stdout.splitlines())}
  files = [by_path[p]["text"] if by_path[p]["error"] is None else None for p in paths]
  rtf = re.search(r"RTF ([0-9.]+)", tr.stderr)
  if evaluated["references"] != refs:
    sys.exit("evaluate.py decoded other utterances than were written out")
  same = sum(a == b for a, b in zip(files, evaluated["hypotheses"]))
  differ = [(i, a, b) for i, (a, b) in enumerate(zip(files, evaluated["hypotheses"])) if a != b]
  wer_files = wer.format_wer(wer.corpus_errors(refs, [h or "" for h in files]))
  wer_eval = wer.format_wer(wer.corpus_errors(refs, evaluated["hypotheses"]))
  rtf_files = float(rtf.group(1)) if rtf else float("nan")
  print(f"\n{config.data.name} {_SPLIT.value}, first {n} utterances, {decoder} "
        f"{evaluated['decoder_options']}, LM {evaluated['lm']}")
  print("| path | identical hypotheses | WER % | RTF |")
  print("| --- | --- | --- | --- |")
  print(f"| evaluate.py (corpus arrays) | - | {wer_eval} | {evaluated['rtf']:.4f} |")
  print(f"| transcribe.py (wav files) | {same} / {n} | {wer_files} | {rtf_files:.4f} |")
  print(f"RTF ratio transcribe / evaluate: {rtf_files / evaluated['rtf']:.3f}")
  for i, a, b in differ[:5]:
    print(f"differs at {i}: file {a!r} vs corpus {b!r}")
  sys.exit(1 if differ else 0)


if __name__ == "__main__":
  app.run(main)
