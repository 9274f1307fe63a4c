"""The bad-input sweep over the data side: audio input, front end, pipeline, tokenizers, sources, corpus launcher.

Each case is either accepted and checked against an independent reference
(hand-derived values, NumPy/librosa, an invariant), or refused with a message that
names the argument and what was expected (see `tests/sweep/cases.py`). Launcher
cases run `experiments/build_corpus.py` in a subprocess; a refusal there must be
one line on stderr (no traceback, no unrelated chained exception).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
from unittest import mock

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest
import scipy.signal
import tensorflow_datasets as tfds

from asrjax.data import catalog, pipeline, sources
from asrjax.corpus import corpus_plan, espeak_corpus
from asrjax.frontend import features, log_mel_stream
from asrjax.frontend import spec_augment as spec_augment_lib
from asrjax.frontend import vtlp
from asrjax.data.tokenizer import CharTokenizer, SentencePieceTokenizer
from tests.sweep import cases
from tests.sweep.cases import Case

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TMP = tempfile.mkdtemp(prefix="sweep_data_")
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
SR = 16_000


def _encode(text):  # letters -> 1..26, space -> 27; anything else is an unknown character
  out = []
  for i, c in enumerate(text):
    if c == " ":
      out.append(27)
    elif "a" <= c <= "z":
      out.append(ord(c) - 96)
    else:
      raise ValueError(f"unknown character {c!r} at position {i}")
  return out


def _pad(audio, bucket=8, max_labels=4, text="ab", uid="u7"):
  return pipeline.pad_batch([{"id": uid, "audio": audio, "text": text}], _encode, bucket, max_labels)


def _config(**kwargs):
  return pipeline.PipelineConfig(**{"batch_size": 2, **kwargs})


def _source(n=8, length=1_000):
  return [{"id": f"s{i}", "audio": np.full(length + 100 * i, i, np.int16), "text": "ab"[: 1 + i % 2]}
          for i in range(n)]


def _std(audio, **kwargs):
  return catalog.standardize("voxceleb", [{"audio": audio, "label": b"spk"}], **kwargs)[0]


def _ones(shape):
  return np.ones(shape, np.float32)


def _zeros(shape):
  return np.zeros(shape, np.float32)


def _log_mel(audio, pads, **kwargs):
  f, p = features.log_mel(audio, pads, **kwargs)
  return np.asarray(f), np.asarray(p)


def _np_log_mel(x, *, preemphasis=0.97):
  """Float64 NumPy/librosa log-mel of one unpadded waveform ``[N]`` -> ``[T, 80]`` (window 400, hop 160, FFT 512)."""
  y = scipy.signal.lfilter([1.0, -preemphasis], [1.0], np.asarray(x, np.float64))
  t = 1 + (len(y) - 400) // 160
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
  frames = np.stack([y[i * 160 : i * 160 + 400] * window for i in range(t)])
  power = np.abs(np.fft.rfft(frames, n=512, axis=-1)) ** 2
  fb = librosa.filters.mel(sr=SR, n_fft=512, n_mels=80, htk=True, norm=None, dtype=np.float64)
  return np.log(np.maximum(power @ fb.T, 1e-5))


def _sine(n=2_000, hz=1_000.0, amp=0.3):
  return (amp * np.sin(2 * np.pi * hz * np.arange(n) / SR)).astype(np.float32)


def _close_to_reference(got, ref, atol_frac=1e-4):
  return got.shape == ref.shape and np.max(np.abs(got - ref)) <= atol_frac * (ref.max() - ref.min()) + 1e-3


def _with_nan(x, index):
  x = np.array(x, copy=True)
  x[index] = np.nan
  return x


# --- tokenizers, trained once ---------------------------------------------------------------------------------


@functools.cache
def _char():
  return CharTokenizer.build(["the quick brown fox", "jumps over the lazy dog"])


@functools.cache
def _sp():
  sentences = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine", "hello world"] * 40
  return SentencePieceTokenizer.train(sentences, os.path.join(_TMP, "sp.model"), vocab_size=30)


def _truncated_sp_file():
  path = os.path.join(_TMP, "truncated.model")
  data = _sp().model_proto
  with open(path, "wb") as f:
    f.write(data[: len(data) // 2])
  return path


def _corrupt_char_file():
  path = os.path.join(_TMP, "chars.json")
  with open(path, "w") as f:
    json.dump({"format": "something else", "symbols": [" ", "a"]}, f)
  return path


# --- a tiny TFDS dataset built here (no espeak-ng needed) ---------------------------------------------------------


class SweepRateSpeech(tfds.core.GeneratorBasedBuilder):
  """``sweep_rate_speech/rate16000`` and ``/rate8000``: 3 train examples, int16 audio of ``100 + i`` samples = i."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="rate16000"), tfds.core.BuilderConfig(name="rate8000")]

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, disable_shuffling=True, metadata=tfds.core.MetadataDict(),
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(), "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
            "text": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    del dl_manager
    self.info.metadata["sample_rate"] = int(self.builder_config.name[len("rate"):])
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i in range(3):
      yield str(i), {"id": f"e{i}", "audio": np.full(100 + i, i, np.int16), "text": "ab"}


@functools.cache
def _tfds_dir():
  d = os.path.join(_TMP, "tfds")
  for config in ("rate16000", "rate8000"):
    SweepRateSpeech(config=config, data_dir=d).download_and_prepare(file_format="array_record")
  return d


# --- launchers ---------------------------------------------------------------------------------------------------


class LaunchFailed(Exception):
  """A launcher exited non-zero; the message is its whole stderr."""


class ChainedError(Exception):
  """A refusal that drags an unrelated chained exception (or that wrote before refusing)."""


def _launch(*args, path=None):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  if path is not None:
    env["PATH"] = path
  data_dir = tempfile.mkdtemp(dir=_TMP)
  os.rmdir(data_dir)
  result = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "build_corpus.py"), *args,
                           f"--data_dir={data_dir}"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
  if result.returncode != 0:
    raise LaunchFailed(result.stderr.strip() + (" [and wrote to data_dir]" if os.path.exists(data_dir) else ""))
  return result


