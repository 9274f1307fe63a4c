r"""Streaming speed of a trained transducer on one CPU core: real-time factor and per-chunk latency.

  taskset -c 0 python experiments/bench_streaming.py --config=experiments/configs/convrnnt.py:demo \
      --workdir=workdirs/demo --chunk_ms=160 --utterances=50

Restores ``--workdir``, then feeds test utterances one at a time (batch 1) as audio
chunks of ``--chunk_ms``, as from a microphone, and times every chunk end to end:
streaming log-mel (`asrjax.data.log_mel_stream`), global normalisation, and
`asrjax.decoding.streaming.StreamingRecognizer` (encoder step + greedy decoding) on
the frames completed so far, in multiples of the encoder's chunk multiple (the rest
wait for the next chunk). One core: the script pins itself to the first core it may
use, selects JAX's CPU backend (also on a GPU machine) and asks XLA for a single
thread before JAX starts. Also checks that the streamed hypotheses equal
whole-utterance greedy decoding of the whole-utterance features. Prints one table
row and a JSON line.
"""

import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"  # the figure is for one CPU core, also where a GPU is present
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
from asrjax.data import log_mel_stream, pipeline, sources  # noqa: E402
from asrjax.decoding import streaming  # noqa: E402
from asrjax.models import transducer  # noqa: E402
from asrjax.train import config_check, step as step_lib, trainer  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "The training configuration.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir.")
_CHUNK_MS = flags.DEFINE_integer("chunk_ms", 160, "Chunk duration (a multiple of the encoder's chunk multiple x 10 ms).")
_UTTERANCES = flags.DEFINE_integer("utterances", 50, "Test utterances to stream.")
_SPLIT = flags.DEFINE_string("split", "test", "Split.")
flags.mark_flags_as_required(["config", "workdir"])


def measure(config, workdir: str, chunk_ms: int, utterances: int, split_name: str = "test") -> dict:
  model, params, _, step_config, _ = trainer.restore_params(config, workdir)
  if step_config.feature_mean is None:
    raise ValueError("streaming needs global feature statistics (data.normalization='global'); per-utterance "
                     "CMVN reads the whole utterance.")
  split = sources.open_split(config.data.name, split_name, config.data.data_dir)
  m = model.encoder.chunk_multiple
  if (chunk_ms // 10) % m or chunk_ms % 10:
    raise ValueError(f"--chunk_ms={chunk_ms} is not a multiple of {m * 10} ms.")
  featurize = jax.jit(lambda b: step_lib.featurize(b, jax.random.key(0), step_config, train=False))
  encode = jax.jit(lambda p, f, pad: model.apply(p, f, pad, method=transducer.Transducer.encode)[:2])
  fns = transducer.decoder_fns(model)
  rec = streaming.StreamingRecognizer(model, params, batch=1)
  front = log_mel_stream.LogMelStream(1, step_config.feature_mean, step_config.feature_std)
  samples = chunk_ms * 16
  # warm-up: compile every shape the timed loop meets (recogniser chunks of m .. chunk
  # frames; the front end's power-of-two buffers up to a chunk plus a frame)
  for n in range(m, chunk_ms // 10 + m, m):
    rec.accept(jnp.zeros((1, n, 80)), jnp.zeros((1, n)))
  for n in range(1, samples + 400, 160):
    front.reset()
    front.accept(np.zeros((1, n), np.float32))
  rec.reset()
  latencies, compute, audio_s, mismatches = [], 0.0, 0.0, 0
  for i in range(min(utterances, len(split))):
    audio = np.asarray(split[i]["audio"], np.float32)[None] / 32768.0
    front.reset()
    rec.reset()
    waiting = np.zeros((1, 0, 80), np.float32)
    fed = 0
    for start in range(0, audio.shape[1], samples):
      t0 = time.perf_counter()
      new = front.accept(audio[:, start : start + samples])
      waiting = np.concatenate([waiting, new], axis=1)
      ready = waiting.shape[1] - waiting.shape[1] % m
      if ready:
        rec.accept(waiting[:, :ready], np.zeros((1, ready), np.float32))  # returns host lists: synchronous
        waiting, fed = waiting[:, ready:], fed + ready
      latencies.append(time.perf_counter() - t0)
      compute += latencies[-1]
    audio_s += audio.shape[1] / 16_000
    batch = pipeline.pad_batch([split[i]], lambda t: [], -(-audio.shape[1] // 16_000) * 16_000, 1)  # whole seconds
    feats, pads = featurize({"audio": batch["audio"], "audio_paddings": batch["audio_paddings"]})
    enc, enc_pads = encode(params, feats[:, :fed], pads[:, :fed])
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
  app.run(main, flags_parser=config_check.parse_flags)
