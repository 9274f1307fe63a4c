r"""pocketsphinx (hybrid HMM/GMM) baseline on the embedded corpus: WER overall, per accent and per family.

  python experiments/pocketsphinx_baseline.py --corpus=small --data_dir=data/tfds --workdir=workdirs/pocketsphinx
  python experiments/pocketsphinx_baseline.py --corpus=full --split=test_unseen --limit=800 ...  # festival's voices

Decodes a split twice: with pocketsphinx's own en-US trigram LM, and with a
trigram LM built from the corpus' training transcripts (in-domain). Writes
``results.json`` (hypotheses and error counts) to --workdir and prints the tables.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time

from absl import app, flags

from asrjax import atomic_file
from asrjax.baselines import pocketsphinx_asr
from asrjax.data import catalog, sources
from asrjax.metrics import wer

_DATASET = flags.DEFINE_string("dataset", "synth_speech", "Embedded corpus: synth_speech | espeak_speech.")
_CORPUS = flags.DEFINE_string("corpus", "small", "Its config: tiny | small | full.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_SPLIT = flags.DEFINE_string("split", "test", "Split to decode.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Decode only the first N utterances (0 = all).")
_WORKERS = flags.DEFINE_integer("workers", os.cpu_count() or 1, "Decoder processes.")
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/pocketsphinx", "Output directory.")
_LMS = flags.DEFINE_list("lms", ["default_lm", "train_text_lm"],
                         "Language models: pocketsphinx's en-US LM and/or a trigram LM of the training text.")

_recognizers: dict = {}


def _init(lm_paths):
  for name, path in lm_paths.items():
    _recognizers[name] = pocketsphinx_asr.Recognizer(lm=path)


def _decode(args):
  name, audio = args
  return _recognizers[name].recognize(audio)


def main(argv):
  del argv
  unknown = set(_LMS.value) - {"default_lm", "train_text_lm"}
  if unknown or not _LMS.value:  # checked before minutes of reading and decoding
    raise app.UsageError(f"unknown --lms {sorted(unknown) or 'empty list'}; choose from default_lm, train_text_lm.")
  if _LIMIT.value < 0 or _WORKERS.value < 1:
    raise app.UsageError(f"--limit must be >= 0 (0 = all) and --workers >= 1; got {_LIMIT.value} and "
                         f"{_WORKERS.value}.")
  os.makedirs(_WORKDIR.value, exist_ok=True)
  name = f"{_DATASET.value}/{_CORPUS.value}"
  train = sources.open_split(name, "train", _DATA_DIR.value)
  lm_path = pocketsphinx_asr.build_arpa_lm(
      [catalog.as_text(train[i]["text"]) for i in range(len(train))], os.path.join(_WORKDIR.value, "train_text.arpa"))
  split = sources.open_split(name, _SPLIT.value, _DATA_DIR.value)
  n = len(split) if not _LIMIT.value else min(_LIMIT.value, len(split))
  examples = [split[i] for i in range(n)]
  refs = [catalog.as_text(e["text"]) for e in examples]
  accents = [catalog.as_text(e["accent"]) for e in examples]
  families = [catalog.as_text(e["family"]) if "family" in e else "espeak-ng" for e in examples]
  lm_paths = {k: v for k, v in {"default_lm": None, "train_text_lm": lm_path}.items() if k in _LMS.value}
  results = {}
  ctx = multiprocessing.get_context("spawn")
  with ctx.Pool(_WORKERS.value, initializer=_init, initargs=(lm_paths,)) as pool:
    for lm_name in lm_paths:
      start = time.time()
      hyps = pool.map(_decode, [(lm_name, e["audio"]) for e in examples], chunksize=4)
      seconds = time.time() - start
      audio_seconds = sum(len(e["audio"]) for e in examples) / 16_000
      per_accent = wer.grouped_errors(refs, hyps, accents)
      per_family = wer.grouped_errors(refs, hyps, families)
      total = wer.corpus_errors(refs, hyps)
      print(f"\npocketsphinx, {lm_name}, {name} {_SPLIT.value} ({n} utterances): "
            f"WER {100 * total.wer:.1f}%, RTF {seconds * _WORKERS.value / audio_seconds:.3f} (per core)")
      print(wer.wer_table({"all": total, **per_accent}, "accent"))
      print(wer.wer_table(per_family, "family"))
      results[lm_name] = {
          "wer": total.wer,
          "per_accent": {k: v.wer for k, v in per_accent.items()},
          "per_family": {k: v.wer for k, v in per_family.items()},
          "hypotheses": hyps,
      }
  with atomic_file.open(os.path.join(_WORKDIR.value, "results.json")) as f:
    json.dump({"dataset": name, "split": _SPLIT.value, "references": refs, "accents": accents, "families": families,
               **results}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
