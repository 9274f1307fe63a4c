"""The n-gram and lexicon word LMs as arrays a jitted search indexes: shallow fusion on device.

`to_device` lays out an `ngram_lm.NgramLM` or a `word_lm.LexiconWordLM` as a pytree of
flat arrays (`DeviceNgramLM`, `DeviceLexiconLM`) with the host model's interface turned
into three pure, batched functions a `jax.jit` search can call:

  * ``start(n) -> state``: the LM state of ``n`` empty sentences;
  * ``advance(state, tokens [N]) -> state``: each sentence extended by one token (ids ``1 .. V-1``);
  * ``log_probs(state) -> [N, V + 1]``: ``log P(next | sentence)``, entry 0 (blank) ``-inf``,
    entry ``V`` end-of-sentence -- the host model's ``log_probs(prefix)``, in float32.

*N-gram state.* Row ``n`` of a state ``[N, order]`` is the index of the sentence's last ``n``
tokens (sentence-start padded, as the host builds contexts) among the contexts of ``n``
tokens of count table ``n``, or -1 when that context was never seen (the host's "unseen
context: all mass to the lower order"). A context of ``n`` tokens extends one of ``n - 1``
tokens (its *parent*) by the newest token, and the contexts are closed under dropping the
newest token (every context is a history of a predicted position, and so is its prefix);
`ngram_tables` checks it. Advancing looks every order's new context up at once in a hash
table keyed by (parent, token): the keys hashed into buckets (as many as keys, rounded up to
a power of two), each bucket's entries contiguous, so a lookup reads one bucket at a fixed
width (the fullest bucket's size, a handful) -- a few gathers, where a binary search among
the parent's children took a loop of 5-13 steps of small ops (on XLA:CPU the number of ops,
not their size, was the search's cost). The interpolated Kneser-Ney recursion of
`ngram_lm` is linear in the lower order's vector, so it is evaluated in one pass: each
order's followers (gathered at the largest fan-out) weighted by the back-off weights of the
orders above it.

*Word-range masses.* For the lexicon LM a word n-gram over thousands of words is never
expanded into a vector: what it needs is ``M(p) = sum_{w starts with p} P(w | h)``, and the
words starting with a spelling are a contiguous range of the sorted word ids. With the
followers of a context sorted by word and each context's discounted probabilities summed
cumulatively, the mass of a range at one order is a difference of two cumulative sums at
the range's ends. A context with more than `DENSE_FANOUT` followers (the unigram, the
frequent words: a few hundred in the demo's LM) has a dense row of those sums over every
word id, read directly; the others are searched, a 4-ary search over at most
`DENSE_FANOUT` followers (3 steps). The Kneser-Ney recursion over the orders is the same
as for vectors.

*Lexicon state.* The character n-gram's state, the word n-gram's state over the completed
words (an out-of-vocabulary word enters as ``<unk>``), the node of the partial word in a
trie of the vocabulary's spellings (-1 once the partial word matches no word; root 0 after
a space) and whether the sentence is still empty. `DeviceLexiconLM.log_probs` evaluates
`word_lm.LexiconWordLM`'s formulas from it: the children's ranges give the letters, the
node's word gives the space and end-of-sentence, and the character n-gram is interpolated
in, or used alone once no word matches.

Precision: the host models compute in float64, these in float32; the test compares them
to float32 rounding on random contexts.

Memory: `nbytes` of a device LM (the demo's 12-gram character + 4-gram word LM:
`experiments/bench_decoders.py` prints it).

References:
  Hori, Cho, Watanabe, "End-to-end speech recognition with word-based RNN language
  models", SLT 2018 (the look-ahead word LM this lays out).
  Chen & Goodman, "An empirical study of smoothing techniques for language
  modeling", 1998 (interpolated Kneser-Ney).
"""

from __future__ import annotations

import weakref

from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from asrjax.decoding import ngram_lm, word_lm

SPACE_ID = 2  # the word boundary of the character tokenizer (`word_lm`)


# ---------------------------------------------------------------------------- n-gram tables
_ARITY = 4  # a range search step probes _ARITY - 1 positions (`_lower_bound`)
DENSE_FANOUT = 63  # contexts with more followers get a dense cumulative row (`NgramTables.dense`)
_FMIX = (0x85EBCA6B, 0xC2B2AE35)  # MurmurHash3's 32-bit finaliser constants


