"""Recognizer: arrays, files, rates and channels give the hypotheses of the evaluation path.

The workdir is made by hand (config, tokenizer, unit feature statistics, one
checkpoint of a freshly initialised tiny ConvRNN-T), so no corpus is needed; the
untrained model's hypotheses are arbitrary but deterministic and depend on every
sample, which is what equality between paths needs. References: `evaluate` on the
same array (the one evaluation path), and scipy's resampler applied by hand.
"""

import json
import os

import numpy as np
import pytest
from scipy import signal
import soundfile

from asrjax.inference import Recognizer
from asrjax.inference import evaluation
from asrjax.train import run_config
from asrjax.tasks import transducer_asr
from tests.inference import workdirs

RNG = np.random.default_rng(0)
SPEECH = (RNG.normal(0, 3000, size=12_000)).astype(np.int16)  # 0.75 s at 16 kHz


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  return workdirs.make(str(tmp_path_factory.mktemp("wd")))


@pytest.fixture(scope="module")
def rec(workdir):
  return Recognizer.from_workdir(workdir)


def _same(a, b):
  return a.text == b.text and [t for t, _ in a.nbest] == [t for t, _ in b.nbest] and np.allclose(
      [s for _, s in a.nbest], [s for _, s in b.nbest], rtol=1e-5, atol=1e-4)


def test_an_array_gives_the_hypothesis_of_evaluate(workdir, rec):
  restored = transducer_asr.restore_params(run_config.load(workdir), workdir)
  ev = evaluation.evaluate(restored.model, restored.params, [{"audio": SPEECH, "text": "x"}], restored.tokenizer,
                           front_end=restored.front_end)
  got = rec.recognize(SPEECH, 16_000)
  assert got.text == ev["hypotheses"][0] and got.text  # a non-empty hypothesis: the comparison means something
  assert _same(rec.recognize(SPEECH.astype(np.float32) / 32768, 16_000), got)  # float audio, same samples


def test_files_at_16k_8k_and_44k_stereo_decode_as_the_arrays_resampled_by_hand(tmp_path, rec):
  x = SPEECH.astype(np.float32) / 32768
  soundfile.write(tmp_path / "a16.wav", SPEECH, 16_000, subtype="PCM_16")
  x8 = signal.resample_poly(x, 1, 2).astype(np.float32)
  soundfile.write(tmp_path / "a8.flac", (x8 * 32767).astype(np.int16), 8_000)
  x44 = signal.resample_poly(x, 441, 160).astype(np.float32)
  soundfile.write(tmp_path / "a44.wav", np.stack([x44, x44], axis=1), 44_100, subtype="FLOAT")
  got = rec.recognize_files([str(tmp_path / n) for n in ("a16.wav", "a8.flac", "a44.wav")])
  assert [r.error for r in got] == [None] * 3 and got[0].path.endswith("a16.wav")
  assert _same(got[0], rec.recognize(SPEECH, 16_000))
  back8 = np.clip(signal.resample_poly(soundfile.read(tmp_path / "a8.flac", dtype="float32")[0], 2, 1), -1, 1)
  assert _same(got[1], rec.recognize(np.round(back8 * 32768).clip(-32768, 32767).astype(np.int16), 16_000))
  back44 = np.clip(signal.resample_poly(x44, 160, 441), -1, 1)
  assert _same(got[2], rec.recognize(np.round(back44 * 32768).clip(-32768, 32767).astype(np.int16), 16_000))


def test_bad_files_are_named_and_the_good_ones_still_transcribed(tmp_path, rec):
  soundfile.write(tmp_path / "good.wav", SPEECH, 16_000)
  (tmp_path / "text.wav").write_text("not audio")
  soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.int16), 16_000)
  soundfile.write(tmp_path / "nan.wav", np.array([0.1, np.nan] * 400, np.float32), 16_000, subtype="FLOAT")
  paths = [str(tmp_path / n) for n in ("missing.wav", "text.wav", "empty.wav", "nan.wav", "good.wav")]
  got = rec.recognize_files(paths)
  assert [r.path for r in got] == paths
  assert "missing.wav" in got[0].error and got[1].error and "shorter than one 25 ms" in got[2].error
  assert "non-finite" in got[3].error or "NaN" in got[3].error
  assert got[4].error is None and _same(got[4], rec.recognize(SPEECH, 16_000))


def test_a_workdir_without_a_run_config_needs_one(tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json does not exist: pass config="):
    Recognizer.from_workdir(str(tmp_path))


def _transcribe(*args):
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return subprocess.run([sys.executable, os.path.join(root, "experiments/transcribe.py"), *args], capture_output=True,
                        text=True, env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=root), timeout=300)


@pytest.mark.slow  # suite budget (a launcher subprocess); `make test-slow`, which CI runs too
def test_the_transcribe_launcher_prints_each_file_and_fails_for_a_bad_one(tmp_path, workdir, rec):
  soundfile.write(tmp_path / "good.wav", SPEECH, 16_000)
  out = _transcribe(f"--workdir={workdir}", str(tmp_path / "good.wav"), str(tmp_path / "missing.wav"))
  lines = out.stdout.splitlines()
  assert out.returncode == 1 and "1 of 2 files could not be transcribed" in out.stderr
  assert lines[0] == f"{tmp_path / 'good.wav'}\t{rec.recognize(SPEECH, 16_000).text}"
  assert lines[1].startswith(f"{tmp_path / 'missing.wav'}\tERROR ")
  out = _transcribe(f"--workdir={workdir}", "--json", str(tmp_path / "good.wav"))
  record = json.loads(out.stdout.splitlines()[0])
  assert out.returncode == 0 and record["error"] is None and record["text"] == rec.recognize(SPEECH, 16_000).text
  assert record["turns"] == []  # a single-channel model has no turns
  assert _transcribe(f"--workdir={tmp_path}", str(tmp_path / "good.wav")).returncode != 0  # no run config there
