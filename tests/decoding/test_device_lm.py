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


@pytest.mark.parametrize("vocab,sentences", [(12, 40), (1500, 600)])
def test_word_range_masses_sum_the_host_probabilities(vocab, sentences):
  """``ngram_range_mass`` over word-id ranges against sums of the host vector, per random context;
  with 1,500 ids the frequent contexts have more than `DENSE_FANOUT` followers (dense rows)."""
  rng = np.random.default_rng(3)
  # a skewed vocabulary: ids below 20 follow many contexts, so several contexts have long follower lists
  sents = [list(np.minimum(rng.geometric(8 / vocab, size=rng.integers(1, 40)), vocab - 1)) for _ in range(sentences)]
  lm = ngram_lm.NgramLM.fit(sents, vocab, order=3, discount=0.6)
  tables = device_lm.ngram_tables(lm, ranges=True)
  dense_rows = tables.dense.shape[0] - 1
  plain = device_lm.ngram_tables(lm)  # without the range arrays: refused, not a wrong mass
  with pytest.raises(ValueError, match="ranges=True"):
    device_lm.ngram_range_mass(plain, device_lm.ngram_start(plain, 1), jnp.ones((1, 1), jnp.int32),
                               jnp.full((1, 1), 2, jnp.int32))
  assert (dense_rows > 5) if vocab > device_lm.DENSE_FANOUT else dense_rows == 0
  for _ in range(30):
    ctx = [int(x) for x in np.minimum(rng.geometric(8 / vocab, size=rng.integers(0, 5)), vocab - 1)]
    state = device_lm.ngram_start(tables, 1)
    for k in ctx:
      state = _ngram_advance(tables, state, jnp.asarray([k], jnp.int32))
    lo = np.sort(rng.integers(1, vocab + 2, size=(1, 6)), axis=1)
    hi = np.minimum(lo + rng.integers(0, 5 + vocab // 5, size=lo.shape), vocab + 1)
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


def test_lower_bound_equals_searchsorted_on_wide_segments():
  """The 16-ary search against numpy's binary search, segments of 0 .. 5,000 sorted values."""
  rng = np.random.default_rng(11)
  lengths = rng.integers(0, 5001, size=24)
  lengths[:3] = [0, 1, 5000]
  segments = [np.sort(rng.integers(0, 300, size=n)) for n in lengths]
  values = np.concatenate(segments + [np.zeros(1, np.int64)]).astype(np.int32)
  lo = np.r_[0, np.cumsum(lengths)[:-1]]
  hi = lo + lengths
  x = rng.integers(-5, 306, size=(len(lengths), 7))
  got = jax.jit(device_lm._lower_bound, static_argnums=4)(
      jnp.asarray(values), jnp.asarray(lo[:, None].repeat(7, 1), jnp.int32), jnp.asarray(hi[:, None].repeat(7, 1), jnp.int32),
      jnp.asarray(x, jnp.int32), 5000)
  want = np.stack([lo[i] + np.searchsorted(segments[i], x[i], side="left") for i in range(len(lengths))])
  np.testing.assert_array_equal(np.asarray(got), want)


def test_advance_finds_each_context_index_in_a_large_table():
  """States after random prefixes against the host count tables' sorted keys (the index of the last
  ``n`` tokens' key per order, -1 when unseen), on an LM with thousands of contexts per order (so
  the child hash table's buckets hold several keys)."""
  rng = np.random.default_rng(5)
  vocab, order = 40, 4
  sents = [list(rng.integers(1, 12 if i % 2 else vocab, size=rng.integers(1, 30))) for i in range(600)]
  lm = ngram_lm.NgramLM.fit(sents, vocab, order=order, discount=0.5)
  tables = device_lm.ngram_tables(lm)
  assert tables.bucket_width >= 3 and len(lm.count_tables[3].keys) > 5000
  prefixes = [sents[i][: rng.integers(0, len(sents[i]) + 1)] for i in range(0, 600, 7)]
  prefixes += [list(rng.integers(1, vocab, size=9)) for _ in range(20)]  # mostly unseen n-grams
  for prefix in prefixes:
    state = device_lm.ngram_start(tables, 1)
    for k in prefix:
      state = _ngram_advance(tables, state, jnp.asarray([k], jnp.int32))
    padded = [ngram_lm.BOS] * (order - 1) + [int(k) for k in prefix]
    want = []
    for n, t in enumerate(lm.count_tables):
      key = 0
      for tok in padded[len(padded) - n:] if n else []:
        key = key * vocab + tok
      i = int(np.searchsorted(t.keys, key))
      want.append(i if i < len(t.keys) and t.keys[i] == key else -1)
    np.testing.assert_array_equal(np.asarray(state)[0], want, err_msg=str(prefix))


def test_advance_reaches_every_context_of_every_order_from_its_parent():
  """Every context of ``n >= 1`` text-final tokens, looked up from its parent (the host table's key
  ``// V``, found by numpy's search): all of the child hash table's entries, full buckets included."""
  rng = np.random.default_rng(6)
  vocab, order = 40, 4
  sents = [list(rng.integers(1, 12 if i % 2 else vocab, size=rng.integers(1, 30))) for i in range(600)]
  lm = ngram_lm.NgramLM.fit(sents, vocab, order=order, discount=0.5)
  tables = device_lm.ngram_tables(lm)
  rows, orders, want = [], [], []
  for n in range(1, order):
    keys, parents = lm.count_tables[n].keys, lm.count_tables[n - 1].keys
    text = keys % vocab != ngram_lm.BOS  # sentence-start contexts are roots, not reached by a token
    rows.append(np.stack([np.searchsorted(parents, keys[text] // vocab), keys[text] % vocab], axis=1))
    orders.append(np.full(text.sum(), n))
    want.append(np.flatnonzero(text))
  rows, orders, want = np.concatenate(rows), np.concatenate(orders), np.concatenate(want)
  ctx = np.full((len(rows), order), -1, np.int32)
  ctx[np.arange(len(rows)), orders - 1] = rows[:, 0]
  got = np.asarray(_ngram_advance(tables, jnp.asarray(ctx), jnp.asarray(rows[:, 1], jnp.int32)))
  np.testing.assert_array_equal(got[np.arange(len(rows)), orders], want)
