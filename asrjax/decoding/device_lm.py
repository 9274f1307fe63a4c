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
context: all mass to the lower order"). A table's contexts are sorted by key, and a key is
``parent key * V + newest token``, so the contexts extending one context of ``n - 1`` tokens
are a contiguous run sorted by their newest token: advancing is a bounded binary search
per order. The contexts are closed under dropping the newest token (every context of ``n``
tokens is a history of a predicted position, and so is its prefix of ``n - 1`` tokens);
`ngram_tables` checks it. The interpolated Kneser-Ney recursion of `ngram_lm` then runs
over the orders with each context's followers gathered at a fixed width (the largest
fan-out of the order).

*Word-range masses.* For the lexicon LM a word n-gram over thousands of words is never
expanded into a vector: what it needs is ``M(p) = sum_{w starts with p} P(w | h)``, and the
words starting with a spelling are a contiguous range of the sorted word ids. With the
followers of a context sorted by word and each context's discounted probabilities summed
cumulatively, the mass of a range at one order is a difference of two cumulative sums
found by binary search, and the Kneser-Ney recursion is the same as for vectors.

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

import math
import weakref

from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from asrjax.decoding import ngram_lm, word_lm

SPACE_ID = 2  # the word boundary of the character tokenizer (`word_lm`)


# ---------------------------------------------------------------------------- n-gram tables
@struct.dataclass
class NgramTables:
  """An `ngram_lm.NgramLM`'s count tables as flat arrays; index ``n`` of each tuple is the order
  of contexts of ``n`` tokens (``C_n`` contexts, ``E_n`` (context, follower) entries).

  Attributes:
    offsets: ``[C_n + 1]`` int32, the followers of context ``i`` are entries ``[offsets[i], offsets[i+1])``.
    words: ``[E_n]`` int32 follower ids, sorted within a context (end-of-sentence = ``V``).
    scaled: ``[E_n]`` float32 ``max(c - D, 0) / c(h)``.
    cum: ``[E_n]`` float32 ``scaled`` summed cumulatively within each context (inclusive).
    gamma: ``[C_n]`` float32 ``D N1+(h .) / c(h)``, the back-off weight.
    child_offsets: for ``n >= 1`` (index ``n - 1``), ``[C_{n-1} + 1]`` int32: the contexts of
      ``n`` tokens extending context ``i`` of ``n - 1`` tokens are ``[child_offsets[i], child_offsets[i+1])``.
    child_tokens: for ``n >= 1`` (index ``n - 1``), ``[C_n]`` int32 the newest token of each context.
    roots: ``[order]`` int32 index of the sentence-start context per order (-1: none).
    flat_words, flat_cum, flat_child_tokens: ``words``, ``cum`` and ``child_tokens`` of every order
      end to end (order ``n`` from ``word_base[n]`` / ``child_base[n - 1]``), so one binary search
      serves all orders at once.
    order, vocab_size, discount: the host model's.
    fanout: per order, the most followers of one context (static: the gather width).
    child_fanout: per order ``n >= 1``, the most contexts extending one context.
  """

  offsets: tuple
  words: tuple
  scaled: tuple
  cum: tuple
  gamma: tuple
  child_offsets: tuple
  child_tokens: tuple
  roots: jax.Array
  flat_words: jax.Array
  flat_cum: jax.Array
  flat_child_tokens: jax.Array
  order: int = struct.field(pytree_node=False)
  vocab_size: int = struct.field(pytree_node=False)
  discount: float = struct.field(pytree_node=False)
  fanout: tuple = struct.field(pytree_node=False)
  child_fanout: tuple = struct.field(pytree_node=False)
  word_base: tuple = struct.field(pytree_node=False)
  child_base: tuple = struct.field(pytree_node=False)


def _int32(a: np.ndarray, what: str) -> np.ndarray:
  if a.size and int(a.max()) >= 2 ** 31:
    raise ValueError(f"{what} exceeds int32 ({int(a.max())}); the LM is too large for the device layout.")
  return a.astype(np.int32)


