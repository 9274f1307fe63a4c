"""n-gram LM against hand-derived Kneser-Ney values and counting; shallow fusion against brute force."""

import collections
import math

import numpy as np
import pytest

from asrjax import decoding
from asrjax.decoding.ngram_lm import NgramLM, perplexity
from tests.decoding import toy

# a=2, b=3, c=4 in a vocabulary of 5 ids (0 blank, 1 unk); end-of-sentence has index 5.
AB_AC = [[2, 3], [2, 4]]


def test_bigram_kneser_ney_matches_hand_derivation():
  """D = 0.5. Continuation counts: a 1 (after <s>), b 1, c 1, </s> 2 (after b, c); 5 bigram types, 4 words.

  P1(w) = max(N1+(.w) - D, 0) / 5 + D * 4 / 5 * 1/5:  a = b = c = 0.18, </s> = 0.38, unk = 0.08.
  P(b | a) = (1 - D) / 2 + D * 2 / 2 * P1(b) = 0.34;  P(a | a) = D * P1(a) = 0.09.
  P(a | <s>) = (2 - D) / 2 + D * 1 / 2 * P1(a) = 0.795;  P(</s> | b) = (1 - D) + D * P1(</s>) = 0.69.
  """
  lm = NgramLM.fit(AB_AC, vocab_size=5, order=2, discount=0.5)
  p = np.exp(lm.log_probs([2]))
  np.testing.assert_allclose(p, [0, 0.5 * 0.08, 0.09, 0.34, 0.34, 0.5 * 0.38], atol=1e-12)
  np.testing.assert_allclose(np.exp(lm.log_probs([])[2]), 0.795)
  np.testing.assert_allclose(np.exp(lm.log_probs([3])[lm.eos_id]), 0.69)
  # an unseen context backs off to the continuation unigram
  np.testing.assert_allclose(np.exp(lm.log_probs([1])), [0, 0.08, 0.18, 0.18, 0.18, 0.38], atol=1e-12)
  np.testing.assert_allclose(lm.sentence_log_prob([2, 3]), math.log(0.795 * 0.34 * 0.69))
  assert lm.log_probs([2])[0] == -np.inf  # the blank is not a token


@pytest.mark.parametrize("order", [1, 2, 4])
def test_distributions_are_normalised(order):
  rng = np.random.default_rng(order)
  sents = [list(rng.integers(1, 9, size=rng.integers(0, 8))) for _ in range(40)]
  lm = NgramLM.fit(sents, vocab_size=9, order=order, discount=0.6)
  contexts = [s[:k] for s in sents[:10] for k in range(len(s) + 1)] + [[8, 8, 8, 8], [1]]
  for ctx in contexts:
    np.testing.assert_allclose(np.exp(lm.log_probs(ctx)).sum(), 1.0, rtol=1e-12)
  assert np.isfinite(perplexity(lm, sents[:5]))


def test_no_discount_gives_relative_frequencies():
  """D = 0: unigram = token frequencies; trigram after a seen context = conditional frequencies."""
  rng = np.random.default_rng(0)
  sents = [list(rng.integers(1, 6, size=rng.integers(1, 7))) for _ in range(60)]
  uni = NgramLM.fit(sents, vocab_size=6, order=1, discount=0.0)
  counts = collections.Counter(w for s in sents for w in s + [6])
  n = sum(counts.values())
  np.testing.assert_allclose(np.exp(uni.log_probs([]))[1:], [counts[w] / n for w in range(1, 7)], rtol=1e-12)
  tri = NgramLM.fit(sents, vocab_size=6, order=3, discount=0.0)
  follow = collections.defaultdict(collections.Counter)
  for s in sents:
    padded = [None, None] + s + [6]
    for i in range(2, len(padded)):
      follow[tuple(padded[i - 2:i])][padded[i]] += 1
  for (h1, h2), ctr in list(follow.items())[:15]:
    if h1 is None:
      continue
    total = sum(ctr.values())
    expected = np.array([ctr[w] / total for w in range(1, 7)])
    np.testing.assert_allclose(np.exp(tri.log_probs([h1, h2]))[1:], expected, rtol=1e-12, atol=1e-15)


