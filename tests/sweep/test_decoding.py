"""Bad-input sweep of the decoders: greedy, beam (with and without LMs), modified beam, streaming,
the n-gram and lexicon word LMs, and the `DECODERS` registry (`tests/sweep/cases.py`).

Every accepted input is checked against an independent reference computed by the NumPy
toy model of `tests.decoding.toy` on the rows cut to their valid frames: the plain NumPy
greedy search, brute-force ``log P(y|x)`` over all alignments (wide beam search), brute
force over one-label-per-frame alignments (wide modified beam search); streaming against
whole-utterance greedy search, the LMs against hand-derived Kneser-Ney values. Every
rejected input must raise the expected type with a message naming the argument.

Shapes are shared ([2, 3, 3] toy encoder output, one streaming chunk shape) so the whole
table compiles a handful of programs.
"""

from __future__ import annotations

import functools
import math
import os
import atexit
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax import decoding
from asrjax.decoding import device_lm
from asrjax.decoding import greedy as greedy_lib
from asrjax.decoding import maes as maes_lib
from asrjax.decoding import word_lm
from asrjax.inference import streaming
from asrjax.decoding.ngram_lm import NgramLM
from tests.decoding import toy
from tests.sweep import cases
from tests.sweep.cases import Case

_TMP = tempfile.mkdtemp(prefix="sweep_decoding_")  # the LM files the cases write
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)

V, D, T = toy.CONTRACT_V, toy.CONTRACT_D, toy.CONTRACT_T
LENGTHS, ENC, PADS = toy.CONTRACT_LENGTHS, toy.CONTRACT_ENC, toy.CONTRACT_PADS
PARAMS, OPTIONS = toy.CONTRACT_PARAMS, toy.CONTRACT_OPTIONS
SMALL = {"greedy": {}, "beam": dict(beam=2, expand=2), "modified_beam": {}, "maes": dict(beam=2)}
DECODER_FN = {"greedy": decoding.greedy_search, "beam": decoding.beam_search,
              "modified_beam": decoding.modified_beam_search, "maes": decoding.maes_search}


@functools.cache
def _reference(name: str, lengths: tuple[int, ...] = tuple(LENGTHS)):
  return toy.reference_nbest(name, PARAMS[name], ENC, lengths, V)


def _decode(name, enc=ENC, pads=PADS, fns=toy.FNS, params=None, **options):
  opts = dict(OPTIONS[name], **options)
  return DECODER_FN[name](fns, PARAMS[name] if params is None else params, enc, pads, **opts)


def _with(where: dict, enc=ENC):
  """A copy of ``enc`` with ``where = {(b, t): value}`` frames overwritten."""
  out = np.array(enc)
  for (b, t), value in where.items():
    out[b, t] = value
  return out


def _is_reference(name, lengths=tuple(LENGTHS)):
  return lambda out: toy.matches_reference(name, out.to_lists(), _reference(name, tuple(lengths)))


def _empty_rows(b):
  return lambda out: out.to_lists() == [[([], 0.0)]] * b


def _empty_batch(out):
  return out.to_lists() == [] and np.shape(out.scores)[0] == 0 and np.ndim(out.labels) == 3


GAP = np.array([[0, 1, 0], [0, 0, 1]], np.float32)
HALF = np.array([[0, 0, 0.5], [0, 0, 1]], np.float32)
NANPAD = np.array([[0, 0, np.nan], [0, 0, 1]], np.float32)
NAN_PARAMS = {k: np.full_like(v, np.nan) for k, v in PARAMS["greedy"].items()}
NAN_ROW = r"rows \[1\].*(nan|inf)"
PAD_MSG = r"enc_paddings.*(0|trailing)"


