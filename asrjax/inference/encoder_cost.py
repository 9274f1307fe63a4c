"""What an encoder costs: streaming wall-clock, XLA's FLOP count, and the per-frame gates it used.

Measurements for encoders whose work depends on the input (`asrjax.models.cca_transformer`)
and the dense ones alike:

* `stream_seconds` -- the encoder alone, fed chunk by chunk at batch 1 with its carried
  state, as a device would run it; every chunk shape compiled before timing; the median
  of ``repeats`` passes.
* `compiled_flops` -- XLA's ``cost_analysis`` FLOPs of a jitted function (a
  ``lax.switch`` counts as its most expensive branch, so per-capacity costs are
  measured on static capacities, `subblock_flops`).
* `gate_trace` -- the hard gates of every block per frame, with the frame's log-energy.

References:
  Xie et al., "Compute cost amortized Transformer for streaming ASR", Interspeech 2022.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.models import cca_transformer
from asrjax.nn import chunked_attention, frame_gates


def compiled_flops(fn, *args) -> float:
  """FLOPs of ``jax.jit(fn)(*args)`` as XLA counts them after compilation (0 when nothing is computed)."""
  cost = jax.jit(fn).lower(*args).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0))


def stream_seconds(model, params, utterances, chunk_frames: int, repeats: int = 3, gates: float | None = None) -> dict:
  """Median seconds to run ``model.encode`` over ``utterances`` chunk by chunk (batch 1).

  Args:
    model: a `asrjax.models.transducer.Transducer`.
    params: its parameters.
    utterances: ``[T_i, F]`` feature arrays (already normalised as the model expects).
    chunk_frames: input frames per call (a multiple of the encoder's ``chunk_multiple``);
      an utterance's last chunk is zero-padded to it (padding frames marked), so one
      shape is compiled.
    repeats: timed passes over all utterances; the median is reported.
    gates: with a gated encoder, every gate forced to this value (1: the gating machinery
      with nothing skipped; 0: everything skippable skipped), else its own decisions.

  Returns:
    ``{"seconds": median, "all": [per pass], "frames": input frames, "chunks": calls}``.

  Raises:
    ValueError: ``chunk_frames`` is not a positive multiple of the chunk multiple.
  """
  multiple = model.encoder.chunk_multiple
  if chunk_frames < 1 or chunk_frames % multiple:
    raise ValueError(f"chunk_frames must be a positive multiple of {multiple}; got {chunk_frames}.")
  options = {}
  if gates is not None:
    enc = model.encoder
    shape = (enc.layers, 1, chunk_frames // enc.stack)
    options = {"gates": {"mha": np.full(shape, gates, np.float32), "ffn": np.full(shape, gates, np.float32)}}
  step = jax.jit(lambda p, f, pad, s: model.apply(p, f, pad, s, method=model.encode, **options))
  chunks = []
  for feats in utterances:
    n = -(-len(feats) // chunk_frames)
    padded = np.zeros((n * chunk_frames, feats.shape[1]), np.float32)
    padded[:len(feats)] = feats
    pads = (np.arange(n * chunk_frames) >= len(feats)).astype(np.float32)
    chunks.append([(padded[None, i * chunk_frames:(i + 1) * chunk_frames], pads[None, i * chunk_frames:(i + 1) *
                                                                                chunk_frames]) for i in range(n)])

  def one_pass() -> float:
    start = time.perf_counter()
    for utt in chunks:
      state = model.apply(params, 1, method=model.init_encode_state)
      for f, pad in utt:
        out, _, state = step(params, f, pad, state)
      jax.block_until_ready(out)
    return time.perf_counter() - start

  one_pass()  # compiles (one chunk shape) and warms caches
  times = [one_pass() for _ in range(repeats)]
  return {"seconds": float(np.median(times)), "all": times, "frames": int(sum(len(u) for u in utterances)),
          "chunks": int(sum(len(c) for c in chunks))}


def subblock_flops(enc: cca_transformer.CCATransformerEncoder, frames: int) -> dict:
  """XLA FLOPs of one block's skippable work per call of ``frames`` encoder frames at batch 1,
  at every capacity of `frame_gates.capacity_buckets` (static capacities: the branch that runs).

  Returns ``{"capacities": (...), "mha": [...], "ffn": [...]}``: for the MHA, the query path
  only (queries, scores, weighted sum, output projection: the cost at capacity ``c`` minus the
  cost at 0, which is the key/value projections every frame pays).
  """
  d, key = enc.dim, jax.random.key(0)
  caps = frame_gates.capacity_buckets(frames, enc.capacity_steps)
  attention = chunked_attention.ChunkedSelfAttention(enc.heads, enc.chunk_size, enc.left_chunks, enc.max_relative)
  ffn = cca_transformer._FeedForward(enc.ff_mult)
  x, pads = jnp.ones((1, frames, d)), jnp.zeros((1, frames))
  state = attention.init_state(1, d)
  att_params, ffn_params = attention.init(key, x, pads, state), ffn.init(key, x)
  active = lambda c: jnp.asarray(np.arange(frames)[None] < c)

  def att_cost(c):  # y and the new cache: the key/value projections stay in the count at every capacity
    return compiled_flops(lambda p, x, a: attention.apply(p, x, pads, state, a, c), att_params, x, active(c))

  base = att_cost(0)
  return {"capacities": caps, "mha": [att_cost(c) - base for c in caps],
          "ffn": [compiled_flops(lambda p, x, a, c=c: ffn.apply(p, x, a, c), ffn_params, x, active(c)) for c in caps]}


def gate_trace(model, params, utterances, bucket: int = 256) -> list[dict]:
  """Hard gates of every block per utterance: ``[{"mha", "ffn": [L, T'], "energy": [T']}]``.

  Args:
    model: a `asrjax.models.transducer.Transducer` with a gated encoder.
    params: its parameters.
    utterances: ``[T_i, F]`` feature arrays.
    bucket: utterances are zero-padded to a multiple of this many frames (one compile per
      multiple; the gates are per frame, so padding changes none of them).

  The masked inference path gives the same gates as the compact one (the decisions come
  before any skipping). ``energy`` is the mean of the stacked input features per encoder
  frame, i.e. the frame's normalised log-mel level.
  """
  masked = model.clone(encoder=model.encoder.clone(inference="masked"))
  trace = jax.jit(lambda p, f, pad: masked.apply(p, f, pad, method=masked.encode, mutable=["intermediates"]))
  stack, out = model.encoder.stack, []
  for feats in utterances:
    n = len(feats)
    padded = np.zeros((-(-n // bucket) * bucket, feats.shape[1]), np.float32)
    padded[:n] = feats
    pads = (np.arange(len(padded)) >= n).astype(np.float32)
    (_, enc_pad, _), inter = trace(params, padded[None], pads[None])
    inter = inter["intermediates"]["encoder"]
    t = int(np.sum(np.asarray(enc_pad[0]) == 0))
    energy = feats[:t * stack].reshape(t, stack, -1).mean(axis=(1, 2))
    out.append({"mha": np.stack([np.asarray(g[0, :t]) for g in inter["gate_mha"]]),
                "ffn": np.stack([np.asarray(g[0, :t]) for g in inter["gate_ffn"]]), "energy": energy})
  return out
