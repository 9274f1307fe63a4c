"""Recognizer.stream: audio in random chunks gives the whole-file result; bad chunks change nothing.

The workdir is made by hand as in `test_recognizer` (config, tokenizer, unit global
feature statistics, one checkpoint of a freshly initialised tiny ConvRNN-T): the
untrained model's greedy hypothesis is arbitrary but deterministic and non-empty on
this audio, and depends on every sample. References: `Recognizer.recognize` of the
whole array (batch front end, one encoder call over the bucket-padded utterance,
`greedy_search`), and `scipy.signal.resample_poly` for the streaming resampler.
"""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from scipy import signal
import soundfile

from asrjax.data import tokenizer as tokenizer_lib
from asrjax.frontend.featurize import FrontEnd
from asrjax.inference import BatchDecoder, Recognizer, streaming
from asrjax.inference.resample_stream import ResampleStream
from asrjax.models import transducer
from asrjax.tasks import transducer_asr
from asrjax.train import run_config
from tests.models.test_encoders import ENCODERS
from tests.inference import workdirs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEECH = np.random.default_rng(0).normal(0, 3000, size=12_050).astype(np.int16)  # 0.75 s; ends mid-frame


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  return workdirs.make(str(tmp_path_factory.mktemp("wd")))


@pytest.fixture(scope="module")
def rec(workdir):
  return Recognizer.from_workdir(workdir, decoder="greedy")


@pytest.fixture(scope="module")
def whole(rec):
  result = rec.recognize(SPEECH, 16_000)
  assert len(result.text) >= 5, result  # a hypothesis of several labels: the equalities below mean something
  return result


def _chunks(n: int, seed: int) -> list[tuple[int, int]]:
  """Random ``(start, end)`` cuts of ``[0, n)``: runs of 1-sample chunks, empty chunks, 2..5000 samples."""
  rng = np.random.default_rng(seed)
  cuts, start = [], 0
  while start < n:
    kind = rng.integers(4)
    sizes = [1] * int(rng.integers(1, 400)) if kind == 0 else [0] if kind == 1 else [int(rng.integers(2, 5000))]
    for size in sizes:
      cuts.append((start, min(n, start + size)))
      start = cuts[-1][1]
  return cuts


def _stream(rec, audio, cuts, rate=16_000):
  """``(partials after each chunk, Result)``."""
  stream = rec.stream(sample_rate=rate)
  partials = [stream.accept_waveform(audio[a:b]) for a, b in cuts]
  return partials, stream.finalize()


def _assert_growing(partials, final):
  for a, b in zip(partials, partials[1:] + [final]):
    assert b.startswith(a), (a, b)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_chunkings_give_the_whole_file_result(rec, whole, seed):
  audio = SPEECH if seed != 1 else SPEECH.astype(np.float32) / 32768  # float chunks: the same samples
  partials, result = _stream(rec, audio, _chunks(SPEECH.size, seed))
  assert result.text == whole.text
  assert [t for t, _ in result.nbest] == [whole.text]
  np.testing.assert_allclose(result.nbest[0][1], whole.nbest[0][1], rtol=1e-5, atol=1e-3)
  _assert_growing(partials, result.text)
  assert any(0 < len(p) < len(whole.text) for p in partials)  # partial text arrives before the end
  # the same emission frames, so the same token and word times as the whole file
  assert result.tokens == whole.tokens and result.words == whole.words and len({s for _, s in whole.tokens}) > 5


def test_one_chunk_with_everything_and_a_stream_used_again(rec, whole):
  stream = rec.stream()
  assert stream.partial() == "" and stream.accept_waveform(np.zeros(0, np.int16)) == ""
  assert stream.accept_waveform(SPEECH) == stream.partial()
  assert stream.finalize().text == whole.text and stream.partial() == whole.text
  assert stream.finalize() is stream.finalize()  # finalize again: the same result
  with pytest.raises(RuntimeError, match="after finalize"):
    stream.accept_waveform(SPEECH[:10])
  stream.reset()
  stream.accept_waveform(SPEECH[:7000])
  stream.accept_waveform(SPEECH[7000:])
  assert stream.finalize().text == whole.text
  short = rec.stream()
  short.accept_waveform(SPEECH[:399])  # shorter than one analysis window: no frame
  assert short.finalize().text == ""


def test_44k_and_8k_streams_give_what_the_resampled_whole_file_gives(rec):
  x = SPEECH.astype(np.float32) / 32768
  for rate, up, down in ((44_100, 441, 160), (8_000, 1, 2)):
    audio = np.clip(signal.resample_poly(x, up, down), -1, 1).astype(np.float32)
    want = rec.recognize(audio, rate)
    _, got = _stream(rec, audio, _chunks(audio.size, rate), rate)
    assert got.text == want.text and want.text


def test_a_bad_chunk_raises_and_changes_nothing(rec, whole):
  stream = rec.stream()
  stream.accept_waveform(SPEECH[:5000])
  before = stream.partial()
  nan = SPEECH[5000:6000].astype(np.float32) / 32768
  nan[17] = np.nan
  for bad, match in [(nan, "non-finite sample"), (SPEECH[5000:6000].astype(np.uint8), "ambiguous"),
                     (np.stack([SPEECH[5000:6000]] * 2, axis=1), r"mono chunk \[n\]; got shape \(1000, 2\)"),
                     (np.full(100, 1.5, np.float32), r"in \[-1, 1\]"), (["a", "b"], "dtype"),
                     (SPEECH[5000:6000].astype(np.int32) * 4, "int16 range")]:
    with pytest.raises(ValueError, match=match + ".*state was not updated"):
      stream.accept_waveform(bad)
    assert stream.partial() == before
  with pytest.raises(ValueError, match="takes 16000 Hz audio"):
    stream.accept_waveform(SPEECH[5000:6000], sample_rate=8000)
  stream.accept_waveform(SPEECH[5000:], sample_rate=16_000)
  assert stream.finalize().text == whole.text  # as the run without the bad chunks