def _empty_path():
  d = os.path.join(_TMP, "empty_bin")
  os.makedirs(d, exist_ok=True)
  return d


def _builder_without(tools):
  data_dir = tempfile.mkdtemp(dir=_TMP)
  os.rmdir(data_dir)
  real = shutil.which
  with mock.patch.object(shutil, "which", lambda t, *a, **k: None if t in tools else (real(t) or "/usr/bin/" + t)):
    builder = espeak_corpus.EspeakSpeech(config="tiny", data_dir=data_dir, num_workers=1)
    try:
      builder.download_and_prepare(file_format="array_record")
    except RuntimeError as e:
      if e.__context__ is not None or e.__cause__ is not None:
        raise ChainedError(f"{e} [chained with {type(e.__context__ or e.__cause__).__name__}: "
                           f"{e.__context__ or e.__cause__}]") from None
      if os.path.exists(os.path.join(data_dir, "espeak_speech")):
        raise ChainedError(f"{e} [after writing {data_dir}]") from None
      raise


# -----------------------------------------------------------------------------------------------------------------
# The table
# -----------------------------------------------------------------------------------------------------------------

F32_HALF = np.array([0.5, -0.5, 1.0, -1.0, 1 / 32768, 0.0], np.float32)
F32_HALF_INT16 = [16384, -16384, 32767, -32768, 1, 0]  # round(32768 x), clipped to the int16 range
PCM = np.random.default_rng(0).integers(-32768, 32768, size=400).astype(np.int16)
NOISE = np.random.default_rng(1).normal(0, 0.1, size=(2, 1_000)).astype(np.float32)
FEATS = np.random.default_rng(2).normal(size=(2, 20, 16)).astype(np.float32)
KEY = jax.random.PRNGKey(0)

PAD_BATCH = [
    Case("pipeline/pad_batch/float32_unit_scaled", lambda: _pad(F32_HALF)["audio"][0, :6].tolist(),
         check=lambda r: r == F32_HALF_INT16),
    Case("pipeline/pad_batch/float64_unit_scaled", lambda: _pad(F32_HALF.astype(np.float64))["audio"][0, :6].tolist(),
         check=lambda r: r == F32_HALF_INT16),
    Case("pipeline/pad_batch/float_within_tolerance_clipped", lambda: _pad(np.array([1.0005, -1.0005]))["audio"][0, :2],
         check=lambda r: r.tolist() == [32767, -32768]),
    Case("pipeline/pad_batch/int16_from_float_round_trip",
         lambda: pipeline.pad_batch([{"audio": PCM / 32768.0, "text": "a"}], _encode, 400, 1)["audio"][0],
         check=lambda r: np.array_equal(r, PCM)),
    Case("pipeline/pad_batch/int16_kept", lambda: _pad(np.array([-32768, 5, 32767], np.int16))["audio"][0, :3],
         check=lambda r: r.tolist() == [-32768, 5, 32767]),
    Case("pipeline/pad_batch/int64_in_range_kept", lambda: _pad(np.array([-32768, 9, 32767], np.int64))["audio"][0, :3],
         check=lambda r: r.tolist() == [-32768, 9, 32767]),
    Case("pipeline/pad_batch/python_list_of_floats", lambda: _pad([0.5, -0.25])["audio"][0, :2],
         check=lambda r: r.tolist() == [16384, -8192]),
    Case("pipeline/pad_batch/int32_past_int16", lambda: _pad(np.array([0, 40_000], np.int32)),
         raises=ValueError, match=r"u7.*int16 range \[-32768, 32767\].*40000"),
    Case("pipeline/pad_batch/int64_below_int16", lambda: _pad(np.array([-40_000, 0], np.int64)),
         raises=ValueError, match=r"u7.*int16 range"),
    Case("pipeline/pad_batch/float_int16_scaled", lambda: _pad(np.array([0.0, 1200.0], np.float32)),
         raises=ValueError, match=r"u7.*float audio must be in \[-1, 1\].*1200"),
    Case("pipeline/pad_batch/float_slightly_over", lambda: _pad(np.array([0.0, 1.05], np.float32)),
         raises=ValueError, match=r"u7.*\[-1, 1\].*1\.05"),
    Case("pipeline/pad_batch/nan", lambda: _pad(np.array([0.0, np.nan, 0.1], np.float32)),
         raises=ValueError, match=r"u7.*non-finite sample \(nan\) at index 1"),
    Case("pipeline/pad_batch/inf", lambda: _pad(np.array([-np.inf, 0.1])),
         raises=ValueError, match=r"u7.*non-finite sample \(-inf\) at index 0"),
    Case("pipeline/pad_batch/stereo", lambda: _pad(np.zeros((2, 4), np.int16)),
         raises=ValueError, match=r"u7.*mono \[N\].*\(2, 4\)"),
    Case("pipeline/pad_batch/channel_axis", lambda: _pad(np.zeros((4, 1), np.float32)),
         raises=ValueError, match=r"u7.*mono \[N\].*\(4, 1\)"),
    Case("pipeline/pad_batch/scalar", lambda: _pad(np.int16(3)), raises=ValueError, match=r"u7.*mono \[N\].*\(\)"),
    Case("pipeline/pad_batch/uint8", lambda: _pad(np.full(4, 128, np.uint8)),
         raises=ValueError, match=r"u7.*uint8 is ambiguous.*int16"),
    Case("pipeline/pad_batch/int8", lambda: _pad(np.zeros(4, np.int8)),
         raises=ValueError, match=r"u7.*int8 is ambiguous"),
    Case("pipeline/pad_batch/bool", lambda: _pad(np.zeros(4, np.bool_)), raises=ValueError, match=r"u7.*dtype bool"),
    Case("pipeline/pad_batch/complex", lambda: _pad(np.zeros(4, np.complex64)),
         raises=ValueError, match=r"u7.*dtype complex64"),
    Case("pipeline/pad_batch/strings", lambda: _pad(np.array(["a", "b"])), raises=ValueError, match=r"u7.*dtype <U1"),
    Case("pipeline/pad_batch/empty_audio_all_padded", lambda: _pad(np.zeros(0, np.float32)),
         check=lambda r: r["audio"].tolist() == [[0] * 8] and r["audio_paddings"].tolist() == [[1.0] * 8]),
    Case("pipeline/pad_batch/longer_than_bucket", lambda: _pad(np.zeros(9, np.int16)),
         raises=ValueError, match=r"u7.*9 samples.*bucket=8"),
    Case("pipeline/pad_batch/more_labels_than_max", lambda: _pad(np.zeros(4, np.int16), text="abcde"),
         raises=ValueError, match=r"u7.*5 labels.*max_labels=4"),
    Case("pipeline/pad_batch/encode_gives_blank",
         lambda: pipeline.pad_batch([{"audio": np.zeros(3, np.int16), "text": "a"}], lambda t: [0], 4, 2),
         raises=ValueError, match=r"labels must be >= 1 \(0 is the blank\)"),
    Case("pipeline/pad_batch/no_text_field",
         lambda: pipeline.pad_batch([{"audio": np.zeros(3, np.int16)}], _encode, 4, 2),
         raises=ValueError, match=r"no 'text' field"),
    Case("pipeline/pad_batch/negative_bucket", lambda: _pad(np.zeros(0, np.int16), bucket=-1),
         raises=ValueError, match=r"bucket must be an integer >= 0"),
    Case("pipeline/pad_batch/no_examples", lambda: pipeline.pad_batch([], _encode, 8, 4),
         check=lambda r: r["audio"].shape == (0, 8) and r["labels"].shape == (0, 4) and r["ids"] == []),
    Case("pipeline/pad_batch/labels_hand_derived", lambda: _pad(np.zeros(2, np.int16), text="ab z"),
         check=lambda r: r["labels"].tolist() == [[1, 2, 27, 26]] and not r["label_paddings"].any()),
]