def ngram_tables(lm: ngram_lm.NgramLM) -> NgramTables:
  """Lays out ``lm`` (module docstring).

  Raises:
    ValueError: a count table is not closed under dropping the newest token (not a table
      `NgramLM.fit` or `NgramLM.load` makes), or an index exceeds int32.
  """
  v, d = lm.vocab_size, lm.discount
  fields = {k: [] for k in ("offsets", "words", "scaled", "cum", "gamma", "child_offsets", "child_tokens")}
  fanout, child_fanout, roots = [], [], []
  prev_keys = None
  for n, t in enumerate(lm.count_tables):
    lengths = np.diff(t.offsets)
    seg = np.repeat(np.arange(len(t.keys)), lengths)
    scaled = np.maximum(t.counts - d, 0.0) / t.totals[seg] if len(seg) else np.zeros(0)
    cs = np.cumsum(scaled)
    base = np.repeat(np.r_[0.0, cs][t.offsets[:-1]], lengths) if len(seg) else np.zeros(0)
    # one sentinel entry / context at the end keeps every clipped gather in bounds
    fields["offsets"].append(_int32(np.asarray(t.offsets), "count-table offsets"))
    fields["words"].append(np.r_[t.words, 0].astype(np.int32))
    fields["scaled"].append(np.r_[scaled, 0.0].astype(np.float32))
    fields["cum"].append(np.r_[cs - base, 0.0].astype(np.float32))
    fields["gamma"].append(np.r_[d * lengths / t.totals if len(t.keys) else np.zeros(0), 0.0].astype(np.float32))
    fanout.append(int(lengths.max()) if len(lengths) else 0)
    hit = np.flatnonzero(t.keys == 0)
    roots.append(int(hit[0]) if len(hit) else -1)
    if n:
      parent_keys = np.asarray(t.keys) // v
      parent = np.searchsorted(prev_keys, parent_keys)
      if len(parent_keys) and (np.any(parent >= len(prev_keys)) or np.any(prev_keys[np.minimum(
          parent, len(prev_keys) - 1)] != parent_keys)):
        raise ValueError(f"count table of order {n + 1} has a context whose {n - 1}-token prefix is not a "
                         f"context of order {n}: not a table NgramLM builds.")
      child_offsets = np.searchsorted(parent, np.arange(len(prev_keys) + 1))
      fields["child_offsets"].append(_int32(child_offsets, "context index"))
      fields["child_tokens"].append(np.r_[np.asarray(t.keys) % v, 0].astype(np.int32))
      child_fanout.append(int(np.diff(child_offsets).max()) if len(prev_keys) else 0)
    prev_keys = np.asarray(t.keys)
  word_base = tuple(int(b) for b in np.cumsum([0] + [len(w) for w in fields["words"]])[:-1])
  child_base = tuple(int(b) for b in np.cumsum([0] + [len(c) for c in fields["child_tokens"]])[:-1])
  flat = dict(flat_words=np.concatenate(fields["words"]), flat_cum=np.concatenate(fields["cum"]),
              flat_child_tokens=np.concatenate(fields["child_tokens"] or [np.zeros(1, np.int32)]))
  arrays = {k: tuple(jnp.asarray(a) for a in vals) for k, vals in fields.items()}
  return NgramTables(**arrays, **{k: jnp.asarray(a) for k, a in flat.items()}, roots=jnp.asarray(roots, jnp.int32),
                     order=lm.order, vocab_size=v, discount=float(d), fanout=tuple(fanout),
                     child_fanout=tuple(child_fanout), word_base=word_base, child_base=child_base)


def _iterations(width: int) -> int:
  """Halvings a binary search over ``width`` elements needs."""
  return max(1, math.ceil(math.log2(width + 1)))


def _lower_bound(values: jax.Array, lo: jax.Array, hi: jax.Array, x: jax.Array, width: int) -> jax.Array:
  """Elementwise first ``i`` in ``[lo, hi)`` with ``values[i] >= x`` (``hi`` if none); ``values`` sorted
  on each ``[lo, hi)``, whose length is at most ``width`` (a static bound on the halvings).

  The halvings are a `lax.fori_loop`: unrolled, XLA's fusion duplicates each step's producers into
  both of its consumers and the program grows as 2^halvings (a 13-step search over a 6,000-word
  vocabulary took 15 GB to compile; an `optimization_barrier` per step did not prevent it).
  """
  last = values.shape[0] - 1

  def halve(_, bounds):
    lo, hi = bounds
    active = lo < hi
    mid = (lo + hi) // 2
    less = values[jnp.clip(mid, 0, last)] < x
    return jnp.where(active & less, mid + 1, lo), jnp.where(active & ~less, mid, hi)

  lo, _ = jax.lax.fori_loop(0, _iterations(width), halve, (lo, hi))
  return lo


def ngram_start(tables: NgramTables, n: int) -> jax.Array:
  """``[n, order]`` int32 state of ``n`` empty sentences."""
  return jnp.broadcast_to(tables.roots, (n, tables.order))