@struct.dataclass
class NgramTables:
  """An `ngram_lm.NgramLM`'s count tables as flat arrays over all orders (module docstring).

  A context of ``n`` tokens with index ``i`` in its order has the *global id* ``ctx_base[n] + i``;
  one sentinel context (no followers) and one sentinel entry at the ends keep every clipped gather
  in bounds.

  Attributes:
    ctx_offsets: ``[C + 2]`` int32, the followers of context ``i`` are entries ``[ctx_offsets[i], ctx_offsets[i + 1])``.
    ctx_gamma: ``[C + 1]`` float32 ``D N1+(h .) / c(h)``, the back-off weight.
    words: ``[E + 1]`` int32 follower ids, sorted within a context (end-of-sentence = ``V``).
    scaled: ``[E + 1]`` float32 ``max(c - D, 0) / c(h)``.
    cum: ``[E + 1]`` float32 ``scaled`` summed cumulatively within each context (inclusive; with
      ``ranges``, else ``[1]``).
    bucket_start: ``[M + 1]`` int32, the hash buckets' entries ``[bucket_start[b], bucket_start[b + 1])``
      of the child table: every context of ``n >= 1`` tokens under the key (global id of its
      ``n - 1``-token parent, newest token), hashed to one of ``M`` (a power of two) buckets.
    bucket_parent, bucket_token, bucket_child: ``[K + 1]`` int32, the child table's entries sorted by
      bucket: the key and the child's global id.
    ctx_dense: ``[C + 1]`` int32, the row of ``dense`` of a context with more than `DENSE_FANOUT`
      followers, else -1 (with ``ranges``, else ``[1]``).
    dense: ``[rows + 1, V + 2]`` float32, ``dense[r, x]`` the ``scaled`` of the context's followers
      with id ``< x`` summed (range masses read it instead of searching a long follower list).
    roots: ``[order]`` int32 index of the sentence-start context per order (-1: none).
    order, vocab_size, discount: the host model's.
    ctx_base: per order, the global id of its first context (static).
    fanout: per order, the most followers of one context (static: the gather width).
    ranges: whether the range-mass arrays were laid out (`ngram_range_mass` needs them).
    sparse_fanout: the most followers of a context without a dense row (static: the search width).
    bucket_width: the most entries of one bucket (static: the probe width).
  """

  ctx_offsets: jax.Array
  ctx_gamma: jax.Array
  words: jax.Array
  scaled: jax.Array
  cum: jax.Array
  bucket_start: jax.Array
  bucket_parent: jax.Array
  bucket_token: jax.Array
  bucket_child: jax.Array
  ctx_dense: jax.Array
  dense: jax.Array
  roots: jax.Array
  order: int = struct.field(pytree_node=False)
  vocab_size: int = struct.field(pytree_node=False)
  discount: float = struct.field(pytree_node=False)
  ctx_base: tuple = struct.field(pytree_node=False)
  fanout: tuple = struct.field(pytree_node=False)
  ranges: bool = struct.field(pytree_node=False)
  sparse_fanout: int = struct.field(pytree_node=False)
  bucket_width: int = struct.field(pytree_node=False)


def _int32(a: np.ndarray, what: str) -> np.ndarray:
  if a.size and int(a.max()) >= 2 ** 31:
    raise ValueError(f"{what} exceeds int32 ({int(a.max())}); the LM is too large for the device layout.")
  return a.astype(np.int32)


def _child_hash(parent, token, vocab_size: int, buckets: int, xp=jnp):
  """Bucket (``[0, buckets)``, a power of two) of child-table keys ``(parent global id, token)``: the
  32-bit key ``parent * V + token`` (wrapping) through MurmurHash3's finaliser; ``xp`` = numpy for the
  layout, jax.numpy in the search (the same uint32 arithmetic)."""
  u = lambda v: xp.asarray(v, xp.uint32)
  x = parent.astype(xp.uint32) * u(vocab_size) + token.astype(xp.uint32)
  x = x ^ (x >> u(16))
  x = x * u(_FMIX[0])
  x = x ^ (x >> u(13))
  x = x * u(_FMIX[1])
  x = x ^ (x >> u(16))
  return (x & u(buckets - 1)).astype(xp.int32)