STANDARDIZED = [
    Case("catalog/standardized/float_scaled", lambda: _std(np.array([0.5, -1.0, 1.0], np.float32))["audio"],
         check=lambda r: r.dtype == np.int16 and r.tolist() == [16384, -32768, 32767]),
    Case("catalog/standardized/int64_in_range", lambda: _std(np.array([3, -3], np.int64))["audio"],
         check=lambda r: r.dtype == np.int16 and r.tolist() == [3, -3]),
    Case("catalog/standardized/int64_past_int16", lambda: _std(np.array([70_000], np.int64)),
         raises=ValueError, match=r"example 0.*int16 range"),
    Case("catalog/standardized/float_int16_scaled", lambda: _std(np.array([0.0, 3.0e4], np.float32)),
         raises=ValueError, match=r"example 0.*\[-1, 1\]"),
    Case("catalog/standardized/nan", lambda: _std(np.array([np.nan, 0.0])),
         raises=ValueError, match=r"example 0.*non-finite"),
    Case("catalog/standardized/stereo", lambda: _std(np.zeros((3, 2), np.int16)),
         raises=ValueError, match=r"example 0.*audio must be (mono )?\[N\]"),
    Case("catalog/standardized/missing_audio_field",
         lambda: catalog.standardize("librispeech", [{"audio": np.zeros(2, np.int16), "text": b"A"}])[0],
         raises=ValueError, match=r"no audio field 'speech'"),
    Case("catalog/standardized/given_rate_8k", lambda: _std(np.zeros(3, np.int16), sample_rate=8_000),
         raises=ValueError, match=r"8000 Hz but 16000 Hz is expected"),
    Case("catalog/standardized/declared_rate_8k",
         lambda: catalog.standardize("librispeech", types.SimpleNamespace(dataset_info=types.SimpleNamespace(
             features={"speech": types.SimpleNamespace(sample_rate=8_000)}, metadata={}))),
         raises=ValueError, match=r"8000 Hz but 16000 Hz is expected"),
    Case("catalog/standardized/rate_not_a_number", lambda: _std(np.zeros(3, np.int16), sample_rate="16k"),
         raises=ValueError, match=r"sample_rate must be a positive integer"),
    Case("catalog/standardized/rate_16k_fine", lambda: _std(np.zeros(3, np.int16), sample_rate=16_000),
         check=lambda r: r["audio"].tolist() == [0, 0, 0] and r["speaker_id"] == "spk"),
]

CONFIGS = [
    Case("pipeline/config/batch_size_0", lambda: _config(batch_size=0),
         raises=ValueError, match=r"batch_size must be >= 1; got 0"),
    Case("pipeline/config/batch_size_negative", lambda: _config(batch_size=-2), raises=ValueError, match=r"batch_size"),
    Case("pipeline/config/batch_size_float", lambda: _config(batch_size=2.5),
         raises=ValueError, match=r"batch_size must be an integer"),
    Case("pipeline/config/buckets_empty", lambda: _config(buckets=()),
         raises=ValueError, match=r"buckets must be a non-empty sequence"),
    Case("pipeline/config/buckets_unsorted", lambda: _config(buckets=(32_000, 16_000)),
         raises=ValueError, match=r"buckets \(32000, 16000\).* must be non-decreasing"),
    Case("pipeline/config/buckets_zero", lambda: _config(buckets=(0, 16_000)),
         raises=ValueError, match=r"buckets must be >= 1"),
    Case("pipeline/config/max_labels_wrong_count", lambda: _config(buckets=(1, 2), max_labels=(3, 4, 5)),
         raises=ValueError, match=r"max_labels \(3, 4, 5\) needs one length per bucket"),
    Case("pipeline/config/max_labels_decreasing", lambda: _config(buckets=(1, 2), max_labels=(5, 4)),
         raises=ValueError, match=r"max_labels \(5, 4\) must be non-decreasing"),
    Case("pipeline/config/max_labels_zero", lambda: _config(max_labels=0),
         raises=ValueError, match=r"max_labels must be >= 1"),
    Case("pipeline/config/labels_per_frame_0", lambda: _config(labels_per_frame=0),
         raises=ValueError, match=r"labels_per_frame must be >= 1; got 0"),
    Case("pipeline/config/subsampling_0", lambda: _config(subsampling=0),
         raises=ValueError, match=r"subsampling must be >= 1; got 0"),
    Case("pipeline/config/frame_step_0", lambda: _config(frame_step=0),
         raises=ValueError, match=r"frame_step must be >= 1"),
    Case("pipeline/config/sort_window_0", lambda: _config(sort_window=0),
         raises=ValueError, match=r"sort_window must be >= 1"),
    Case("pipeline/config/seed_negative", lambda: _config(seed=-1), raises=ValueError, match=r"seed must be >= 0"),
    Case("pipeline/config/list_buckets_normalised", lambda: _config(buckets=[8, 16], max_labels=[2, 3]),
         check=lambda r: r.buckets == (8, 16) and r.label_lengths == (2, 3)),
    # 16_000 samples = 100 frames = 25 encoder frames at subsampling 4: at most 50 labels at 2 per frame
    Case("pipeline/usable/labels_per_frame_hand_derived",
         lambda: pipeline.usable(pipeline.Index(np.array([16_000] * 3 + [0, 16_001]), np.array([50, 51, 1, 1, 1])),
                                 _config(buckets=(16_000,), max_labels=60, subsampling=4, labels_per_frame=2)),
         check=lambda r: r.tolist() == [True, False, True, False, False]),
]

