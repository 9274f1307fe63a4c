"""Per-split utterance lengths (stored in the dataset metadata) and a corpus summary table."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds


def split_lengths(builder: tfds.core.DatasetBuilder, split: str) -> np.ndarray:
  """``[N]`` int64 audio samples per example, in `tfds.data_source` index order."""
  source = builder.as_data_source(split=split)
  return np.array([len(source[i]["audio"]) for i in range(len(source))], np.int64)


def record_lengths(builder: tfds.core.DatasetBuilder) -> None:
  """Writes ``metadata["num_samples"][split]`` so pipelines can bucket without reading audio."""
  builder.info.metadata["num_samples"] = {
      split: split_lengths(builder, split).tolist() for split in builder.info.splits
  }
  builder.info.write_to_directory(builder.data_dir)


def summary_table(builder: tfds.core.DatasetBuilder) -> str:
  """Markdown table: per split, examples, hours of audio, speakers, accents, synthesizer families and
  distinct base voices (speech datasets; an espeak_speech example's base voice is its variant)."""
  rate = builder.info.metadata.get("sample_rate", 16_000)
  lengths = builder.info.metadata.get("num_samples", {})
  rows = [f"{builder.name}/{builder.builder_config.name}",
          "| split | examples | hours | speakers | accents | families | base voices |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
  for split in builder.info.splits:
    source = builder.as_data_source(split=split)
    n = lengths.get(split) or split_lengths(builder, split)
    speakers, accents, families, voices = set(), set(), set(), set()
    for i in range(len(source)):
      ex = source[i]
      if "turns" in ex:
        speakers.update(ex["turns"]["speaker_id"])
        accents.update(ex["turns"]["accent"])
        families.update(ex["turns"].get("family", [b"espeak-ng"]))
      else:
        speakers.add(ex["speaker_id"])
        accents.add(ex["accent"])
        families.add(ex.get("family", b"espeak-ng"))
        voices.add(ex.get("base_voice", b"espeak-ng:" + ex["variant"]))
    names = ", ".join(sorted(f.decode() if isinstance(f, bytes) else str(f) for f in families))
    rows.append(f"| {split} | {len(source)} | {np.sum(n) / rate / 3600:.2f} | {len(speakers)} | {len(accents)} "
                f"| {names} | {len(voices) or '-'} |")
  return "\n".join(rows)
