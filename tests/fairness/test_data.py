"""Per-speaker fairness inputs from an evaluation record and a split's metadata."""

import numpy as np
import pytest

from asrjax.fairness import data


class _Split(list):
  metadata = {}


def test_metadata_from_the_split_records_or_from_the_examples():
  records = [{"speaker_id": "a", "latitude": 1.5, "longitude": -2.0, "area_code": "x", "demographic_group": "g1",
              "income_band": "low", "pitch": 3}]
  split = _Split([{"speaker_id": b"a", "audio": np.zeros(4, np.int16)}])
  split.metadata = {"speakers": {"test": records}}
  assert data.speaker_metadata(split, "test") == {"a": {"latitude": 1.5, "longitude": -2.0, "area_code": "x",
                                                        "demographic_group": "g1", "income_band": "low"}}
  per_example = _Split([{"speaker_id": b"b", "latitude": np.float32(3.0), "longitude": np.float32(4.0),
                         "area_code": b"y", "demographic_group": b"g2"},
                        {"speaker_id": b"b", "latitude": np.float32(9.0), "longitude": np.float32(9.0),
                         "area_code": b"z", "demographic_group": b"g3"}])
  assert data.speaker_metadata(per_example, "test") == {"b": {"latitude": 3.0, "longitude": 4.0, "area_code": "y",
                                                              "demographic_group": "g2"}}  # its first example


def test_speakers_from_an_evaluation_record():
  meta = {"a": {"latitude": 1.0, "longitude": 2.0, "area_code": "x", "demographic_group": "g", "income_band": "i"},
          "b": {"latitude": 3.0, "longitude": 4.0, "area_code": "y", "demographic_group": "h", "income_band": "j"}}
  record = {"utterance_errors": [[1, 0, 0, 4], [0, 2, 1, 6], [1, 1, 1, 5]], "speakers": ["b", "a", "b"]}
  spk = data.speakers_from_eval(record, meta)
  assert spk.ids.tolist() == ["a", "b"] and spk.errors.tolist() == [3, 4] and spk.words.tolist() == [6, 9]
  assert spk.latitude.tolist() == [1.0, 3.0] and spk.attributes["income_band"].tolist() == ["i", "j"]
  with pytest.raises(ValueError, match="no 'speakers': run experiments/evaluate.py again"):
    data.speakers_from_eval({"utterance_errors": []}, meta)