def test_streams_that_cannot_be_are_refused_at_stream(rec, workdir):
  restored = transducer_asr.restore_params(run_config.load(workdir), workdir)
  with pytest.raises(ValueError, match="decoder is 'beam': beam search .* not streamed"):
    Recognizer(restored, decoder="beam", decoder_options={"beam": 2}).stream()
  cmvn = restored._replace(front_end=FrontEnd())  # per-utterance CMVN
  assert Recognizer(cmvn).recognize(SPEECH, 16_000).text is not None  # it still transcribes whole files
  with pytest.raises(ValueError, match="global feature statistics.*per-utterance CMVN"):
    Recognizer(cmvn).stream()
  with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
    rec.stream(sample_rate=0)


@pytest.mark.slow  # 18 s: default-suite budget (BUILD_NOTES, "Tests")
def test_a_conformer_stream_flushes_the_frames_waiting_at_the_end():
  """Chunk multiple 6 (stack 3 x attention chunk 2): the 3 frames waiting at the end hold one whole
  encoder frame, which only `finalize` feeds (padded to 6); labels and score equal whole-utterance greedy."""
  cls, kwargs = ENCODERS["conformer"]
  tok = tokenizer_lib.CharTokenizer.build(["the quick brown fox"])
  model = transducer.Transducer(cls(**kwargs), vocab_size=tok.vocab_size, embed_dim=8, predictor_hidden=16,
                                joint_hidden=16)
  feats = np.zeros((1, 12, 80), np.float32)
  params = model.init(jax.random.key(0), feats, np.zeros((1, 12), np.float32), np.ones((1, 3), np.int32),
                      np.zeros((1, 3), np.float32))
  params = jax.tree_util.tree_map_with_path(  # rarer blanks: a random joint seldom emits otherwise
      lambda path, x: x.at[0].add(-1.0) if "out" in jax.tree_util.keystr(path) and "bias" in
      jax.tree_util.keystr(path) else x, params)
  front_end = FrontEnd(feature_mean=(5.0,) * 80, feature_std=(3.0,) * 80)
  audio = SPEECH[:11_300]  # 69 frames = 11 x 6 + 3
  (labels, score), = BatchDecoder(model, params, decoder="greedy", decoder_options={}, front_end=front_end)(
      [audio], 32_000)[0]
  assert len(labels) >= 5
  stream = streaming.AudioStream(model, params, front_end, tok)
  assert stream.chunk_multiple == 6
  for a, b in _chunks(audio.size, 7):
    stream.accept_waveform(audio[a:b])
  result = stream.finalize()
  assert result.text == tok.decode(labels)
  np.testing.assert_allclose(result.nbest[0][1], score, rtol=1e-5, atol=1e-3)


def test_the_resampler_streams_resample_poly_bit_for_bit():
  rng = np.random.default_rng(5)
  for rate in (8_000, 22_050, 44_100, 48_000):
    for dtype in (np.float32, np.float64):
      x = rng.uniform(-0.9, 0.9, int(rng.integers(1, 20_000))).astype(dtype)
      g = np.gcd(rate, 16_000)
      want = signal.resample_poly(x, 16_000 // g, rate // g)
      stream = ResampleStream(rate, 16_000, dtype)
      got = np.concatenate([stream.accept(x[a:b]) for a, b in _chunks(x.size, rate)] + [stream.flush()])
      assert got.dtype == want.dtype and np.array_equal(got, want), rate


def test_pieces_are_powers_of_two_of_the_chunk_multiple():
  assert streaming.pieces(44, 4) == [32, 8, 4]
  assert streaming.pieces(3 * 70, 3, largest=32) == [96, 96, 12, 6]  # 70 = 32 + 32 + 4 + 2 units
  assert streaming.pieces(0, 3) == []


@pytest.mark.slow  # suite budget; `make test-slow`, which CI runs too
def test_transcribe_stream_prints_partials_then_the_whole_file_line(tmp_path, workdir, rec):
  x = SPEECH.astype(np.float32) / 32768
  soundfile.write(tmp_path / "a.wav", SPEECH, 16_000, subtype="PCM_16")
  x44 = signal.resample_poly(x, 441, 160).astype(np.float32)
  soundfile.write(tmp_path / "b.wav", np.stack([x44, x44 * 0.5], axis=1), 44_100, subtype="FLOAT")
  paths = [str(tmp_path / n) for n in ("a.wav", "b.wav", "missing.wav")]
  out = subprocess.run([sys.executable, os.path.join(ROOT, "experiments/transcribe.py"), f"--workdir={workdir}",
                        "--stream", "--chunk_ms=10", *paths], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT))
  assert out.returncode == 1 and "1 of 3 files could not be transcribed" in out.stderr, out.stderr
  lines = out.stdout.splitlines()
  files = rec.recognize_files(paths[:2])  # what transcribe.py prints without --stream
  for path, want in zip(paths, files):
    partials = [ln.split("\tPARTIAL ", 1)[1] for ln in lines if ln.startswith(path + "\tPARTIAL ")]
    assert len(partials) >= 2 and len(set(partials)) == len(partials)  # printed when they change
    _assert_growing(partials, want.text)
    assert f"{path}\t{want.text}" in lines and want.text
    assert lines.index(f"{path}\t{want.text}") > lines.index(f"{path}\tPARTIAL {partials[-1]}")
  assert lines[-1].startswith(f"{paths[2]}\tERROR ")