def _decoder_cases(name: str) -> list[Case]:
  """The cases every decoder shares (the same input contract)."""
  n = f"decoding/{name}"
  return [
      Case(f"{n}/clean_padded_batch", lambda: _decode(name), check=_is_reference(name)),
      Case(f"{n}/nan_in_padded_frames", lambda: _decode(name, _with({(1, 2): np.nan})), check=_is_reference(name)),
      Case(f"{n}/inf_in_padded_frames", lambda: _decode(name, _with({(1, 2): -np.inf})), check=_is_reference(name)),
      Case(f"{n}/bool_paddings", lambda: _decode(name, pads=PADS.astype(bool)), check=_is_reference(name)),
      Case(f"{n}/float64_enc", lambda: _decode(name, ENC.astype(np.float64)), check=_is_reference(name)),
      Case(f"{n}/row_all_padded", lambda: _decode(name, pads=toy.paddings([3, 0], T)),
           check=lambda out: out.to_lists()[1] == [([], 0.0)]),
      Case(f"{n}/nan_in_valid_frame", lambda: _decode(name, _with({(1, 1): np.nan})), raises=ValueError,
           match=NAN_ROW),
      Case(f"{n}/inf_in_valid_frame", lambda: _decode(name, _with({(1, 0): np.inf})), raises=ValueError,
           match=NAN_ROW),
      Case(f"{n}/non_trailing_paddings", lambda: _decode(name, pads=GAP), raises=ValueError, match=PAD_MSG),
      Case(f"{n}/fractional_paddings", lambda: _decode(name, pads=HALF), raises=ValueError, match=PAD_MSG),
      Case(f"{n}/nan_paddings", lambda: _decode(name, pads=NANPAD), raises=ValueError, match=PAD_MSG),
      Case(f"{n}/no_frames", lambda: _decode(name, np.zeros((2, 0, D), np.float32), np.zeros((2, 0))),
           check=_empty_rows(2)),
      Case(f"{n}/empty_batch", lambda: _decode(name, np.zeros((0, T, D), np.float32), np.zeros((0, T))),
           check=_empty_batch),
      Case(f"{n}/enc_rank_2", lambda: _decode(name, ENC[0], PADS[0]), raises=ValueError, match=r"enc.*\[B, T, D\]"),
      Case(f"{n}/enc_rank_4", lambda: _decode(name, ENC[None], PADS[None]), raises=ValueError,
           match=r"enc.*\[B, T, D\]"),
      Case(f"{n}/paddings_wrong_shape", lambda: _decode(name, pads=np.zeros((2, T + 1))), raises=ValueError,
           match=r"enc_paddings.*\[B, T\]|enc_paddings shape"),
      Case(f"{n}/integer_enc", lambda: _decode(name, ENC.astype(np.int32)), raises=ValueError,
           match="enc.*floating"),
      Case(f"{n}/blank_id_out_of_range", lambda: _decode(name, fns=toy.fns(7)), raises=ValueError,
           match=r"blank_id.*\[0, 3\)"),
      Case(f"{n}/nan_parameters", lambda: _decode(name, params=NAN_PARAMS, **SMALL[name]).to_lists(),
           raises=ValueError, match="NaN"),
  ]


@functools.cache
def _jitted(name):
  return jax.jit(lambda e, p: _decode(name, e, p))


def _jit_cases(name: str) -> list[Case]:
  """Traced under an outer jit the values are unknown: a broken contract must be a NaN that to_lists refuses."""
  n = f"decoding/{name}/under_jit"
  run = lambda enc, pads: _jitted(name)(enc, pads)
  return [
      Case(f"{n}/clean", lambda: run(ENC, PADS), check=_is_reference(name)),
      Case(f"{n}/non_trailing_paddings", lambda: run(ENC, GAP).to_lists(), raises=ValueError,
           match=r"rows \[0\] are NaN"),
      Case(f"{n}/nan_in_valid_frame", lambda: run(_with({(1, 1): np.nan}), PADS).to_lists(), raises=ValueError,
           match=r"rows \[1\] are NaN"),
  ]