ITERATOR = [
    Case("pipeline/iterator/host_count_0",
         lambda: pipeline.BatchIterator(_source(), pipeline.build_index(_source(), _encode), _encode,
                                        _config(buckets=(4_000,)), host_count=0),
         raises=ValueError, match=r"host_count must be an integer >= 1; got 0"),
    Case("pipeline/iterator/host_index_out_of_range",
         lambda: pipeline.BatchIterator(_source(), pipeline.build_index(_source(), _encode), _encode,
                                        _config(buckets=(4_000,)), host_index=2, host_count=2),
         raises=ValueError, match=r"host_index 2 outside \[0, 2\)"),
    Case("pipeline/iterator/negative_step",
         lambda: pipeline.BatchIterator(_source(), pipeline.build_index(_source(), _encode), _encode,
                                        _config(buckets=(4_000,)), step=-1),
         raises=ValueError, match=r"step must be an integer >= 0"),
    Case("pipeline/iterator/index_of_another_source",
         lambda: pipeline.BatchIterator(_source(8), pipeline.build_index(_source(5), _encode), _encode,
                                        _config(buckets=(4_000,))),
         raises=ValueError, match=r"index covers 5 examples but the source has 8"),
    Case("pipeline/iterator/no_full_batch",
         lambda: pipeline.BatchIterator(_source(3), pipeline.build_index(_source(3), _encode), _encode,
                                        _config(batch_size=4, buckets=(4_000,))),
         raises=ValueError, match=r"no full batch of 4: 3 of 3 examples fit"),
    Case("pipeline/iterator/restore_bad_state",
         lambda: pipeline.BatchIterator(_source(), pipeline.build_index(_source(), _encode), _encode,
                                        _config(buckets=(4_000,)), prefetch=0).restore({"step": "7"}),
         raises=ValueError, match=r"restore: state must be \{'step': int >= 0\}"),
    Case("pipeline/iterator/batch_matches_source",
         lambda: next(pipeline.BatchIterator(_source(), pipeline.build_index(_source(), _encode), _encode,
                                             _config(buckets=(4_000,)), prefetch=0)),
         check=lambda b: all(np.array_equal(b["audio"][r, : 1_000 + 100 * int(u[1:])], np.full(1_000 + 100 * int(u[1:]),
                                                                                               int(u[1:])))
                             and b["audio_paddings"][r].sum() == 4_000 - 1_000 - 100 * int(u[1:])
                             for r, u in enumerate(b["ids"]))),
    Case("pipeline/build_index/8_khz_source",
         lambda: pipeline.build_index(cases.RatedRecords(_source(2), 8_000), _encode),
         raises=ValueError, match=r"build_index: source: audio is sampled at 8000 Hz but 16000 Hz is expected"),
    Case("pipeline/build_index/16_khz_source",
         lambda: pipeline.build_index(cases.RatedRecords(_source(3), 16_000), _encode),
         check=lambda ix: ix.num_samples.tolist() == [1_000, 1_100, 1_200] and ix.num_labels.tolist() == [1, 2, 1]),
    Case("pipeline/build_index/nan_audio_named",
         lambda: pipeline.build_index(_source(2) + [{"id": "bad", "audio": np.array([0.1, np.nan]), "text": "a"}],
                                      _encode),
         raises=ValueError, match=r"example 2 \(id 'bad'\).*non-finite"),
    Case("pipeline/build_index/stereo_named",
         lambda: pipeline.build_index([{"id": "st", "audio": np.zeros((2, 50), np.int16), "text": "a"}], _encode),
         raises=ValueError, match=r"example 0 \(id 'st'\).*mono"),
    Case("pipeline/build_index/unknown_character_named",
         lambda: pipeline.build_index([{"id": "q", "audio": np.zeros(5, np.int16), "text": "the Quick"}],
                                      _char().encode),
         raises=ValueError, match=r"example 0 \(id 'q'\).*unknown character 'Q' at position 4"),
    Case("pipeline/build_index/lengths_hand_derived",
         lambda: pipeline.build_index(_source(3), _encode),
         check=lambda r: r.num_samples.tolist() == [1_000, 1_100, 1_200] and r.num_labels.tolist() == [1, 2, 1]),
]

