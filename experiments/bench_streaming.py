r"""Streaming speed of a trained transducer on one CPU core: real-time factor and per-chunk latency.

  taskset -c 0 python experiments/bench_streaming.py --config=experiments/configs/convrnnt.py:demo \
      --workdir=workdirs/demo --chunk_ms=160 --utterances=50

Restores ``--workdir``, then feeds test utterances one at a time (batch 1) through
`asrjax.decoding.streaming.StreamingRecognizer` in chunks of ``--chunk_ms`` and times
every chunk (encoder step + greedy decoding of its frames). The log-mel front end is
computed per utterance and its time is added to the total (framing is streamable;
the cost is small). One core: the script pins itself to CPU 0 and asks XLA for a
single thread before JAX starts. Also checks that the streamed hypotheses equal
whole-utterance greedy decoding. Prints one table row and a JSON line.
"""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
if hasattr(os, "sched_setaffinity"):
  os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import json  # noqa: E402
import time  # noqa: E402

from absl import app, flags  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from asrjax import decoding  # noqa: E402
from asrjax.data import pipeline, sources  # noqa: E402
from asrjax.decoding import streaming  # noqa: E402
from asrjax.models import transducer  # noqa: E402
from asrjax.train import step as step_lib, trainer  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "The training configuration.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir.")
_CHUNK_MS = flags.DEFINE_integer("chunk_ms", 160, "Chunk duration (a multiple of the encoder's chunk multiple x 10 ms).")
_UTTERANCES = flags.DEFINE_integer("utterances", 50, "Test utterances to stream.")
_SPLIT = flags.DEFINE_string("split", "test", "Split.")
flags.mark_flags_as_required(["config", "workdir"])


def measure(config, workdir: str, chunk_ms: int, utterances: int, split_name: str = "test") -> dict:
  model, params, _, step_config = trainer.restore_params(config, workdir)
  split = sources.open_split(config.data.name, split_name, config.data.data_dir)
  chunk = chunk_ms // 10
  if chunk % model.encoder.chunk_multiple:
    raise ValueError(f"--chunk_ms={chunk_ms} is not a multiple of {model.encoder.chunk_multiple * 10} ms.")
  featurize = jax.jit(lambda b: step_lib.featurize(b, jax.random.key(0), step_config, train=False))
  encode = jax.jit(lambda p, f, pad: model.apply(p, f, pad, method=transducer.Transducer.encode)[:2])
  fns = transducer.decoder_fns(model)
  rec = streaming.StreamingRecognizer(model, params, batch=1)
  # warm-up: compile the chunk step (and a short last chunk of every possible length)
  for n in range(model.encoder.chunk_multiple, chunk + 1, model.encoder.chunk_multiple):
    rec.accept(jnp.zeros((1, n, 80)), jnp.zeros((1, n)))
  rec.reset()
  longest = max(len(split[i]["audio"]) for i in range(min(utterances, len(split))))
  for seconds in range(1, -(-longest // 16_000) + 1):  # and the front end for every whole-second length
    featurize({"audio": np.zeros((1, seconds * 16_000), np.int16), "audio_paddings": np.zeros((1, seconds * 16_000))})
  latencies, compute, audio_s, mismatches = [], 0.0, 0.0, 0
  for i in range(min(utterances, len(split))):
    ex = split[i]
    n = len(ex["audio"])
    bucket = -(-n // 16_000) * 16_000  # whole seconds: few front-end shapes
    batch = pipeline.pad_batch([ex], lambda t: [], bucket, 1)
    t0 = time.perf_counter()
    feats, pads = jax.device_get(featurize({"audio": batch["audio"], "audio_paddings": batch["audio_paddings"]}))
    compute += time.perf_counter() - t0  # chunks are cut on the host, as frames arriving from a microphone
    frames = int((pads[0] == 0).sum())
    frames -= frames % model.encoder.chunk_multiple
    rec.reset()
    for start in range(0, frames, chunk):
      stop = min(start + chunk, frames)
      t0 = time.perf_counter()
      rec.accept(feats[:, start:stop], pads[:, start:stop])  # returns host lists: synchronous
      latencies.append(time.perf_counter() - t0)
      compute += latencies[-1]
    audio_s += n / 16_000
    enc, enc_pads = encode(params, feats[:, :frames], pads[:, :frames])
    whole = decoding.greedy_search(fns, params, enc, enc_pads).to_lists()[0][0][0]
    mismatches += int(whole != rec.labels[0])
  lat = np.asarray(latencies) * 1000
  return {"rtf": compute / audio_s, "chunk_ms": chunk_ms, "latency_ms_p50": float(np.percentile(lat, 50)),
          "latency_ms_p95": float(np.percentile(lat, 95)), "utterances": min(utterances, len(split)),
          "audio_s": audio_s, "stream_vs_whole_mismatches": mismatches, "device": jax.devices()[0].device_kind,
          "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}


def main(argv):
  del argv
  r = measure(_CONFIG.value, _WORKDIR.value, _CHUNK_MS.value, _UTTERANCES.value, _SPLIT.value)
  print("| chunk ms | RTF (1 core) | chunk latency p50 / p95 ms | streamed != whole |")
  print("| --- | --- | --- | --- |")
  print(f"| {r['chunk_ms']} | {r['rtf']:.4f} | {r['latency_ms_p50']:.2f} / {r['latency_ms_p95']:.2f} | "
        f"{r['stream_vs_whole_mismatches']} of {r['utterances']} |")
  print("RESULT " + json.dumps(r))
  sys.stdout.flush()


if __name__ == "__main__":
  app.run(main)