def ngram_advance(tables: NgramTables, ctx: jax.Array, tokens: jax.Array) -> jax.Array:
  """``ctx [N, order]`` advanced by ``tokens [N]`` (text ids ``1 .. V-1``): one binary search over every
  order's children at once."""
  root = jnp.broadcast_to(tables.roots[0], tokens.shape)[:, None]
  if tables.order == 1:
    return root.astype(jnp.int32)
  los, his = [], []
  for n in range(1, tables.order):
    p = jnp.maximum(ctx[:, n - 1], 0)
    offs, base = tables.child_offsets[n - 1], tables.child_base[n - 1]
    los.append(offs[p] + base)
    his.append(offs[p + 1] + base)
  lo, hi = jnp.stack(los, axis=1), jnp.stack(his, axis=1)  # [N, order - 1], positions in flat_child_tokens
  toks = tables.flat_child_tokens
  i = _lower_bound(toks, lo, hi, tokens[:, None], max(tables.child_fanout))
  found = (ctx[:, :-1] >= 0) & (i < hi) & (toks[jnp.minimum(i, toks.shape[0] - 1)] == tokens[:, None])
  index = i - jnp.asarray(tables.child_base, jnp.int32)[None, :]
  return jnp.concatenate([root, jnp.where(found, index, -1)], axis=1).astype(jnp.int32)


def ngram_probs(tables: NgramTables, ctx: jax.Array) -> jax.Array:
  """``[N, V + 1]`` float32 ``P(next | ctx)`` (entry 0, the blank, is 0; entry ``V`` end-of-sentence)."""
  v = tables.vocab_size
  rows = ctx.shape[0]
  p = jnp.full((rows, v + 1), 1.0 / v, jnp.float32).at[:, 0].set(0.0)
  for n in range(tables.order):
    i = ctx[:, n]
    ok = i >= 0
    c = jnp.maximum(i, 0)
    start, end = tables.offsets[n][c], tables.offsets[n][c + 1]
    idx = start[:, None] + jnp.arange(max(tables.fanout[n], 1))[None, :]
    inside = idx < end[:, None]
    idx = jnp.minimum(idx, tables.words[n].shape[0] - 1)
    words = jnp.where(inside, tables.words[n][idx], 0)  # outside entries add 0 to the blank
    vals = jnp.where(inside, tables.scaled[n][idx], 0.0)
    q = tables.gamma[n][c][:, None] * p
    q = q.at[jnp.arange(rows)[:, None], words].add(vals)
    p = jnp.where(ok[:, None], q, p)
  return p


def ngram_range_mass(tables: NgramTables, ctx: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
  """``[N, R]`` float32 ``sum_{lo <= w < hi} P(w | ctx)`` for event-id ranges ``lo, hi [N, R]``
  (``1 <= lo <= hi <= V + 1``; end-of-sentence is event ``V``; an empty range has mass 0). Both ends
  of every range at every order are found by one binary search."""
  v, r = tables.vocab_size, lo.shape[1]
  starts, ends = [], []
  for n in range(tables.order):
    c = jnp.maximum(ctx[:, n], 0)
    starts.append(tables.offsets[n][c] + tables.word_base[n])
    ends.append(tables.offsets[n][c + 1] + tables.word_base[n])
  start = jnp.repeat(jnp.stack(starts, axis=1)[:, :, None], 2 * r, axis=2)  # [N, order, 2R]
  end = jnp.repeat(jnp.stack(ends, axis=1)[:, :, None], 2 * r, axis=2)
  x = jnp.broadcast_to(jnp.concatenate([hi, lo], axis=1)[:, None, :], start.shape)
  pos = _lower_bound(tables.flat_words, start, end, x, max(max(tables.fanout), 1))
  below = jnp.where(pos > start, tables.flat_cum[jnp.maximum(pos - 1, 0)], 0.0)
  inside = below[..., :r] - below[..., r:]  # [N, order, R]
  mass = (hi - lo).astype(jnp.float32) / v
  for n in range(tables.order):
    i = ctx[:, n]
    gamma = tables.gamma[n][jnp.maximum(i, 0)][:, None]
    mass = jnp.where((i >= 0)[:, None], gamma * mass + inside[:, n], mass)
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
  return DeviceLexiconLM(ngram_tables(lm.char_lm), ngram_tables(lm.word_lm), jnp.asarray(lo, jnp.int32),
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