LOG_MEL = [
    Case("features/log_mel/rank_1", lambda: features.log_mel(_zeros(1_000), _zeros(1_000)),
         raises=ValueError, match=r"audio and audio_paddings must both be \[B, N\]"),
    Case("features/log_mel/rank_3", lambda: features.log_mel(_zeros((1, 2, 1_000)), _zeros((1, 2, 1_000))),
         raises=ValueError, match=r"\[B, N\]"),
    Case("features/log_mel/paddings_shape", lambda: features.log_mel(_zeros((2, 1_000)), _zeros((2, 999))),
         raises=ValueError, match=r"\[B, N\], got \(2, 1000\) and \(2, 999\)"),
    Case("features/log_mel/nan_valid", lambda: features.log_mel(_with_nan(NOISE, (1, 10)), _zeros((2, 1_000))),
         raises=ValueError, match=r"non-finite valid sample.*\[1, 10\]"),
    Case("features/log_mel/inf_valid_device",
         lambda: features.log_mel(jnp.full((1, 1_000), jnp.inf), jnp.zeros((1, 1_000))),
         raises=ValueError, match=r"non-finite valid sample"),
    Case("features/log_mel/nan_in_padding_ignored",
         lambda: _log_mel(np.concatenate([_sine(1_000)[None], _with_nan(_zeros((1, 1_000)), (0, slice(None)))], 1),
                          np.concatenate([_zeros((1, 1_000)), _ones((1, 1_000))], 1))[0][0, :4],
         check=lambda r: _close_to_reference(r, _np_log_mel(_sine(1_000)))),
    Case("features/log_mel/fractional_paddings",
         lambda: features.log_mel(_zeros((1, 1_000)), np.full((1, 1_000), 0.5, np.float32)),
         raises=ValueError, match=r"audio_paddings must be 0.0 \(valid\) or 1.0 \(padded\); got 0.5"),
    Case("features/log_mel/non_trailing_paddings",
         lambda: features.log_mel(_zeros((1, 1_000)), np.concatenate([_ones((1, 10)), _zeros((1, 990))], 1)),
         raises=ValueError, match=r"audio_paddings must be trailing"),
    Case("features/log_mel/all_padded_row", lambda: _log_mel(NOISE, np.stack([_zeros(1_000), _ones(1_000)])),
         check=lambda r: r[1].tolist() == [[0.0] * 4, [1.0] * 4] and not r[0][1].any()),
    Case("features/log_mel/shorter_than_window", lambda: _log_mel(_zeros((1, 399)), _zeros((1, 399))),
         check=lambda r: r[0].shape == (1, 0, 80) and r[1].shape == (1, 0)),
    Case("features/log_mel/sine_matches_numpy_librosa", lambda: _log_mel(_sine()[None], _zeros((1, 2_000)))[0][0],
         check=lambda r: _close_to_reference(r, _np_log_mel(_sine()))),
    Case("features/log_mel/int16_scale_offset",
         lambda: _log_mel(32768.0 * NOISE, _zeros((2, 1_000)))[0] - _log_mel(NOISE, _zeros((2, 1_000)))[0],
         check=lambda d: np.allclose(d, 2 * np.log(32768.0), atol=2e-3)),
    Case("features/log_mel/complex_audio",
         lambda: features.log_mel(np.zeros((1, 1_000), np.complex64), _zeros((1, 1_000))),
         raises=ValueError, match=r"audio must be a real numeric array, got dtype complex64"),
    Case("features/log_mel/num_mels_0", lambda: features.log_mel(_zeros((1, 1_000)), _zeros((1, 1_000)), num_mels=0),
         raises=ValueError, match=r"num_mels must be an integer >= 1"),
    Case("features/log_mel/too_many_mels",
         lambda: features.log_mel(_zeros((1, 1_000)), _zeros((1, 1_000)), num_mels=200),
         raises=ValueError, match=r"num_mels=200 is too many for fft_size=512"),
    Case("features/log_mel/mel_floor_0",
         lambda: features.log_mel(_zeros((1, 1_000)), _zeros((1, 1_000)), mel_floor=0.0),
         raises=ValueError, match=r"mel_floor must be (finite and )?> 0"),
    Case("features/log_mel/unknown_window",
         lambda: features.log_mel(_zeros((1, 1_000)), _zeros((1, 1_000)), window="kaiser"),
         raises=ValueError, match=r"window must be one of \('hann', 'hamming'\)"),
    Case("features/log_mel/fft_shorter_than_window",
         lambda: features.log_mel(_zeros((1, 1_000)), _zeros((1, 1_000)), fft_size=256),
         raises=ValueError, match=r"fft_size=256 is shorter than the window \(400 samples\)"),
    Case("features/log_mel/sample_rate_0",
         lambda: features.log_mel(_zeros((1, 1_000)), _zeros((1, 1_000)), sample_rate=0),
         raises=ValueError, match=r"sample_rate must be an integer >= 1"),
    Case("features/moments/shape", lambda: features.moments(jnp.zeros((2, 3, 4)), jnp.zeros((2, 4))),
         raises=ValueError, match=r"features \[B, T, D\] and paddings \[B, T\]"),
    Case("features/moments/numpy_over_valid_frames",
         lambda: features.moments(jnp.asarray(FEATS),
                                  jnp.asarray((np.arange(20) >= np.array([[20], [7]])).astype(np.float32))),
         check=lambda r: float(r[0]) == 27 and np.allclose(
             r[1], np.concatenate([FEATS[0], FEATS[1, :7]]).sum(0), rtol=1e-5, atol=1e-4)),
    Case("features/global_normalize/zero_std",
         lambda: features.global_normalize(jnp.zeros((1, 2, 3)), jnp.zeros((1, 2)), [0.0] * 3, [1.0, 0.0, 1.0]),
         raises=ValueError, match=r"std finite and > 0"),
]

