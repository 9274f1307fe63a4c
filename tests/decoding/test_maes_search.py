"""The batched mAES search: exact with a wide beam, streaming = whole utterance, padding-blind, pruning sound.

References are the NumPy toy model of `tests.decoding.toy`: brute-force ``log P(y|x)`` over the
alignments with at most ``max_symbols_per_frame`` labels per frame, and the host LMs read token
by token (the LM cases live in `tests/sweep/test_decoding.py`).
"""

import jax.numpy as jnp
import numpy as np
import pytest

from asrjax import decoding
from asrjax.data import tokenizer
from asrjax.decoding import maes
from asrjax.decoding import ngram_lm, word_lm
from tests.decoding import toy


@pytest.mark.parametrize("blank_id,symbols,seed", [(0, 1, 1), (0, 2, 2), (2, 2, 3)])
def test_wide_search_is_exact_over_limited_alignments(blank_id, symbols, seed):
  v, d, t = 3, 3, 3
  params = toy.make_params(seed, d, v, scale=1.5, blank_bias=1.0, blank_id=blank_id)
  enc = np.random.default_rng(seed).normal(size=(1, t, d)).astype(np.float32)
  model = toy.NumpyModel(params, enc[0], blank_id)
  want = {y: s for y, s in model.limited_log_probs(symbols).items() if s > -np.inf}
  out = decoding.maes_search(toy.fns(blank_id), params, enc, np.zeros((1, t)), beam=len(want) + 1,
                             max_symbols_per_frame=symbols).to_lists()[0]
  assert {tuple(y) for y, _ in out} == set(want)
  scores = [s for _, s in out]
  assert scores == sorted(scores, reverse=True)
  for y, s in out:
    np.testing.assert_allclose(s, want[tuple(y)], rtol=1e-5)


def _lm_model():
  """A V = 6 toy transducer over characters and the two LMs over its ids."""
  text = ["ab ba", "a b", "bab", "ab ab", "c a", "bc"]
  tok = tokenizer.CharTokenizer.build(text)
  ids = {i: tok.decode([i]) if i != 2 else " " for i in range(2, tok.vocab_size)}
  char_lm = ngram_lm.NgramLM.fit([tok.encode(s) for s in text], tok.vocab_size, order=3)
  lex = word_lm.LexiconWordLM.fit(text, ids, char_lm, order=2, char_weight=0.2)
  return tok.vocab_size, char_lm, lex


@pytest.mark.parametrize("use_lm", [None] + [pytest.param(lm, marks=pytest.mark.slow) for lm in ("ngram", "word")])
def test_streaming_in_random_chunks_equals_the_whole_utterance(use_lm):
  v, char_lm, lex = _lm_model()
  lm = {None: None, "ngram": char_lm, "word": lex}[use_lm]
  opts = dict(beam=4, max_symbols_per_frame=3, lm=lm, lm_weight=0.6 if lm else 0.0, length_bonus=0.4 if lm else 0.0)
  d, t = 4, 17
  params = toy.make_params(5, d, v, scale=2.0)
  enc = np.random.default_rng(9).normal(size=(2, t, d)).astype(np.float32)
  pads = toy.paddings([17, 11], t)
  whole = decoding.maes_search(toy.FNS, params, enc, pads, **opts)
  rng = np.random.default_rng(4)
  state = maes.maes_start(toy.FNS, params, 2, enc_dim=d, capacity=2, **opts)  # forces the buffers to grow
  start = 0
  while start < t:
    stop = min(t, start + int(rng.choice([2, 5])))  # two chunk shapes: two compiles, random cut points
    state = maes.maes_continue(toy.FNS, params, enc[:, start:stop], pads[:, start:stop], state)
    start = stop
  chunked = maes.maes_finish(state)
  for a, b in zip(whole.to_timed_lists(), chunked.to_timed_lists()):
    assert [(y, f) for y, _, f in a] == [(y, f) for y, _, f in b]
    np.testing.assert_allclose([s for _, s, _ in a], [s for _, s, _ in b], rtol=1e-5)
  assert np.asarray(state.t0).tolist() == [17, 11]