def ngram_tables(lm: ngram_lm.NgramLM, ranges: bool = False) -> NgramTables:
  """Lays out ``lm`` (module docstring); ``ranges``: also the cumulative sums `ngram_range_mass` reads.

  Raises:
    ValueError: a count table is not closed under dropping the newest token (not a table
      `NgramLM.fit` or `NgramLM.load` makes), or an index exceeds int32.
  """
  v, d = lm.vocab_size, lm.discount
  tables = lm.count_tables
  ctx_base = np.cumsum([0] + [len(t.keys) for t in tables])
  entry_base = np.cumsum([0] + [int(t.offsets[-1]) for t in tables])
  total, entries = int(ctx_base[-1]), int(entry_base[-1])
  _int32(np.asarray([total + 2, entries + 1]), "context / entry count")
  offsets, gamma, words, scaled, cum, parents, tokens, fanout, roots = ([] for _ in range(9))
  prev_keys = None
  for n, t in enumerate(tables):
    lengths = np.diff(t.offsets)
    seg = np.repeat(np.arange(len(t.keys)), lengths)
    sc = np.maximum(t.counts - d, 0.0) / t.totals[seg] if len(seg) else np.zeros(0)
    offsets.append(np.asarray(t.offsets[:-1]) + entry_base[n])
    gamma.append(d * lengths / t.totals if len(t.keys) else np.zeros(0))
    words.append(np.asarray(t.words))
    scaled.append(sc)
    if ranges:
      cs = np.cumsum(sc)
      cum.append(cs - (np.repeat(np.r_[0.0, cs][t.offsets[:-1]], lengths) if len(seg) else 0.0))
    fanout.append(int(lengths.max()) if len(lengths) else 0)
    hit = np.flatnonzero(t.keys == 0)
    roots.append(int(hit[0]) if len(hit) else -1)
    keys = np.asarray(t.keys)
    if n:
      parent_keys = keys // v
      parent = np.searchsorted(prev_keys, parent_keys)
      if len(parent_keys) and (np.any(parent >= len(prev_keys)) or np.any(prev_keys[np.minimum(
          parent, len(prev_keys) - 1)] != parent_keys)):
        raise ValueError(f"count table of order {n + 1} has a context whose {n - 1}-token prefix is not a "
                         f"context of order {n}: not a table NgramLM builds.")
      parents.append(parent + ctx_base[n - 1])
      tokens.append(keys % v)
    prev_keys = keys
  cat = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
  # contexts' entries are contiguous across orders: context i's followers end where i + 1's start
  ctx_offsets = np.r_[cat(offsets, np.int64), entries, entries]  # + the sentinel context (none)
  all_words, all_scaled = cat(words, np.int64), cat(scaled, np.float64)
  fan = np.diff(ctx_offsets)[:total]
  big = np.flatnonzero(fan > DENSE_FANOUT) if ranges else np.zeros(0, np.int64)
  dense = np.zeros((len(big) + 1, v + 2), np.float64)
  for r, c in enumerate(big):  # a few hundred contexts in a word LM (the unigram, frequent words)
    lo, hi = int(ctx_offsets[c]), int(ctx_offsets[c + 1])
    np.add.at(dense[r], all_words[lo:hi] + 1, all_scaled[lo:hi])
  ctx_dense = np.full(total + 1 if ranges else 1, -1, np.int64)
  ctx_dense[big] = np.arange(len(big))
  small = np.ones(total, bool)
  small[big] = False
  parent, token = cat(parents, np.int64), cat(tokens, np.int64)
  child = np.arange(int(ctx_base[1]) if len(tables) else 0, total)  # every context of >= 1 tokens
  buckets = 1 << max(1, len(child) - 1).bit_length()  # load <= 1: a few entries per bucket
  bucket = _child_hash(parent, token, v, buckets, xp=np)
  order = np.argsort(bucket, kind="stable")
  counts = np.bincount(bucket, minlength=buckets)
  arrays = dict(
      ctx_offsets=ctx_offsets.astype(np.int32), ctx_gamma=np.r_[cat(gamma, np.float64), 0.0].astype(np.float32),
      words=np.r_[all_words, 0].astype(np.int32), scaled=np.r_[all_scaled, 0.0].astype(np.float32),
      cum=np.r_[cat(cum, np.float64), 0.0].astype(np.float32) if ranges else np.zeros(1, np.float32),
      bucket_start=np.r_[0, np.cumsum(counts)].astype(np.int32),
      bucket_parent=np.r_[parent[order], -1].astype(np.int32), bucket_token=np.r_[token[order], -1].astype(np.int32),
      bucket_child=np.r_[child[order], -1].astype(np.int32), ctx_dense=ctx_dense.astype(np.int32),
      dense=np.cumsum(dense, axis=1).astype(np.float32), roots=np.asarray(roots, np.int32))
  return NgramTables(**{k: jnp.asarray(x) for k, x in arrays.items()}, order=lm.order, vocab_size=v,
                     discount=float(d), ctx_base=tuple(int(b) for b in ctx_base[:-1]), fanout=tuple(fanout),
                     ranges=ranges, sparse_fanout=int(fan[small].max()) if small.any() else 0,
                     bucket_width=max(1, int(counts.max())))


