"""Compute-cost-amortized streaming Transformer encoder: per-frame arbitrators that skip sub-blocks.

A pre-LayerNorm Transformer (Vaswani et al., 2017) on stacked frames, streaming: each
block is ``x + g_mha * MHA(LN(x))`` then ``x + g_ffn * FFN(LN(x))``, with chunk-wise
causal attention over a bounded left context and a learned relative-position bias
(`asrjax.nn.chunked_attention`), then a final LayerNorm and projection. Per block an
**arbitrator** (one linear layer, ``2 x in`` multiply-adds per frame: ~0.2% of a
block) reads the frame's acoustic features (the input projection), the block input
(after its LayerNorm) or both, and gives two logits per frame: does the MHA run, does
the FFN run. A gate that is off makes that sub-block output zero for that frame and
the residual carries the input through (Xie et al., 2022). Per frame only, so the
decision for frame ``t`` uses nothing after ``t`` and streaming stays exact.

Training (a ``"dropout"`` rng is given, as the transducer objective does): gates from
`asrjax.nn.frame_gates.gate` (``estimator``), sub-blocks computed for every frame and
multiplied by their gate (the gradient needs both branches). The model sows, into
``"losses"``, the **compute term** ``compute``: the expected gated FLOPs, ``sum_l (p_mha
F_mha + p_ffn F_ffn)`` with ``p = sigmoid(logit)`` the probability that a gate is on,
divided by the dense model's ``sum_l (F_mha + F_ffn)`` and summed over an utterance's
valid frames (units of "dense frames", normalised like the RNN-T loss: per utterance,
mean over the batch); the task weighs it with ``train.loss_weights = {"encoder/compute":
lambda}``. Logged with it: ``compute_fraction`` (the gated FLOPs the hard gates used, of
the dense model's), ``gate_mha`` and ``gate_ffn`` (fraction of frames on).

Inference (no rng): hard gates ``logit > 0``; with ``inference="compact"`` the skipped
frames are not computed (`frame_gates.compact_rows`: the MHA computes queries only for
active frames, against keys and values projected for every frame; the FFN runs on a
buffer of the active frames of the whole batch), with ``"masked"`` everything is
computed and multiplied (the training path, the reference in tests).

Baselines in the same module (same parameters, so runs initialise from one another):
``gating="none"`` is the dense Transformer (the arbitrators exist but are not run);
``left_chunks`` smaller is sliding-window attention; ``layerdrop = p`` drops each block
for a whole utterance with probability ``p`` in training (Fan et al., 2020) and
``layers_to_keep`` prunes blocks statically at inference (fairseq's
``--encoder-layers-to-keep``).

Streaming: ``init_state(batch)`` and ``__call__(feats, paddings, state)``; chunks fed in
must be multiples of ``stack * chunk_size`` input frames.

References:
  Xie et al., "Compute cost amortized Transformer for streaming ASR", Interspeech 2022.
  Vaswani et al., "Attention is all you need", NeurIPS 2017.
  Fan et al., "Reducing Transformer depth on demand with structured dropout", ICLR 2020.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from asrjax.nn import chunked_attention, frame_gates, frame_stack

GATINGS = ("none", "arbitrator")
ARBITRATOR_INPUTS = ("features", "block", "both")
INFERENCE = ("compact", "masked")


def flops_per_frame(enc: "CCATransformerEncoder", num_features: int = 80) -> dict:
  """FLOPs (2 per multiply-add) per encoder frame: ``{"mha", "ffn"}`` of one block's gated
  work, ``"fixed"`` of everything run regardless of gates (whole encoder), ``"dense"`` of the
  whole dense encoder.

  * ``mha`` (skippable): query and output projections ``2 * 2 D^2``, scores and weighted sum
    ``2 * 2 K D`` with ``K = context + (chunk_size + 1) / 2`` the mean keys a query sees.
  * ``ffn``: ``2 * 2 D * ff_mult D``.
  * ``fixed``: input projection ``2 * stack F * D``, per block the key/value projections
    ``2 * 2 D^2`` and the arbitrator ``2 * 2 * in`` (with ``gating="arbitrator"``), the output
    projection ``2 * D * output_dim``. Layer norms, softmax and biases are not counted.
  """
  d, layers = enc.dim, enc.layers
  keys = enc.chunk_size * enc.left_chunks + (enc.chunk_size + 1) / 2
  mha = 2 * 2 * d * d + 2 * 2 * keys * d
  ffn = 2 * 2 * d * enc.ff_mult * d
  arb_in = {"features": d, "block": d, "both": 2 * d}[enc.arbitrator_input]
  per_block = 2 * 2 * d * d + (2 * 2 * arb_in if enc.gating == "arbitrator" else 0)
  fixed = 2 * enc.stack * num_features * d + layers * per_block + 2 * d * enc.output_dim
  return {"mha": mha, "ffn": ffn, "fixed": fixed, "dense": fixed + layers * (mha + ffn)}


class _FeedForward(nn.Module):
  """``[B, T, D] -> [B, T, D]``; with ``active [B, T]`` only those frames are computed (the
  batch's active frames in one buffer, `frame_gates.compact_frames`; ``capacity``: one
  static buffer size), the others are 0."""

  mult: int
  capacity_steps: int = 8

  @nn.compact
  def __call__(self, x, active=None, capacity: int | None = None):
    d = x.shape[-1]

    def ffn(z):
      return nn.Dense(d, name="down")(nn.relu(nn.Dense(d * self.mult, name="up")(nn.LayerNorm(name="norm")(z))))

    if active is None or self.is_initializing():
      return ffn(x)
    caps = frame_gates.capacity_buckets(active.size, self.capacity_steps) if capacity is None else capacity
    return frame_gates.compact_frames(self, lambda mdl, z: ffn(z), x, active, caps)


class _Block(nn.Module):
  """One block; returns ``(x, state, (gate_mha, gate_ffn), (p_mha, p_ffn))`` (``[B, T]`` each)."""

  heads: int
  ff_mult: int
  chunk_size: int
  left_chunks: int
  max_relative: int
  gating: str
  estimator: str
  temperature: float
  arbitrator_input: str
  gate_bias_init: float
  inference: str
  capacity_steps: int

  @nn.compact
  def __call__(self, x, x0, pad, state, override, keep, train: bool):
    b, t, _ = x.shape
    valid = pad == 0
    h = nn.LayerNorm(name="mha_norm")(x)
    arbitrate = self.gating == "arbitrator" and override is None
    ones = jnp.ones((b, t), x.dtype)
    gates, probs = (ones, ones), (ones, ones)
    if arbitrate or self.is_initializing():  # the dense model has the parameters too (same trees)
      arb_in = {"features": x0, "block": h, "both": jnp.concatenate([x0, h], -1)}[self.arbitrator_input]
      logits = nn.Dense(2, name="arbitrator", kernel_init=nn.initializers.normal(0.01),
                        bias_init=nn.initializers.constant(self.gate_bias_init))(arb_in)  # [B, T, 2]
      if arbitrate:
        key = self.make_rng("dropout") if train else None
        g = frame_gates.gate(logits, key, self.estimator, self.temperature)
        gates, probs = (g[..., 0], g[..., 1]), (jax.nn.sigmoid(logits[..., 0]), jax.nn.sigmoid(logits[..., 1]))
    if override is not None:
      gates = probs = override
    if keep is not None:  # LayerDrop: [B] blocks kept per utterance
      gates = probs = (gates[0] * keep[:, None], gates[1] * keep[:, None])
    gated = arbitrate or override is not None or keep is not None
    compact = gated and not train and self.inference == "compact" and not self.is_initializing()
    attention = chunked_attention.ChunkedSelfAttention(self.heads, self.chunk_size, self.left_chunks,
                                                       self.max_relative, name="mhsa")
    ffn = _FeedForward(self.ff_mult, self.capacity_steps, name="ffn")
    if compact:
      on = lambda g: (g > 0) & valid
      caps = frame_gates.capacity_buckets(t, self.capacity_steps)
      y, state = attention(h, pad, state, active=on(gates[0]), capacities=caps)
      x = x + y
      x = x + ffn(x, on(gates[1]))
      return x, state, gates, probs
    y, state = attention(h, pad, state)
    x = x + (gates[0][..., None] * y if gated else y)
    y = ffn(x)
    x = x + (gates[1][..., None] * y if gated else y)
    return x, state, gates, probs


def _check_gates(gates, shape: tuple) -> None:
  """``gates`` must be ``{"mha": [L, B, T'], "ffn": [L, B, T']}`` (T' = frames after stacking)."""
  if not isinstance(gates, dict) or set(gates) != {"mha", "ffn"}:
    raise ValueError(f"gates must be a dict with exactly the keys 'mha' and 'ffn'; got "
                     f"{sorted(gates) if isinstance(gates, dict) else type(gates).__name__}.")
  for name in ("mha", "ffn"):
    got = tuple(getattr(gates[name], "shape", ()))
    if got != shape:
      raise ValueError(f"gates[{name!r}] must be [layers, B, T'] = {list(shape)} (T' = frames after stacking); "
                       f"got {list(got)}.")


class CCATransformerEncoder(chunked_attention.ChunkedStreaming, nn.Module):
  """``[B, T, F]`` log-mel -> ``[B, T // stack, output_dim]``.

  Attributes:
    stack: input frames stacked per encoder frame.
    dim / heads / ff_mult / layers: Transformer body.
    chunk_size: attention chunk in encoder frames (1 = causal, no look-ahead).
    left_chunks: chunks of attention history (fewer: sliding-window attention).
    max_relative: entries of the relative-position bias (keep it fixed across window sizes:
      the parameters stay the same).
    output_dim: encoder output size.
    gating: ``"arbitrator"`` (gated) or ``"none"`` (dense).
    estimator / temperature: the training gate (`asrjax.nn.frame_gates.gate`).
    arbitrator_input: ``"features"`` (input projection), ``"block"`` (block input) or ``"both"``.
    gate_bias_init: initial arbitrator bias (positive: gates start on, ``sigmoid(3) = 0.95``).
    layerdrop: probability of dropping a block per utterance in training.
    layers_to_keep: blocks run at inference (empty: all); static pruning.
    inference: ``"compact"`` (skipped frames not computed) or ``"masked"``.
    capacity_steps: compaction buffers are ``k / capacity_steps`` of the frames (`capacity_buckets`).
    num_features: input feature size (for `flops_per_frame`).
  """

  stack: int = 4
  dim: int = 144
  heads: int = 4
  ff_mult: int = 4
  layers: int = 6
  chunk_size: int = 1
  left_chunks: int = 64
  max_relative: int = 65
  output_dim: int = 256
  gating: str = "arbitrator"
  estimator: str = "gumbel_st"
  temperature: float = 1.0
  arbitrator_input: str = "both"
  gate_bias_init: float = 3.0
  layerdrop: float = 0.0
  layers_to_keep: tuple = ()
  inference: str = "compact"
  capacity_steps: int = 8
  num_features: int = 80

  def init_state(self, batch: int) -> list:
    return [{"attention": self.attention_state(batch)} for _ in range(self.layers)]

  def _check(self):
    for name, value, allowed in (("gating", self.gating, GATINGS), ("estimator", self.estimator, frame_gates.ESTIMATORS),
                                 ("arbitrator_input", self.arbitrator_input, ARBITRATOR_INPUTS),
                                 ("inference", self.inference, INFERENCE)):
      if value not in allowed:
        raise ValueError(f"CCATransformerEncoder.{name} must be one of {allowed}; got {value!r}.")
    if not 0.0 <= self.layerdrop < 1.0:
      raise ValueError(f"CCATransformerEncoder.layerdrop must be in [0, 1); got {self.layerdrop!r}.")
    bad = [i for i in self.layers_to_keep if not 0 <= i < self.layers]
    if bad or len(set(self.layers_to_keep)) != len(self.layers_to_keep):
      raise ValueError(f"CCATransformerEncoder.layers_to_keep must be distinct block indices in [0, {self.layers}); "
                       f"got {tuple(self.layers_to_keep)}.")
    if self.capacity_steps < 1:
      raise ValueError(f"CCATransformerEncoder.capacity_steps must be >= 1; got {self.capacity_steps!r}.")

  @nn.compact
  def __call__(self, feats: jax.Array, paddings: jax.Array, state: list, gates: dict | None = None):
    """Returns ``(enc [B, T', D], enc_paddings [B, T'], state)``.

    ``gates`` (tests, analysis) overrides the arbitrators: ``{"mha": [L, B, T'], "ffn":
    [L, B, T']}`` of 0/1. Gate values per block are sown into ``"intermediates"``
    (``gate_mha``, ``gate_ffn``) when that collection is mutable.
    """
    self._check()
    train = self.has_rng("dropout")
    x, pad = frame_stack.stack_frames(feats, paddings, self.stack)
    x = jnp.where(pad[..., None] > 0, 0.0, nn.Dense(self.dim, name="input_proj")(x))
    x0 = x
    b, t = pad.shape
    if gates is not None:
      _check_gates(gates, (self.layers, b, t))
    keep_all = jnp.ones((b, self.layers), x.dtype)
    if train and self.layerdrop > 0:
      keep_all = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - self.layerdrop, (b, self.layers)).astype(x.dtype)
    kept = set(self.layers_to_keep) if self.layers_to_keep else set(range(self.layers))
    valid = (pad == 0).astype(x.dtype)
    flops = flops_per_frame(self, self.num_features)
    expected, used = jnp.zeros((b,), x.dtype), jnp.zeros((b,), x.dtype)
    on_mha, on_ffn = jnp.zeros((), x.dtype), jnp.zeros((), x.dtype)
    new_state = []
    for i in range(self.layers):
      if i not in kept and not self.is_initializing():
        new_state.append(state[i])
        continue
      override = None if gates is None else (gates["mha"][i].astype(x.dtype), gates["ffn"][i].astype(x.dtype))
      keep = keep_all[:, i] if train and self.layerdrop > 0 else None
      x, s, (g_mha, g_ffn), (p_mha, p_ffn) = _Block(
          self.heads, self.ff_mult, self.chunk_size, self.left_chunks, self.max_relative, self.gating,
          self.estimator, self.temperature, self.arbitrator_input, self.gate_bias_init, self.inference,
          self.capacity_steps, name=f"block_{i}")(x, x0, pad, state[i]["attention"], override, keep, train)
      new_state.append({"attention": s})
      self.sow("intermediates", "gate_mha", g_mha)
      self.sow("intermediates", "gate_ffn", g_ffn)
      expected = expected + jnp.sum(valid * (p_mha * flops["mha"] + p_ffn * flops["ffn"]), axis=1)
      hard_mha, hard_ffn = (g_mha > 0.5).astype(x.dtype), (g_ffn > 0.5).astype(x.dtype)
      used = used + jnp.sum(valid * (hard_mha * flops["mha"] + hard_ffn * flops["ffn"]), axis=1)
      on_mha, on_ffn = on_mha + jnp.sum(valid * hard_mha), on_ffn + jnp.sum(valid * hard_ffn)
    dense = self.layers * (flops["mha"] + flops["ffn"])
    frames = jnp.maximum(jnp.sum(valid), 1.0)
    self.sow("losses", "compute", jnp.mean(expected) / dense)
    self.sow("losses", "compute_fraction", jnp.sum(used) / (dense * frames))
    self.sow("losses", "gate_mha", on_mha / (self.layers * frames))
    self.sow("losses", "gate_ffn", on_ffn / (self.layers * frames))
    x = nn.LayerNorm(name="out_norm")(x)
    out = nn.Dense(self.output_dim, name="output_proj")(x)
    return jnp.where(pad[..., None] > 0, 0.0, out), pad, new_state