@pytest.mark.slow  # 18 s: default-suite budget (BUILD_NOTES, "Tests")
def test_padded_batch_equals_each_utterance_alone():
  v, char_lm, _ = _lm_model()
  d, t = 4, 9
  params = toy.make_params(6, d, v, scale=2.0)
  enc = np.random.default_rng(2).normal(size=(3, t, d)).astype(np.float32)
  lengths = [9, 4, 6]
  opts = dict(beam=3, max_symbols_per_frame=2, lm=char_lm, lm_weight=0.5, length_bonus=0.2)
  batched = decoding.maes_search(toy.FNS, params, enc, toy.paddings(lengths, t), **opts).to_timed_lists()
  for b, n in enumerate(lengths):
    alone = decoding.maes_search(toy.FNS, params, enc[b:b + 1, :n], np.zeros((1, n)), **opts).to_timed_lists()[0]
    assert [(y, f) for y, _, f in batched[b]] == [(y, f) for y, _, f in alone]
    np.testing.assert_allclose([s for _, s, _ in batched[b]], [s for _, s, _ in alone], rtol=1e-5)


def test_pruned_scores_sum_a_subset_of_the_alignments():
  """A narrow beam and prune-by-value keep fewer paths: every score is at most the exact one, and a
  huge γ prunes nothing the beam would keep."""
  v, d, t, symbols = 4, 3, 4, 2
  params = toy.make_params(3, d, v, scale=2.0)
  enc = np.random.default_rng(5).normal(size=(1, t, d)).astype(np.float32)
  model = toy.NumpyModel(params, enc[0])
  for opts in (dict(beam=3), dict(beam=8, expansion_gamma=0.5)):
    out = decoding.maes_search(toy.FNS, params, enc, np.zeros((1, t)), max_symbols_per_frame=symbols,
                               **opts).to_lists()[0]
    assert out
    for y, s in out:
      assert s <= model.limited_log_prob(y, symbols) + 1e-5, (opts, y)
  plain = decoding.maes_search(toy.FNS, params, enc, np.zeros((1, t)), beam=3, max_symbols_per_frame=symbols)
  loose = decoding.maes_search(toy.FNS, params, enc, np.zeros((1, t)), beam=3, max_symbols_per_frame=symbols,
                               expansion_gamma=1e3)
  assert plain.to_lists() == loose.to_lists()


def test_tiny_gamma_expands_only_each_hypothesis_best_label():
  """γ -> 0 with a wide beam: the scores are exactly the sums over the alignments whose every label is the
  most probable non-blank label where it is emitted (a frame-by-frame NumPy enumeration)."""
  v, d, t, symbols = 4, 3, 4, 2
  params = toy.make_params(8, d, v, scale=2.0)
  enc = np.random.default_rng(6).normal(size=(1, t, d)).astype(np.float32)
  model = toy.NumpyModel(params, enc[0])
  hyps = {(): 0.0}
  for frame in range(t):
    ended = {}
    for y, score in hyps.items():
      for _ in range(symbols + 1):
        lp = model.log_probs(frame, y)
        ended[y] = np.logaddexp(ended.get(y, -np.inf), score + lp[0])
        k = 1 + int(np.argmax(lp[1:]))
        y, score = y + (k,), score + lp[k]
    hyps = ended
  out = decoding.maes_search(toy.FNS, params, enc, np.zeros((1, t)), beam=64, max_symbols_per_frame=symbols,
                             expansion_gamma=1e-6).to_lists()[0]
  assert {tuple(y) for y, _ in out} == set(hyps)
  for y, s in out:
    np.testing.assert_allclose(s, hyps[tuple(y)], rtol=1e-5)


def test_state_of_another_batch_is_refused():
  params = toy.make_params(0, 3, 4)
  state = maes.maes_start(toy.FNS, params, 3, enc_dim=3)
  with pytest.raises(ValueError, match="state is for 3 streams but enc has B = 2"):
    maes.maes_continue(toy.FNS, params, np.zeros((2, 4, 3), np.float32), np.zeros((2, 4)), state)
  same = maes.maes_continue(toy.FNS, params, np.zeros((3, 0, 3), np.float32), np.zeros((3, 0)), state)
  assert same is state
  assert jnp.all(maes.maes_finish(state).scores[:, 0] == 0.0)
