"""The device layouts of the n-gram and lexicon word LMs give the host models' log-probabilities.

The host models (`ngram_lm`, `word_lm`) are tested against hand derivations and a counter-based
Kneser-Ney reference; here their float64 vectors are the reference for the float32 device ones,
on random contexts (in- and out-of-vocabulary, unknown characters, unseen n-grams).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.data import tokenizer
from asrjax.decoding import device_lm, ngram_lm, word_lm

TEXT = ["a cab", "a bad cab", "bad a", "cab", "a a b", "dab cab a", "abba dad", "cab cab dab"]


def _tok():
  return tokenizer.CharTokenizer.build(TEXT)


def _id_to_char(tok):
  return {i: tok.decode([i]) if i != 2 else " " for i in range(2, tok.vocab_size)}


def _contexts(rng, tok, n):
  """Random prefixes: cut training sentences (in-vocabulary words), random id strings (unknown
  characters, unseen n-grams, out-of-vocabulary words) and spelled words with typos."""
  out = [[]]
  for i in range(n):
    kind = i % 3
    if kind == 0:
      ids = tok.encode(TEXT[rng.integers(len(TEXT))] + " " + TEXT[rng.integers(len(TEXT))])
      out.append(ids[: rng.integers(0, len(ids) + 1)])
    elif kind == 1:
      out.append([int(x) for x in rng.integers(1, tok.vocab_size, size=rng.integers(1, 10))])
    else:
      ids = tok.encode(TEXT[rng.integers(len(TEXT))])
      ids[rng.integers(len(ids))] = int(rng.integers(1, tok.vocab_size))
      out.append(ids)
  return out


# compiled once per LM layout (eagerly, each fori_loop of a binary search would compile per call)
_advance = jax.jit(lambda dev, state, tokens: dev.advance(state, tokens))
_log_probs = jax.jit(lambda dev, state: dev.log_probs(state))
_ngram_advance = jax.jit(device_lm.ngram_advance)
_range_mass = jax.jit(device_lm.ngram_range_mass)


def _device_log_probs(dev, prefix):
  state = dev.start(1)
  for k in prefix:
    state = _advance(dev, state, jnp.asarray([k], jnp.int32))
  return np.asarray(_log_probs(dev, state))[0]


def _assert_same(host, dev, contexts):
  for prefix in contexts:
    want, got = host.log_probs(prefix), _device_log_probs(dev, prefix)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want), err_msg=str(prefix))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=2e-5, err_msg=str(prefix))


@pytest.mark.parametrize("order,discount", [(1, 0.5), (2, 0.7), (4, 0.4), (6, 0.0)])
def test_ngram_on_device_equals_the_host_model(order, discount):
  tok = _tok()
  lm = ngram_lm.NgramLM.fit([tok.encode(t) for t in TEXT], tok.vocab_size, order=order, discount=discount)
  _assert_same(lm, device_lm.to_device(lm), _contexts(np.random.default_rng(order), tok, 60))


@pytest.mark.parametrize("char_weight,order", [(0.0, 2), (0.1, 3), (1.0, 3)])
def test_lexicon_word_lm_on_device_equals_the_host_model(char_weight, order):
  tok = _tok()
  char_lm = ngram_lm.NgramLM.fit([tok.encode(t) for t in TEXT], tok.vocab_size, order=4, discount=0.6)
  lm = word_lm.LexiconWordLM.fit(TEXT, _id_to_char(tok), char_lm, order=order, char_weight=char_weight)
  contexts = _contexts(np.random.default_rng(7), tok, 90)
  contexts += [tok.encode(" a"), tok.encode("a  a"), [1, 3], tok.encode("ca") + [1], tok.encode("cab cab dab ")]
  _assert_same(lm, device_lm.to_device(lm), contexts)


def test_word_range_masses_sum_the_host_probabilities():
  """``ngram_range_mass`` over word-id ranges against sums of the host vector, per random context."""
  rng = np.random.default_rng(3)
  vocab = 12
  sents = [list(rng.integers(1, vocab, size=rng.integers(1, 8))) for _ in range(40)]
  lm = ngram_lm.NgramLM.fit(sents, vocab, order=3, discount=0.6)
  tables = device_lm.ngram_tables(lm)
  for _ in range(30):
    ctx = [int(x) for x in rng.integers(1, vocab, size=rng.integers(0, 5))]
    state = device_lm.ngram_start(tables, 1)
    for k in ctx:
      state = _ngram_advance(tables, state, jnp.asarray([k], jnp.int32))
    lo = np.sort(rng.integers(1, vocab + 2, size=(1, 6)), axis=1)
    hi = np.minimum(lo + rng.integers(0, 5, size=lo.shape), vocab + 1)
    got = np.asarray(_range_mass(tables, state, jnp.asarray(lo, jnp.int32), jnp.asarray(hi, jnp.int32)))
    p = np.exp(lm.log_probs(ctx))
    want = [p[a:b].sum() for a, b in zip(lo[0], hi[0])]
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-7)


def test_batched_states_are_independent_rows():
  tok = _tok()
  lm = ngram_lm.NgramLM.fit([tok.encode(t) for t in TEXT], tok.vocab_size, order=3)
  dev = device_lm.to_device(lm)
  prefixes = [tok.encode("a c"), tok.encode("bad"), tok.encode("dab ca")]
  width = max(map(len, prefixes))
  # rows advance in lockstep; shorter prefixes are read at their own length
  states = [dev.start(3)]
  for i in range(width):
    tokens = jnp.asarray([p[i] if i < len(p) else 3 for p in prefixes], jnp.int32)
    states.append(_advance(dev, states[-1], tokens))
  for row, p in enumerate(prefixes):
    got = np.asarray(_log_probs(dev, states[len(p)]))[row]
    np.testing.assert_allclose(got[1:], lm.log_probs(p)[1:], atol=2e-5)


def test_to_device_is_cached_and_rejects_other_objects():
  tok = _tok()
  lm = ngram_lm.NgramLM.fit([tok.encode(t) for t in TEXT], tok.vocab_size, order=2)
  dev = device_lm.to_device(lm)
  assert device_lm.to_device(lm) is dev and device_lm.to_device(dev) is dev
  assert device_lm.nbytes(dev) > 0
  with pytest.raises(ValueError, match="lm must be an ngram_lm.NgramLM"):
    device_lm.to_device({"vocab_size": 5})
