"""Cohort discovery on hand-built speakers with planted disparities, and brute-force searches as references."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from asrjax.fairness import cohorts as C
from asrjax.metrics.wer import ErrorCounts


def _grid(n_side=8, high=0.4, low=0.1, words=100):
  """Speakers on a lat/lon grid in [-40, 40]^2; the north-east quadrant has WER ``high``."""
  lat, lon = np.meshgrid(np.linspace(-35, 35, n_side), np.linspace(-35, 35, n_side), indexing="ij")
  lat, lon = lat.ravel(), lon.ravel()
  wer = np.where((lat > 0) & (lon > 0), high, low)
  return C.Speakers(np.array([f"s{i}" for i in range(lat.size)]), np.round(wer * words).astype(int),
                    np.full(lat.size, words), lat, lon)


def test_the_split_tree_finds_the_high_wer_quadrant_and_places_held_out_speakers():
  spk = _grid()
  cohorts = C.geographic_tree(spk, min_speakers=4, min_words=100, max_depth=2)
  labels = cohorts.assign(spk)
  quadrant = (spk.latitude > 0) & (spk.longitude > 0)
  per = [spk.errors[labels == k].sum() / spk.words[labels == k].sum() for k in range(len(cohorts))]
  worst = int(np.argmax(per))
  assert np.array_equal(labels == worst, quadrant)  # the worst leaf is exactly the quadrant
  assert len(cohorts) == 3  # the tree stops where no split separates WERs further: the high side splits once
  held_out = C.Speakers(np.array(["a", "b", "c"]), np.zeros(3, int), np.ones(3, int), np.array([20.0, -20.0, 5.0]),
                        np.array([20.0, 20.0, 1.0]))
  assert held_out.latitude.size == 3
  got = cohorts.assign(held_out)
  assert got[0] == worst and got[2] == worst and got[1] != worst
  again = C.Cohorts.from_json(cohorts.to_json())
  assert np.array_equal(again.assign(spk), labels)


def _brute_first_split(spk, min_speakers, min_words):
  best = None
  for axis, coord in (("lat", spk.latitude), ("lon", spk.longitude)):
    values = np.unique(coord)
    for a, b in zip(values[:-1], values[1:]):
      t = (a + b) / 2
      left = coord < t
      if min(left.sum(), (~left).sum()) < min_speakers:
        continue
      if min(spk.words[left].sum(), spk.words[~left].sum()) < min_words:
        continue
      gap = abs(spk.errors[left].sum() / spk.words[left].sum() - spk.errors[~left].sum() / spk.words[~left].sum())
      if best is None or gap > best[0] + 1e-12:
        best = (gap, axis, t)
  return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_first_split_is_the_brute_force_best(seed):
  rng = np.random.default_rng(seed)
  n = 30
  spk = C.Speakers(np.arange(n).astype(str), rng.integers(0, 50, n), rng.integers(20, 120, n),
                   np.round(rng.uniform(-10, 10, n), 1), np.round(rng.uniform(-10, 10, n), 1))
  cohorts = C.geographic_tree(spk, min_speakers=3, min_words=50, max_depth=1)
  gap, axis, t = _brute_first_split(spk, 3, 50)
  leaf = cohorts.rule["leaves"][0]
  assert leaf[axis][1] == pytest.approx(t)  # the first leaf's upper bound on the split axis is the threshold
  labels = cohorts.assign(spk)
  got = abs(np.diff([spk.errors[labels == k].sum() / spk.words[labels == k].sum() for k in (0, 1)]))[0]
  assert got == pytest.approx(gap)


def test_min_size_keeps_leaves_large_enough():
  spk = _grid(n_side=6)
  cohorts = C.geographic_tree(spk, min_speakers=10, min_words=1000, max_depth=6)
  labels = cohorts.assign(spk)
  sizes = np.bincount(labels)
  assert sizes.min() >= 10 and all(spk.words[labels == k].sum() >= 1000 for k in range(len(cohorts)))
  with pytest.raises(ValueError, match="max_depth must be an integer >= 0"):
    C.geographic_tree(spk, max_depth=-1)
  with pytest.raises(ValueError, match="latitude and longitude"):
    C.geographic_tree(C.Speakers(np.array(["a"]), np.array([1]), np.array([5])))


def _areas(seed=0, n_areas=12, per_area=4):
  """Speakers in areas; each area's ``demographic_group`` is one of g0..g3; g2 areas have WER 0.3, others 0.1."""
  rng = np.random.default_rng(seed)
  groups = np.array([f"g{i % 4}" for i in range(n_areas)])
  area = np.repeat(np.arange(n_areas).astype(str), per_area)
  demo = np.repeat(groups, per_area)
  income = rng.choice(["low", "mid", "high"], size=area.size)
  words = np.full(area.size, 100)
  errors = np.where(demo == "g2", 30, 10)
  return C.Speakers(np.arange(area.size).astype(str), errors, words, area_code=area,
                    attributes={"demographic_group": demo, "income_band": income})


