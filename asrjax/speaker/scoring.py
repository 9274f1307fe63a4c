"""Trial scoring of speaker embeddings: cosine similarity and adaptive score normalisation.

Cosine scoring compares length-normalised embeddings: ``s(e, t) = <e, t> / (|e| |t|)``.
AS-norm (adaptive symmetric normalisation) standardises a raw score against each side's
closest impostors: with ``C`` cohort embeddings (here, the training speakers' mean
embeddings), ``S_e`` the cosine scores of the enrolment embedding against the cohort and
``mu_e``, ``sigma_e`` the mean and standard deviation of its ``top_n`` highest, and the
same for the test side::

  s_norm = 0.5 * ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t)

Only the most similar cohort members count, so a speaker who resembles many others
(a crowded accent) is held to a higher bar: the reason it helps across groups.

References:
  Matejka et al., "Analysis of score normalization in multilingual speaker recognition",
  Interspeech 2017 (adaptive s-norm; WeSpeaker's ``score_norm.sh`` uses it with top-N
  cohort selection).
  Cumani et al., "Comparison of speaker recognition approaches for real applications",
  Interspeech 2011 (the symmetric form).
"""

from __future__ import annotations

import numpy as np


def _matrix(name: str, x, dim: int | None = None) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or (dim is not None and x.shape[1] != dim) or x.shape[0] == 0:
    want = f"[N, {dim}]" if dim is not None else "[N, D], N >= 1"
    raise ValueError(f"{name} must be {want}; got {list(x.shape)}.")
  if not np.isfinite(x).all():
    raise ValueError(f"{name} holds non-finite values.")
  norms = np.linalg.norm(x, axis=1)
  if (norms == 0).any():
    raise ValueError(f"{name} holds {int((norms == 0).sum())} all-zero embeddings: cosine is undefined.")
  return x / norms[:, None]


def cosine_scores(enrol, test) -> np.ndarray:
  """``[N]`` cosine similarities of the rows of ``enrol [N, D]`` and ``test [N, D]``."""
  e = _matrix("enrol", enrol)
  t = _matrix("test", test, e.shape[1])
  if t.shape[0] != e.shape[0]:
    raise ValueError(f"enrol and test must have the same number of rows; got {e.shape[0]} and {t.shape[0]}.")
  return np.sum(e * t, axis=1)


def _top_stats(x: np.ndarray, cohort: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
  scores = x @ cohort.T  # [N, C]
  top = -np.sort(-scores, axis=1)[:, :top_n]
  return top.mean(axis=1), top.std(axis=1)


def as_norm(scores, enrol, test, cohort, *, top_n: int = 300) -> np.ndarray:
  """AS-norm of raw cosine ``scores [N]`` of trials ``enrol [N, D]`` vs ``test [N, D]``.

  Args:
    scores: the raw trial scores (`cosine_scores` of the same embeddings).
    enrol, test: the trials' embeddings.
    cohort: ``[C, D]`` impostor cohort (e.g. training speakers' mean embeddings).
    top_n: cohort members per side kept (the ``min(top_n, C)`` highest-scoring); >= 2.

  Raises:
    ValueError: shapes disagree, a value is not finite, or ``top_n`` < 2.
  """
  if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or top_n < 2:
    raise ValueError(f"top_n must be an integer >= 2 (a standard deviation needs two scores); got {top_n!r}.")
  e = _matrix("enrol", enrol)
  t = _matrix("test", test, e.shape[1])
  c = _matrix("cohort", cohort, e.shape[1])
  s = np.asarray(scores, np.float64)
  if s.shape != (e.shape[0],) or t.shape[0] != e.shape[0]:
    raise ValueError(f"scores [N], enrol [N, D] and test [N, D] must agree in N; got {list(s.shape)}, "
                     f"{list(e.shape)}, {list(t.shape)}.")
  n = min(int(top_n), c.shape[0])
  if n < 2:
    raise ValueError(f"the cohort needs at least 2 embeddings; got {c.shape[0]}.")
  mu_e, sd_e = _top_stats(e, c, n)
  mu_t, sd_t = _top_stats(t, c, n)
  eps = 1e-12  # a cohort whose top scores are all equal: the raw difference, not a division by zero
  return 0.5 * ((s - mu_e) / np.maximum(sd_e, eps) + (s - mu_t) / np.maximum(sd_t, eps))


__all__ = ["as_norm", "cosine_scores"]
