"""Offline synthesis of the embedded corpus: sentences (`text`), speakers, espeak-ng and SoX
(`synthesis`), the plan of a build, two-talker mixtures and the TFDS builders (`espeak_corpus`).

Only `experiments/build_corpus.py` and the tests need this package: training and evaluation
open prepared splits through `asrjax.data.sources` without importing it."""
