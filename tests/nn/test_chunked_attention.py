"""Chunk-wise causal attention: the mask by hand, a numpy reference, and streaming."""

import jax
import numpy as np
import pytest

from asrjax.nn import chunked_attention as ca


def test_chunk_mask_by_hand():
  # 6 queries, chunks of 2, one chunk of history; no cache (context 0 for clarity of the first call)
  m = np.asarray(ca.chunk_mask(6, 0, 2, 1)).astype(int)
  expected = np.array([
      [1, 1, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 0, 0],
      [0, 0, 1, 1, 1, 1],
      [0, 0, 1, 1, 1, 1],
  ])
  np.testing.assert_array_equal(m, expected)
  # with a 2-frame cache in front: query 0..1 sees the cache (previous chunk) and its own chunk
  m = np.asarray(ca.chunk_mask(4, 2, 2, 1)).astype(int)
  np.testing.assert_array_equal(m, [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])


def _reference(params, x, valid, heads, chunk, left):
  """Per-query loops in numpy over the keys the definition allows (plus, with a ``rel_bias``
  table ``[H, R]``, the entry of distance ``i - j`` frames back, shifted by the look-ahead
  ``chunk - 1`` and clipped to the table)."""
  p = jax.tree.map(np.asarray, params["params"])
  b, t, d = x.shape
  dh = d // heads
  q = np.einsum("btd,dhk->bthk", x, p["query"]["kernel"]) + p["query"]["bias"]
  k = np.einsum("btd,dhk->bthk", x, p["key"]["kernel"]) + p["key"]["bias"]
  v = np.einsum("btd,dhk->bthk", x, p["value"]["kernel"]) + p["value"]["bias"]
  out = np.zeros((b, t, heads, dh))
  for bi in range(b):
    for i in range(t):
      allowed = [j for j in range(t) if valid[bi, j] and 0 <= i // chunk - j // chunk <= left]
      for h in range(heads):
        if not allowed:
          continue
        s = np.array([q[bi, i, h] @ k[bi, j, h] / np.sqrt(dh) for j in allowed])
        if "rel_bias" in p:
          r = p["rel_bias"].shape[1]
          s = s + np.array([p["rel_bias"][h, min(max(i - j + chunk - 1, 0), r - 1)] for j in allowed])
        w = np.exp(s - s.max())
        w /= w.sum()
        out[bi, i, h] = sum(wj * v[bi, j, h] for wj, j in zip(w, allowed))
  return np.einsum("bthk,hkd->btd", out, p["out"]["kernel"]) + p["out"]["bias"]


@pytest.mark.parametrize("chunk,left", [(1, 3), (3, 1), (2, 0)])
def test_whole_utterance_matches_numpy_reference(chunk, left):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 11, 8)).astype(np.float32)
  pads = (np.arange(11)[None] >= np.array([[11], [7]])).astype(np.float32)
  layer = ca.ChunkedSelfAttention(heads=2, chunk_size=chunk, left_chunks=left)
  params = layer.init(jax.random.key(1), x, pads, layer.init_state(2, 8))
  y, _ = layer.apply(params, x, pads, layer.init_state(2, 8))
  ref = _reference(params, x.astype(np.float64), pads == 0, 2, chunk, left)
  valid = pads == 0
  np.testing.assert_allclose(np.asarray(y)[valid], ref[valid], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("chunk,left,max_relative", [(1, 3, 4), (3, 1, 4), (2, 2, 3)])
def test_relative_position_bias_matches_numpy_reference(chunk, left, max_relative):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 11, 8)).astype(np.float32)
  pads = (np.arange(11)[None] >= np.array([[11], [8]])).astype(np.float32)
  layer = ca.ChunkedSelfAttention(heads=2, chunk_size=chunk, left_chunks=left, max_relative=max_relative)
  params = layer.init(jax.random.key(1), x, pads, layer.init_state(2, 8))
  params = {"params": {**params["params"], "rel_bias": rng.normal(size=(2, max_relative)).astype(np.float32) * 2}}
  y, _ = layer.apply(params, x, pads, layer.init_state(2, 8))
  ref = _reference(params, x.astype(np.float64), pads == 0, 2, chunk, left)
  valid = pads == 0
  np.testing.assert_allclose(np.asarray(y)[valid], ref[valid], rtol=1e-4, atol=1e-5)


def test_streaming_with_cache_matches_whole_utterance():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(2, 24, 8)).astype(np.float32)
  pads = (np.arange(24)[None] >= np.array([[24], [17]])).astype(np.float32)
  layer = ca.ChunkedSelfAttention(heads=2, chunk_size=2, left_chunks=2, max_relative=5)
  params = layer.init(jax.random.key(1), x, pads, layer.init_state(2, 8))
  params = {"params": {**params["params"], "rel_bias": np.random.default_rng(3).normal(size=(2, 5)).astype(np.float32)}}
  apply = jax.jit(layer.apply)
  whole, _ = apply(params, x, pads, layer.init_state(2, 8))
  state, outs, t = layer.init_state(2, 8), [], 0
  for size in (2, 6, 4, 2, 8, 2):
    y, state = apply(params, x[:, t:t + size], pads[:, t:t + size], state)
    outs.append(y)
    t += size
  valid = pads == 0
  np.testing.assert_allclose(np.concatenate(outs, 1)[valid], np.asarray(whole)[valid], rtol=1e-5, atol=1e-6)