def _lower_bound(values: jax.Array, lo: jax.Array, hi: jax.Array, x: jax.Array, width: int) -> jax.Array:
  """Elementwise first ``i`` in ``[lo, hi)`` with ``values[i] >= x`` (``hi`` if none); ``values`` sorted
  on each ``[lo, hi)``, whose length is at most ``width`` (static).

  A ``_ARITY``-ary search: each step probes ``_ARITY - 1`` evenly spaced positions of the remaining
  window at once and moves to the sub-window holding the answer (a 63-wide window takes 3 steps
  instead of 7 halvings: on XLA:CPU a step's fixed cost outweighs its few extra gathers). The
  steps are a `lax.fori_loop`: unrolled, XLA's fusion duplicates each step's producers into its
  consumers and the program grows exponentially with the steps (a 13-halving search compiled for
  15 GB).
  """
  steps = 1
  while _ARITY ** steps <= width:
    steps += 1
  last = values.shape[0] - 1
  probes = jnp.arange(1, _ARITY, dtype=jnp.int32)
  strides = jnp.asarray([_ARITY ** (steps - 1 - i) for i in range(steps)], jnp.int32)

  def step(i, base):
    stride = strides[i]
    pos = base[..., None] + probes * stride - 1
    below = (pos < hi[..., None]) & (values[jnp.clip(pos, 0, last)] < x[..., None])
    return base + jnp.sum(below.astype(jnp.int32), axis=-1) * stride

  return jax.lax.fori_loop(0, steps, step, lo)