STREAM = [
    Case("log_mel_stream/empty_chunk", lambda: log_mel_stream.LogMelStream(2).accept(_zeros((2, 0))),
         check=lambda r: r.shape == (2, 0, 80)),
    Case("log_mel_stream/nan_chunk", lambda: log_mel_stream.LogMelStream(2).accept(_with_nan(NOISE, (0, 3))),
         raises=ValueError, match=r"non-finite sample \(nan\)"),
    Case("log_mel_stream/wrong_batch", lambda: log_mel_stream.LogMelStream(3).accept(NOISE),
         raises=ValueError, match=r"expected audio \[3, n\]"),
    Case("log_mel_stream/one_d_chunk", lambda: log_mel_stream.LogMelStream(1).accept(_zeros(100)),
         raises=ValueError, match=r"expected audio \[1, n\]"),
    Case("log_mel_stream/int16_chunk_is_pcm", lambda: log_mel_stream.LogMelStream(1).accept(PCM[None]),
         check=lambda r: _close_to_reference(r[0], _np_log_mel(PCM / 32768.0))),
    Case("log_mel_stream/float_int16_scaled_chunk", lambda: log_mel_stream.LogMelStream(1).accept(PCM[None] * 1.0),
         raises=ValueError, match=r"float audio must be in \[-1, 1\]"),
    Case("log_mel_stream/unknown_option", lambda: log_mel_stream.LogMelStream(1, nmels=40),
         raises=ValueError, match=r"unknown log_mel option\(s\) \['nmels'\]"),
    Case("log_mel_stream/batch_0", lambda: log_mel_stream.LogMelStream(0),
         raises=ValueError, match=r"batch must be an integer >= 1"),
    Case("log_mel_stream/chunks_equal_whole",
         lambda: np.concatenate([s.accept(NOISE[:, a:b]) for s in [log_mel_stream.LogMelStream(2)]
                                 for a, b in ((0, 123), (123, 123), (123, 700), (700, 1_000))], axis=1),
         check=lambda r: all(_close_to_reference(r[b], _np_log_mel(NOISE[b])) for b in range(2))),
]

AUGMENT = [
    Case("spec_augment/rank_2", lambda: spec_augment_lib.spec_augment(KEY, FEATS[0], jnp.zeros(20)),
         raises=ValueError, match=r"features \[B, T, F\] and paddings \[B, T\]"),
    Case("spec_augment/paddings_shape", lambda: spec_augment_lib.spec_augment(KEY, FEATS, jnp.zeros((2, 19))),
         raises=ValueError, match=r"features \[B, T, F\] and paddings \[B, T\]"),
    Case("spec_augment/negative_masks",
         lambda: spec_augment_lib.spec_augment(KEY, FEATS, jnp.zeros((2, 20)), num_time_masks=-1),
         raises=ValueError, match=r"num_time_masks must be an integer >= 0"),
    Case("spec_augment/ratio_above_1",
         lambda: spec_augment_lib.spec_augment(KEY, FEATS, jnp.zeros((2, 20)), max_time_mask_ratio=1.5),
         raises=ValueError, match=r"max_time_mask_ratio (must be )?in \[0, 1\]"),
    Case("spec_augment/nan_mask_value",
         lambda: spec_augment_lib.spec_augment(KEY, FEATS, jnp.zeros((2, 20)), mask_value=float("nan")),
         raises=ValueError, match=r"mask_value must be finite"),
    Case("spec_augment/integer_features",
         lambda: spec_augment_lib.spec_augment(KEY, jnp.zeros((2, 20, 16), jnp.int32), jnp.zeros((2, 20))),
         raises=ValueError, match=r"features must be a float array"),
    Case("spec_augment/not_a_key",
         lambda: spec_augment_lib.spec_augment(jnp.zeros(3, jnp.uint32), FEATS, jnp.zeros((2, 20))),
         raises=TypeError, match=r"PRNG key"),
    Case("spec_augment/no_masks_identity",
         lambda: spec_augment_lib.spec_augment(KEY, FEATS, jnp.zeros((2, 20)), num_freq_masks=0, num_time_masks=0),
         check=lambda r: np.array_equal(np.asarray(r), FEATS)),
    Case("spec_augment/padding_untouched",
         lambda: spec_augment_lib.spec_augment(KEY, FEATS,
                                               jnp.asarray(np.arange(20) >= np.array([[20], [5]]), jnp.float32),
                                               max_time_mask_ratio=1.0, max_freq_mask=16),
         check=lambda r: np.array_equal(np.asarray(r)[1, 5:], FEATS[1, 5:])),
    Case("vtlp/max_warp_1", lambda: vtlp.warp(KEY, FEATS, jnp.zeros((2, 20)), max_warp=1.0),
         raises=ValueError, match=r"max_warp must be in \[0, 1\)"),
    Case("vtlp/max_warp_negative", lambda: vtlp.warp(KEY, FEATS, jnp.zeros((2, 20)), max_warp=-0.1),
         raises=ValueError, match=r"max_warp must be in \[0, 1\)"),
    Case("vtlp/rank_2", lambda: vtlp.warp(KEY, FEATS[0], jnp.zeros(20)),
         raises=ValueError, match=r"feats \[B, T, F\] and paddings \[B, T\]"),
    Case("vtlp/boundary_above_upper_edge", lambda: vtlp.warp(KEY, FEATS, jnp.zeros((2, 20)), boundary_hz=9_000.0),
         raises=ValueError, match=r"boundary_hz < upper_edge_hz"),
    Case("vtlp/one_channel", lambda: vtlp.warp(KEY, FEATS[..., :1], jnp.zeros((2, 20))),
         raises=ValueError, match=r"at least 2 mel channels"),
    Case("vtlp/no_warp_identity", lambda: vtlp.warp(KEY, FEATS, jnp.zeros((2, 20)), max_warp=0.0),
         check=lambda r: np.allclose(np.asarray(r), FEATS, atol=1e-3)),
]

