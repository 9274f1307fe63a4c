r"""Builds the embedded corpus (TFDS, array_record) under --data_dir.

  python experiments/build_corpus.py --config=tiny  --data_dir=data/tfds   # seconds
  python experiments/build_corpus.py --config=small --data_dir=data/tfds   # minutes
  python experiments/build_corpus.py --config=full  --data_dir=data/tfds   # ~28 min on 2 idle cores
  python experiments/build_corpus.py --config=full --datasets=speech       # the demo corpus, ~26 min
  python experiments/build_corpus.py --config=full --corpus=espeak         # the espeak-ng-only corpus of issue 3

``--corpus=synth`` (default) builds ``synth_speech`` and ``synth_multitalker``: espeak-ng, flite,
MBROLA and Pico voices for training, festival's voices only in ``test_unseen`` (issue 16).
``--corpus=espeak`` builds the older ``espeak_speech`` and ``espeak_multitalker``.
``--datasets`` picks speech and/or mixtures. Each split's utterance lengths (samples) are
then recorded in the dataset metadata so the input pipeline can bucket by length without
reading audio, and a summary table is printed. When both datasets are built, the speech
build keeps the clean renders of the utterances the mixtures use, so each is synthesised
once; they are deleted when the mixtures are written.

An unknown ``--config`` or a missing synthesizer or sox ends the run at once with one line
on stderr (exit status 1) saying what to do, before anything is written.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from absl import app, flags, logging

from asrjax.corpus import corpus_stats, espeak_corpus

_CONFIG = flags.DEFINE_string("config", "tiny", "Corpus config: tiny | small | full.")
_CORPUS = flags.DEFINE_enum("corpus", "synth", ["synth", "espeak"],
                            "synth: espeak-ng + flite + held-out festival (issue 16); espeak: espeak-ng only.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_WORKERS = flags.DEFINE_integer("workers", None, "Synthesis processes (default: all cores).")
_DATASETS = flags.DEFINE_multi_enum("datasets", ["speech", "multitalker"], ["speech", "multitalker"],
                                    "Which builders to run: the ASR/SV corpus and/or the two-talker mixtures.")
_BUILDERS = {
    "synth": {"speech": espeak_corpus.SynthSpeech, "multitalker": espeak_corpus.SynthMultitalker},
    "espeak": {"speech": espeak_corpus.EspeakSpeech, "multitalker": espeak_corpus.EspeakMultitalker},
}


def main(argv):
  del argv
  builders = _BUILDERS[_CORPUS.value]
  try:
    espeak_corpus.check_config(_CONFIG.value, builders["speech"].CONFIGS)
    if _WORKERS.value is not None and _WORKERS.value < 1:
      raise ValueError(f"--workers must be >= 1 (or left out for all cores); got {_WORKERS.value}.")
    espeak_corpus.require_tools(builders["speech"].FAMILIES)
  except (ValueError, RuntimeError) as e:
    sys.exit(f"build_corpus: {e}")
  datasets = list(dict.fromkeys(_DATASETS.value))
  cache = None
  if datasets == ["speech", "multitalker"]:
    cache = espeak_corpus.clean_cache_dir(_DATA_DIR.value, _CONFIG.value, _CORPUS.value)
  for name in datasets:
    builder = builders[name](config=_CONFIG.value, data_dir=_DATA_DIR.value, num_workers=_WORKERS.value,
                             clean_cache=cache)
    start = time.time()
    builder.download_and_prepare(file_format="array_record")
    corpus_stats.record_lengths(builder)
    logging.info("%s/%s ready in %.1f s at %s", builder.name, _CONFIG.value, time.time() - start, builder.data_dir)
    print(corpus_stats.summary_table(builder))
  if cache:
    shutil.rmtree(cache, ignore_errors=True)
    parent = os.path.dirname(cache)
    if os.path.isdir(parent) and not os.listdir(parent):
      os.rmdir(parent)


if __name__ == "__main__":
  app.run(main)
