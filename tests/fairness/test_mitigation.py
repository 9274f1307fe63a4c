"""Mitigation bookkeeping: the dev choice of the EWC weight, training speakers placed in any cohorts, the report's gap."""

import numpy as np
import pytest

from asrjax.fairness import cohorts as C
from asrjax.fairness import mitigation


def _dev(wer, targeted):
  return {"wer": wer, "targeted_wer": targeted}


def test_the_weight_is_the_lowest_targeted_wer_among_those_no_worse_overall():
  base = _dev(0.50, 0.60)
  reports = {1e2: _dev(0.49, 0.52),   # lowest targeted WER of the admissible ones
             1e3: _dev(0.50, 0.55),   # equal to the base overall: admissible
             1e4: _dev(0.51, 0.40)}   # lowest targeted WER, but worse overall: not admissible
  assert mitigation.choose_weight(reports, base) == 1e2
  reports[1e3] = _dev(0.50, 0.52)     # a tie on targeted WER goes to the smaller weight
  assert mitigation.choose_weight(reports, base) == 1e2
  reports[1e2] = _dev(0.495, 0.53)
  assert mitigation.choose_weight(reports, base) == 1e3


def test_without_an_admissible_weight_the_lowest_overall_wer_wins():
  base = _dev(0.40, 0.60)
  assert mitigation.choose_weight({1e2: _dev(0.45, 0.40), 1e3: _dev(0.42, 0.50), 1e4: _dev(0.43, 0.45)}, base) == 1e3
  with pytest.raises(ValueError, match="at least one"):
    mitigation.choose_weight({}, base)


def test_training_speakers_are_placed_in_embedding_cohorts_by_their_own_embeddings():
  cohorts = C.Cohorts("embedding_kmeans", ("cluster 0", "cluster 1"), {"centroids": [[1.0, 0.0], [0.0, 1.0]]})
  metadata = {"a": {}, "b": {}, "c": {}}
  embeddings = {"a": [0.0, 3.0], "b": [2.0, 0.1], "c": [0.2, 1.0]}  # nearest unit centroid: 1, 0, 1
  assert mitigation.speakers_in(cohorts, [1], metadata, embeddings=embeddings) == ["a", "c"]
  assert mitigation.speakers_in(cohorts, [0], metadata, embeddings=embeddings) == ["b"]
  with pytest.raises(ValueError, match="1 speakers have no embedding"):
    mitigation.speakers_in(cohorts, [1], metadata, embeddings={"a": [0, 1], "b": [1, 0]})


def test_training_speakers_are_placed_in_geographic_cohorts_by_their_coordinates():
  cohorts = C.Cohorts("geographic_tree", ("west", "east"),
                      {"leaves": [{"lat": [None, None], "lon": [None, 0.0]}, {"lat": [None, None], "lon": [0.0, None]}]})
  metadata = {"w": {"latitude": 1.0, "longitude": -5.0}, "e": {"latitude": 1.0, "longitude": 0.0}}
  assert mitigation.speakers_in(cohorts, [1], metadata) == ["e"]


def test_the_report_counts_errors_over_words_and_the_targeted_gap_by_hand():
  # two cohorts by longitude; targeted = cohort 0 (speakers s0, s1), untargeted = s2
  cohorts = C.Cohorts("geographic_tree", ("west", "east"),
                      {"leaves": [{"lat": [None, None], "lon": [None, 0.0]}, {"lat": [None, None], "lon": [0.0, None]}]})
  spk = C.Speakers(np.array(["s0", "s1", "s2"]), np.array([30, 10, 20]), np.array([100, 100, 100]),
                   np.zeros(3), np.array([-1.0, -2.0, 3.0]))
  r = mitigation.report(spk, cohorts, [0], draws=50)
  assert r["wer"] == pytest.approx(60 / 300)
  assert r["targeted_wer"] == pytest.approx(40 / 200)  # total errors / total words, not the mean of 0.3 and 0.1
  assert r["untargeted_wer"] == pytest.approx(0.2)
  assert r["gap"] == pytest.approx(0.0)
  spk2 = C.Speakers(spk.ids, np.array([30, 30, 20]), spk.words, spk.latitude, spk.longitude)
  assert mitigation.report(spk2, cohorts, [0], draws=50)["gap"] == pytest.approx(0.3 / 0.2 - 1)
