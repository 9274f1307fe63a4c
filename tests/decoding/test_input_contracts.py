"""The decoders' input contract (`asrjax.decoding.transducer`): loud on broken inputs, blind to padding.

Every decoder is checked against an independent reference on the same toy model:
the plain NumPy greedy search, brute-force ``log P(y|x)`` over all alignments (wide
beam search), and brute force over one-label-per-frame alignments (wide modified beam
search), each computed on the rows cut to their valid frames.
"""

import jax
import numpy as np
import pytest

from asrjax import decoding
from asrjax.decoding.ngram_lm import NgramLM
from tests.decoding import toy

V, D, T = toy.CONTRACT_V, toy.CONTRACT_D, toy.CONTRACT_T
LENGTHS, ENC, PADS = toy.CONTRACT_LENGTHS, toy.CONTRACT_ENC, toy.CONTRACT_PADS
PARAMS, OPTIONS = toy.CONTRACT_PARAMS, toy.CONTRACT_OPTIONS


def assert_matches_reference(name, got, ref):
  assert toy.matches_reference(name, got, ref), (got, ref)


def _decode(name, enc, pads):
  return decoding.DECODERS[name](toy.FNS, PARAMS[name], enc, pads, **OPTIONS[name])


@pytest.fixture(scope="module")
def references():
  return {name: toy.reference_nbest(name, PARAMS[name], ENC, LENGTHS, V) for name in decoding.DECODERS}


@pytest.mark.parametrize("name", sorted(decoding.DECODERS))
def test_nan_in_padded_frames_changes_nothing(name, references):
  enc = ENC.copy()
  enc[1, LENGTHS[1]:] = np.nan
  assert_matches_reference(name, _decode(name, enc, PADS).to_lists(), references[name])


@pytest.mark.parametrize("name", sorted(decoding.DECODERS))
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_valid_frame_raises_naming_the_row(name, value):
  enc = ENC.copy()
  enc[1, 1, 2] = value
  with pytest.raises(ValueError, match=r"enc .*rows \[1\] contain NaN/inf in valid frames"):
    _decode(name, enc, PADS)


@pytest.mark.parametrize("name", sorted(decoding.DECODERS))
@pytest.mark.parametrize("pads", [[[0, 1, 0], [0, 0, 1]], [[0, 0, 0.5], [0, 0, 1]]], ids=["gap", "half"])
def test_bad_paddings_raise_eagerly(name, pads):
  with pytest.raises(ValueError, match="enc_paddings.*trailing"):
    _decode(name, ENC, np.asarray(pads, np.float32))


@pytest.mark.parametrize("name", ["greedy", "modified_beam", "maes"])
def test_broken_contract_under_jit_is_a_nan_score_that_to_lists_refuses(name, references):
  bad_pads = np.array([[0, 0, 0], [0, 1, 0]], np.float32)  # row 1 non-trailing
  nan_enc = ENC.copy()
  nan_enc[0, 0, 0] = np.nan
  run = jax.jit(lambda e, p: _decode(name, e, p))
  for enc, pads, row in [(ENC, bad_pads, 1), (nan_enc, PADS, 0)]:
    out = run(enc, pads)
    assert np.isnan(np.asarray(out.scores)[row]).all() and np.isfinite(np.asarray(out.scores)[1 - row, 0])
    with pytest.raises(ValueError, match=rf"rows \[{row}\] are NaN"):
      out.to_lists()
  assert_matches_reference(name, run(ENC, PADS).to_lists(), references[name])


@pytest.mark.parametrize("name", sorted(decoding.DECODERS))
def test_no_frames_and_empty_batch(name):
  """T = 0 (and a row of padded frames only) is the empty hypothesis with score log 1 = 0; B = 0 is empty."""
  none = _decode(name, np.zeros((2, 0, D), np.float32), np.zeros((2, 0), np.float32))
  assert none.to_lists() == [[([], 0.0)], [([], 0.0)]]
  empty = _decode(name, np.zeros((0, T, D), np.float32), np.zeros((0, T), np.float32))
  assert empty.to_lists() == [] and empty.scores.shape[0] == 0 and empty.labels.ndim == 3
  silent = _decode(name, ENC, toy.paddings([3, 0], T)).to_lists()
  assert silent[1] == [([], 0.0)]


def test_zero_lm_weight_ignores_the_lms_minus_inf():
  """λ = 0 with an unsmoothed LM (log 0 = -inf for unseen events) adds exactly β per label: 0 * -inf is not NaN."""
  params = PARAMS["beam"]
  lm = NgramLM.fit([[1, 1]], vocab_size=V, order=2, discount=0.0)  # label 2 never seen: -inf
  assert np.isneginf(lm.log_probs([])[2])
  out = decoding.beam_search(toy.FNS, params, ENC[:1], PADS[:1], lm=lm, lm_weight=0.0, length_bonus=0.25,
                             **OPTIONS["beam"]).to_lists()[0]
  model = toy.NumpyModel(params, ENC[0])
  assert any(2 in y for y, _ in out)
  for y, s in out:
    np.testing.assert_allclose(s, model.sequence_log_prob(y) + 0.25 * len(y), rtol=1e-5)
