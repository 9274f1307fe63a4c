"""Speaker-embedding losses: additive angular margin softmax and a pairwise verification loss.

**AAM softmax** (ArcFace) classifies an embedding among ``C`` training speakers by the
cosine to each class's weight vector, with an angular margin ``m`` added to the true
class's angle and the cosines scaled by ``s``::

  logit_c = s * cos(theta_c)            for c != y
  logit_y = s * cos(theta_y + m)        (when theta_y + m <= pi; past it, the monotone
                                         continuation cos(theta_y) - m sin(m), as in
                                         ArcFace's and WeSpeaker's implementations)
  loss = -log softmax(logit)_y

**Pairwise loss**: every pair ``(i, j), i < j`` of a batch is a verification trial,
target when the two speakers agree; its score is ``a cos(e_i, e_j) + b`` (a learnt scale
``a > 0`` and offset ``b``, as in the generalised end-to-end loss) and its loss the
binary cross-entropy of that score against the pair's label, averaged with the pair
weights ``pair_weights [B, B]`` (ARW's PW: ``w_i + w_j``). A pair of the same utterance
(``i = j``) is not a trial.

References:
  Deng et al., "ArcFace: additive angular margin loss for deep face recognition", CVPR 2019.
  Xiang et al., "Margin matters: towards more discriminative deep neural network
  embeddings for speaker recognition", APSIPA 2019 (AAM for speakers).
  Wan et al., "Generalized end-to-end loss for speaker verification", ICASSP 2018 (the
  learnt scale and offset of a cosine score).
  Jin et al., "Adversarial reweighting for speaker verification fairness", Interspeech
  2022 (the pairwise weight ``w_i + w_j``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _normalise(x: jax.Array) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


def cosine_logits(embeddings: jax.Array, class_weights: jax.Array) -> jax.Array:
  """``[B, C]`` cosines between ``embeddings [B, D]`` and ``class_weights [C, D]``."""
  return _normalise(embeddings) @ _normalise(class_weights).T


def aam_softmax(embeddings: jax.Array, class_weights: jax.Array, labels: jax.Array, *, margin: float = 0.2,
                scale: float = 32.0) -> jax.Array:
  """Per-example AAM-softmax loss ``[B]`` of ``embeddings [B, D]`` against ``class_weights [C, D]``.

  Args:
    embeddings: speaker embeddings (any norm; the loss normalises them).
    class_weights: one vector per training speaker.
    labels: ``[B]`` int speaker indices in ``[0, C)``.
    margin: the additive angle ``m`` in radians (0: normalised softmax), in ``[0, pi/2)``.
    scale: the logit scale ``s`` > 0.

  Raises:
    ValueError: shapes disagree or ``margin`` / ``scale`` are out of range.
  """
  if embeddings.ndim != 2 or class_weights.ndim != 2 or class_weights.shape[1] != embeddings.shape[1]:
    raise ValueError(f"embeddings must be [B, D] and class_weights [C, D]; got {list(embeddings.shape)} and "
                     f"{list(class_weights.shape)}.")
  if labels.shape != embeddings.shape[:1] or not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(f"labels must be [B] integers; got {list(labels.shape)} {labels.dtype}.")
  if not 0.0 <= margin < math.pi / 2 or not scale > 0:
    raise ValueError(f"need 0 <= margin < pi/2 and scale > 0; got margin={margin}, scale={scale}.")
  cos = cosine_logits(embeddings, class_weights)
  one_hot = jax.nn.one_hot(labels, class_weights.shape[0], dtype=cos.dtype)
  cos_y = jnp.sum(cos * one_hot, axis=1)
  sin_y = jnp.sqrt(jnp.clip(1.0 - cos_y * cos_y, 1e-12, 1.0))
  shifted = cos_y * math.cos(margin) - sin_y * math.sin(margin)  # cos(theta + m)
  # past theta = pi - m, cos(theta + m) would rise again: continue monotonically instead
  shifted = jnp.where(cos_y > math.cos(math.pi - margin), shifted, cos_y - margin * math.sin(margin))
  logits = scale * (cos + one_hot * (shifted - cos_y)[:, None])
  return -jnp.sum(jax.nn.log_softmax(logits, axis=1) * one_hot, axis=1)


def pair_weights(sample_weights: jax.Array) -> jax.Array:
  """``[B, B]`` ARW pair weights ``w_i + w_j`` of ``sample_weights [B]`` (the paper's PW)."""
  return sample_weights[:, None] + sample_weights[None, :]


def pairwise_loss(embeddings: jax.Array, speakers: jax.Array, *, scale: jax.Array, offset: jax.Array,
                  weights: jax.Array | None = None) -> jax.Array:
  """Weighted mean binary cross-entropy over the batch's pairs ``i < j`` (a scalar).

  Args:
    embeddings: ``[B, D]``.
    speakers: ``[B]`` int speaker ids (equal ids: a target pair).
    scale, offset: the score's learnt ``a`` (> 0, e.g. a softplus) and ``b``.
    weights: ``[B, B]`` pair weights (symmetric; `pair_weights`), default all 1.

  Raises:
    ValueError: shapes disagree or the batch has fewer than 2 examples.
  """
  b = embeddings.shape[0]
  if embeddings.ndim != 2 or speakers.shape != (b,) or b < 2:
    raise ValueError(f"embeddings must be [B, D] with B >= 2 and speakers [B]; got {list(embeddings.shape)} and "
                     f"{list(speakers.shape)}.")
  if weights is not None and weights.shape != (b, b):
    raise ValueError(f"weights must be [B, B] = [{b}, {b}]; got {list(weights.shape)}.")
  e = _normalise(embeddings)
  logits = scale * (e @ e.T) + offset
  target = (speakers[:, None] == speakers[None, :]).astype(logits.dtype)
  bce = jnp.logaddexp(0.0, logits) - target * logits  # -[y log sigma(z) + (1 - y) log(1 - sigma(z))]
  upper = jnp.triu(jnp.ones((b, b), logits.dtype), k=1)
  w = upper if weights is None else upper * weights
  return jnp.sum(w * bce) / jnp.maximum(jnp.sum(w), 1e-12)


__all__ = ["aam_softmax", "cosine_logits", "pair_weights", "pairwise_loss"]
