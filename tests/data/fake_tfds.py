"""A tiny TFDS dataset built in a test (no espeak-ng needed): ``fake_rate_speech/<config>``.

Configs ``rate16000`` and ``rate8000`` declare that sample rate in ``metadata`` (as the
embedded corpus does); ``undeclared`` declares none. Splits ``train`` (6 examples)
and ``dev`` (2), int16 audio of ``100 + i`` samples with value ``i``, text ``"ab"``.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

RATES = {"rate16000": 16_000, "rate8000": 8_000, "undeclared": None}


class FakeRateSpeech(tfds.core.GeneratorBasedBuilder):
  """Registered with TFDS as ``fake_rate_speech`` when this module is imported."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=name) for name in RATES]

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(), "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
            "text": tfds.features.Text()}),
        metadata=tfds.core.MetadataDict(),
        disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager
    rate = RATES[self.builder_config.name]
    if rate is not None:
      self.info.metadata["sample_rate"] = rate
    return {"train": self._generate_examples("t", 6), "dev": self._generate_examples("d", 2)}

  def _generate_examples(self, prefix, n):
    for i in range(n):
      yield f"{prefix}{i}", {"id": f"{prefix}{i}", "audio": np.full(100 + i, i, np.int16), "text": "ab"}


def build(data_dir: str, config: str) -> str:
  """Prepares ``fake_rate_speech/<config>`` under ``data_dir`` (a fraction of a second); returns the name."""
  FakeRateSpeech(config=config, data_dir=data_dir).download_and_prepare(file_format="array_record")
  return f"fake_rate_speech/{config}"
