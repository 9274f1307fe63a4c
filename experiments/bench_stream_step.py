r"""Per-chunk cost of `StreamingRecognizer.accept` on one CPU core, with no corpus and no training.

  taskset -c 0 python experiments/bench_stream_step.py --config=experiments/configs/convrnnt.py:demo

Builds the config's model with random weights (the cost of a chunk does not depend on
the weights' values) and streams ``--chunks`` chunks of ``--chunk_frames`` random
log-mel frames at batch 1, timing each call end to end: the input checks, the encoder
step, greedy decoding and the transfer of the results (every channel of a multi-channel
model, `experiments/configs/sts_multitalker.py`). It isolates the recogniser
from the front end and the data, so changes to the streaming path can be measured
anywhere (`bench_streaming.py` measures the whole path on a trained workdir). Prints
one table row.
"""

import time

from absl import app, flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from asrjax.inference import streaming
from asrjax.train import config_check, trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Model configuration.", lock_config=True)
_CHUNK_FRAMES = flags.DEFINE_integer("chunk_frames", 16, "10 ms frames per chunk (a multiple of the encoder's).")
_CHUNKS = flags.DEFINE_integer("chunks", 200, "Timed chunks (after 5 untimed ones).")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  config = _CONFIG.value
  config_check.validate(config)
  if _CHUNK_FRAMES.value < 1 or _CHUNKS.value < 1:
    raise app.UsageError("--chunk_frames and --chunks must be >= 1.")
  model = trainer.build_model(config, 32)
  t = _CHUNK_FRAMES.value
  labels = (1, model.channels, 3) if hasattr(model, "channels") else (1, 3)  # a multi-channel model: [B, C, U]
  params = model.init(jax.random.key(0), jnp.ones((1, t, 80)), jnp.zeros((1, t)), jnp.ones(labels, jnp.int32),
                      jnp.zeros(labels))
  recognizer = streaming.StreamingRecognizer(model, params, batch=1)
  feats = np.random.default_rng(0).normal(size=(1, t, 80)).astype(np.float32)
  pads = np.zeros((1, t), np.float32)
  for _ in range(5):
    recognizer.accept(feats, pads)
  times = []
  for _ in range(_CHUNKS.value):
    start = time.perf_counter()
    recognizer.accept(feats, pads)
    times.append(time.perf_counter() - start)
  ms = 1e3 * np.asarray(times)
  print("| model | chunk ms | median ms per chunk | p95 ms | chunks |")
  print("| --- | --- | --- | --- | --- |")
  print(f"| {config.model.name} | {10 * t} | {np.median(ms):.2f} | {np.percentile(ms, 95):.2f} | {len(ms)} |")


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