TOKENIZERS = [
    # the vocabulary of "the quick brown fox" + "jumps over the lazy dog": space 2, then a..z = 3..28
    Case("tokenizer/char/hand_derived_ids", lambda: _char().encode("a dog"), check=lambda r: r == [3, 2, 6, 17, 9]),
    Case("tokenizer/char/unknown_character", lambda: _char().encode("the Quick"),
         raises=ValueError, match=r"unknown character 'Q' at position 4"),
    Case("tokenizer/char/lenient_unknown_is_unk", lambda: CharTokenizer(_char().symbols, strict=False).encode("a7b"),
         check=lambda r: r == [3, 1, 4]),
    Case("tokenizer/char/empty_string", lambda: (_char().encode(""), _char().decode([])),
         check=lambda r: r == ([], "")),
    Case("tokenizer/char/decode_blank", lambda: _char().decode([3, 0]),
         raises=ValueError, match=r"ids\[1\] is the blank id 0"),
    Case("tokenizer/char/decode_out_of_range", lambda: _char().decode([29]),
         raises=ValueError, match=r"ids\[0\] = 29 is outside the vocabulary \[0, 29\)"),
    Case("tokenizer/char/decode_negative", lambda: _char().decode([-1]),
         raises=ValueError, match=r"outside the vocabulary"),
    Case("tokenizer/char/decode_float", lambda: _char().decode([3.0]),
         raises=ValueError, match=r"ids\[0\] = 3.0 is not an integer"),
    Case("tokenizer/char/encode_bytes", lambda: _char().encode(b"abc"),
         raises=TypeError, match=r"text must be a str, got bytes"),
    Case("tokenizer/char/load_missing", lambda: CharTokenizer.load(os.path.join(_TMP, "no_such_tokenizer.json")),
         raises=FileNotFoundError, match=r"no_such_tokenizer\.json"),
    Case("tokenizer/char/load_corrupt", lambda: CharTokenizer.load(_corrupt_char_file()),
         raises=ValueError, match=r"chars\.json.*not a valid asrjax character tokenizer file"),
    Case("tokenizer/char/duplicate_symbols", lambda: CharTokenizer([" ", "a", "a"]),
         raises=ValueError, match=r"symbols must be unique"),
    Case("tokenizer/sp/round_trip", lambda: _sp().decode(_sp().encode("the lazy dog saves time")),
         check=lambda r: r == "the lazy dog saves time"),
    Case("tokenizer/sp/unknown_character", lambda: _sp().encode("hello Zed"),
         raises=ValueError, match=r"unknown character 'Z' at position 6"),
    Case("tokenizer/sp/decode_out_of_range", lambda: _sp().decode([2, 30]),
         raises=ValueError, match=r"ids\[1\] = 30 is outside the vocabulary \[0, 30\)"),
    Case("tokenizer/sp/encode_none", lambda: _sp().encode(None), raises=TypeError, match=r"text must be a str"),
    Case("tokenizer/sp/vocab_too_small",
         lambda: SentencePieceTokenizer.train(["abcdef ghij"] * 5, os.path.join(_TMP, "x.model"), vocab_size=6),
         raises=ValueError, match=r"vocab_size=6 is too small.*needs 13 ids"),  # 10 letters + boundary + blank + unk
    Case("tokenizer/sp/vocab_too_large",
         lambda: SentencePieceTokenizer.train(["a b"], os.path.join(_TMP, "x.model"), vocab_size=100),
         raises=ValueError, match=r"vocab_size=100 is too large.*at most 5"),
    Case("tokenizer/sp/vocab_2",
         lambda: SentencePieceTokenizer.train(["a b"], os.path.join(_TMP, "x.model"), vocab_size=2),
         raises=ValueError, match=r"vocab_size must be (an integer )?>= 3"),
    Case("tokenizer/sp/no_sentences",
         lambda: SentencePieceTokenizer.train([], os.path.join(_TMP, "x.model"), vocab_size=8),
         raises=ValueError, match=r"at least one sentence"),
    Case("tokenizer/sp/unknown_model_type",
         lambda: SentencePieceTokenizer.train(["a b"], os.path.join(_TMP, "x.model"), vocab_size=5, model_type="word"),
         raises=ValueError, match=r"model_type must be 'unigram' or 'bpe'"),
    Case("tokenizer/sp/load_truncated", lambda: SentencePieceTokenizer.load(_truncated_sp_file()),
         raises=ValueError, match=r"truncated\.model.*not a valid asrjax SentencePiece model file"),
    Case("tokenizer/sp/load_missing", lambda: SentencePieceTokenizer.load(os.path.join(_TMP, "absent.model")),
         raises=FileNotFoundError, match=r"absent\.model"),
]

SOURCES = [
    Case("sources/open_split/16k_split",
         lambda: sources.open_split("sweep_rate_speech/rate16000", "train", _tfds_dir()),
         check=lambda s: len(s) == 3 and np.asarray(s[1]["audio"]).tolist() == [1] * 101),
    Case("sources/open_split/8k_refused",
         lambda: sources.open_split("sweep_rate_speech/rate8000", "train", _tfds_dir()),
         raises=ValueError, match=r"8000 Hz but 16000 Hz is expected"),
    Case("sources/open_split/unknown_split",
         lambda: sources.open_split("sweep_rate_speech/rate16000", "dev", _tfds_dir()),
         raises=ValueError, match=r"has splits \['train'\], not (split )?'dev'"),
    Case("sources/open_split/unknown_dataset", lambda: sources.open_split("no_such_corpus", "train", _tfds_dir()),
         raises=ValueError, match=r"\Aunknown dataset 'no_such_corpus'\. asrjax's own corpora are"),
    Case("sources/open_split/misspelt_dataset", lambda: sources.open_split("espeak_speach/tiny", "train", _tfds_dir()),
         raises=ValueError, match=r"\Aunknown dataset 'espeak_speach'; did you mean 'espeak_speech'"),
    Case("sources/open_split/missing_data_dir",
         lambda: sources.open_split("espeak_speech/tiny", "train", os.path.join(_TMP, "nowhere")),
         raises=sources.DatasetMissingError,
         match=r"not prepared under .*nowhere.*build_corpus\.py --corpus=espeak --config=tiny"),
    Case("sources/open_split/unknown_config",
         lambda: sources.open_split("espeak_speech/tinny", "train", os.path.join(_TMP, "nowhere")),
         raises=ValueError,
         match=r"unknown corpus config 'tinny': choose one of tiny\|small\|full\. Did you mean 'tiny'"),
    Case("sources/open_split/bad_name", lambda: sources.open_split("a/b/c", "train", _tfds_dir()),
         raises=ValueError, match=r"dataset name must be 'dataset' or 'dataset/config'"),
]

