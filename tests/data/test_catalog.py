"""Catalogue corpora (LibriSpeech, VoxCeleb) through the same pipeline."""

import numpy as np
import pytest

from asrjax.data import catalog, pipeline, tokenizer


def test_librispeech_layout_is_standardized():
  source = [{"speech": np.array([0, 5, -7], np.int64), "text": b"HELLO  WORLD'S", "speaker_id": 19,
             "chapter_id": 198, "id": b"19-198-0001"}]
  ex = catalog.standardize("librispeech/clean100", source)[0]
  assert ex["audio"].dtype == np.int16 and ex["audio"].tolist() == [0, 5, -7]
  assert ex["text"] == "hello world's" and ex["speaker_id"] == "19" and ex["id"] == "19-198-0001"
  assert ex["chapter_id"] == 198


def test_voxceleb_layout_and_bad_audio():
  ex = catalog.standardize("voxceleb", [{"audio": np.zeros(4, np.int64), "label": b"id10001"}])[0]
  assert ex["speaker_id"] == "id10001" and ex["id"] == "0" and "text" not in ex
  with pytest.raises(ValueError, match="int16 range"):
    catalog.standardize("voxceleb", [{"audio": np.array([40_000]), "label": b"x"}])[0]
  with pytest.raises(ValueError, match="no field layout"):
    catalog.fields_for("common_voice")


@pytest.mark.slow
def test_tfds_librispeech_mock_data_feeds_the_pipeline():
  pytest.importorskip("tensorflow", reason="TFDS LibriSpeech needs TensorFlow: pip install -e '.[catalog]'")
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=12):
    source = tfds.data_source("librispeech", split="train_clean100")
    std = catalog.standardize("librispeech", source)
    tok = tokenizer.CharTokenizer.build([std[i]["text"] for i in range(len(std))])
    index = pipeline.build_index(std, tok.encode)
    config = pipeline.PipelineConfig(batch_size=4, buckets=(int(index.num_samples.max()),), max_labels=512,
                                     frame_step=1)
    batch = next(pipeline.BatchIterator(std, index, tok.encode, config, prefetch=0))
  assert batch["audio"].dtype == np.int16 and batch["audio"].shape[0] == 4
  for row, uid in enumerate(batch["ids"]):
    ex = next(std[i] for i in range(len(std)) if std[i]["id"] == uid)
    n = len(ex["audio"])
    assert np.array_equal(batch["audio"][row, :n], ex["audio"])


def test_as_text_decodes_utf8_bytes_and_passes_other_values():
  assert catalog.as_text("café".encode("utf-8")) == "café"  # latin-1 would give 'cafÃ©'
  assert catalog.as_text("already") == "already"
  assert catalog.as_text(5.0) == "5.0" and catalog.as_text(False) == "False"


def test_float_and_bad_audio_follow_the_audio_contract():
  x = np.array([0.5, -1.0, 1.0, 0.0], np.float32)
  ex = catalog.standardize("voxceleb", [{"audio": x, "label": b"s"}])[0]
  assert ex["audio"].dtype == np.int16 and ex["audio"].tolist() == [16384, -32768, 32767, 0]  # round(32768 x), clipped
  for audio, match in [(np.array([0.0, np.nan]), r"example 0: audio has a non-finite sample"),
                       (np.array([12.0, 0.0]), r"example 0: float audio must be in \[-1, 1\]"),
                       (np.zeros((2, 8), np.int16), r"example 0: audio must be mono \[N\]")]:
    with pytest.raises(ValueError, match=match):
      catalog.standardize("voxceleb", [{"audio": audio, "label": b"s"}])[0]
  with pytest.raises(ValueError, match=r"example 0 has no audio field 'speech'; it has \['audio', 'text'\]"):
    catalog.standardize("librispeech", [{"audio": x, "text": b"A"}])[0]