def _option_cases() -> list[Case]:
  g, b, m, a = "decoding/greedy", "decoding/beam", "decoding/modified_beam", "decoding/maes"
  return [
      Case(f"{a}/beam_0", lambda: _decode("maes", beam=0), raises=ValueError, match="beam.*>= 1"),
      Case(f"{a}/beam_float", lambda: _decode("maes", beam=2.5), raises=ValueError, match="beam.*integer"),
      Case(f"{a}/max_symbols_per_frame_0", lambda: _decode("maes", max_symbols_per_frame=0), raises=ValueError,
           match="max_symbols_per_frame.*>= 1"),
      Case(f"{a}/expansion_gamma_0", lambda: _decode("maes", expansion_gamma=0.0), raises=ValueError,
           match="expansion_gamma.*> 0"),
      Case(f"{a}/expansion_gamma_nan", lambda: _decode("maes", expansion_gamma=float("nan")), raises=ValueError,
           match="expansion_gamma.*finite"),
      Case(f"{a}/lm_weight_without_lm", lambda: _decode("maes", lm_weight=0.5), raises=ValueError,
           match="lm_weight.*need an n-gram LM"),
      Case(f"{a}/unknown_option", lambda: _decode("maes", expand=2), raises=TypeError, match="expand"),
      Case(f"{a}/continue_with_state_of_another_batch",
           lambda: maes_lib.maes_continue(toy.FNS, PARAMS["maes"], ENC, PADS,
                                          maes_lib.maes_start(toy.FNS, PARAMS["maes"], 3, enc_dim=D)),
           raises=ValueError, match="state is for 3 streams but enc has B = 2"),
      Case(f"{a}/start_capacity_0", lambda: maes_lib.maes_start(toy.FNS, PARAMS["maes"], 2, enc_dim=D, capacity=0),
           raises=ValueError, match="capacity.*>= 1"),
      Case(f"{a}/expansion_beam_above_beam", lambda: _decode("maes", beam=2, expansion_beam=3), raises=ValueError,
           match="expansion_beam must be <= beam"),
      Case(f"{g}/max_symbols_per_frame_0", lambda: _decode("greedy", max_symbols_per_frame=0), raises=ValueError,
           match="max_symbols_per_frame.*>= 1"),
      Case(f"{g}/max_symbols_per_frame_negative", lambda: _decode("greedy", max_symbols_per_frame=-3),
           raises=ValueError, match="max_symbols_per_frame.*>= 1"),
      Case(f"{g}/max_symbols_per_frame_float", lambda: _decode("greedy", max_symbols_per_frame=2.5),
           raises=ValueError, match="max_symbols_per_frame.*integer"),
      Case(f"{g}/max_symbols_per_frame_1", lambda: _decode("greedy", max_symbols_per_frame=1),
           check=lambda out: toy.matches_reference(
               "greedy", out.to_lists(), toy.reference_nbest("greedy", PARAMS["greedy"], ENC, LENGTHS, V, 0, 1))),
      Case(f"{g}/lm_option", lambda: _decode("greedy", lm=object()), raises=TypeError, match="lm"),
      Case(f"{g}/continue_with_state_of_another_batch",
           lambda: greedy_lib.greedy_continue(toy.FNS, PARAMS["greedy"], ENC, PADS,
                                              greedy_lib.greedy_start(toy.FNS, PARAMS["greedy"], 3)),
           raises=ValueError, match="state.*B = 2"),
      Case(f"{m}/beam_0", lambda: _decode("modified_beam", beam=0), raises=ValueError, match="beam.*>= 1"),
      Case(f"{m}/beam_negative", lambda: _decode("modified_beam", beam=-2), raises=ValueError, match="beam.*>= 1"),
      Case(f"{m}/beam_float", lambda: _decode("modified_beam", beam=2.5), raises=ValueError, match="beam.*integer"),
      Case(f"{m}/lm_option", lambda: _decode("modified_beam", lm=object()), raises=TypeError, match="lm"),
      Case(f"{b}/beam_0", lambda: _decode("beam", beam=0), raises=ValueError, match="beam.*>= 1"),
      Case(f"{b}/beam_negative", lambda: _decode("beam", beam=-1), raises=ValueError, match="beam.*>= 1"),
      Case(f"{b}/beam_float", lambda: _decode("beam", beam=2.5), raises=ValueError, match="beam.*integer"),
      Case(f"{b}/expand_0", lambda: _decode("beam", expand=0), raises=ValueError, match="expand.*>= 1"),
      Case(f"{b}/nbest_0", lambda: _decode("beam", nbest=0), raises=ValueError, match="nbest.*>= 1"),
      Case(f"{b}/max_symbols_per_frame_0", lambda: _decode("beam", max_symbols_per_frame=0), raises=ValueError,
           match="max_symbols_per_frame.*>= 1"),
      Case(f"{b}/lm_weight_without_lm", lambda: _decode("beam", lm_weight=0.5), raises=ValueError,
           match="lm_weight.*need an n-gram LM"),
      Case(f"{b}/traced_enc", lambda: jax.jit(lambda e: _decode("beam", e).scores)(ENC), raises=TypeError,
           match="beam_search.*traced"),
  ]


# ---------------------------------------------------------------- shallow fusion (V = 5 model and LMs)
LM_V = 5  # 0 blank, 1 unk, 2 space, 3 "a", 4 "b"
LM_PARAMS = toy.make_params(7, D, LM_V, scale=1.5, blank_bias=5.0)
LM_OPTIONS = dict(beam=32, expand=LM_V, nbest=4, max_symbols_per_frame=6)
CHARS = {2: " ", 3: "a", 4: "b"}
TEXT = ["a ab", "ab", "b a", "ab ab", "ba"]


def _encode_text(t):
  inv = {c: i for i, c in CHARS.items()}
  return [inv[c] for c in t]


@functools.cache
def _char_lm(discount=0.5):
  return NgramLM.fit([_encode_text(t) for t in TEXT], vocab_size=LM_V, order=3, discount=discount)


@functools.cache
def _word_lm():
  return word_lm.LexiconWordLM.fit(TEXT, CHARS, _char_lm(), order=2, char_weight=0.2)


def _lm_score(lm, y):
  """``log P_LM(y </s>)`` read token by token from the host LM."""
  return sum(float(lm.log_probs(y[:i])[y[i] if i < len(y) else lm.eos_id]) for i in range(len(y) + 1))


def _fused_reference(lm, lm_weight, length_bonus):
  """Every returned score = brute-force log P(y|x) + λ log P_LM(y </s>) + β |y|, the LM read token by token."""
  model = toy.NumpyModel(LM_PARAMS, ENC[0])

  def check(out):
    got = out.to_lists()[0]
    return len(got) == LM_OPTIONS["nbest"] and all(
        np.isclose(s, model.sequence_log_prob(y) + (lm_weight * _lm_score(lm, y) if lm_weight else 0.0)
                   + length_bonus * len(y), rtol=1e-5) for y, s in got)
  return check


def _fuse(lm, **options):
  opts = dict(dict(LM_OPTIONS, lm=lm, lm_weight=0.5, length_bonus=0.3), **options)
  return decoding.beam_search(toy.FNS, LM_PARAMS, ENC[:1], PADS[:1], **opts)