def _global(tables: NgramTables, ctx: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``ctx [N, k]`` indices of orders ``0 .. k-1`` -> ``(global ids, seen)``, unseen ones at the sentinel."""
  seen = ctx >= 0
  base = jnp.asarray(tables.ctx_base[:ctx.shape[1]], jnp.int32)
  ids = jnp.where(seen, ctx + base, tables.ctx_gamma.shape[0] - 1)
  return ids, seen


def ngram_start(tables: NgramTables, n: int) -> jax.Array:
  """``[n, order]`` int32 state of ``n`` empty sentences."""
  return jnp.broadcast_to(tables.roots, (n, tables.order))


def ngram_advance(tables: NgramTables, ctx: jax.Array, tokens: jax.Array) -> jax.Array:
  """``ctx [N, order]`` advanced by ``tokens [N]`` (text ids ``1 .. V-1``): each order's new context is
  looked up in the child hash table (one bucket per order, all orders at once)."""
  root = jnp.broadcast_to(tables.roots[0], tokens.shape)[:, None]
  if tables.order == 1:
    return root.astype(jnp.int32)
  parent, seen = _global(tables, ctx[:, :-1])  # [N, order - 1]
  tok = jnp.broadcast_to(tokens[:, None], parent.shape)
  buckets = tables.bucket_start.shape[0] - 1
  b = _child_hash(parent, tok, tables.vocab_size, buckets)
  pos = tables.bucket_start[b][..., None] + jnp.arange(tables.bucket_width, dtype=jnp.int32)
  inside = pos < tables.bucket_start[b + 1][..., None]
  pos = jnp.minimum(pos, tables.bucket_parent.shape[0] - 1)
  match = inside & (tables.bucket_parent[pos] == parent[..., None]) & (tables.bucket_token[pos] == tok[..., None])
  child = jnp.max(jnp.where(match, tables.bucket_child[pos], -1), axis=-1)
  index = jnp.where(seen & (child >= 0), child - jnp.asarray(tables.ctx_base[1:], jnp.int32), -1)
  return jnp.concatenate([root, index], axis=1).astype(jnp.int32)


def ngram_probs(tables: NgramTables, ctx: jax.Array) -> jax.Array:
  """``[N, V + 1]`` float32 ``P(next | ctx)`` (entry 0, the blank, is 0; entry ``V`` end-of-sentence).

  The Kneser-Ney recursion ``p_n = gamma_n p_{n-1} + scaled_n`` over the seen orders, unrolled:
  ``p = (prod_n gamma_n) / V + sum_n (prod_{m > n} gamma_m) scaled_n`` (unseen orders: gamma 1,
  nothing scaled), every order's followers gathered at once."""
  v, rows = tables.vocab_size, ctx.shape[0]
  ids, seen = _global(tables, ctx)
  gamma = jnp.where(seen, tables.ctx_gamma[ids], 1.0)  # [N, order]
  later = jnp.cumprod(gamma[:, ::-1], axis=1)[:, ::-1]  # prod_{m >= n}
  weight = jnp.concatenate([later[:, 1:], jnp.ones((rows, 1), jnp.float32)], axis=1)  # prod_{m > n}
  idx = tables.ctx_offsets[ids][..., None] + jnp.arange(max(max(tables.fanout), 1), dtype=jnp.int32)
  inside = idx < tables.ctx_offsets[ids + 1][..., None]
  idx = jnp.minimum(idx, tables.words.shape[0] - 1)
  words = jnp.where(inside, tables.words[idx], 0)  # outside entries add 0 to the blank
  vals = jnp.where(inside, tables.scaled[idx], 0.0) * weight[..., None]
  p = jnp.full((rows, v + 1), 1.0 / v, jnp.float32) * later[:, :1]
  for n in range(tables.order):  # one scatter per order measured faster than one over all (XLA:CPU)
    p = p.at[jnp.arange(rows)[:, None], words[:, n]].add(vals[:, n])
  return p.at[:, 0].set(0.0)


def ngram_range_mass(tables: NgramTables, ctx: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
  """``[N, R]`` float32 ``sum_{lo <= w < hi} P(w | ctx)`` for event-id ranges ``lo, hi [N, R]``
  (``1 <= lo <= hi <= V + 1``; end-of-sentence is event ``V``; an empty range has mass 0). Both ends
  of every range at every order are read from the context's dense row or found by one search."""
  if not tables.ranges:
    raise ValueError("these tables were laid out without range masses: ngram_tables(lm, ranges=True).")
  v, r = tables.vocab_size, lo.shape[1]
  ids, seen = _global(tables, ctx)
  row = tables.ctx_dense[ids]  # [N, order]
  shape = ids.shape + (2 * r,)  # [N, order, 2R]
  x = jnp.broadcast_to(jnp.concatenate([hi, lo], axis=1)[:, None, :], shape)
  start = jnp.broadcast_to(tables.ctx_offsets[ids][..., None], shape)
  end = jnp.broadcast_to(tables.ctx_offsets[ids + 1][..., None], shape)
  pos = _lower_bound(tables.words, start, end, x, max(tables.sparse_fanout, 1))  # wrong, unused, at dense rows
  sparse = jnp.where(pos > start, tables.cum[jnp.maximum(pos - 1, 0)], 0.0)
  below = jnp.where((row >= 0)[..., None], tables.dense[jnp.maximum(row, 0)[..., None], x], sparse)
  inside = below[..., :r] - below[..., r:]  # [N, order, R]
  gamma = tables.ctx_gamma[ids]
  mass = (hi - lo).astype(jnp.float32) / v
  for n in range(tables.order):
    mass = jnp.where(seen[:, n, None], gamma[:, n, None] * mass + inside[:, n], mass)
  return mass


# ---------------------------------------------------------------------------- device LMs
def _log(p: jax.Array) -> jax.Array:
  """``log p`` with the blank (entry 0) at ``-inf``."""
  return jnp.log(p).at[:, 0].set(-jnp.inf)


@struct.dataclass
class DeviceNgramLM:
  """`ngram_lm.NgramLM` on device; state ``[N, order]`` int32 (module docstring)."""

  tables: NgramTables

  @property
  def vocab_size(self) -> int:
    return self.tables.vocab_size

  @property
  def eos_id(self) -> int:
    return self.tables.vocab_size

  def start(self, n: int) -> jax.Array:
    return ngram_start(self.tables, n)

  def advance(self, state: jax.Array, tokens: jax.Array) -> jax.Array:
    return ngram_advance(self.tables, state, tokens)

  def log_probs(self, state: jax.Array) -> jax.Array:
    return _log(ngram_probs(self.tables, state))


class LexiconState(struct.PyTreeNode):
  """`DeviceLexiconLM` state of ``N`` sentences: ``char [N, char order]``, ``word [N, word order]``
  n-gram states, ``node [N]`` int32 trie node of the partial word (-1: no word matches), ``empty [N]``
  bool (nothing emitted yet)."""

  char: jax.Array
  word: jax.Array
  node: jax.Array
  empty: jax.Array


@struct.dataclass
class DeviceLexiconLM:
  """`word_lm.LexiconWordLM` on device (module docstring).

  Attributes:
    char, word: the character and word n-grams' tables.
    node_lo, node_hi: ``[nodes]`` int32, the word ids ``[lo, hi)`` spelled with the node's prefix.
    node_word: ``[nodes]`` int32 the word id the node spells, -1 if none.
    children: ``[nodes, V]`` int32 the node reached by appending character id ``c``, -1 if none.
    char_weight: the character LM's interpolation weight.
  """

  char: NgramTables
  word: NgramTables
  node_lo: jax.Array
  node_hi: jax.Array
  node_word: jax.Array
  children: jax.Array
  char_weight: float = struct.field(pytree_node=False)

  @property
  def vocab_size(self) -> int:
    return self.char.vocab_size

  @property
  def eos_id(self) -> int:
    return self.char.vocab_size

  def start(self, n: int) -> LexiconState:
    return LexiconState(ngram_start(self.char, n), ngram_start(self.word, n), jnp.zeros((n,), jnp.int32),
                        jnp.ones((n,), bool))

  def _completed_word(self, node: jax.Array) -> jax.Array:
    """``[N]`` word id the partial word at ``node`` completes (``<unk>`` if it spells none)."""
    w = self.node_word[jnp.maximum(node, 0)]
    return jnp.where((node >= 0) & (w >= 0), w, word_lm.UNK_WORD)

  def advance(self, state: LexiconState, tokens: jax.Array) -> LexiconState:
    space = tokens == SPACE_ID
    word = jnp.where(space[:, None], ngram_advance(self.word, state.word, self._completed_word(state.node)),
                     state.word)
    child = self.children[jnp.maximum(state.node, 0), tokens]
    node = jnp.where(space, 0, jnp.where(state.node >= 0, child, -1))
    return LexiconState(ngram_advance(self.char, state.char, tokens), word, node.astype(jnp.int32),
                        jnp.zeros_like(state.empty))

  def _normalised(self, ctx: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
    """``[N, R]`` word-range masses of the word n-gram without ``<unk>``, renormalised (``word_lm``)."""
    unk = jnp.full(ctx.shape[:1] + (1,), word_lm.UNK_WORD, jnp.int32)
    mass = ngram_range_mass(self.word, ctx, jnp.concatenate([unk, lo], axis=1), jnp.concatenate([unk + 1, hi], axis=1))
    return mass[:, 1:] / (1.0 - mass[:, :1])

  def log_probs(self, state: LexiconState) -> jax.Array:
    v, eos_w = self.char.vocab_size, self.word.vocab_size
    rows = state.node.shape[0]
    alive = state.node >= 0
    nd = jnp.maximum(state.node, 0)
    kids = self.children[nd]  # [N, V]
    kid_ok = alive[:, None] & (kids >= 0)
    kid = jnp.maximum(kids, 0)
    w = self.node_word[nd]
    is_word = alive & (w >= 0)
    zero = jnp.zeros((rows, 1), jnp.int32)
    lo = jnp.concatenate([jnp.where(kid_ok, self.node_lo[kid], 0),
                          jnp.where(alive, self.node_lo[nd], 0)[:, None],
                          zero + eos_w,
                          jnp.where(is_word, w, 0)[:, None]], axis=1)
    hi = jnp.concatenate([jnp.where(kid_ok, self.node_hi[kid], 0),
                          jnp.where(alive, self.node_hi[nd], 0)[:, None],
                          zero + eos_w + 1,
                          jnp.where(is_word, w + 1, 0)[:, None]], axis=1)
    masses = self._normalised(state.word, lo, hi)
    letters, prefix, p_eos, p_word = masses[:, :v], masses[:, v], masses[:, v + 1], masses[:, v + 2]
    eos_now = jnp.where(state.empty, p_eos, 0.0)
    mass = prefix + eos_now
    after = ngram_advance(self.word, state.word, jnp.where(is_word, w, word_lm.UNK_WORD))
    eos = jnp.full((rows, 1), eos_w, jnp.int32)
    end = self._normalised(after, eos, eos + 1)[:, 0]
    out = jnp.concatenate([letters, jnp.zeros((rows, 1))], axis=1)
    out = out.at[:, SPACE_ID].set(jnp.where(is_word, p_word * (1.0 - end), 0.0))
    out = out.at[:, v].set(jnp.where(is_word, p_word * end, eos_now))
    char = ngram_probs(self.char, state.char)
    have = (mass > 0)[:, None]
    lexicon = out / jnp.where(have, mass[:, None], 1.0)
    p = jnp.where(have, (1.0 - self.char_weight) * lexicon + self.char_weight * char, char)
    return _log(p)


def lexicon_lm(lm: word_lm.LexiconWordLM) -> DeviceLexiconLM:
  """Lays out ``lm``: its two n-grams and the trie of its words' spellings (module docstring)."""
  char_id = {c: i for i, c in lm.id_to_char.items() if i != SPACE_ID}
  nodes = {"": 0}
  lo, hi, word_of, edges = [2], [len(lm.words) + 2], [-1], []
  for index, spelling in enumerate(lm.words):
    wid = index + 2
    node = 0
    for j, c in enumerate(spelling, 1):
      if c not in char_id:  # a character the model cannot emit: the word is never spelled out
        node = -1
        break
      prefix = spelling[:j]
      if prefix not in nodes:
        nodes[prefix] = len(lo)
        lo.append(wid)
        hi.append(wid + 1)
        word_of.append(-1)
        edges.append((node, char_id[c], nodes[prefix]))
      child = nodes[prefix]
      hi[child] = wid + 1
      node = child
    if node >= 0:
      word_of[node] = wid
  children = np.full((len(lo), lm.vocab_size), -1, np.int32)
  for parent, c, child in edges:
    children[parent, c] = child
  return DeviceLexiconLM(ngram_tables(lm.char_lm), ngram_tables(lm.word_lm, ranges=True), jnp.asarray(lo, jnp.int32),
                         jnp.asarray(hi, jnp.int32), jnp.asarray(word_of, jnp.int32), jnp.asarray(children),
                         float(lm.char_weight))


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def to_device(lm):
  """The device layout of a host LM (`ngram_lm.NgramLM` or `word_lm.LexiconWordLM`), made once per LM
  object and cached; a device LM is returned as it is.

  Raises:
    ValueError: ``lm`` is neither (naming its type).
  """
  if isinstance(lm, (DeviceNgramLM, DeviceLexiconLM)):
    return lm
  if lm in _CACHE:
    return _CACHE[lm]
  if isinstance(lm, word_lm.LexiconWordLM):
    out = lexicon_lm(lm)
  elif isinstance(lm, ngram_lm.NgramLM):
    out = DeviceNgramLM(ngram_tables(lm))
  else:
    raise ValueError(f"lm must be an ngram_lm.NgramLM or word_lm.LexiconWordLM (or their device layout); "
                     f"got {type(lm).__name__}.")
  _CACHE[lm] = out
  return out


def nbytes(device_lm) -> int:
  """Bytes of a device LM's arrays."""
  return int(sum(x.nbytes for x in jax.tree.leaves(device_lm)))
