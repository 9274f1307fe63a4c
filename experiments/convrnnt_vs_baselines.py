r"""ConvRNN-T against LSTM RNN-T, streaming Conformer and causal ContextNet, at matched size.

  python experiments/convrnnt_vs_baselines.py --variant=demo --workdir_root=workdirs/compare

Trains each model of ``--models`` with its config (``experiments/configs/<model>.py``,
variant ``--variant``; the four encoders have ~1.4 M parameters and zero look-ahead)
for every seed of ``--seeds`` with the one trainer, then streams test utterances on
one CPU core (`experiments/bench_streaming.py`, run as a subprocess so that it can pin
itself to a core). Prints one table: parameters, look-ahead, WER on dev and test,
streaming RTF on one core, per-chunk latency. WER is greedy by default (the encoders'
own accuracy; ``--decoder=config`` uses the variant's beam search and LM). A model
whose workdir already holds ``results.json`` is not retrained, nor re-streamed when it
holds ``stream_bench.json`` (delete them to measure again), so seeds can be added run
by run.

References:
  Radfar et al., "ConvRNN-T: Convolutional augmented recurrent neural network
  transducers for streaming speech recognition", Interspeech 2022 (Table 2).
"""

import importlib.util
import json
import os
import subprocess
import sys

from absl import app, flags, logging
import jax
import jax.numpy as jnp

from asrjax import atomic_file
from asrjax.train import config_check, trainer

_HERE = os.path.dirname(os.path.abspath(__file__))
_MODELS = flags.DEFINE_list("models", ["convrnnt", "lstm_rnnt", "conformer", "contextnet"], "Configs to compare.")
_VARIANT = flags.DEFINE_string("variant", "demo", "Config variant for every model ('' = default).")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Training seeds.")
_ROOT = flags.DEFINE_string("workdir_root", "workdirs/compare", "One workdir per model and seed under here.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_SPLITS = flags.DEFINE_list("splits", ["dev", "test", "test_unseen"], "Splits to score (test_unseen: the held-out synthesizer family).")
_MAX_SECONDS = flags.DEFINE_integer("max_train_seconds", None, "Override the training time budget per model.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "Override the number of steps (and cosine decay length).")
_DECODER = flags.DEFINE_string("decoder", "greedy", "Decoder of the WER columns: greedy (the encoders' own "
                               "accuracy, no LM) or 'config' (the variant's decoder and LM).")
_CHUNK_MS = flags.DEFINE_integer("chunk_ms", 160, "Streaming chunk for the latency measurement.")
_STREAM_UTTERANCES = flags.DEFINE_integer("stream_utterances", 50, "Test utterances streamed for RTF/latency.")


def load_config(model: str, variant: str):
  path = os.path.join(_HERE, "configs", f"{model}.py")
  spec = importlib.util.spec_from_file_location(f"config_{model}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant), f"{path}:{variant}" if variant else path


def encoder_facts(config) -> dict:
  model = trainer.build_model(config, vocab_size=32)  # the vocabulary only changes the output layer
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 48, 80)), jnp.zeros((1, 48)),
                          jnp.ones((1, 3), jnp.int32), jnp.zeros((1, 3)))
  enc = model.encoder
  return {"encoder_params": sum(x.size for x in jax.tree.leaves(shapes["params"]["encoder"])),
          "lookahead_ms": enc.lookahead_frames * enc.stack * 10}


def overrides(config, *, seed: int, data_dir: str, splits, max_train_seconds=None, num_steps=None,
              decoder: str = "greedy"):
  """The comparison's settings on a model config: seed, data, splits, budget, and the decoder
  (``"greedy"`` or another decoder name: no LM at all; ``"config"``: the variant's own)."""
  config.train.seed = seed
  config.data.data_dir = data_dir
  config.eval.splits = tuple(splits)
  if max_train_seconds is not None:
    config.train.max_train_seconds = max_train_seconds
  if num_steps is not None:
    config.train.num_steps = num_steps
  if decoder != "config":
    config.eval.decoder = decoder
    config.eval.decoder_options = {}
    config.eval.lm.order = 0
    config.eval.lm.word_order = 0
  return config


