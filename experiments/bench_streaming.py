r"""Streaming speed of a trained transducer on one CPU core: real-time factor and per-chunk latency.

  taskset -c 0 python experiments/bench_streaming.py --workdir=workdirs/demo/convrnnt --chunk_ms=160 --utterances=50

Restores ``--workdir`` (with its own config, ``<workdir>/config.json``, unless
``--config`` is given), then feeds test utterances one at a time as audio chunks of
``--chunk_ms``, as from a microphone, to `asrjax.inference.Recognizer.stream` (an
`asrjax.inference.streaming.AudioStream`: streaming log-mel, global normalisation,
encoder step + greedy decoding on the frames completed so far, in multiples of the
encoder's chunk multiple; the rest wait for the next chunk) and times every
``accept_waveform`` end to end, and ``finalize`` (the waiting frames, padded). One
core: the script pins itself to the first core it may use, selects JAX's CPU backend
(also on a GPU machine) and asks XLA for a single thread before JAX starts. Also
checks that each streamed result equals whole-utterance greedy decoding
(`Recognizer.recognize` of the whole utterance). Prints one table row and a JSON line.
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
import numpy as np  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from asrjax.data import sources  # noqa: E402
from asrjax.inference import Recognizer  # noqa: E402
from asrjax.train import config_check, run_config  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "The training configuration (default: the one the run "
                                          "wrote to <workdir>/config.json).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir.")
_CHUNK_MS = flags.DEFINE_integer("chunk_ms", 160, "Chunk duration (a multiple of the encoder's chunk multiple x 10 ms).")
_UTTERANCES = flags.DEFINE_integer("utterances", 50, "Test utterances to stream.")
_SPLIT = flags.DEFINE_string("split", "test", "Split.")
flags.mark_flags_as_required(["workdir"])


def warm_up(recognizer, chunk_samples: int, multiple: int) -> None:
  """Compiles every shape the timed loop meets: the front end's power-of-two buffers up to a chunk plus
  a window, and the recogniser's pieces (`streaming.pieces`) up to a chunk plus a multiple of frames."""
  for n in range(1, chunk_samples + 400 + 160 * multiple, 160):
    stream = recognizer.stream()
    stream.accept_waveform(np.zeros(n, np.int16))
    stream.finalize()


def measure(config, workdir: str, chunk_ms: int, utterances: int, split_name: str = "test") -> dict:
  recognizer = Recognizer.from_workdir(workdir, config=config, decoder="greedy")
  m = recognizer.stream().chunk_multiple  # refuses a model that cannot stream (per-utterance CMVN), naming why
  if (chunk_ms // 10) % m or chunk_ms % 10:
    raise ValueError(f"--chunk_ms={chunk_ms} is not a multiple of {m * 10} ms.")
  split = sources.open_split(config.data.name, split_name, config.data.data_dir)
  samples = chunk_ms * 16
  warm_up(recognizer, samples, m)
  latencies, finals, compute, audio_s, mismatches = [], [], 0.0, 0.0, 0
  for i in range(min(utterances, len(split))):
    audio = np.asarray(split[i]["audio"], np.int16)
    stream = recognizer.stream()
    for start in range(0, audio.size, samples):
      t0 = time.perf_counter()
      stream.accept_waveform(audio[start : start + samples])  # returns the partial text: synchronous
      latencies.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    result = stream.finalize()
    finals.append(time.perf_counter() - t0)
    chunks = -(-audio.size // samples)  # this utterance's chunks: the last ones timed
    compute += sum(latencies[-chunks:]) + finals[-1]
    audio_s += audio.size / 16_000
    mismatches += int(result.text != recognizer.recognize(audio, 16_000).text)
  lat, fin = np.asarray(latencies) * 1000, np.asarray(finals) * 1000
  return {"rtf": compute / audio_s, "chunk_ms": chunk_ms, "latency_ms_p50": float(np.percentile(lat, 50)),
          "latency_ms_p95": float(np.percentile(lat, 95)), "latency_ms_max": float(lat.max()), "finalize_ms_p50": float(np.percentile(fin, 50)), "finalize_ms_max": float(fin.max()),
          "utterances": min(utterances, len(split)), "audio_s": audio_s, "stream_vs_whole_mismatches": mismatches,
          "device": jax.devices()[0].device_kind,
          "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}


def _config():
  """``--config`` (with its overrides), else the config the run wrote to its workdir."""
  try:
    return run_config.resolve(_CONFIG.value, _WORKDIR.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None


def main(argv):
  del argv
  r = measure(_config(), _WORKDIR.value, _CHUNK_MS.value, _UTTERANCES.value, _SPLIT.value)
  print("| chunk ms | RTF (1 core) | chunk latency p50 / p95 ms | finalize p50 ms | streamed != whole |")
  print("| --- | --- | --- | --- | --- |")
  print(f"| {r['chunk_ms']} | {r['rtf']:.4f} | {r['latency_ms_p50']:.2f} / {r['latency_ms_p95']:.2f} | "
        f"{r['finalize_ms_p50']:.2f} | {r['stream_vs_whole_mismatches']} of {r['utterances']} |")
  print("RESULT " + json.dumps(r))
  sys.stdout.flush()


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