def test_save_load_round_trip_and_corrupt_files(tmp_path):
  lm = NgramLM.fit(AB_AC * 3 + [[4, 4, 2]], vocab_size=5, order=3, discount=0.4)
  path = str(tmp_path / "lm.npz")
  lm.save(path)
  back = NgramLM.load(path)
  for ctx in ([], [2], [4, 4], [3, 2]):
    np.testing.assert_array_equal(back.log_probs(ctx), lm.log_probs(ctx))
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[: len(data) // 2])
  with pytest.raises(ValueError, match="lm.npz"):
    NgramLM.load(path)
  with open(path, "w") as f:
    f.write('{"format": "asrjax.ngram_lm.v1"}')  # the old JSON format
  with pytest.raises(ValueError, match="lm.npz"):
    NgramLM.load(path)
  # a well-formed archive whose tables disagree (offsets past the followers)
  lm.save(path)
  with np.load(path) as d:
    arrays = dict(d)
  arrays["offsets_1"] = arrays["offsets_1"] + 1
  with open(path, "wb") as f:
    np.savez(f, **arrays)
  with pytest.raises(ValueError, match="inconsistent count table of order 2"):
    NgramLM.load(path)
  arrays["offsets_1"] = arrays["offsets_1"] - 1
  arrays["words_2"] = arrays["words_2"] + 10  # follower ids past end-of-sentence
  with open(path, "wb") as f:
    np.savez(f, **arrays)
  with pytest.raises(ValueError, match="inconsistent count table of order 3"):
    NgramLM.load(path)


def _kneser_ney_reference(sents, v, order, d, context):
  """Interpolated Kneser-Ney written out with Counters, one order at a time (Chen & Goodman 2.7)."""
  top = collections.defaultdict(collections.Counter)  # raw counts at the top order
  left = collections.defaultdict(set)  # (h, w) -> distinct preceding tokens, every shorter h
  for s in sents:
    padded = ["<s>"] * (order - 1) + list(s) + ["</s>"]
    for i in range(order - 1, len(padded)):
      top[tuple(padded[i - order + 1:i])][padded[i]] += 1
      for n in range(order - 1):
        left[(tuple(padded[i - n:i]), padded[i])].add(padded[i - n - 1])
  events = list(range(1, v)) + ["</s>"]
  hist = (["<s>"] * (order - 1) + list(context))[len(context):]
  p = {w: 1.0 / len(events) for w in events}
  for n in range(order):
    h = tuple(hist[len(hist) - n:]) if n else ()
    if n == order - 1:
      counts = top.get(h, {})
    else:
      counts = {w: len(prev) for (hh, w), prev in left.items() if hh == h}
    total = sum(counts.values())
    if total:
      p = {w: max(counts.get(w, 0) - d, 0) / total + d * len(counts) / total * p[w] for w in events}
  return np.log([p[w] for w in events])


@pytest.mark.parametrize("order", [2, 3, 5])
def test_matches_a_counter_based_kneser_ney_reference(order):
  rng = np.random.default_rng(10 + order)
  v = 7
  sents = [list(rng.integers(1, 4, size=rng.integers(0, 9))) + list(rng.integers(1, v, size=2)) for _ in range(50)]
  lm = NgramLM.fit(sents, vocab_size=v, order=order, discount=0.65)
  contexts = [s[:k] for s in sents[:12] for k in range(len(s) + 1)] + [[6, 6, 6, 6, 6], [1, 2]]
  for ctx in contexts:
    np.testing.assert_allclose(lm.log_probs(ctx)[1:], _kneser_ney_reference(sents, v, order, 0.65, ctx), rtol=1e-12)


def test_keys_must_fit_64_bits():
  NgramLM.fit([[2, 3]], vocab_size=2 ** 21 - 1, order=4)  # just under 2^63: fits
  with pytest.raises(ValueError, match="64-bit key"):
    NgramLM.fit([[2, 3]], vocab_size=2 ** 21, order=4)


def test_fit_rejects_the_blank_out_of_range_ids_and_no_data():
  with pytest.raises(ValueError, match="blank"):
    NgramLM.fit([[2, 0, 3]], vocab_size=5)
  with pytest.raises(ValueError, match="outside"):
    NgramLM.fit([[2, 5]], vocab_size=5)
  with pytest.raises(ValueError, match="no sentences"):
    NgramLM.fit([], vocab_size=5)


@pytest.mark.parametrize("lm_weight,length_bonus", [(0.7, 0.0), (1.5, 0.8)])
def test_wide_fused_beam_search_is_exact(lm_weight, length_bonus):
  """Without pruning, score(y) = log P(y|x) (brute force over alignments) + λ log P_LM(y </s>) + β |y|."""
  v, d, t = 3, 3, 3
  params = toy.make_params(7, d, v, scale=1.5, blank_bias=3.0)
  enc = np.random.default_rng(5).normal(size=(1, t, d)).astype(np.float32)
  model = toy.NumpyModel(params, enc[0])
  lm = NgramLM.fit([[1, 2], [2, 2, 1], [1]], vocab_size=v, order=2, discount=0.5)
  out = decoding.beam_search(toy.FNS, params, enc, np.zeros((1, t)), beam=64, expand=v, nbest=8,
                             max_symbols_per_frame=8, lm=lm, lm_weight=lm_weight, length_bonus=length_bonus)
  nbest = out.to_lists()[0]
  assert len(nbest) == 8
  for y, s in nbest:
    expected = model.sequence_log_prob(y) + lm_weight * lm.sentence_log_prob(y) + length_bonus * len(y)
    np.testing.assert_allclose(s, expected, rtol=1e-5)
  fused = {y: model.sequence_log_prob(y) + lm_weight * lm.sentence_log_prob(y) + length_bonus * len(y)
           for y in toy.all_sequences(v, 5)}
  assert tuple(nbest[0][0]) == max(fused, key=fused.get)


def test_fusion_argument_errors():
  params = toy.make_params(0, 3, 4)
  enc = np.zeros((1, 2, 3), np.float32)
  with pytest.raises(ValueError, match="need an n-gram LM"):
    decoding.beam_search(toy.FNS, params, enc, np.zeros((1, 2)), lm_weight=0.5)
  lm = NgramLM.fit([[1, 2]], vocab_size=7)
  with pytest.raises(ValueError, match="7 token ids"):
    decoding.beam_search(toy.FNS, params, enc, np.zeros((1, 2)), lm=lm, lm_weight=0.5)