_CORPUS = dict(name="x", speakers_per_accent=4, utterances={"train": 4, "dev": 2, "test": 4}, trials_per_group=1,
               mixtures={"train": 1, "test": 1}, speaker_split=(0.5, 0.25, 0.25))

CORPUS = [
    Case("corpus/configs/names", lambda: sorted(corpus_plan.CONFIGS), check=lambda r: r == ["full", "small", "tiny"]),
    Case("corpus/builder/unknown_config", lambda: espeak_corpus.EspeakSpeech(config="tinny"),
         raises=ValueError,
         match=r"\Aunknown corpus config 'tinny': choose one of tiny\|small\|full\. Did you mean 'tiny'\?\Z"),
    Case("corpus/builder/unknown_config_multitalker", lambda: espeak_corpus.EspeakMultitalker(config="ful"),
         raises=ValueError, match=r"\Aunknown corpus config 'ful'.*Did you mean 'full'\?\Z"),
    Case("corpus/synth_configs/names", lambda: sorted(corpus_plan.SYNTH_CONFIGS),
         check=lambda r: r == ["full", "small", "tiny"]),
    Case("corpus/synth_builder/unknown_config", lambda: espeak_corpus.SynthSpeech(config="smal"),
         raises=ValueError, match=r"\Aunknown corpus config 'smal'.*Did you mean 'small'\?\Z"),
    Case("corpus/synth_builder/unknown_config_multitalker", lambda: espeak_corpus.SynthMultitalker(config="Tiny"),
         raises=ValueError, match=r"\Aunknown corpus config 'Tiny'.*Did you mean 'tiny'\?\Z"),
    Case("corpus/synth_builder/num_workers_zero", lambda: espeak_corpus.SynthSpeech(config="tiny", num_workers=0),
         raises=ValueError, match=r"num_workers must be None \(all cores\) or an integer >= 1"),
    Case("corpus/builder/num_workers_negative", lambda: espeak_corpus.EspeakSpeech(config="tiny", num_workers=-1),
         raises=ValueError, match=r"num_workers must be None \(all cores\) or an integer >= 1"),
    Case("corpus/builder/no_espeak", lambda: _builder_without({"espeak-ng"}),
         raises=RuntimeError, match=r"\Aespeak-ng is not installed.*apt-get install espeak-ng"),
    Case("corpus/builder/no_sox", lambda: _builder_without({"sox"}),
         raises=RuntimeError, match=r"\Asox is not installed.*apt-get install sox"),
    Case("corpus/plan/tiny_sizes", lambda: corpus_plan.plan_corpus(corpus_plan.CONFIGS["tiny"]),
         check=lambda p: {k: len(v) for k, v in p.utterances.items()} == {"train": 48, "dev": 12, "test": 16}
         and {k: len(v) for k, v in p.mixtures.items()} == {"train": 8, "test": 4}),
    Case("corpus/config/too_few_speakers", lambda: corpus_plan.CorpusConfig(**{**_CORPUS, "speakers_per_accent": 2}),
         raises=ValueError, match=r"speakers_per_accent must be an integer >= 3"),
    Case("corpus/config/missing_split", lambda: corpus_plan.CorpusConfig(**{**_CORPUS, "utterances": {"train": 4}}),
         raises=ValueError, match=r"utterances must map exactly \('train', 'dev', 'test'\)"),
    Case("corpus/config/one_utterance_with_mixtures",
         lambda: corpus_plan.CorpusConfig(**{**_CORPUS, "utterances": {"train": 4, "dev": 2, "test": 1}}),
         raises=ValueError, match=r"utterances\['test'\] must be an integer >= 2"),
    Case("corpus/config/negative_trials", lambda: corpus_plan.CorpusConfig(**{**_CORPUS, "trials_per_group": -1}),
         raises=ValueError, match=r"trials_per_group must be an integer >= 0"),
    Case("corpus/config/split_fractions",
         lambda: corpus_plan.CorpusConfig(**{**_CORPUS, "speaker_split": (0.2, 0.2, 0.2)}),
         raises=ValueError, match=r"speaker_split must be 3 fractions .* summing to 1"),
    Case("corpus/config/negative_seed", lambda: corpus_plan.CorpusConfig(**{**_CORPUS, "seed": -5}),
         raises=ValueError, match=r"seed must be an integer >= 0"),
]

LAUNCHER = [
    Case("build_corpus/main/unknown_config", lambda: _launch("--config=tinny"), raises=LaunchFailed,
         match=r"\Abuild_corpus: unknown corpus config 'tinny': choose one of tiny\|small\|full\. Did you mean 'tiny'\?\Z"),
    Case("build_corpus/main/missing_espeak", lambda: _launch("--config=tiny", "--corpus=espeak", path=_empty_path()),
         raises=LaunchFailed,
         match=r"\Abuild_corpus: espeak-ng and sox are not installed;[^\n]*apt-get install espeak-ng sox[^\n]*\Z"),
    Case("build_corpus/main/missing_synthesizers", lambda: _launch("--config=tiny", path=_empty_path()),
         raises=LaunchFailed, match=r"\Abuild_corpus: espeak-ng, flite, mbrola, pico2wave, festival and sox are "
                                    r"not installed;[^\n]*apt-get install espeak-ng flite mbrola mbrola-us1[^\n]*"
                                    r"contrib[^\n]*\Z"),
    Case("build_corpus/main/workers_0", lambda: _launch("--config=tiny", "--workers=0"), raises=LaunchFailed,
         match=r"\Abuild_corpus: --workers must be >= 1[^\n]*\Z"),
]

CASES = (PAD_BATCH + STANDARDIZED + CONFIGS + ITERATOR + LOG_MEL + STREAM + AUGMENT + TOKENIZERS + SOURCES + CORPUS
         + LAUNCHER)


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_data_sweep(case):
  cases.assert_case(case)


def test_case_ids_are_unique_and_the_table_is_large_enough():
  assert len(set(cases.ids(CASES))) == len(CASES) >= 70
