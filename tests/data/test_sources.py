"""Opening prepared splits: sample rates checked against the dataset's description, unknown names and splits."""

import types

import numpy as np
import pytest

from asrjax.data import catalog, pipeline, sources
from tests.data import fake_tfds


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("tfds"))
  for config in fake_tfds.RATES:
    fake_tfds.build(d, config)
  return d


def test_a_16_khz_split_opens_and_feeds_the_pipeline(data_dir):
  split = sources.open_split("fake_rate_speech/rate16000", "train", data_dir)
  assert split.sample_rate == 16_000 and len(split) == 6
  index = pipeline.build_index(split, lambda t: [1] * len(t))
  assert index.num_samples.tolist() == [100, 101, 102, 103, 104, 105]  # hand-built lengths
  assert split[3]["audio"].tolist() == [3] * 103


def test_another_sample_rate_is_refused_naming_both_rates(data_dir):
  with pytest.raises(ValueError, match=r"fake_rate_speech/rate8000 split train: audio is sampled at 8000 Hz but "
                                       r"16000 Hz is expected"):
    sources.open_split("fake_rate_speech/rate8000", "train", data_dir)
  # asked for explicitly, it opens
  assert sources.open_split("fake_rate_speech/rate8000", "dev", data_dir, sample_rate=8_000).sample_rate == 8_000
  with pytest.raises(ValueError, match=r"8000 Hz but 22050 Hz is expected"):
    sources.open_split("fake_rate_speech/rate8000", "dev", data_dir, sample_rate=22_050)
  # the split itself carries its rate into catalog.Standardized
  split = sources.open_split("fake_rate_speech/rate8000", "dev", data_dir, sample_rate=None)
  with pytest.raises(ValueError, match=r"8000 Hz but 16000 Hz is expected"):
    catalog.Standardized(split, catalog.Fields())


def test_an_undeclared_rate_is_accepted_with_a_warning(data_dir, caplog):
  split = sources.open_split("fake_rate_speech/undeclared", "train", data_dir)
  assert split.sample_rate is None and len(split) == 6
  assert any("declares no sample rate" in r.getMessage() for r in caplog.records)


def test_unknown_names_splits_and_directories(data_dir, tmp_path):
  with pytest.raises(ValueError, match=r"unknown dataset 'fake_rate_speeh'; did you mean 'fake_rate_speech'"):
    sources.open_split("fake_rate_speeh/rate16000", "train", data_dir)
  with pytest.raises(ValueError, match=r"unknown dataset 'nonexistent_corpus'\. asrjax's own corpora"):
    sources.open_split("nonexistent_corpus", "train", data_dir)
  with pytest.raises(ValueError, match=r"has splits \['train', 'dev'\], not split 'test'"):
    sources.open_split("fake_rate_speech/rate16000", "test", data_dir)
  with pytest.raises(sources.DatasetMissingError, match=r"not prepared under .*empty"):
    sources.open_split("fake_rate_speech/rate16000", "train", str(tmp_path / "empty"))
  with pytest.raises(sources.DatasetMissingError, match=r"build_corpus.py --corpus=espeak --config=small --data_dir="):
    sources.open_split("espeak_speech/small", "train", str(tmp_path / "empty"))
  with pytest.raises(ValueError, match=r"unknown corpus config 'tinny': choose one of tiny\|small\|full\. "
                                       r"Did you mean 'tiny'\?"):
    sources.open_split("espeak_speech/tinny", "train", str(tmp_path / "empty"))


def test_sample_rate_of_reads_audio_features_and_metadata():
  audio_feature = types.SimpleNamespace(features={"speech": types.SimpleNamespace(sample_rate=8_000)}, metadata={})
  assert catalog.sample_rate_of(types.SimpleNamespace(dataset_info=audio_feature), "speech") == 8_000
  meta = types.SimpleNamespace(features={"audio": object()}, metadata={"sample_rate": 22_050})
  assert catalog.sample_rate_of(types.SimpleNamespace(dataset_info=meta)) == 22_050
  assert catalog.sample_rate_of([{"audio": np.zeros(3, np.int16)}]) is None  # a plain list declares nothing
  with pytest.raises(ValueError, match=r"8000 Hz but 16000 Hz is expected"):
    catalog.standardize("librispeech", types.SimpleNamespace(dataset_info=audio_feature))
  with pytest.raises(ValueError, match=r"sampled at 44100 Hz"):
    catalog.standardize("librispeech", [], sample_rate=44_100)


def test_a_prepared_split_opens_without_its_builder_or_the_synthesis_stack(data_dir):
  """A fresh process that never imports the builder (nor asrjax.corpus) opens the prepared split from
  its directory, and the training and inference code it imports leave the synthesis stack out."""
  import subprocess
  import sys
  code = ("import sys; from asrjax.data import sources; "
          f"s = sources.open_split('fake_rate_speech/rate16000', 'train', {data_dir!r}); "
          "import asrjax.train.trainer, asrjax.inference.recognizer, asrjax.inference.evaluation; "
          "print(len(s), [int(x) for x in s[3]['audio'][:2]], sorted(m for m in sys.modules "
          "if m.startswith('asrjax.corpus') or m == 'tests.data.fake_tfds'))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split("\n")[-2] == "6 [3, 3] []"  # 6 examples; example 3 holds 103 samples of value 3
