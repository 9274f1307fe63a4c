"""Bad-input sweep: audio given to a Recognizer (`asrjax.inference.recognizer.prepare`)."""

import numpy as np
import pytest

from asrjax.inference import recognizer
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


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_sweep(case):
  cases.assert_case(case)