def _fusion_cases() -> list[Case]:
  b = "decoding/beam/lm"
  return [
      Case(f"{b}/ngram", lambda: _fuse(_char_lm()), check=_fused_reference(_char_lm(), 0.5, 0.3)),
      Case(f"{b}/word_lm", lambda: _fuse(_word_lm()), check=_fused_reference(_word_lm(), 0.5, 0.3)),
      Case(f"{b}/zero_weight_unsmoothed_lm", lambda: _fuse(_char_lm(0.0), lm_weight=0.0),
           check=_fused_reference(_char_lm(0.0), 0.0, 0.3)),
      Case(f"{b}/lm_weight_nan", lambda: _fuse(_char_lm(), lm_weight=float("nan")), raises=ValueError,
           match="lm_weight.*finite"),
      Case(f"{b}/lm_weight_inf", lambda: _fuse(_char_lm(), lm_weight=float("inf")), raises=ValueError,
           match="lm_weight.*finite"),
      Case(f"{b}/lm_weight_negative", lambda: _fuse(_char_lm(), lm_weight=-0.5), raises=ValueError,
           match="lm_weight.*>= 0"),
      Case(f"{b}/length_bonus_nan", lambda: _fuse(_char_lm(), length_bonus=float("nan")), raises=ValueError,
           match="length_bonus.*finite"),
      Case(f"{b}/lm_vocab_mismatch", lambda: _fuse(NgramLM.fit([[1, 2]], vocab_size=7)), raises=ValueError,
           match="lm.*7.*5 outputs"),
      Case(f"{b}/lm_vocab_mismatch_no_frames",
           lambda: decoding.beam_search(toy.FNS, LM_PARAMS, np.zeros((1, 0, D), np.float32), np.zeros((1, 0)),
                                        lm=NgramLM.fit([[1, 2]], vocab_size=7), lm_weight=0.5),
           raises=ValueError, match="lm.*7.*5 outputs"),
      Case(f"{b}/not_an_lm", lambda: _fuse({"vocab_size": LM_V}), raises=ValueError, match="lm must have"),
      Case(f"{b}/blank_id_not_0", lambda: decoding.beam_search(
          toy.fns(2), LM_PARAMS, ENC[:1], PADS[:1], lm=_char_lm(), lm_weight=0.5), raises=ValueError,
           match="blank id 0"),
  ]


MAES_LM_OPTIONS = dict(beam=96, max_symbols_per_frame=1)  # 85 sequences of <= 1 label in each of 3 frames


def _fused_maes_reference(lm, lm_weight, length_bonus):
  """Every sequence reachable with <= 1 label per frame, scored brute-force log P(y|x) over those alignments
  + λ log P_LM(y </s>) + β |y|, the LM read token by token on the host."""
  model = toy.NumpyModel(LM_PARAMS, ENC[0])

  def check(out):
    got = out.to_lists()[0]
    want = {y: model.limited_log_prob(y, 1) + (lm_weight * _lm_score(lm, y) if lm_weight else 0.0) + length_bonus * len(y)
            for y in toy.all_sequences(LM_V, 3)}
    return {tuple(y) for y, _ in got} == set(want) and all(
        np.isclose(s, want[tuple(y)], rtol=1e-5, atol=1e-4) for y, s in got)
  return check


def _fuse_maes(lm, **options):
  opts = dict(dict(MAES_LM_OPTIONS, lm=lm, lm_weight=0.5, length_bonus=0.3), **options)
  return decoding.maes_search(toy.FNS, LM_PARAMS, ENC[:1], PADS[:1], **opts)


def _maes_fusion_cases() -> list[Case]:
  a = "decoding/maes/lm"
  return [
      Case(f"{a}/ngram", lambda: _fuse_maes(_char_lm()), check=_fused_maes_reference(_char_lm(), 0.5, 0.3)),
      Case(f"{a}/word_lm", lambda: _fuse_maes(_word_lm()), check=_fused_maes_reference(_word_lm(), 0.5, 0.3)),
      Case(f"{a}/zero_weight_unsmoothed_lm", lambda: _fuse_maes(_char_lm(0.0), lm_weight=0.0),
           check=_fused_maes_reference(_char_lm(0.0), 0.0, 0.3)),
      Case(f"{a}/lm_weight_negative", lambda: _fuse_maes(_char_lm(), lm_weight=-0.5), raises=ValueError,
           match="lm_weight.*>= 0"),
      Case(f"{a}/length_bonus_inf", lambda: _fuse_maes(_char_lm(), length_bonus=float("inf")), raises=ValueError,
           match="length_bonus.*finite"),
      Case(f"{a}/lm_vocab_mismatch", lambda: _fuse_maes(NgramLM.fit([[1, 2]], vocab_size=7)), raises=ValueError,
           match="lm.*7.*5 outputs"),
      Case(f"{a}/not_an_lm", lambda: _fuse_maes({"vocab_size": LM_V}), raises=ValueError,
           match="lm must be an ngram_lm.NgramLM"),
      Case(f"{a}/blank_id_not_0", lambda: decoding.maes_search(
          toy.fns(2), LM_PARAMS, ENC[:1], PADS[:1], lm=_char_lm(), lm_weight=0.5), raises=ValueError,
           match="blank id 0"),
  ]


