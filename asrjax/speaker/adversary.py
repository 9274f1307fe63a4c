"""The ARW adversary: a per-sample weight from the sample's embedding and its k-means cluster.

The adversary reads a training sample's embedding (gradient stopped: it judges the
extractor, it does not shape it) and/or the one-hot of its k-means cluster, and scores
it; the scores become weights normalised as adversarially reweighted learning (ARL)
does::

  w_i = 1 + n * sigmoid(a_i) / sum_j sigmoid(a_j)         (n = batch size; mean w = 2)

so no sample's weight falls below 1 and the adversary can only shift emphasis. The
extractor minimises the weighted loss, the adversary maximises it: it learns to up-weight
the samples (regions of embedding space, clusters) where the extractor does worst, which
is where under-served groups lie, without being told the groups.

References:
  Lahoti et al., "Fairness without demographics through adversarially reweighted
  learning", NeurIPS 2020 (the weight normalisation; google-research
  ``group_agnostic_fairness``).
  Jin et al., "Adversarial reweighting for speaker verification fairness", Interspeech 2022.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

INPUTS = ("embedding_and_cluster", "embedding", "cluster")


def normalised_weights(scores: jax.Array, valid: jax.Array | None = None) -> jax.Array:
  """``[B]`` ARL weights ``1 + n sigmoid(a) / sum sigmoid(a)`` of adversary ``scores [B]``
  (``valid [B]``: rows that count; others get weight 0 and are not in ``n``)."""
  s = jax.nn.sigmoid(scores)
  v = jnp.ones_like(s) if valid is None else valid.astype(s.dtype)
  n = jnp.sum(v)
  return v * (1.0 + n * s / jnp.maximum(jnp.sum(v * s), 1e-12))


class Adversary(nn.Module):
  """``(embeddings [B, D], clusters [B] int) -> scores [B]`` (one hidden layer).

  Attributes:
    num_clusters: k of the k-means clustering (the one-hot's width).
    hidden: hidden units.
    inputs: what the adversary reads, one of `INPUTS`.
  """

  num_clusters: int
  hidden: int = 64
  inputs: str = "embedding_and_cluster"

  @nn.compact
  def __call__(self, embeddings: jax.Array, clusters: jax.Array) -> jax.Array:
    if self.inputs not in INPUTS:
      raise ValueError(f"Adversary.inputs must be one of {INPUTS}; got {self.inputs!r}.")
    parts = []
    if self.inputs != "cluster":
      e = jax.lax.stop_gradient(embeddings)
      parts.append(e * jax.lax.rsqrt(jnp.maximum(jnp.sum(e * e, -1, keepdims=True), 1e-12)))
    if self.inputs != "embedding":
      parts.append(jax.nn.one_hot(clusters, self.num_clusters, dtype=embeddings.dtype))
    h = nn.relu(nn.Dense(self.hidden, name="hidden")(jnp.concatenate(parts, axis=-1)))
    return nn.Dense(1, name="score")(h)[:, 0]


__all__ = ["Adversary", "INPUTS", "normalised_weights"]
