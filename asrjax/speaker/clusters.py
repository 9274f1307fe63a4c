"""k-means clusters of speaker embeddings: the ARW adversary's unsupervised groups.

The paper clusters utterance embeddings of the baseline extractor with k-means and gives
the adversary each sample's cluster (one-hot): groups found without demographic labels.
Clustering uses scikit-learn's `KMeans` on length-normalised embeddings (cosine geometry).

References:
  Jin et al., "Adversarial reweighting for speaker verification fairness", Interspeech 2022.
  Lloyd, "Least squares quantization in PCM", 1982; Arthur and Vassilvitskii,
  "k-means++", SODA 2007 (scikit-learn's initialisation).
"""

from __future__ import annotations

import json

import numpy as np

from asrjax import atomic_file


def kmeans_clusters(embeddings, k: int, *, seed: int) -> np.ndarray:
  """``[N]`` int cluster of each row of ``embeddings [N, D]`` (length-normalised first).

  Raises:
    ValueError: fewer rows than ``k``, ``k`` < 1, or non-finite embeddings.
  """
  from sklearn.cluster import KMeans  # noqa: PLC0415 -- scikit-learn loads slowly; only ARW needs it

  x = np.asarray(embeddings, np.float64)
  if x.ndim != 2 or not np.isfinite(x).all():
    raise ValueError(f"embeddings must be a finite [N, D] array; got shape {list(x.shape)}.")
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= x.shape[0]:
    raise ValueError(f"k must be an integer in [1, N = {x.shape[0]}]; got {k!r}.")
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  return KMeans(n_clusters=int(k), n_init=10, random_state=seed).fit_predict(x).astype(np.int32)


def write_clusters(path: str, clusters: np.ndarray, **info) -> None:
  """Writes ``{"clusters": [...], **info}`` (the file `asrjax.tasks.speaker_verification` reads)."""
  with atomic_file.open(path) as f:
    json.dump({"clusters": np.asarray(clusters).astype(int).tolist(), **info}, f)


__all__ = ["kmeans_clusters", "write_clusters"]