# ---------------------------------------------------------------- registry
def _registry_cases() -> list[Case]:
  def unknown():
    return decoding.DECODERS["beem"]

  def still_a_key_error():
    try:
      decoding.DECODERS["beem"]
    except KeyError as e:
      return e
    return None

  return [
      Case("decoding/DECODERS/unknown_name", unknown, raises=ValueError, match="unknown decoder 'beem'.*greedy"),
      Case("decoding/DECODERS/unknown_name_is_a_key_error", still_a_key_error,
           check=lambda e: isinstance(e, KeyError) and isinstance(e, ValueError)),
      Case("decoding/DECODERS/known_names", lambda: dict(decoding.DECODERS),
           check=lambda d: d == DECODER_FN),
      Case("decoding/DECODERS/membership", lambda: ("greedy" in decoding.DECODERS, "nope" in decoding.DECODERS),
           check=lambda r: r == (True, False)),
  ]


# ---------------------------------------------------------------- streaming
@functools.cache
def _stream_setup():
  """A small LSTM transducer with causal CMVN, [2, 24, 8] features (stream 1 ends at 14), the whole-utterance
  greedy labels as reference."""
  from asrjax.models import lstm_rnnt, transducer
  model = transducer.Transducer(lstm_rnnt.LSTMEncoder(stack=3, lstm_hidden=16, lstm_layers=1, output_dim=16),
                                vocab_size=7, embed_dim=8, predictor_hidden=16, joint_hidden=16,
                                causal_cmvn_frames=20.0, num_features=8)
  rng = np.random.default_rng(5)
  feats = rng.normal(0.5, 2.0, size=(2, 24, 8)).astype(np.float32)
  pads = (np.arange(24)[None] >= np.array([[24], [14]])).astype(np.float32)
  params = jax.jit(model.init)(jax.random.key(2), feats, pads, jnp.ones((2, 3), jnp.int32), jnp.zeros((2, 3)))
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: x.at[0].add(-2.0) if "out" in jax.tree_util.keystr(path) and "bias" in
      jax.tree_util.keystr(path) else x, params)
  enc, enc_pads, _ = jax.jit(lambda p, f, q: model.apply(p, f, q, method=transducer.Transducer.encode))(
      params, feats, pads)
  whole = [h[0][0] for h in decoding.greedy_search(transducer.decoder_fns(model), params, enc, enc_pads).to_lists()]
  assert sum(map(len, whole)) > 4, whole  # the streaming checks are not vacuous
  return model, params, feats, pads, whole


@functools.cache
def _recognizer():
  """One recogniser for the table, `reset` before each case (a new one would compile its programs again)."""
  model, params, *_ = _stream_setup()
  return streaming.StreamingRecognizer(model, params, batch=2)


def _stream(chunks, batch=2, **kwargs):
  """Feeds ``chunks`` (``(feats, paddings)`` pairs) to a fresh recogniser and returns it."""
  if batch == 2 and not kwargs:
    rec = _recognizer()
    rec.reset()
  else:
    model, params, *_ = _stream_setup()
    rec = streaming.StreamingRecognizer(model, params, batch=batch, **kwargs)
  for c in chunks:
    rec.accept(*c)
  return rec


def _good(i):
  _, _, feats, pads, _ = _stream_setup()
  return feats[:, 12 * i:12 * (i + 1)], pads[:, 12 * i:12 * (i + 1)]


def _bad_nan():
  f, p = _good(1)
  f = f.copy()
  f[0, 2, 5] = np.nan
  return f, p


def _after_rejected(bad):
  """Good chunk 0, a chunk that must be rejected, good chunk 1: the labels must equal the whole utterance's."""
  def run():
    rec = _stream([_good(0)])
    try:
      rec.accept(*bad())
    except ValueError:
      pass
    else:
      raise AssertionError("the bad chunk was accepted")
    rec.accept(*_good(1))
    return rec
  return run


