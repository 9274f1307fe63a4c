"""Bad-input sweep: every launcher under experiments/ with wrong flags, as a user types them.

Each case runs the launcher in a subprocess (no corpus is built, nothing is trained):
a clear error is a non-zero exit whose last lines say what is wrong, with no chained
traceback ("During handling of the above exception") burying it; and it must come
before any long work (the corpus build, the training).
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.sweep import cases
from tests.sweep.cases import Case

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "experiments/configs/convrnnt.py")
_TMP = tempfile.mkdtemp(prefix="sweep_launchers_")  # workdirs the refused launches name (some create them)
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
WD = os.path.join(_TMP, "wd")


class LaunchFailed(Exception):
  """A launcher exited non-zero; the message is the tail of what it printed."""


def launch(script, *args, timeout=240):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", script), *args], capture_output=True,
                       text=True, env=env, timeout=timeout, cwd=ROOT)
  text = out.stdout + out.stderr
  if out.returncode == 0:
    return text
  if "During handling of the above exception" in text:
    raise RuntimeError("chained traceback:\n" + text[-3000:])
  raise LaunchFailed("\n".join(text.strip().splitlines()[-15:]))


def _case(id_, script, args, match):
  return Case(f"launchers/{script}/{id_}", lambda: launch(script, *args), raises=LaunchFailed, match=match)


def _workdir_with_run_config() -> str:
  """A workdir whose run (as `run_config.save` records it) had 24 encoder channels, not the tiny 16."""
  import importlib.util
  from asrjax.train import run_config
  spec = importlib.util.spec_from_file_location("c", CONFIG)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config("tiny")
  config.model.encoder.channels = 24
  workdir = os.path.join(_TMP, "wd_with_run_config")
  os.makedirs(workdir, exist_ok=True)
  run_config.save(config, workdir)
  return workdir


def _broken_config() -> str:
  """A config file with a bug of its own: its KeyError must surface as itself, not as a bad override."""
  path = os.path.join(_TMP, "broken_config.py")
  with open(path, "w") as f:
    f.write('def get_config(arg=None):\n  return {}["no_such_key_in_the_config_file"]\n')
  return path


CASES = [
    _case("no-workdir", "train.py", [f"--config={CONFIG}:tiny"], "--workdir must have a value"),
    _case("unknown-variant", "train.py", [f"--config={CONFIG}:tinny", f"--workdir={WD}"],
          "unknown config variant 'tinny'"),
    _case("batch-size-0", "train.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}",
                                       "--config.data.batch_size=0"], r"data\.batch_size=0: expected a positive"),
    _case("num-steps-negative", "train.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}",
                                             "--config.train.num_steps=-5"], r"train\.num_steps=-5"),
    _case("unknown-model", "train.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}",
                                        "--config.model.name=transformer"], r"model\.name='transformer'"),
    _case("typo-field", "train.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}",
                                     "--config.train.num_step=5"], "names no config field.*num_step"),
    _case("no-corpus", "train.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}",
                                    "--config.data.data_dir=/nonexistent/tfds"], r"/nonexistent/tfds.*build_corpus"),
    _case("not-a-workdir", "evaluate.py", [f"--config={CONFIG}:tiny", "--workdir=/nonexistent/wd"],
          "no tokenizer at /nonexistent/wd"),
    _case("unknown-decoder", "evaluate.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}", "--decoder=viterbi"],
          "--decoder"),
    _case("negative-limit", "evaluate.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}", "--limit=-1"],
          "--limit"),
    _case("options-not-json", "evaluate.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}",
                                              "--decoder_options={beam: 4"], "--decoder_options"),
    _case("average-0", "evaluate.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}", "--average=0"], "--average"),
    Case("launchers/evaluate.py/no-config-and-none-in-the-workdir",
         lambda: launch("evaluate.py", f"--workdir={_TMP}"), raises=LaunchFailed,
         match=r"--config is needed: .*config\.json does not exist"),
    Case("launchers/evaluate.py/config-of-another-model",
         lambda: launch("evaluate.py", f"--config={CONFIG}:tiny", f"--workdir={_workdir_with_run_config()}"),
         raises=LaunchFailed, match=r"another model, tokenizer or front end.*model\.encoder\.channels: 24 != 16"),
    _case("typo-field", "evaluate.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}", "--config.eval.lm.weigth=1"],
          "names no config field.*weigth"),
    _case("typo-field", "bench_decoders.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}", "--config.trian.seed=1"],
          "names no config field.*trian"),
    Case("launchers/train.py/bug-in-the-config-file", lambda: launch(
        "train.py", f"--config={_broken_config()}", f"--workdir={WD}", "--config.train.seed=1"),
         raises=LaunchFailed, match=r"KeyError: 'no_such_key_in_the_config_file'"),
    _case("bad-config-field", "evaluate.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}",
                                              "--config.eval.lm.discount=1.5"], r"eval\.lm\.discount=1\.5"),
    _case("unknown-corpus", "build_corpus.py", ["--config=tinny", f"--data_dir={_TMP}/tfds"], "tiny"),
    _case("unknown-dataset", "build_corpus.py", ["--datasets=speach", f"--data_dir={_TMP}/tfds"], "speech"),
    _case("bad-config-before-corpus", "demo.py", [f"--config={CONFIG}:demo", f"--data_dir={_TMP}/tfds",
                                                  "--config.data.batch_size=0"], r"data\.batch_size=0"),
    _case("unknown-lm", "pocketsphinx_baseline.py", ["--lms=neural_lm", f"--data_dir={_TMP}/tfds"], "neural_lm"),
    _case("negative-limit", "pocketsphinx_baseline.py", ["--limit=-3", f"--data_dir={_TMP}/tfds"], "--limit must be >= 0"),
    _case("workers-0", "pocketsphinx_baseline.py", ["--workers=0", f"--data_dir={_TMP}/tfds"], "--workers >= 1"),
    _case("unknown-model", "convrnnt_vs_baselines.py", ["--models=transformer", f"--workdir_root={_TMP}/compare"],
          "--models: unknown.*transformer"),
    _case("seed-not-int", "convrnnt_vs_baselines.py", ["--models=convrnnt", "--seeds=zero", f"--workdir_root={_TMP}/compare"],
          "--seeds must be integers"),
    _case("unknown-decoder", "convrnnt_vs_baselines.py", ["--models=convrnnt", "--decoder=viterbi",
                                                          f"--workdir_root={_TMP}/compare"], r"eval\.decoder='viterbi'"),
    _case("chunk-frames-0", "bench_stream_step.py", [f"--config={CONFIG}:tiny", "--chunk_frames=0"],
          "--chunk_frames and --chunks must be >= 1"),
    _case("chunk-not-a-multiple", "bench_stream_step.py", [f"--config={CONFIG}:tiny", "--chunk_frames=16"],
          "feats chunk length 16 is not a multiple of 3 frames"),
    _case("no-files", "transcribe.py", [f"--workdir={_TMP}"], "give one or more audio files"),
    _case("no-run-config", "transcribe.py", [f"--workdir={_TMP}", "a.wav"], r"config\.json does not exist"),
    _case("options-not-json", "transcribe.py", [f"--workdir={_TMP}", "--decoder_options={beam", "a.wav"],
          "--decoder_options must be a JSON object"),
    _case("average-0", "transcribe.py", [f"--workdir={_TMP}", "--average=0", "a.wav"], "--average must be >= 1"),
    _case("unknown-sizes", "bench_rnnt_loss.py", ["--sizes=enormous"], "--sizes"),
    _case("huge-on-cpu", "bench_rnnt_loss.py", ["--sizes=huge"], "--sizes=huge is 2.47e9 logits"),
    _case("bad-shape", "diagnose_rnnt_kernel.py", ["--shapes=32x700,3y"], r"--shapes: '3y' is not NxV"),
    _case("zero-rows", "diagnose_rnnt_kernel.py", ["--shapes=0x5"], r"--shapes: '0x5' is not NxV"),
    _case("no-eval-json", "error_breakdown.py", [f"--config={CONFIG}:tiny", f"--workdir={WD}",
                                             "--eval_json=/nonexistent.json"],
          "/nonexistent.json"),
    _case("no-evaluation", "fairness_audit.py", [f"--workdir={WD}"],
          r"no evaluation at .*eval_test_greedy.json; run experiments/evaluate.py"),
    _case("draws-0", "fairness_audit.py", [f"--workdir={WD}", "--draws=0"], "--draws must be >= 1"),
    _case("no-evaluation", "fairness_cohorts.py", [f"--workdir={WD}"],
          r"no evaluation at .*eval_test_greedy.json; run experiments/evaluate.py"),
    _case("seeds-not-integers", "fairness_cohorts.py", [f"--workdir={WD}", "--seeds=a,b"], "--seeds must be integers"),
    _case("seeds-repeated", "fairness_cohorts.py", [f"--workdir={WD}", "--seeds=1,1"], "--seeds must be distinct"),
    _case("unknown-run", "sts_multitalker.py", ["--runs=full,bogus"], r"--runs: unknown \['bogus'\]"),
    _case("no-baseline-run", "sts_multitalker.py", [f"--baseline_workdir={_TMP}/no_run",
                                                    f"--results_dir={_TMP}/sts_results"],
          "--baseline_workdir: .* holds no trained run"),
    _case("limit-negative", "sts_multitalker.py", ["--limit=-1"], "--limit must be >= 0"),
    _case("pretrained-without-baseline", "sts_multitalker.py", ["--runs=pre_full", f"--workdir_root={_TMP}/sts_pre",
                                                                f"--results_dir={_TMP}/sts_pre_results"],
          "--runs=pre_full starts from --baseline_workdir's parameters: '' holds no trained run"),
    _case("mixtures-0", "sts_alignment.py", [f"--workdir={WD}", "--mixtures=0"], "--mixtures must be >= 1"),
    _case("no-base-run", "fairness_ewc.py", [f"--base_workdir={_TMP}/no_run", f"--workdir_root={_TMP}/fair"],
          "--base_workdir: .* holds no trained run"),
    _case("steps-0", "fairness_ewc.py", [f"--base_workdir={WD}", "--steps=0"], "--steps must be >= 1"),
    _case("ewc-weight-0", "fairness_ewc.py", [f"--base_workdir={WD}", "--ewc_weights=1e3,0"],
          r"--ewc_weights must be > 0 \(the plain run is the weight-0 one\)"),
    _case("ewc-weights-repeated", "fairness_ewc.py", [f"--base_workdir={WD}", "--ewc_weights=1e3,1e3"],
          "--ewc_weights must be distinct"),
    _case("seeds-not-integers", "fairness_ewc.py", [f"--base_workdir={WD}", "--seeds=a"], "--seeds must be ints"),
    _case("kmeans-without-sv", "fairness_ewc.py", [f"--base_workdir={WD}", "--cohorts=embedding_kmeans"],
          "--cohorts=embedding_kmeans clusters speaker embeddings: pass --sv_workdir"),
]


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_sweep(case):
  cases.assert_case(case)
