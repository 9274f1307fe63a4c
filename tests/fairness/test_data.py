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


def test_training_on_a_speaker_subset(tmp_path, monkeypatch):
  from asrjax.data import sources
  from asrjax.tasks import transducer_asr
  from tests.experiments.test_configs import load

  class Split(list):
    files, sample_rate, metadata = ["f.array_record"], 16_000, {"k": 1}

  split = Split({"speaker_id": s.encode(), "text": t, "audio": np.zeros(8, np.int16)}
                for s, t in [("a", "x"), ("b", "y"), ("a", "z"), ("c", "w")])
  monkeypatch.setattr(sources, "open_split", lambda name, s, data_dir: split)
  config = load("convrnnt", "tiny")
  assert transducer_asr.TransducerASR.open_train_split(config, str(tmp_path)) is split  # no subset: the split
  path = tmp_path / "speakers.json"
  path.write_text('{"speakers": ["a", "c"]}')
  config.data.train_speakers = str(path)
  sub = transducer_asr.TransducerASR.open_train_split(config, str(tmp_path))
  assert [sub[i]["text"] for i in range(len(sub))] == ["x", "z", "w"]
  assert sub.files == ["f.array_record"] and sub.sample_rate == 16_000 and sub.metadata == {"k": 1}
  path.write_text('{"speakers": ["a", "q"]}')
  with pytest.raises(ValueError, match=r"1 of the 2 speakers have no example in the split, e.g. \['q'\]"):
    transducer_asr.TransducerASR.open_train_split(config, str(tmp_path))
  path.write_text('["a"]')
  with pytest.raises(ValueError, match="is not a JSON object"):
    transducer_asr.TransducerASR.open_train_split(config, str(tmp_path))
  with pytest.raises(ValueError, match=r"outside the split's 4 examples"):
    sources.Subset(split, [0, 4])
