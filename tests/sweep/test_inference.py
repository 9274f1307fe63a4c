"""Bad-input sweep: audio given to a Recognizer (`asrjax.inference.recognizer.prepare`) and to an
`AudioStream` chunk by chunk; the run options of the task seam (`train.init_from`, loss weights)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.data import tokenizer as tokenizer_lib
from asrjax.frontend.featurize import FrontEnd
from asrjax.inference import evaluation, recognizer, streaming
from asrjax.models import convrnnt, transducer
from asrjax.train import task as task_lib, trainer
from tests.sweep import cases
from tests.sweep.cases import Case

prepare = recognizer.prepare
TONE = (8000 * np.sin(np.arange(16_000) / 7)).astype(np.int16)

CASES = [
    Case("inference/prepare/channels-first", lambda: prepare(np.zeros((2, 16_000), np.int16), 16_000),
         raises=ValueError, match=r"\[samples, channels\].*transpose"),
    Case("inference/prepare/rank-3", lambda: prepare(np.zeros((2, 2, 800), np.int16), 16_000), raises=ValueError,
         match=r"\[samples\] or \[samples, channels\]"),
    Case("inference/prepare/rate-0", lambda: prepare(TONE, 0), raises=ValueError,
         match="sample_rate must be a positive integer"),
    Case("inference/prepare/rate-float", lambda: prepare(TONE, 16_000.0), raises=ValueError,
         match="sample_rate must be a positive integer"),
    Case("inference/prepare/shorter-than-a-window", lambda: prepare(np.zeros(399, np.int16), 16_000),
         raises=ValueError, match="399 samples .* shorter than one 25 ms"),
    Case("inference/prepare/empty", lambda: prepare(np.zeros(0, np.int16), 16_000), raises=ValueError,
         match="0 samples .* shorter than one 25 ms"),
    Case("inference/prepare/8k-too-short-after-resampling", lambda: prepare(np.zeros(150, np.int16), 8_000),
         raises=ValueError, match="300 samples at 16 kHz"),
    Case("inference/prepare/float-out-of-range", lambda: prepare(np.full(1_000, 2.0, np.float32), 16_000),
         raises=ValueError, match=r"\[-1, 1\]"),
    Case("inference/prepare/nan", lambda: prepare(np.array([0.1, np.nan] * 500, np.float32), 16_000),
         raises=ValueError, match="NaN|non-finite"),
    Case("inference/prepare/uint8", lambda: prepare(np.zeros(1_000, np.uint8), 16_000), raises=ValueError,
         match="uint8|8-bit|unsigned"),
    Case("inference/prepare/int32-past-int16", lambda: prepare(np.full(1_000, 40_000, np.int32), 16_000),
         raises=ValueError, match="int16 range"),
    Case("inference/prepare/int16-at-16k-unchanged", lambda: prepare(TONE, 16_000),
         check=lambda out: out.dtype == np.int16 and np.array_equal(out, TONE)),
    Case("inference/prepare/float-scaled-by-32768", lambda: prepare(TONE.astype(np.float32) / 32768, 16_000),
         check=lambda out: np.array_equal(out, TONE)),
    Case("inference/prepare/stereo-is-the-channel-mean",
         lambda: prepare(np.stack([TONE, np.zeros_like(TONE)], axis=1), 16_000),
         check=lambda out: np.abs(out.astype(int) - TONE.astype(int) // 2).max() <= 1),
    Case("inference/prepare/8k-doubles-the-length", lambda: prepare(TONE[:8_000], 8_000),
         check=lambda out: out.size == 16_000 and out.dtype == np.int16),
    Case("inference/prepare/44.1k-length", lambda: prepare(np.zeros(44_100, np.int16), 44_100),
         check=lambda out: out.size == 16_000 and not out.any()),
]



@functools.cache
def _stream_parts():
  """A tiny random ConvRNN-T with global statistics: what an `AudioStream` needs (compiled once)."""
  tok = tokenizer_lib.CharTokenizer.build(["ab c"])
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(stack=3, channels=8, local_layers=1, local_kernel=3,
                                                         global_blocks=1, global_kernel=3, lstm_hidden=8,
                                                         lstm_layers=1, output_dim=8),
                                vocab_size=tok.vocab_size, embed_dim=4, predictor_hidden=8, joint_hidden=8)
  params = model.init(jax.random.key(0), jnp.zeros((1, 6, 80)), jnp.zeros((1, 6)), jnp.ones((1, 2), jnp.int32),
                      jnp.zeros((1, 2)))
  front_end = FrontEnd(feature_mean=(0.0,) * 80, feature_std=(1.0,) * 80)
  return model, params, front_end, tok


def _stream(rate=16_000):
  model, params, front_end, tok = _stream_parts()
  return streaming.AudioStream(model, params, front_end, tok, sample_rate=rate)


def _then_good(bad):
  """A stream given the ``bad`` chunk (which must raise) and then TONE: what it gives for TONE alone."""
  stream = _stream()
  try:
    stream.accept_waveform(bad)
  except ValueError:
    pass
  else:
    raise AssertionError("the bad chunk was accepted")
  stream.accept_waveform(TONE)
  fresh = _stream()
  fresh.accept_waveform(TONE)
  return stream.finalize().text == fresh.finalize().text


def _finalized():
  stream = _stream()
  stream.accept_waveform(TONE)
  stream.finalize()
  return stream.accept_waveform(TONE[:100])


STREAM_CASES = [
    Case("inference/stream/nan-chunk", lambda: _stream().accept_waveform(np.array([0.1, np.nan] * 80, np.float32)),
         raises=ValueError, match="(NaN|non-finite).*The chunk was dropped"),
    Case("inference/stream/two-d-chunk", lambda: _stream().accept_waveform(np.zeros((160, 2), np.int16)),
         raises=ValueError, match="The chunk was dropped"),
    Case("inference/stream/uint8-chunk", lambda: _stream().accept_waveform(np.zeros(160, np.uint8)),
         raises=ValueError, match="uint8|8-bit|unsigned"),
    Case("inference/stream/float-out-of-range", lambda: _stream().accept_waveform(np.full(160, 1.5, np.float32)),
         raises=ValueError, match=r"\[-1, 1\]"),
    Case("inference/stream/another-rate-than-the-streams", lambda: _stream().accept_waveform(TONE, sample_rate=8_000),
         raises=ValueError, match="8000"),
    Case("inference/stream/rate-0", lambda: _stream(0), raises=ValueError, match="sample_rate must be a positive"),
    Case("inference/stream/after-finalize", _finalized, raises=RuntimeError, match="after finalize"),
    Case("inference/stream/empty-chunk-is-nothing", lambda: _stream().accept_waveform(np.zeros(0, np.int16)),
         check=lambda text: text == ""),
    Case("inference/stream/a-bad-chunk-changes-nothing", lambda: _then_good(np.full(160, np.inf, np.float32)),
         check=lambda same: same is True),
    Case("inference/stream/beam-is-not-streamed",
         lambda: streaming.check_streamable(FrontEnd(feature_mean=(0.0,), feature_std=(1.0,)), "beam"),
         raises=ValueError, match="streaming decodes greedily.*'beam'"),
    Case("inference/stream/per-utterance-cmvn", lambda: streaming.check_streamable(FrontEnd(), "greedy"),
         raises=ValueError, match="needs global feature statistics"),
]

PLAN_CASES = [
    Case("inference/batch_plan/batch-size-0", lambda: evaluation.batch_plan([3, 1], 0), raises=ValueError,
         match="batch_size must be an integer >= 1"),
    Case("inference/batch_plan/batch-size-true", lambda: evaluation.batch_plan([3, 1], True), raises=ValueError,
         match="batch_size must be an integer >= 1"),
    Case("inference/batch_plan/no-examples", lambda: evaluation.batch_plan([], 4), check=lambda plan: plan == []),
    Case("inference/batch_plan/past-the-last-bucket", lambda: evaluation.batch_plan([9, 2], 1, (4,)),
         check=lambda plan: plan == [([1], 4), ([0], 9)]),
]

SEAM_CASES = [
    Case("train/init_from/no-workdir", lambda: trainer.parse_init_from(":5"), raises=ValueError,
         match="train.init_from must be '<workdir>' or '<workdir>:<step>'"),
    Case("train/init_from/empty", lambda: trainer.parse_init_from(""), raises=ValueError,
         match="train.init_from must be"),
    Case("train/init_from/not-a-step-is-part-of-the-path", lambda: trainer.parse_init_from("runs/a:b"),
         check=lambda r: r == ("runs/a:b", None)),
    Case("train/init_from/negative-step-is-part-of-the-path", lambda: trainer.parse_init_from("runs/a:-1"),
         check=lambda r: r == ("runs/a:-1", None)),
    Case("train/loss_weights/unknown-term",
         lambda: task_lib.with_weights(task_lib.Objective({"loss": jnp.float32(1.0)}, {"loss": 1.0}), {"cost": 1.0}),
         raises=ValueError, match=r"names \['cost'\], not terms of this objective; its terms are \['loss'\]"),
    Case("train/objective/nothing-weighted", lambda: task_lib.Objective({"loss": jnp.float32(1.0)}, {}).value(),
         raises=ValueError, match="no weighted term"),
]

CASES = CASES + STREAM_CASES + PLAN_CASES + SEAM_CASES


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_sweep(case):
  cases.assert_case(case)
