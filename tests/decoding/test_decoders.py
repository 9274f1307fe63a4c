"""Decoders against brute-force enumeration and a plain NumPy re-implementation."""

import jax.numpy as jnp
import numpy as np
import pytest

from asrjax import decoding
from tests.decoding import toy

_paddings = toy.paddings


@pytest.mark.parametrize("max_symbols", [1, 3])
def test_greedy_matches_plain_reference_with_padding(max_symbols):
  rng = np.random.default_rng(0)
  v, d, t = 6, 4, 7
  params = toy.make_params(1, d, v, scale=2.0)
  enc = rng.normal(size=(3, t, d)).astype(np.float32)
  lengths = [7, 4, 1]
  out = decoding.greedy_search(toy.FNS, params, enc, _paddings(lengths, t), max_symbols_per_frame=max_symbols)
  got = out.to_lists()
  for b in range(3):
    ref_y, ref_score = toy.numpy_greedy(toy.NumpyModel(params, enc[b]), lengths[b], max_symbols)
    assert got[b][0][0] == ref_y
    np.testing.assert_allclose(got[b][0][1], ref_score, rtol=1e-5)


def test_greedy_stops_at_max_symbols_per_frame():
  """A joint that never prefers blank emits label 2 exactly max_symbols times per valid frame."""
  v = 4
  joint = lambda params, enc, pred: jnp.broadcast_to(jnp.array([0.0, 1.0, 5.0, 1.0]), enc.shape[:-1] + (v,))
  fns = decoding.TransducerFns(toy._init, toy._step, joint, 0)
  out = decoding.greedy_search(fns, toy.make_params(0, 2, v), np.zeros((2, 5, 2)), _paddings([5, 2], 5),
                               max_symbols_per_frame=3)
  lists = out.to_lists()
  assert lists[0][0][0] == [2] * 15 and lists[1][0][0] == [2] * 6
  lp = np.log(np.exp([0.0, 1.0, 5.0, 1.0]) / np.exp([0.0, 1.0, 5.0, 1.0]).sum())
  np.testing.assert_allclose(lists[1][0][1], 2 * (3 * lp[2] + lp[0]), rtol=1e-6)


def test_greedy_finds_most_probable_sequence_when_it_dominates():
  """If the best label sequence has P > 1/2 it is the unique argmax; a sharp model makes greedy find it."""
  v, d, t = 3, 3, 3
  checked = 0
  for seed in range(20):
    params = toy.make_params(seed, d, v, scale=6.0)
    enc = np.random.default_rng(100 + seed).normal(size=(1, t, d)).astype(np.float32)
    model = toy.NumpyModel(params, enc[0])
    probs = {y: model.sequence_log_prob(y) for y in toy.all_sequences(v, 4)}
    best = max(probs, key=probs.get)
    if probs[best] < np.log(0.5):
      continue
    checked += 1
    got = decoding.greedy_search(toy.FNS, params, enc, np.zeros((1, t)), max_symbols_per_frame=4).to_lists()
    assert tuple(got[0][0][0]) == best
  assert checked >= 5


@pytest.mark.parametrize("blank_id,seed", [(0, 8), (2, 9)])
def test_wide_beam_search_is_exact(blank_id, seed):
  """Every n-best score equals brute-force log P(y|x); the top hypothesis is the true argmax."""
  v, d, t = 3, 3, 3
  params = toy.make_params(7, d, v, scale=1.5, blank_bias=5.0, blank_id=blank_id)
  enc = np.random.default_rng(seed).normal(size=(1, t, d)).astype(np.float32)
  model = toy.NumpyModel(params, enc[0], blank_id)
  max_len = 5
  probs = {y: model.sequence_log_prob(y) for y in toy.all_sequences(v, max_len, blank_id)}
  best = max(probs, key=probs.get)
  # certificate: the best short sequence beats all longer ones together
  assert np.exp(probs[best]) > 1 - np.exp(np.logaddexp.reduce(list(probs.values())))
  out = decoding.beam_search(toy.fns(blank_id), params, enc, np.zeros((1, t)), beam=64, expand=v, nbest=10,
                             max_symbols_per_frame=8)
  nbest = out.to_lists()[0]
  assert tuple(nbest[0][0]) == best
  scores = [s for _, s in nbest]
  assert scores == sorted(scores, reverse=True)
  for y, s in nbest:
    np.testing.assert_allclose(s, model.sequence_log_prob(y), rtol=1e-5)


def test_beam_search_handles_padding_per_utterance():
  v, d, t = 4, 3, 5
  params = toy.make_params(3, d, v)
  enc = np.random.default_rng(4).normal(size=(2, t, d)).astype(np.float32)
  batched = decoding.beam_search(toy.FNS, params, enc, _paddings([5, 2], t), beam=3).to_lists()
  alone = decoding.beam_search(toy.FNS, params, enc[1:, :2], np.zeros((1, 2)), beam=3).to_lists()
  assert batched[1] == alone[0]


@pytest.mark.parametrize("blank_id", [0, 1])
def test_wide_modified_beam_search_is_exact(blank_id):
  """With beam >= number of label sequences, scores equal brute force over one-label-per-frame alignments."""
  v, d, t = 3, 3, 3
  params = toy.make_params(11, d, v)
  enc = np.random.default_rng(12).normal(size=(2, t, d)).astype(np.float32)
  lengths = [3, 2]
  out = decoding.modified_beam_search(toy.fns(blank_id), params, enc, _paddings(lengths, t), beam=16).to_lists()
  for b in range(2):
    ref = toy.NumpyModel(params, enc[b, : lengths[b]], blank_id).one_per_frame_log_probs()
    assert len(out[b]) == len(ref)
    ref_sorted = sorted(ref.values(), reverse=True)
    np.testing.assert_allclose([s for _, s in out[b]], ref_sorted, rtol=1e-5)
    for y, s in out[b]:
      np.testing.assert_allclose(s, ref[tuple(y)], rtol=1e-5)


def test_decoders_share_interface_and_reject_bad_shapes():
  params = toy.make_params(0, 3, 4)
  enc = np.zeros((2, 4, 3), np.float32)
  for name, decoder in decoding.DECODERS.items():
    out = decoder(toy.FNS, params, enc, np.zeros((2, 4)))
    assert isinstance(out, decoding.NBest) and out.scores.shape[0] == 2, name
    with pytest.raises(ValueError, match=r"\[B, T, D\]"):
      decoder(toy.FNS, params, enc[0], np.zeros((4,)))
    with pytest.raises(ValueError, match="enc_paddings"):
      decoder(toy.FNS, params, enc, np.zeros((2, 5)))


def test_prefix_cache_scores_new_and_earlier_prefixes_like_the_reference():
  """A prefix extended at one frame and scored again at a later one (the cached path) gets
  the reference model's log-probs at each frame."""
  import importlib
  beam_lib = importlib.import_module("asrjax.decoding.beam_search")  # the package exports the function by that name
  v, d, t = 4, 3, 3
  params = toy.make_params(5, d, v)
  enc = np.random.default_rng(6).normal(size=(t, d)).astype(np.float32)
  model = toy.NumpyModel(params, enc)
  cache = beam_lib._PrefixCache(toy.FNS, params)
  for frame, prefix in [(0, (2,)), (0, (2, 1)), (1, (2,)), (2, (2, 1)), (2, (3,))]:
    np.testing.assert_allclose(cache.score(prefix, enc[frame]), model.log_probs(frame, prefix), rtol=1e-5, atol=1e-6)
