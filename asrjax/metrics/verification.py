"""Speaker-verification metrics: miss / false-alarm rates, EER, minDCF, per group, with a speaker bootstrap.

A trial compares two utterances; ``labels[i] == 1`` when they are of the same speaker
(a *target* trial), 0 otherwise. A system accepts a trial when its score is at or
above a threshold. At threshold ``theta``::

  P_miss(theta) = sum_{target i, s_i < theta} w_i / sum_{target i} w_i
  P_fa(theta)   = sum_{non-target i, s_i >= theta} w_i / sum_{non-target i} w_i

evaluated (the NIST way, as in Kaldi's ``compute-eer`` and WeSpeaker's
``score_metrics.py``) at every distinct score and above the highest, from one sort and
two cumulative sums: O(N log N) time and O(N) memory, so millions of trials fit. Tied
scores move together (one operating point per distinct score, as scikit-learn's
``roc_curve``; a per-trial sweep would invent points between equal scores).

* **EER**: where the DET polyline (the operating points joined by straight lines) crosses
  ``P_miss = P_fa``, by linear interpolation between the last point with ``P_miss < P_fa``
  and the first with ``P_miss >= P_fa``.
* **minDCF**: ``min_theta (C_miss P_miss p_t + C_fa P_fa (1 - p_t)) / min(C_miss p_t,
  C_fa (1 - p_t))``, the NIST SRE normalised detection cost (default p_t = 0.01,
  C_miss = C_fa = 1).

Weights (>= 0) make a trial count ``w_i`` times; the speaker bootstrap uses them: a
resample draws speakers with replacement and a trial between speakers drawn ``c_a`` and
``c_b`` times counts ``c_a * c_b`` times (trials of one speaker are not independent).

References:
  NIST, "The NIST year 2010 speaker recognition evaluation plan" (the detection cost).
  van Leeuwen and Brümmer, "An introduction to application-independent evaluation of
  speaker recognition systems", 2007 (DET curve, EER).
  Jin et al., "Adversarial reweighting for speaker verification fairness", Interspeech
  2022 (EER per gender and nationality, the gap and the spread across groups).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class OperatingPoints:
  """The DET curve: ``thresholds [K+1]`` ascending (the distinct scores, then +inf), and at
  each the weighted ``p_miss [K+1]`` (non-decreasing, 0 to 1) and ``p_fa [K+1]`` (1 to 0)."""

  thresholds: np.ndarray
  p_miss: np.ndarray
  p_fa: np.ndarray


def _check(scores, labels, weights=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  scores, labels = np.asarray(scores), np.asarray(labels)
  if scores.ndim != 1 or labels.shape != scores.shape:
    raise ValueError(f"scores and labels must both be [N]; got {list(scores.shape)} and {list(labels.shape)}.")
  if scores.size == 0:
    raise ValueError("no trials: scores is empty.")
  if not np.issubdtype(scores.dtype, np.number) or not np.isfinite(scores).all():
    raise ValueError(f"scores must be finite numbers; {int(np.sum(~np.isfinite(scores.astype(float))))} are not."
                     if np.issubdtype(scores.dtype, np.number) else f"scores must be numbers; got {scores.dtype}.")
  if not np.isin(labels, (0, 1)).all() or labels.dtype == object:
    raise ValueError(f"labels must be 0 (different speakers) or 1 (same speaker); got values "
                     f"{np.unique(labels)[:5].tolist()}.")
  w = np.ones(scores.shape) if weights is None else np.asarray(weights, np.float64)
  if w.shape != scores.shape or not np.isfinite(w).all() or (w < 0).any():
    raise ValueError(f"weights must be [N] finite and >= 0; got shape {list(w.shape)}.")
  labels = labels.astype(bool)
  if not (w[labels] > 0).any() or not (w[~labels] > 0).any():
    raise ValueError(f"both target and non-target trials are needed (with weight > 0); got "
                     f"{int(labels.sum())} target and {int((~labels).sum())} non-target trials.")
  return scores.astype(np.float64), labels, w


class _Sorted:
  """One sort of the scores, reused for any weighting (the bootstrap's draws)."""

  def __init__(self, scores, labels):
    order = np.argsort(scores, kind="stable")
    self.labels = labels[order]
    self.order = order
    uniq, first = np.unique(scores[order], return_index=True)
    self.thresholds = np.concatenate([uniq, [np.inf]])
    self.cut = np.concatenate([first, [len(scores)]])  # items rejected at threshold k: the first cut[k]

  def points(self, weights) -> OperatingPoints:
    w = weights[self.order]
    tgt = np.concatenate([[0.0], np.cumsum(np.where(self.labels, w, 0.0))])
    non = np.concatenate([[0.0], np.cumsum(np.where(self.labels, 0.0, w))])
    p_miss = tgt[self.cut] / tgt[-1]
    p_fa = 1.0 - non[self.cut] / non[-1]
    return OperatingPoints(self.thresholds, p_miss, p_fa)


def operating_points(scores, labels, weights=None) -> OperatingPoints:
  """The DET curve's operating points of ``scores [N]`` (higher = same speaker), ``labels [N]`` (0/1).

  Raises:
    ValueError: shapes differ, scores are not finite, a label is not 0/1, a weight is
      negative, or a class (target / non-target) has no trial.
  """
  scores, labels, w = _check(scores, labels, weights)
  return _Sorted(scores, labels).points(w)


def eer_of(points: OperatingPoints) -> float:
  """Equal error rate of a DET curve (fraction, 0-1): the interpolated ``P_miss = P_fa`` crossing."""
  diff = points.p_miss - points.p_fa  # -1 at the lowest threshold, +1 above the highest
  b = int(np.argmax(diff >= 0))
  if b == 0:
    return float(points.p_miss[0])
  a = b - 1
  dm, df = points.p_miss[b] - points.p_miss[a], points.p_fa[b] - points.p_fa[a]
  t = (points.p_fa[a] - points.p_miss[a]) / (dm - df)  # dm - df > 0: diff rises from < 0 to >= 0
  return float(points.p_miss[a] + t * dm)


def min_dcf_of(points: OperatingPoints, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
  """Minimum normalised detection cost of a DET curve (NIST SRE)."""
  if not 0.0 < p_target < 1.0 or c_miss <= 0 or c_fa <= 0:
    raise ValueError(f"need 0 < p_target < 1 and positive costs; got p_target={p_target}, c_miss={c_miss}, "
                     f"c_fa={c_fa}.")
  cost = c_miss * points.p_miss * p_target + c_fa * points.p_fa * (1.0 - p_target)
  return float(np.min(cost) / min(c_miss * p_target, c_fa * (1.0 - p_target)))


def eer(scores, labels, weights=None) -> float:
  """Equal error rate (fraction) of ``scores [N]`` against ``labels [N]``; see the module docstring."""
  return eer_of(operating_points(scores, labels, weights))


def min_dcf(scores, labels, weights=None, *, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
  """Minimum normalised detection cost of ``scores [N]`` against ``labels [N]``."""
  return min_dcf_of(operating_points(scores, labels, weights), p_target, c_miss, c_fa)


def group_eers(scores, labels, groups, weights=None) -> dict:
  """``{group: EER}`` over the trials of each group (``groups [N]``: one label per trial, e.g.
  the enrolment side's gender); a group lacking target or non-target trials is left out."""
  scores, labels, w = _check(scores, labels, weights)
  groups = np.asarray(groups)
  if groups.shape != scores.shape:
    raise ValueError(f"groups must be [N] like scores; got {list(groups.shape)}.")
  out = {}
  for g in sorted(set(groups.tolist()), key=str):
    m = groups == g
    if (w[m & labels] > 0).any() and (w[m & ~labels] > 0).any():
      out[g] = eer_of(_Sorted(scores[m], labels[m]).points(w[m]))
  return out


def summary(scores, labels, groups: Mapping[str, Sequence], weights=None, *, p_target: float = 0.01) -> dict:
  """Overall EER and minDCF, and per grouping (``{"gender": [N], "accent": [N]}``) the EER
  of each group, the gap (max - min) and the population std across groups.

  Returns ``{"eer", "min_dcf", "<grouping>": {"per_group": {...}, "gap": max - min, "std": std}}``.
  For two groups (gender) the gap is the paper's gender gap; for more (accent, region)
  ``std`` is the paper's variability across nationalities.
  """
  points = operating_points(scores, labels, weights)
  out = {"eer": eer_of(points), "min_dcf": min_dcf_of(points, p_target)}
  for name, g in groups.items():
    per = group_eers(scores, labels, g, weights)
    vals = np.array(list(per.values()))
    out[name] = {"per_group": per, "gap": float(vals.max() - vals.min()) if vals.size else float("nan"),
                 "std": float(vals.std()) if vals.size else float("nan")}
  return out


def speaker_bootstrap(stat: Callable[[np.ndarray], float], speakers_a, speakers_b, *, key: int,
                      draws: int = 1000) -> np.ndarray:
  """``[draws]`` values of ``stat(weights [N])`` over speaker-bootstrap resamples of the trials.

  Each draw picks as many speakers as there are, with replacement (``numpy`` generator
  seeded by ``key``); trial i between ``speakers_a[i]`` and ``speakers_b[i]`` gets weight
  ``count(a) * count(b)``. ``stat`` evaluates the metric under those weights (e.g.
  ``lambda w: eer(scores, labels, w)``); a draw whose weights leave a class empty is NaN.
  """
  a, b = np.asarray(speakers_a), np.asarray(speakers_b)
  if a.ndim != 1 or a.shape != b.shape or a.size == 0:
    raise ValueError(f"speakers_a and speakers_b must both be [N], N >= 1; got {list(a.shape)}, {list(b.shape)}.")
  if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
    raise ValueError(f"draws must be an integer >= 1; got {draws!r}.")
  names, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
  ia, ib = inverse[:a.size], inverse[a.size:]
  counts = np.random.default_rng(key).multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=draws)
  out = np.empty(draws)
  for d in range(draws):
    w = (counts[d, ia] * counts[d, ib]).astype(np.float64)
    try:
      out[d] = stat(w)
    except ValueError:  # a class left without weight in this draw
      out[d] = np.nan
  return out


__all__ = ["OperatingPoints", "eer", "eer_of", "group_eers", "min_dcf", "min_dcf_of", "operating_points",
           "speaker_bootstrap", "summary"]