def stream_bench(config_arg: str, workdir: str, seed: int, *, fresh: bool) -> dict:
  """`bench_streaming.py`'s result for ``workdir``; cached in ``workdir/stream_bench.json`` for the
  same chunk and number of utterances, unless ``fresh`` (the model was just trained)."""
  path = os.path.join(workdir, "stream_bench.json")
  if os.path.exists(path) and not fresh:
    with open(path) as f:
      cached = json.load(f)
    if (cached.get("chunk_ms"), cached.get("utterances")) == (_CHUNK_MS.value, _STREAM_UTTERANCES.value):
      logging.info("%s: reusing %s", workdir, path)
      return cached
  result = _run_stream_bench(config_arg, workdir, seed)
  with atomic_file.open(path) as f:
    json.dump(result, f)
  return result


def _run_stream_bench(config_arg: str, workdir: str, seed: int) -> dict:
  cmd = [sys.executable, os.path.join(_HERE, "bench_streaming.py"), f"--config={config_arg}", f"--workdir={workdir}",
         f"--config.data.data_dir={_DATA_DIR.value}", f"--config.train.seed={seed}", f"--chunk_ms={_CHUNK_MS.value}",
         f"--utterances={_STREAM_UTTERANCES.value}"]
  out = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if out.returncode:
    raise RuntimeError(f"streaming benchmark failed for {workdir}:\n{out.stderr[-3000:]}")
  line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
  return json.loads(line[len("RESULT "):])


def planned_runs(models, variant: str, seeds, **settings) -> list:
  """``[(model, seed, config, config_arg)]`` of the comparison, every config checked first.

  Raises `ValueError` before anything is trained (each model trains for minutes) for an
  unknown model, a seed that is not an integer, or any invalid config field
  (`asrjax.train.config_check`).
  """
  known = config_check.model_names()
  unknown = [m for m in models if m not in known]
  if unknown or not models:
    raise ValueError(f"--models: unknown {unknown or 'empty list'}; choose from {list(known)}.")
  try:
    seeds = [int(s) for s in seeds]
  except ValueError:
    raise ValueError(f"--seeds must be integers; got {list(seeds)}.") from None
  runs = []
  for model in models:
    for seed in seeds:
      config, config_arg = load_config(model, variant)
      config = overrides(config, seed=seed, **settings)
      config_check.validate(config)
      runs.append((model, seed, config, config_arg))
  return runs


def main(argv):
  del argv
  rows = []
  runs = planned_runs(_MODELS.value, _VARIANT.value, _SEEDS.value, data_dir=_DATA_DIR.value, splits=_SPLITS.value,
                      max_train_seconds=_MAX_SECONDS.value, num_steps=_NUM_STEPS.value, decoder=_DECODER.value)
  for model, seed, config, config_arg in runs:
    workdir = os.path.join(_ROOT.value, f"{model}_seed{seed}")
    results_path = os.path.join(workdir, "results.json")
    trained = not os.path.exists(results_path)
    if trained:
      results = trainer.train_and_evaluate(config, workdir)
    else:
      logging.info("%s: reusing %s", model, results_path)
      with open(results_path) as f:
        results = json.load(f)
    row = {"model": model, "seed": seed, **encoder_facts(config), "steps": results["steps"],
           "train_minutes": results["train_seconds"] / 60,
           **{f"{s}_wer": results[s]["wer"] for s in _SPLITS.value if s in results}}
    row.update(stream_bench(config_arg, workdir, seed, fresh=trained))
    rows.append(row)
    logging.info("%s", row)
  os.makedirs(_ROOT.value, exist_ok=True)
  with atomic_file.open(os.path.join(_ROOT.value, "comparison.json")) as f:
    json.dump(rows, f, indent=1)
  wer_cols = [s for s in _SPLITS.value]
  print(f"variant {_VARIANT.value or 'default'}, corpus {config.data.name}, {_DECODER.value} decoding, "
        f"chunk {_CHUNK_MS.value} ms, "
        f"RTF/latency on one CPU core ({rows[0]['device'] if rows else '-'})")
  print("| model | seed | encoder params | look-ahead ms | steps | train min | "
        + " | ".join(f"WER {s} %" for s in wer_cols) + " | RTF | chunk latency p50/p95 ms |")
  print("| --- " * (8 + len(wer_cols)) + "|")
  for r in rows:
    wers = " | ".join(f"{100 * r[f'{s}_wer']:.2f}" if f"{s}_wer" in r else "-" for s in wer_cols)
    print(f"| {r['model']} | {r['seed']} | {r['encoder_params'] / 1e6:.2f} M | {r['lookahead_ms']} | {r['steps']} | "
          f"{r['train_minutes']:.1f} | {wers} | {r['rtf']:.4f} | {r['latency_ms_p50']:.1f} / {r['latency_ms_p95']:.1f} |")


if __name__ == "__main__":
  app.run(main)