def test_the_geodemographic_partition_finds_the_planted_attribute():
  spk = _areas()
  cohorts = C.geodemographic_partition(spk)
  assert cohorts.rule["attribute"] == "demographic_group"
  labels = cohorts.assign(spk)
  g2 = spk.attributes["demographic_group"] == "g2"
  assert np.array_equal(labels == labels[g2][0], g2)  # one side is exactly the g2 areas


def test_the_geodemographic_partition_is_the_brute_force_best():
  rng = np.random.default_rng(5)
  n = 40
  area = rng.integers(0, 10, n).astype(str)
  attr = {a: rng.choice(["a", "b", "c", "d"]) for a in np.unique(area)}
  spk = C.Speakers(np.arange(n).astype(str), rng.integers(0, 40, n), rng.integers(50, 100, n), area_code=area,
                   attributes={"x": np.array([attr[a] for a in area])})
  best = 0.0
  values = sorted(set(attr.values()))
  for r in range(1, len(values)):
    for subset in itertools.combinations(values, r):
      side = np.isin(spk.attributes["x"], subset)
      gap = abs(spk.errors[side].sum() / spk.words[side].sum() - spk.errors[~side].sum() / spk.words[~side].sum())
      best = max(best, gap)
  labels = C.geodemographic_partition(spk).assign(spk)
  got = abs(spk.errors[labels == 0].sum() / spk.words[labels == 0].sum()
            - spk.errors[labels == 1].sum() / spk.words[labels == 1].sum())
  assert got == pytest.approx(best)


def test_kmeans_cohorts_recover_planted_embedding_clusters():
  rng = np.random.default_rng(0)
  centres = np.eye(3, 8) * 5
  truth = np.repeat(np.arange(3), 15)
  emb = centres[truth] + 0.3 * rng.normal(size=(truth.size, 8))
  spk = C.Speakers(np.arange(truth.size).astype(str), np.ones(truth.size, int), np.full(truth.size, 10), embedding=emb)
  cohorts = C.embedding_cohorts(spk, k=3, seed=0)
  assert adjusted_rand_score(truth, cohorts.assign(spk)) == pytest.approx(1.0)
  with pytest.raises(ValueError, match=r"k must be an integer in \[2, 45\]"):
    C.embedding_cohorts(spk, k=1)


def test_speakers_from_utterances_sums_errors_per_speaker():
  errs = [ErrorCounts(1, 0, 0, 5), ErrorCounts(0, 1, 1, 4), ErrorCounts(2, 0, 0, 10)]
  meta = {"a": {"latitude": 1.0, "longitude": 2.0, "area_code": "x", "demographic_group": "g1", "income_band": "i"},
          "b": {"latitude": 3.0, "longitude": 4.0, "area_code": "y", "demographic_group": "g2", "income_band": "j"}}
  spk = C.speakers_from_utterances(errs, ["a", "a", "b"], meta, embeddings={"a": [1, 0], "b": [0, 1]})
  assert spk.ids.tolist() == ["a", "b"] and spk.errors.tolist() == [3, 2] and spk.words.tolist() == [9, 10]
  assert spk.attributes["demographic_group"].tolist() == ["g1", "g2"] and spk.embedding.shape == (2, 2)
  with pytest.raises(ValueError, match="1 speakers have no metadata"):
    C.speakers_from_utterances(errs, ["a", "a", "c"], meta)
  with pytest.raises(ValueError, match="3 utterance errors for 2 speakers"):
    C.speakers_from_utterances(errs, ["a", "a"], meta)


def test_an_area_goes_by_its_majority_value():
  # area "1": three speakers g_hi and one g_lo -> the whole area is g_hi, the g_lo speaker with it
  area = np.array(["0", "0", "1", "1", "1", "1", "2", "2"])
  demo = np.array(["g_lo", "g_lo", "g_hi", "g_hi", "g_hi", "g_lo", "g_lo", "g_lo"])
  errors = np.array([5, 5, 40, 40, 40, 40, 5, 5])
  spk = C.Speakers(np.arange(8).astype(str), errors, np.full(8, 100), area_code=area,
                   attributes={"demographic_group": demo})
  cohorts = C.geodemographic_partition(spk)
  labels = cohorts.assign(spk)
  assert cohorts.rule["area_values"] == {"0": "g_lo", "1": "g_hi", "2": "g_lo"}
  assert labels.tolist() == [1, 1, 0, 0, 0, 0, 1, 1]  # cohort 0 holds the first value (g_hi) in sorted order
