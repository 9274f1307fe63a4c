"""ECAPA-TDNN speaker-embedding extractor (a lite configuration), padding-exact.

``[B, T, F]`` log-mel features with ``paddings [B, T]`` -> ``[B, D]`` embeddings::

  Conv1D(k=5) -> ReLU -> norm
  -> SE-Res2Block(k=3, dilation 2) -> SE-Res2Block(dilation 3) -> SE-Res2Block(dilation 4)
  -> concatenate the three blocks' outputs (multi-layer feature aggregation) -> Conv1D(1x1) -> ReLU
  -> attentive statistics pooling (channel-wise attention with global context) -> [B, 2 C']
  -> norm -> Dense(D)

An SE-Res2Block is ``x + SE(Conv1x1(Res2(Conv1x1(x))))``: the Res2 stage splits the
channels into ``scale`` groups, each (but the first) convolved after adding the previous
group's output, so one block sees several receptive fields.

Two departures from the paper, for exact padding behaviour: LayerNorm over channels per
frame instead of BatchNorm (no statistics shared across the batch, so an utterance's
embedding does not depend on what it is batched with, and training and inference
normalise alike), and every convolution input zeroed at padded frames, every mean,
standard deviation and softmax over time restricted to valid frames. An utterance in a
padded batch therefore gets the embedding it gets alone (tested).

References:
  Desplanques et al., "ECAPA-TDNN: Emphasized channel attention, propagation and
  aggregation in TDNN based speaker verification", Interspeech 2020.
  Gao et al., "Res2Net: a new multi-scale backbone architecture", TPAMI 2019.
  Okabe et al., "Attentive statistics pooling for deep speaker embedding", Interspeech 2018.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def _masked(x: jax.Array, valid: jax.Array) -> jax.Array:
  return jnp.where(valid[..., None], x, 0.0)


def _masked_mean_std(x: jax.Array, weights: jax.Array, eps: float = 1e-5) -> tuple[jax.Array, jax.Array]:
  """Weighted mean and std over time of ``x [B, T, C]``; ``weights [B, T, C or 1]`` sum to 1 over T."""
  mean = jnp.sum(weights * x, axis=1)
  var = jnp.sum(weights * (x - mean[:, None]) ** 2, axis=1)
  return mean, jnp.sqrt(jnp.maximum(var, eps))


class _Conv(nn.Module):
  """Conv1D over time on valid frames only (inputs zeroed at padding), ReLU, LayerNorm."""

  features: int
  kernel: int = 1
  dilation: int = 1

  @nn.compact
  def __call__(self, x, valid):
    h = nn.Conv(self.features, (self.kernel,), kernel_dilation=(self.dilation,), padding="SAME")(_masked(x, valid))
    return _masked(nn.LayerNorm()(nn.relu(h)), valid)


class _SEBlock(nn.Module):
  """Squeeze (mean over valid frames) and excite (two dense layers, sigmoid) channels."""

  bottleneck: int

  @nn.compact
  def __call__(self, x, valid):
    w = valid[..., None] / jnp.maximum(jnp.sum(valid, axis=1, keepdims=True), 1)[..., None]
    s = jnp.sum(w * x, axis=1)
    s = nn.sigmoid(nn.Dense(x.shape[-1])(nn.relu(nn.Dense(self.bottleneck)(s))))
    return x * s[:, None]


class _SERes2Block(nn.Module):
  channels: int
  kernel: int
  dilation: int
  scale: int
  se_bottleneck: int

  @nn.compact
  def __call__(self, x, valid):
    h = _Conv(self.channels, name="in")(x, valid)
    groups = jnp.split(h, self.scale, axis=-1)
    out, prev = [groups[0]], None
    for i in range(1, self.scale):
      g = groups[i] if prev is None else groups[i] + prev
      prev = _Conv(self.channels // self.scale, self.kernel, self.dilation, name=f"res2_{i}")(g, valid)
      out.append(prev)
    h = _Conv(self.channels, name="out")(jnp.concatenate(out, axis=-1), valid)
    return _masked(x + _SEBlock(self.se_bottleneck, name="se")(h, valid), valid)


class _AttentiveStatsPool(nn.Module):
  """Channel-wise attention over valid frames, with the utterance's mean and std as context."""

  attention: int

  @nn.compact
  def __call__(self, x, valid):
    n = jnp.maximum(jnp.sum(valid, axis=1), 1)[:, None, None]
    mean, std = _masked_mean_std(x, valid[..., None] / n)
    context = jnp.concatenate([x, jnp.broadcast_to(mean[:, None], x.shape), jnp.broadcast_to(std[:, None], x.shape)],
                              axis=-1)
    a = nn.Dense(x.shape[-1], name="score")(jnp.tanh(nn.Dense(self.attention, name="hidden")(context)))
    a = jnp.where(valid[..., None], a, -jnp.inf)
    a = jax.nn.softmax(a, axis=1)  # [B, T, C]: weights over time per channel
    mean, std = _masked_mean_std(x, a)
    return jnp.concatenate([mean, std], axis=-1)


class ECAPATDNN(nn.Module):
  """``(feats [B, T, F], paddings [B, T]) -> embeddings [B, embed_dim]``.

  Attributes:
    channels: width C of the convolution blocks (the paper: 512 or 1024).
    scale: Res2 groups per block (C must be a multiple).
    dilations: one SE-Res2Block per entry.
    kernel: kernel size of the Res2 convolutions.
    aggregate: width of the multi-layer aggregation conv (the paper: 1536 = 3 C).
    se_bottleneck / attention: hidden sizes of the SE and the pooling attention.
    embed_dim: embedding size D (the paper: 192).
  """

  channels: int = 128
  scale: int = 4
  dilations: tuple = (2, 3, 4)
  kernel: int = 3
  aggregate: int = 384
  se_bottleneck: int = 64
  attention: int = 64
  embed_dim: int = 128

  @nn.compact
  def __call__(self, feats: jax.Array, paddings: jax.Array) -> jax.Array:
    if feats.ndim != 3 or paddings.shape != feats.shape[:2]:
      raise ValueError(f"feats must be [B, T, F] and paddings [B, T]; got {list(feats.shape)} and "
                       f"{list(paddings.shape)}.")
    if self.channels % self.scale:
      raise ValueError(f"ECAPATDNN.channels ({self.channels}) must be a multiple of scale ({self.scale}).")
    valid = paddings == 0
    x = _Conv(self.channels, 5, name="stem")(feats, valid)
    outs = []
    for i, d in enumerate(self.dilations):
      x = _SERes2Block(self.channels, self.kernel, d, self.scale, self.se_bottleneck, name=f"block_{i}")(x, valid)
      outs.append(x)
    x = _Conv(self.aggregate, name="aggregate")(jnp.concatenate(outs, axis=-1), valid)
    pooled = _AttentiveStatsPool(self.attention, name="pool")(x, valid)
    return nn.Dense(self.embed_dim, name="embed")(nn.LayerNorm(name="pool_norm")(pooled))


__all__ = ["ECAPATDNN"]