def _streaming_cases() -> list[Case]:
  s = "decoding/streaming"
  whole = lambda rec: rec.labels == _stream_setup()[4]

  def padded_nan():
    f, p = _good(1)
    f = f.copy()
    f[1, 2:] = np.nan  # stream 1 ends at frame 14: the rest of this chunk is its padding
    return f, p

  def gap():
    f, p = _good(1)
    p = p.copy()
    p[0, 4] = 1.0
    return f, p

  return [
      Case(f"{s}/clean", lambda: _stream([_good(0), _good(1)]), check=whole),
      Case(f"{s}/nan_chunk_raises", lambda: _stream([_good(0), _bad_nan()]), raises=ValueError,
           match=r"feats rows \[0\].*NaN.*state was not updated"),
      Case(f"{s}/inf_chunk_raises", lambda: _stream([_good(0), (np.where(_bad_nan()[0] != _bad_nan()[0], np.inf,
                                                                        _good(1)[0]), _good(1)[1])]),
           raises=ValueError, match=r"feats rows \[0\].*state was not updated"),
      Case(f"{s}/after_nan_chunk", _after_rejected(_bad_nan), check=whole),
      Case(f"{s}/after_overflowing_chunk", _after_rejected(lambda: (np.full_like(_good(1)[0], 3e38), _good(1)[1])),
           check=whole),
      Case(f"{s}/after_non_trailing_paddings", _after_rejected(gap), check=whole),
      Case(f"{s}/non_trailing_paddings", lambda: _stream([_good(0), gap()]), raises=ValueError,
           match="paddings row 0.*trailing"),
      Case(f"{s}/fractional_paddings", lambda: _stream([(_good(0)[0], np.full((2, 12), 0.5, np.float32))]),
           raises=ValueError, match="paddings.*0 .valid. and 1"),
      Case(f"{s}/nan_in_padded_frames", lambda: _stream([_good(0), padded_nan()]), check=whole),
      Case(f"{s}/empty_chunk", lambda: _stream([_good(0), (np.zeros((2, 0, 8), np.float32), np.zeros((2, 0))),
                                                _good(1)]), check=whole),
      Case(f"{s}/chunk_not_a_multiple", lambda: _stream([(_good(0)[0][:, :4], _good(0)[1][:, :4])]),
           raises=ValueError, match="multiple of 3"),
      Case(f"{s}/wrong_batch", lambda: _stream([(_good(0)[0][:1], _good(0)[1][:1])]), raises=ValueError,
           match=r"feats.*\[B=2"),
      Case(f"{s}/feats_rank_2", lambda: _stream([(_good(0)[0][0], _good(0)[1][0])]), raises=ValueError,
           match=r"feats.*\[B=2, Tc, F\]"),
      Case(f"{s}/paddings_wrong_shape", lambda: _stream([(_good(0)[0], _good(0)[1][:, :6])]), raises=ValueError,
           match=r"paddings must be \[B, Tc\]"),
      Case(f"{s}/integer_feats", lambda: _stream([(_good(0)[0].astype(np.int32), _good(0)[1])]), raises=ValueError,
           match="feats.*floating"),
      Case(f"{s}/batch_0", lambda: _stream([], batch=0), raises=ValueError, match="batch.*>= 1"),
      Case(f"{s}/max_symbols_per_frame_0", lambda: _stream([], max_symbols_per_frame=0), raises=ValueError,
           match="max_symbols_per_frame.*>= 1"),
  ]


# ---------------------------------------------------------------- n-gram LM
AB_AC = [[2, 3], [2, 4]]  # a=2, b=3, c=4 in 5 ids; end-of-sentence has index 5


def _hand_bigram(lm):
  """Hand-derived D = 0.5 Kneser-Ney values (tests/decoding/test_ngram_lm.py): P(.|a), P(a|<s>), P(</s>|b)."""
  return (np.allclose(np.exp(lm.log_probs([2])), [0, 0.04, 0.09, 0.34, 0.34, 0.19], atol=1e-12)
          and np.isclose(np.exp(lm.log_probs([])[2]), 0.795) and np.isclose(np.exp(lm.log_probs([3])[5]), 0.69))


def _lm_file(mutate=None, arrays=None):
  """Saves the AB_AC bigram (or ``arrays`` as a raw npz), optionally damaged by ``mutate(bytearray)``; loads it."""
  d = tempfile.mkdtemp(dir=_TMP)
  path = os.path.join(d, "lm.npz")
  if arrays is None:
    NgramLM.fit(AB_AC, vocab_size=5, order=2, discount=0.5).save(path)
  else:
    np.savez(path, **arrays)
  if mutate is not None:
    data = bytearray(open(path, "rb").read())
    mutate(data)
    open(path, "wb").write(bytes(data))
  return NgramLM.load(path)


def _raw_arrays(**changes):
  """The arrays `NgramLM.save` writes for the AB_AC bigram, with ``changes``."""
  d = tempfile.mkdtemp(dir=_TMP)
  path = os.path.join(d, "lm.npz")
  NgramLM.fit(AB_AC, vocab_size=5, order=2, discount=0.5).save(path)
  with np.load(path) as z:
    arrays = {k: z[k] for k in z.files}
  arrays.update(changes)
  return arrays


def _flip_everywhere():
  """8 bytes flipped at every 16th offset of a saved file (size unchanged): each load must raise or give the
  original model exactly (the bytes hit metadata the reader ignores); returns the two counts."""
  d = tempfile.mkdtemp(dir=_TMP)
  path = os.path.join(d, "lm.npz")
  lm = NgramLM.fit(AB_AC, vocab_size=5, order=2, discount=0.5)
  lm.save(path)
  data = open(path, "rb").read()
  raised = same = 0
  for pos in range(0, len(data) - 8, 16):
    bad = bytearray(data)
    for i in range(pos, pos + 8):
      bad[i] ^= 0xFF
    open(path, "wb").write(bytes(bad))
    try:
      got = NgramLM.load(path)
    except ValueError:
      raised += 1
      continue
    ok = all(np.array_equal(got.log_probs(c), lm.log_probs(c)) for c in ([], [2], [3], [4], [2, 3]))
    if not ok:
      raise AssertionError(f"bytes flipped at {pos} loaded as a different model")
    same += 1
  return raised, same


