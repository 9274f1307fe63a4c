"""Cohort discovery: which speakers does a model fail? Three methods, one cohort object.

Every method takes per-speaker evaluation results (`Speakers`: errors and reference words
per speaker, with the speaker's metadata) and returns a `Cohorts`: names and a JSON-able
rule that assigns *any* speaker to a cohort (`Cohorts.assign`), so cohorts found on one
set of speakers can be measured on held-out ones, and the metrics, pictures and the
mitigation take any of them.

* `geographic_tree` (Trinh et al.): recursively split the speakers by a latitude or
  longitude threshold, at each node the split that maximises the WER difference between
  its two sides, subject to a minimum cohort size (speakers and reference words) and a
  maximum depth; the leaves (latitude / longitude boxes) are the regions.
* `geodemographic_partition` (Dheram et al.): each area code takes the majority value of
  a census-style attribute among its speakers; the attribute's values are split into two
  sets, and the binary partition of areas (over every attribute and value split) with the
  largest WER gap is kept.
* `embedding_cohorts` (Dheram et al., "automatic cohorts"): scikit-learn k-means over
  length-normalised speaker embeddings; a speaker belongs to its nearest centroid.
  `choose_k` picks k on a development set, never on test.

WER of a set of speakers is always total errors / total reference words.

References:
  Trinh et al., "Reducing geographic disparities in automatic speech recognition via
  elastic weight consolidation", Interspeech 2022.
  Dheram et al., "Toward fairness in speech recognition: discovery and mitigation of
  performance disparities", Interspeech 2022.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np

METHODS = ("geographic_tree", "geodemographic", "embedding_kmeans")


@dataclasses.dataclass(frozen=True)
class Speakers:
  """Per speaker ``[S]``: ``ids``, ``errors`` and ``words`` (reference words) summed over the
  speaker's utterances, ``latitude`` / ``longitude`` (degrees), ``area_code``,
  ``attributes`` (``{name: [S] str}``, census-style) and ``embedding`` (``[S, D]`` or None)."""

  ids: np.ndarray
  errors: np.ndarray
  words: np.ndarray
  latitude: np.ndarray | None = None
  longitude: np.ndarray | None = None
  area_code: np.ndarray | None = None
  attributes: dict = dataclasses.field(default_factory=dict)
  embedding: np.ndarray | None = None

  def __post_init__(self):
    n = len(self.ids)
    for name in ("errors", "words", "latitude", "longitude", "area_code", "embedding"):
      v = getattr(self, name)
      if v is not None and len(v) != n:
        raise ValueError(f"Speakers.{name} has {len(v)} rows for {n} speakers.")
    for name, v in self.attributes.items():
      if len(v) != n:
        raise ValueError(f"Speakers.attributes[{name!r}] has {len(v)} rows for {n} speakers.")
    if n and (np.any(np.asarray(self.words) < 0) or np.any(np.asarray(self.errors) < 0)):
      raise ValueError("Speakers.errors and Speakers.words must be >= 0.")

  def __len__(self) -> int:
    return len(self.ids)

  def subset(self, mask_or_index) -> "Speakers":
    """The speakers a boolean mask or an index array selects."""
    take = lambda v: None if v is None else np.asarray(v)[mask_or_index]
    return Speakers(take(self.ids), take(self.errors), take(self.words), take(self.latitude), take(self.longitude),
                    take(self.area_code), {k: take(v) for k, v in self.attributes.items()}, take(self.embedding))


def speakers_from_utterances(utterance_errors, utterance_speakers, metadata: dict, *,
                             embeddings: dict | None = None,
                             attributes: tuple = ("demographic_group", "income_band")) -> Speakers:
  """`Speakers` from an evaluation's per-utterance errors (`asrjax.metrics.wer.ErrorCounts`)
  and each utterance's speaker; ``metadata``: ``{speaker: {"latitude", "longitude",
  "area_code", <attributes>...}}`` (the corpus' speaker metadata); ``embeddings``:
  ``{speaker: [D]}`` (e.g. the mean of `asrjax.speaker.embed` over the speaker's utterances).

  Raises:
    ValueError: lengths differ, or a speaker has no metadata (or no embedding when given).
  """
  utterance_errors, utterance_speakers = list(utterance_errors), [str(s) for s in utterance_speakers]
  if len(utterance_errors) != len(utterance_speakers):
    raise ValueError(f"{len(utterance_errors)} utterance errors for {len(utterance_speakers)} speakers.")
  ids = sorted(set(utterance_speakers))
  missing = [s for s in ids if s not in metadata]
  if missing:
    raise ValueError(f"{len(missing)} speakers have no metadata, e.g. {missing[:3]}.")
  at = {s: i for i, s in enumerate(ids)}
  errors, words = np.zeros(len(ids), np.int64), np.zeros(len(ids), np.int64)
  for c, s in zip(utterance_errors, utterance_speakers):
    errors[at[s]] += c.errors
    words[at[s]] += c.reference_words
  field = lambda k, dtype=None: (np.asarray([metadata[s][k] for s in ids], dtype)
                                 if all(k in metadata[s] for s in ids) else None)
  emb = None
  if embeddings is not None:
    lacking = [s for s in ids if s not in embeddings]
    if lacking:
      raise ValueError(f"{len(lacking)} speakers have no embedding, e.g. {lacking[:3]}.")
    emb = np.stack([np.asarray(embeddings[s], np.float64) for s in ids])
  return Speakers(np.asarray(ids), errors, words, field("latitude", np.float64), field("longitude", np.float64),
                  field("area_code"), {a: field(a) for a in attributes if field(a) is not None}, emb)


def group_wer(errors, words) -> float:
  """Total errors / total words (NaN when there are no words)."""
  w = float(np.sum(words))
  return float(np.sum(errors)) / w if w else float("nan")


@dataclasses.dataclass(frozen=True)
class Cohorts:
  """Named cohorts and the rule that assigns a speaker to one (JSON-able, see `to_json`).

  ``method`` is one of `METHODS`; ``rule`` holds, for ``geographic_tree``, ``leaves``:
  one ``{"lat": [lo, hi], "lon": [lo, hi]}`` box per cohort (half-open ``[lo, hi)``,
  ``None`` for an open end); for ``geodemographic``, the ``attribute``, the ``values``
  of cohort 0 and ``area_values`` (each discovery area's majority value); for
  ``embedding_kmeans``, the k-means ``centroids`` (of unit-norm embeddings; a speaker goes
  to the nearest, as ``KMeans.predict``).
  """

  method: str
  names: tuple
  rule: dict

  def __len__(self) -> int:
    return len(self.names)

  def assign(self, speakers: Speakers) -> np.ndarray:
    """``[S]`` cohort index of each speaker (-1: the rule cannot place it).

    Raises:
      ValueError: the speakers lack the field the rule reads.
    """
    if self.method == "geographic_tree":
      if speakers.latitude is None or speakers.longitude is None:
        raise ValueError("geographic cohorts need each speaker's latitude and longitude.")
      out = np.full(len(speakers), -1, np.int64)
      for k, leaf in enumerate(self.rule["leaves"]):
        inside = _in(speakers.latitude, leaf["lat"]) & _in(speakers.longitude, leaf["lon"])
        out[inside & (out < 0)] = k
      return out
    if self.method == "geodemographic":
      name = self.rule["attribute"]
      if name not in speakers.attributes:
        raise ValueError(f"geodemographic cohorts read attribute {name!r}; the speakers have "
                         f"{sorted(speakers.attributes)}.")
      areas = self.rule["area_values"]
      own = speakers.attributes[name]
      value = [areas.get(str(a), o) for a, o in zip(speakers.area_code, own)] if speakers.area_code is not None \
          else list(own)
      return np.where(np.isin(np.asarray(value, dtype=object), self.rule["values"]), 0, 1).astype(np.int64)
    if self.method == "embedding_kmeans":
      if speakers.embedding is None:
        raise ValueError("embedding cohorts need each speaker's embedding.")
      x, c = _unit(speakers.embedding), np.asarray(self.rule["centroids"], np.float64)
      d = (x * x).sum(1, keepdims=True) - 2 * x @ c.T + (c * c).sum(1)  # as KMeans.predict: nearest centroid
      return np.argmin(d, axis=1).astype(np.int64)
    raise ValueError(f"unknown cohort method {self.method!r}; known: {METHODS}.")

  def to_json(self) -> str:
    return json.dumps({"method": self.method, "names": list(self.names), "rule": self.rule})

  @staticmethod
  def from_json(text: str) -> "Cohorts":
    d = json.loads(text)
    if d.get("method") not in METHODS:
      raise ValueError(f"not a cohorts file: method {d.get('method')!r} is none of {METHODS}.")
    return Cohorts(d["method"], tuple(d["names"]), d["rule"])


def _in(x, bounds) -> np.ndarray:
  lo, hi = bounds
  x = np.asarray(x, np.float64)
  return (x >= (-np.inf if lo is None else lo)) & (x < (np.inf if hi is None else hi))


def _unit(x) -> np.ndarray:
  x = np.asarray(x, np.float64)
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _best_cut(coord, errors, words, min_speakers: int, min_words: int):
  """``(gap, threshold)`` of the best cut ``coord < threshold`` of these speakers, or None."""
  order = np.argsort(coord, kind="stable")
  c, e, w = coord[order], np.cumsum(errors[order]), np.cumsum(words[order])
  n = len(c)
  best = None
  for k in range(max(min_speakers, 1), n - max(min_speakers, 1) + 1):
    if k >= n or c[k - 1] == c[k]:
      continue  # a threshold must separate distinct coordinates
    wl, wr = w[k - 1], w[-1] - w[k - 1]
    if wl < max(min_words, 1) or wr < max(min_words, 1):
      continue
    gap = abs(e[k - 1] / wl - (e[-1] - e[k - 1]) / wr)
    if best is None or gap > best[0]:
      best = (float(gap), float((c[k - 1] + c[k]) / 2))
  return best


def geographic_tree(speakers: Speakers, *, min_speakers: int = 5, min_words: int = 200,
                    max_depth: int = 4, min_gap: float = 0.0) -> Cohorts:
  """Trinh et al.'s geographic split tree: leaves are latitude / longitude boxes.

  At each node, over both axes and every threshold between two distinct coordinates,
  the split whose sides have at least ``min_speakers`` speakers and ``min_words`` words
  and the largest absolute WER difference; ties go to latitude, then the lower
  threshold. A node becomes a leaf at ``max_depth``, when no split is allowed, or when the
  best split's WER difference is not above ``min_gap`` (absolute; 0: any difference).

  Raises:
    ValueError: no coordinates, or bad limits.
  """
  if speakers.latitude is None or speakers.longitude is None:
    raise ValueError("the geographic tree needs each speaker's latitude and longitude.")
  for name, v in (("min_speakers", min_speakers), ("min_words", min_words), ("max_depth", max_depth)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
      raise ValueError(f"{name} must be an integer >= 0; got {v!r}.")
  coords = {"lat": np.asarray(speakers.latitude, np.float64), "lon": np.asarray(speakers.longitude, np.float64)}
  errors, words = np.asarray(speakers.errors, np.float64), np.asarray(speakers.words, np.float64)
  leaves = []

  def grow(idx, box, depth):
    best = None
    if depth < max_depth:
      for axis in ("lat", "lon"):
        cut = _best_cut(coords[axis][idx], errors[idx], words[idx], min_speakers, min_words)
        if cut is not None and cut[0] > min_gap and (best is None or cut[0] > best[0]):
          best = (cut[0], cut[1], axis)
    if best is None:
      leaves.append(box)
      return
    _, threshold, axis = best
    left = idx[coords[axis][idx] < threshold]
    right = idx[coords[axis][idx] >= threshold]
    lo, hi = box[axis]
    grow(left, {**box, axis: [lo, threshold]}, depth + 1)
    grow(right, {**box, axis: [threshold, hi]}, depth + 1)

  grow(np.arange(len(speakers)), {"lat": [None, None], "lon": [None, None]}, 0)
  names = tuple(f"lat {_fmt(b['lat'])}, lon {_fmt(b['lon'])}" for b in leaves)
  return Cohorts("geographic_tree", names, {"leaves": leaves})


def _fmt(bounds) -> str:
  lo, hi = bounds
  return f"[{'-inf' if lo is None else f'{lo:.2f}'}, {'inf' if hi is None else f'{hi:.2f}'})"


def _majority(values) -> str:
  vals, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
  return str(vals[np.argmax(counts)])  # ties: the first in sorted order


def geodemographic_partition(speakers: Speakers, *, attributes: tuple | None = None, min_speakers: int = 1,
                             min_words: int = 1, max_values: int = 12) -> Cohorts:
  """Dheram et al.'s geodemographic cohorts: areas split into two by their majority attribute value.

  For each attribute (default: all the speakers carry) each area code takes its speakers'
  majority value (ties: the first in sorted order); every split of the attribute's values
  into two non-empty sets gives a binary partition of the speakers (by their area); the
  partition with the largest absolute WER gap whose sides have ``min_speakers`` speakers
  and ``min_words`` words is kept. Cohort 0 holds the speakers of areas whose majority
  value is in the kept set (``rule["values"]``).

  Raises:
    ValueError: no area codes or attributes, an attribute with more than ``max_values``
      values, or no allowed partition.
  """
  if speakers.area_code is None:
    raise ValueError("geodemographic cohorts need each speaker's area code.")
  names = tuple(attributes) if attributes is not None else tuple(sorted(speakers.attributes))
  if not names:
    raise ValueError("geodemographic cohorts need at least one census-style attribute.")
  areas = np.asarray(speakers.area_code, dtype=str)
  errors, words = np.asarray(speakers.errors, np.float64), np.asarray(speakers.words, np.float64)
  best = None
  for name in names:
    if name not in speakers.attributes:
      raise ValueError(f"no attribute {name!r}; the speakers have {sorted(speakers.attributes)}.")
    own = np.asarray(speakers.attributes[name], dtype=str)
    area_values = {a: _majority(own[areas == a]) for a in np.unique(areas)}
    value = np.asarray([area_values[a] for a in areas])
    values = sorted(set(area_values.values()))
    if len(values) > max_values:
      raise ValueError(f"attribute {name!r} has {len(values)} values (more than max_values={max_values}).")
    for r in range(1, len(values)):
      for subset in itertools.combinations(values, r):
        if values[0] not in subset:
          continue  # each partition once: the side holding the first value is cohort 0
        side = np.isin(value, subset)
        if min(side.sum(), (~side).sum()) < max(min_speakers, 1):
          continue
        if min(words[side].sum(), words[~side].sum()) < max(min_words, 1):
          continue
        gap = abs(group_wer(errors[side], words[side]) - group_wer(errors[~side], words[~side]))
        if best is None or gap > best[0]:
          best = (gap, name, list(subset), area_values)
  if best is None:
    raise ValueError("no binary partition satisfies the minimum cohort size.")
  _, name, subset, area_values = best
  rest = sorted(set(area_values.values()) - set(subset))
  return Cohorts("geodemographic", (f"{name} in {subset}", f"{name} in {rest}"),
                 {"attribute": name, "values": subset, "area_values": area_values})


def embedding_cohorts(speakers: Speakers, *, k: int, seed: int = 0) -> Cohorts:
  """Dheram et al.'s automatic cohorts: scikit-learn k-means (k-means++, 10 starts, ``seed``)
  over the length-normalised speaker embeddings; cohorts are the clusters.

  Raises:
    ValueError: no embeddings, or ``k`` not in ``[2, S]``.
  """
  if speakers.embedding is None:
    raise ValueError("automatic cohorts need each speaker's embedding.")
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= len(speakers):
    raise ValueError(f"k must be an integer in [2, {len(speakers)}] (the number of speakers); got {k!r}.")
  from sklearn.cluster import KMeans  # noqa: PLC0415 -- scikit-learn only when clustering

  km = KMeans(n_clusters=int(k), n_init=10, random_state=seed).fit(_unit(speakers.embedding))
  return Cohorts("embedding_kmeans", tuple(f"cluster {j}" for j in range(int(k))),
                 {"centroids": km.cluster_centers_.tolist()})


__all__ = ["Cohorts", "METHODS", "Speakers", "embedding_cohorts", "geodemographic_partition", "geographic_tree",
           "group_wer", "speakers_from_utterances"]
