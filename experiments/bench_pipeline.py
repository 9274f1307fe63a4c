r"""Input-pipeline throughput on the embedded corpus: host batching and log-mel features.

  python experiments/bench_pipeline.py --corpus=small --data_dir=data/tfds

Prints one table: time to index the split, utterances/s out of `BatchIterator`
(read array_record + tokenise + pad, one background thread), and utterances/s of
jitted log-mel + SpecAugment on this machine's CPU for the same batches.
"""

from __future__ import annotations

import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from asrjax.data import catalog, pipeline, sources, tokenizer
from asrjax.frontend import features, spec_augment

_CORPUS = flags.DEFINE_string("corpus", "small", "espeak_speech config.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 50, "Batches timed.")


def main(argv):
  del argv
  split = sources.open_split(f"espeak_speech/{_CORPUS.value}", "train", _DATA_DIR.value)
  texts = [catalog.as_text(split[i]["text"]) for i in range(len(split))]
  tok = tokenizer.CharTokenizer.build(texts)
  start = time.time()
  index = pipeline.build_index(split, tok.encode)
  index_s = time.time() - start
  config = pipeline.PipelineConfig(batch_size=_BATCH.value, max_labels=160)
  it = pipeline.BatchIterator(split, index, tok.encode, config, files=split.files)
  next(it)
  start = time.time()
  batches = [next(it) for _ in range(_STEPS.value)]
  host_rate = _STEPS.value * _BATCH.value / (time.time() - start)
  it.close()

  @jax.jit
  def featurize(key, audio, paddings):
    feats, feat_pad = features.log_mel(audio.astype(jnp.float32) / 32768.0, paddings)
    return spec_augment.spec_augment(key, features.normalize(feats, feat_pad), feat_pad), feat_pad

  key = jax.random.key(0)
  for b in batches:  # compile once per bucket
    jax.block_until_ready(featurize(key, b["audio"], b["audio_paddings"]))
  start = time.time()
  for b in batches:
    jax.block_until_ready(featurize(key, b["audio"], b["audio_paddings"]))
  feat_rate = len(batches) * _BATCH.value / (time.time() - start)
  audio_s = np.mean([(1 - b["audio_paddings"]).sum() / 16_000 / _BATCH.value for b in batches])
  fill = np.mean([1 - b["audio_paddings"].mean() for b in batches])
  print("| corpus | examples | index s | batch | host utt/s | log-mel+SpecAugment utt/s (CPU) | mean utt s | bucket fill |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  print(f"| {_CORPUS.value} | {len(split)} | {index_s:.1f} | {_BATCH.value} | {host_rate:.0f} | {feat_rate:.0f} | "
        f"{audio_s:.2f} | {fill:.2f} |")
  print(f"dropped (empty, too long, too many labels): {it.dropped}")


if __name__ == "__main__":
  app.run(main)