def _flip_data(member):
  def mutate(data):
    i = data.index(b"NUMPY", data.index(member.encode())) + 140  # inside the member's array data
    for k in range(i, i + 8):
      data[k] ^= 0xFF
  return mutate


def _ngram_cases() -> list[Case]:
  n = "decoding/NgramLM"
  fit = lambda **kw: NgramLM.fit(**dict(dict(sentences=AB_AC, vocab_size=5, order=2, discount=0.5), **kw))
  lm = lambda: fit()
  return [
      Case(f"{n}/fit_hand_derived_bigram", lambda: fit(), check=_hand_bigram),
      Case(f"{n}/fit_order_0", lambda: fit(order=0), raises=ValueError, match="order.*>= 1"),
      Case(f"{n}/fit_order_negative", lambda: fit(order=-2), raises=ValueError, match="order.*>= 1"),
      Case(f"{n}/fit_order_float", lambda: fit(order=2.5), raises=ValueError, match="order.*integer"),
      Case(f"{n}/fit_discount_1", lambda: fit(discount=1.0), raises=ValueError, match=r"discount.*\[0, 1\)"),
      Case(f"{n}/fit_discount_negative", lambda: fit(discount=-0.1), raises=ValueError, match=r"discount.*\[0, 1\)"),
      Case(f"{n}/fit_discount_nan", lambda: fit(discount=float("nan")), raises=ValueError, match="discount"),
      Case(f"{n}/fit_vocab_size_1", lambda: fit(vocab_size=1), raises=ValueError, match="vocab_size.*>= 2"),
      Case(f"{n}/fit_blank_id_in_text", lambda: fit(sentences=[[2, 0]]), raises=ValueError,
           match=r"id 0 outside \[1, 5\)"),
      Case(f"{n}/fit_unknown_id", lambda: fit(sentences=[[2, 5]]), raises=ValueError, match=r"id 5 outside"),
      Case(f"{n}/fit_no_sentences", lambda: fit(sentences=[]), raises=ValueError, match="no sentences"),
      Case(f"{n}/log_probs_unknown_id", lambda: lm().log_probs([2, 5]), raises=ValueError,
           match=r"context.*id 5 outside.*\[1, 5\)"),
      Case(f"{n}/log_probs_huge_id", lambda: lm().log_probs([26]), raises=ValueError, match="context.*id 26"),
      Case(f"{n}/log_probs_blank_id", lambda: lm().log_probs([0, 2]), raises=ValueError, match="context.*id 0"),
      Case(f"{n}/log_probs_negative_id", lambda: lm().log_probs([-1]), raises=ValueError, match="context.*id -1"),
      Case(f"{n}/sentence_log_prob_eos_as_token", lambda: lm().sentence_log_prob([2, 5]), raises=ValueError,
           match="ids.*id 5"),
      Case(f"{n}/save_load_roundtrip", lambda: _lm_file(), check=_hand_bigram),
      Case(f"{n}/load_truncated", lambda: _lm_file(lambda d: d.__delitem__(slice(len(d) // 2, None))),
           raises=ValueError, match="cannot read the n-gram language model"),
      Case(f"{n}/load_flipped_counts_data", lambda: _lm_file(_flip_data("counts_1")), raises=ValueError,
           match="cannot read the n-gram language model"),
      Case(f"{n}/load_flipped_keys_data", lambda: _lm_file(_flip_data("keys_1")), raises=ValueError,
           match="cannot read the n-gram language model"),
      Case(f"{n}/load_flipped_anywhere", _flip_everywhere, check=lambda r: r[0] > 0 and sum(r) > 100),
      Case(f"{n}/load_empty_file", lambda: _lm_file(lambda d: d.__delitem__(slice(None))), raises=ValueError,
           match="cannot read"),
      Case(f"{n}/load_missing_file", lambda: NgramLM.load("/nonexistent/lm.npz"), raises=(ValueError, OSError),
           match="lm.npz"),
      Case(f"{n}/load_nan_counts", lambda: _lm_file(arrays=_raw_arrays(counts_1=np.full(5, np.nan))),
           raises=ValueError, match="inconsistent count table of order 2"),
      Case(f"{n}/load_negative_counts", lambda: _lm_file(arrays=_raw_arrays(counts_1=-np.ones(5))),
           raises=ValueError, match="inconsistent count table of order 2"),
      Case(f"{n}/load_key_out_of_range", lambda: _lm_file(arrays=_raw_arrays(keys_1=np.array([0, 2, 3, 99]))),
           raises=ValueError, match="inconsistent count table of order 2"),
      Case(f"{n}/load_order_0_header", lambda: _lm_file(arrays=_raw_arrays(header=np.array([0, 5]))),
           raises=ValueError, match="order.*>= 1"),
      Case(f"{n}/load_discount_out_of_range", lambda: _lm_file(arrays=_raw_arrays(discount=np.array(1.5))),
           raises=ValueError, match="discount"),
  ]


# ---------------------------------------------------------------- lexicon word LM
def _telescopes(lm):
  """The character log-probs of an in-vocabulary sentence sum to the word n-gram's (renormalised without <unk>,
  computed here from the word n-gram's own vectors)."""
  ids = _encode_text("ab a")
  char = sum(float(lm.log_probs(ids[:i])[ids[i] if i < len(ids) else lm.eos_id]) for i in range(len(ids) + 1))
  words = [lm.words.index(w) + 2 for w in ["ab", "a"]]
  total = 0.0
  for i in range(len(words) + 1):
    p = np.exp(lm.word_lm.log_probs(words[:i]))
    p[0] = p[word_lm.UNK_WORD] = 0.0
    total += math.log(p[words[i] if i < len(words) else lm.word_lm.eos_id] / p.sum())
  return np.isclose(char, total, rtol=1e-9)


def _word_cases() -> list[Case]:
  w = "decoding/LexiconWordLM"
  fit = lambda **kw: word_lm.LexiconWordLM.fit(**dict(dict(transcripts=TEXT, id_to_char=CHARS, char_lm=_char_lm(),
                                                              order=2, char_weight=0.0), **kw))
  build = lambda **kw: word_lm.LexiconWordLM(**dict(dict(words=_word_lm().words, word_lm=_word_lm().word_lm,
                                                         char_lm=_char_lm(), id_to_char=CHARS, char_weight=0.2),
                                                    **kw))
  return [
      Case(f"{w}/telescopes_to_word_ngram", lambda: fit(), check=_telescopes),
      Case(f"{w}/unknown_char_is_a_distribution", lambda: _word_lm().log_probs([3, 1]),
           check=lambda lp: np.isclose(np.exp(lp).sum(), 1.0) and lp[0] == -np.inf),
      Case(f"{w}/prefix_unknown_id", lambda: _word_lm().log_probs([3, 5]), raises=ValueError,
           match=r"prefix.*id 5 outside.*\[1, 5\)"),
      Case(f"{w}/prefix_blank_id", lambda: _word_lm().log_probs([0]), raises=ValueError, match="prefix.*id 0"),
      Case(f"{w}/char_weight_nan", lambda: fit(char_weight=float("nan")), raises=ValueError,
           match=r"char_weight.*\[0, 1\]"),
      Case(f"{w}/char_weight_above_1", lambda: fit(char_weight=1.5), raises=ValueError,
           match=r"char_weight.*\[0, 1\]"),
      Case(f"{w}/fit_order_0", lambda: fit(order=0), raises=ValueError, match="order.*>= 1"),
      Case(f"{w}/fit_discount_1", lambda: fit(discount=1.0), raises=ValueError, match="discount"),
      Case(f"{w}/no_transcripts", lambda: fit(transcripts=[]), raises=ValueError, match="no sentences"),
      Case(f"{w}/id_to_char_without_space", lambda: fit(id_to_char={2: "x", 3: "a", 4: "b"}), raises=ValueError,
           match="id 2 must be the space"),
      Case(f"{w}/id_to_char_id_beyond_char_lm", lambda: fit(id_to_char={**CHARS, 9: "c"}), raises=ValueError,
           match=r"id_to_char.*\[9\].*\[2, 5\)"),
      Case(f"{w}/words_unsorted", lambda: build(words=["b", "a", "ab"]), raises=ValueError, match="words.*sorted"),
      Case(f"{w}/word_lm_wrong_size", lambda: build(words=["a"]), raises=ValueError, match="word_lm has"),
      Case(f"{w}/char_lm_not_an_ngram", lambda: build(char_lm=object()), raises=ValueError, match="char_lm"),
  ]


def _device_lm_cases() -> list[Case]:
  d = "decoding/device_lm"
  lm = NgramLM.fit([[1, 2], [2, 3, 1]], vocab_size=4, order=2, discount=0.5)

  def mass(tables):
    return device_lm.ngram_range_mass(tables, device_lm.ngram_start(tables, 1), jnp.asarray([[1]]), jnp.asarray([[5]]))

  # the full range [1, V + 1) of an empty sentence: every event's probability, mass 1
  return [
      Case(f"{d}/to_device_not_an_lm", lambda: device_lm.to_device({"order": 2}), raises=ValueError,
           match="lm must be an ngram_lm.NgramLM or word_lm.LexiconWordLM"),
      Case(f"{d}/range_mass_without_ranges", lambda: mass(device_lm.ngram_tables(lm)), raises=ValueError,
           match="ranges=True"),
      Case(f"{d}/range_mass_of_everything", lambda: mass(device_lm.ngram_tables(lm, ranges=True)),
           check=lambda m: abs(float(m[0, 0]) - 1.0) < 1e-6),
  ]


CASES = [c for name in ("greedy", "beam", "modified_beam", "maes") for c in _decoder_cases(name)]
CASES += _jit_cases("greedy") + _jit_cases("modified_beam") + _jit_cases("maes")
CASES += _option_cases() + _fusion_cases() + _maes_fusion_cases() + _registry_cases() + _streaming_cases() + _ngram_cases() + _word_cases()
CASES += _device_lm_cases()


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_decoding_input(case):
  cases.assert_case(case)
