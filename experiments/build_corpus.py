r"""Builds the embedded espeak-ng corpus (TFDS, array_record) under --data_dir.

  python experiments/build_corpus.py --config=tiny  --data_dir=data/tfds   # seconds
  python experiments/build_corpus.py --config=small --data_dir=data/tfds   # minutes
  python experiments/build_corpus.py --config=full  --data_dir=data/tfds   # ~21 min on 2 cores (35 h of speech)
  python experiments/build_corpus.py --config=full --datasets=speech       # the demo corpus, ~15 min

Builds ``espeak_speech`` and ``espeak_multitalker`` (``--datasets`` picks), then records each split's
utterance lengths (samples) in the dataset metadata so the input pipeline can
bucket by length without reading audio, and prints a summary table.

An unknown ``--config`` or a missing espeak-ng/sox ends the run at once with one line
on stderr (exit status 1) saying what to do, before anything is written.
"""

from __future__ import annotations

import sys
import time

from absl import app, flags, logging

from asrjax.corpus import corpus_stats, espeak_corpus

_CONFIG = flags.DEFINE_string("config", "tiny", "Corpus config: tiny | small | full.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_WORKERS = flags.DEFINE_integer("workers", None, "Synthesis processes (default: all cores).")
_DATASETS = flags.DEFINE_multi_enum("datasets", ["speech", "multitalker"], ["speech", "multitalker"],
                                    "Which builders to run: the ASR/SV corpus and/or the two-talker mixtures.")
_BUILDERS = {"speech": espeak_corpus.EspeakSpeech, "multitalker": espeak_corpus.EspeakMultitalker}


def main(argv):
  del argv
  try:
    espeak_corpus.check_config(_CONFIG.value)
    if _WORKERS.value is not None and _WORKERS.value < 1:
      raise ValueError(f"--workers must be >= 1 (or left out for all cores); got {_WORKERS.value}.")
    espeak_corpus.require_tools()
  except (ValueError, RuntimeError) as e:
    sys.exit(f"build_corpus: {e}")
  for builder_cls in (_BUILDERS[name] for name in dict.fromkeys(_DATASETS.value)):
    builder = builder_cls(config=_CONFIG.value, data_dir=_DATA_DIR.value, num_workers=_WORKERS.value)
    start = time.time()
    builder.download_and_prepare(file_format="array_record")
    corpus_stats.record_lengths(builder)
    logging.info("%s/%s ready in %.1f s at %s", builder.name, _CONFIG.value, time.time() - start, builder.data_dir)
    print(corpus_stats.summary_table(builder))


if __name__ == "__main__":
  app.run(main)
