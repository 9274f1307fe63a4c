"""Bad-input sweep: the multi-talker APIs (issue 21) and the loss kernel's options (issue 22).

References: errors by hand; "correct" cases against hand-derived values.
"""

import os

import jax
import numpy as np
import pytest

from asrjax.data import multitalker as mix_data
from asrjax.data.tokenizer import CharTokenizer, TurnTokenizer
from asrjax.losses import rnnt as rnnt_lib
from asrjax.losses import rnnt_kernel, rnnt_loss, turn_latency
from asrjax.metrics import multitalker as M
from tests.sweep import cases
from tests.sweep.cases import Case

TOK = TurnTokenizer(CharTokenizer.build(["ab c"]))  # " " 2, a 3, b 4, c 5; <sot> 6, <eot> 7
T = M.Turn
_REF = [T("A", "a b", 0.0, 1.0)]


def _mixture(turns, audio=None):
  cols = {k: [t[i] for t in turns] for i, k in enumerate(("speaker_id", "text", "start", "end"))}
  return {"id": b"m", "audio": np.ones(800, np.int16) if audio is None else audio, "turns": cols}


def _lp(t=3, u=2):
  rng = np.random.default_rng(0)
  return (rng.normal(size=(1, t, u + 1)).astype(np.float32), rng.normal(size=(1, t, u + 1)).astype(np.float32),
          np.zeros((1, t), np.float32), np.array([[6, 7]]), np.zeros((1, u), np.float32))


def _pallas_on_a_fake_gpu():
  """`choose_kernel("pallas")` with the backend reported as a GPU and the validation variable unset."""
  real, saved = jax.default_backend, os.environ.pop(rnnt_lib.UNVALIDATED_GPU_ENV, None)
  jax.default_backend = lambda: "gpu"
  try:
    return rnnt_lib.choose_kernel("pallas")
  finally:
    jax.default_backend = real
    if saved is not None:
      os.environ[rnnt_lib.UNVALIDATED_GPU_ENV] = saved


CASES = [
    Case("metrics/multitalker/no-sessions", lambda: M.session_wers({}), raises=ValueError, match="no sessions"),
    Case("metrics/multitalker/empty-reference", lambda: M.session_wers({"s": ([], _REF)}), raises=ValueError,
         match="no reference turns"),
    Case("metrics/multitalker/end-before-start", lambda: T("A", "a", 1.0, 0.5), raises=ValueError,
         match="finite start <= end"),
    Case("metrics/multitalker/nan-time", lambda: T("A", "a", float("nan"), 1.0), raises=ValueError,
         match="finite start <= end"),
    Case("metrics/multitalker/words-not-text", lambda: T("A", None, 0.0, 1.0), raises=TypeError,
         match="must be a string"),
    Case("metrics/multitalker/negative-collar", lambda: M.session_wers({"s": (_REF, _REF)}, collar=-0.1),
         raises=ValueError, match="collar must be >= 0"),
    Case("metrics/multitalker/perfect", lambda: M.session_wers({"s": (_REF, [T("0", "a b", 0.0, 1.0)])}),
         check=lambda r: r["s"]["orcwer"]["errors"] == 0 and r["s"]["cpwer"]["length"] == 2),
    Case("metrics/multitalker/overlap-nan", lambda: M.overlap_bin(float("nan")), raises=ValueError, match="finite"),
    Case("tokenizer/turns/sot-in-text", lambda: TOK.encode("a<sot>"), raises=ValueError, match="is a turn token"),
    Case("tokenizer/turns/one-string", lambda: TOK.encode_turns("ab"), raises=TypeError, match="not one string"),
    Case("tokenizer/turns/blank-id", lambda: TOK.split_turns([6, 0, 7]), raises=ValueError, match="blank"),
    Case("tokenizer/turns/out-of-range", lambda: TOK.decode_turns([8]), raises=ValueError,
         match="outside the vocabulary"),
    Case("data/mixture/no-turns", lambda: mix_data.turns_of({"audio": np.zeros(4)}), raises=ValueError,
         match="needs a 'turns' field"),
    Case("data/mixture/unequal-fields", lambda: mix_data.turns_of(
        {"turns": {"speaker_id": [b"A"], "text": [b"a", b"b"], "start": [0.0], "end": [1.0]}}), raises=ValueError,
         match="unequal lengths"),
    Case("data/mixture/three-at-once", lambda: mix_data.pad_mixture_batch(
        [_mixture([(b"A", b"a", 0.0, 1.0), (b"B", b"b", 0.1, 1.0), (b"C", b"c", 0.2, 1.0)])], TOK, 800, 8),
         raises=ValueError, match=r"example 0 \(id 'm'\): 3 turns overlap"),
    Case("data/mixture/unknown-character", lambda: mix_data.pad_mixture_batch(
        [_mixture([(b"A", b"z", 0.0, 1.0)])], TOK, 800, 8), raises=ValueError, match="unknown character 'z'"),
    Case("data/mixture/float-audio-in-int16-scale", lambda: mix_data.pad_mixture_batch(
        [_mixture([(b"A", b"a", 0.0, 1.0)], audio=np.full(800, 300.0))], TOK, 800, 8), raises=ValueError,
         match="example 0"),
    Case("losses/turn_latency/negative-weight", lambda: turn_latency.penalised_loss(
        *_lp(), np.zeros((1, 2)), np.ones((1, 2)), weight=-1.0), raises=ValueError, match="weight must be a finite"),
    Case("losses/turn_latency/boundaries-shape", lambda: turn_latency.penalised_loss(
        *_lp(), np.zeros((1, 3)), np.ones((1, 2)), weight=1.0), raises=ValueError,
         match=r"boundaries must have the labels' shape \[B, U\] = \(1, 2\)"),
    Case("losses/turn_latency/negative-early-weight", lambda: turn_latency.penalised_loss(
        *_lp(), np.zeros((1, 2)), np.ones((1, 2)), weight=1.0, early_weight=-0.1), raises=ValueError,
         match="early_weight must be a finite"),
    Case("losses/turn_latency/nan-early-buffer", lambda: turn_latency.penalised_loss(
        *_lp(), np.zeros((1, 2)), np.ones((1, 2)), weight=1.0, early_buffer=float("nan")), raises=ValueError,
         match="early_buffer must be a finite"),
    Case("losses/turn_latency/nothing-early-is-zero", lambda: turn_latency.latency_term(
        *_lp(), np.zeros((1, 2)), np.ones((1, 2)), weight=0.0, early_weight=1.0), check=lambda t: float(t[0]) == 0.0),
    Case("losses/turn_latency/on-time-is-zero", lambda: turn_latency.latency_term(
        *_lp(), np.full((1, 2), 10.0), np.ones((1, 2)), weight=1.0), check=lambda t: float(t[0]) == 0.0),
    Case("losses/rnnt/unknown-kernel", lambda: rnnt_loss(np.zeros((1, 2, 2, 3), np.float32), np.zeros((1, 2)),
                                                         np.ones((1, 1), np.int32), np.zeros((1, 1)), kernel="cuda"),
         raises=ValueError, match="kernel must be one of"),
    Case("losses/rnnt/pallas-on-a-gpu", _pallas_on_a_fake_gpu, raises=ValueError, match="refused on a GPU"),
    Case("losses/rnnt_kernel/row-wider-than-a-call", lambda: rnnt_kernel.row_chunks(4, 100, max_elements=99),
         raises=ValueError, match="exceeds max_elements"),
]


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_multitalker_sweep(case):
  cases.assert_case(case)
