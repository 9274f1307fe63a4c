"""Disparity metrics over cohorts: per-cohort WER, the bottom cohort's gap, and speaker-bootstrap intervals.

Definitions (the papers leave "gap" ambiguous, so both are reported):

* cohort WER = total errors / total reference words of the cohort's speakers (never a
  mean of utterance or speaker WERs);
* the **bottom** cohort is the one with the highest WER on the speakers the cohorts are
  measured on (fixed from the point estimate, then held fixed inside the bootstrap, so an
  interval measures the gap of *that* cohort, not the max of noisy cohorts);
* **gap vs rest** = WER(bottom) / WER(all other speakers) - 1 (relative, %), Dheram et
  al.'s reading ("the bottom cohort against the rest");
* **gap vs top** = WER(bottom) / WER(best cohort) - 1 (relative, %);
* **bottom share** = the bottom cohort's speakers / all speakers (%);
* per-cohort WER **mean, max and variance** across cohorts (Trinh et al.'s region
  statistics; variance with ``ddof=0``).

Intervals: a speaker bootstrap (speakers drawn with replacement, ``draws`` times, from a
seeded generator), 95% percentile intervals (`asrjax.metrics.wer.percentile_interval`).

References:
  Dheram et al., "Toward fairness in speech recognition: discovery and mitigation of
  performance disparities", Interspeech 2022; Trinh et al., "Reducing geographic
  disparities in automatic speech recognition via elastic weight consolidation",
  Interspeech 2022; Bisani and Ney, ICASSP 2004 (bootstrap intervals for WER).
"""

from __future__ import annotations

import numpy as np

from asrjax.fairness.cohorts import Cohorts, Speakers, embedding_cohorts
from asrjax.metrics import wer


def cohort_wers(errors, words, labels, num_cohorts: int, weights=None) -> np.ndarray:
  """``[num_cohorts]`` WER of each cohort (NaN for a cohort with no words); ``labels [S]`` in
  ``[0, num_cohorts)`` (-1: in no cohort), ``weights [S]`` speaker multiplicities."""
  labels = np.asarray(labels)
  w = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
  inside = labels >= 0
  e = np.bincount(labels[inside], np.asarray(errors, np.float64)[inside] * w[inside], minlength=num_cohorts)
  n = np.bincount(labels[inside], np.asarray(words, np.float64)[inside] * w[inside], minlength=num_cohorts)
  with np.errstate(invalid="ignore", divide="ignore"):
    return e / n


def _figures(errors, words, labels, k: int, bottom: int, weights=None) -> dict:
  w = np.ones(len(labels)) if weights is None else weights
  per = cohort_wers(errors, words, labels, k, w)
  rest = (labels != bottom) & (labels >= 0)
  rest_wer = np.sum(errors[rest] * w[rest]) / np.sum(words[rest] * w[rest]) if np.sum(words[rest] * w[rest]) \
      else np.nan
  valid = per[~np.isnan(per)]
  top = np.nanmin(per) if valid.size else np.nan
  inside = labels >= 0
  return {"wer": float(np.sum(errors[inside] * w[inside]) / np.sum(words[inside] * w[inside])),
          "bottom_wer": float(per[bottom]), "rest_wer": float(rest_wer), "top_wer": float(top),
          "gap_vs_rest": float(100 * (per[bottom] / rest_wer - 1)) if rest_wer else float("nan"),
          "gap_vs_top": float(100 * (per[bottom] / top - 1)) if top else float("nan"),
          "bottom_share": float(100 * np.sum(w[labels == bottom]) / np.sum(w[inside])),
          "cohort_wer_mean": float(np.mean(valid)) if valid.size else float("nan"),
          "cohort_wer_max": float(np.max(valid)) if valid.size else float("nan"),
          "cohort_wer_var": float(np.var(valid)) if valid.size else float("nan")}


def disparity(speakers: Speakers, cohorts: Cohorts, *, draws: int = 1000, key: int = 0,
              bottom: int | None = None) -> dict:
  """The gap figures of ``cohorts`` on ``speakers`` (see the module docstring), with intervals.

  Returns ``{"figures": {...}, "intervals": {name: [low, high]}, "per_cohort": [{"name",
  "speakers", "words", "wer"}], "bottom": index, "bottom_name": str, "unassigned": count}``.
  ``bottom`` fixes the bottom cohort (e.g. the one found on the discovery speakers);
  default: the highest-WER cohort here.

  Raises:
    ValueError: no speakers with words, fewer than two cohorts with speakers, or bad ``draws``.
  """
  if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
    raise ValueError(f"draws must be an integer >= 1; got {draws!r}.")
  labels = cohorts.assign(speakers)
  errors, words = np.asarray(speakers.errors, np.float64), np.asarray(speakers.words, np.float64)
  k = len(cohorts)
  if np.sum(words[labels >= 0]) == 0:
    raise ValueError("no reference words among the speakers the cohorts place.")
  populated = np.unique(labels[labels >= 0])
  if len(populated) < 2:
    raise ValueError(f"the speakers fall into {len(populated)} cohort(s): a gap needs two.")
  per = cohort_wers(errors, words, labels, k)
  if bottom is None:
    bottom = int(np.nanargmax(per))
  fig = _figures(errors, words, labels, k, bottom)
  rng = np.random.default_rng(key)
  n = len(labels)
  boot = [_figures(errors, words, labels, k, bottom, rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64))
          for _ in range(draws)]
  intervals = {name: list(wer.percentile_interval([b[name] for b in boot])) for name in fig}
  per_cohort = [{"name": cohorts.names[j], "speakers": int(np.sum(labels == j)), "words": int(np.sum(words[labels == j])),
                 "wer": None if np.isnan(per[j]) else float(per[j])} for j in range(k)]
  return {"figures": fig, "intervals": intervals, "per_cohort": per_cohort, "bottom": bottom,
          "bottom_name": cohorts.names[bottom], "unassigned": int(np.sum(labels < 0))}


def choose_k(dev: Speakers, candidates=(2, 3, 4, 5, 6, 8, 10), *, seed: int = 0, min_share: float = 0.0) -> int:
  """The k of `embedding_cohorts` whose bottom cohort has the largest gap vs rest on ``dev``
  (among those whose bottom cohort holds at least ``min_share`` % of the speakers): k is
  chosen on development speakers, never on test.

  Raises:
    ValueError: no candidate k fits the dev speakers.
  """
  best = None
  for k in candidates:
    if not 2 <= k <= len(dev):
      continue
    c = embedding_cohorts(dev, k=k, seed=seed)
    labels = c.assign(dev)
    per = cohort_wers(dev.errors, dev.words, labels, k)
    if np.all(np.isnan(per)):
      continue
    bottom = int(np.nanargmax(per))
    fig = _figures(np.asarray(dev.errors, np.float64), np.asarray(dev.words, np.float64), labels, k, bottom)
    if fig["bottom_share"] >= min_share and (best is None or fig["gap_vs_rest"] > best[0]):
      best = (fig["gap_vs_rest"], k)
  if best is None:
    raise ValueError(f"no k of {list(candidates)} fits {len(dev)} dev speakers with min_share={min_share}.")
  return int(best[1])


__all__ = ["choose_k", "cohort_wers", "disparity"]
