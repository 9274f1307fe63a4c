"""Opening a prepared TFDS split for random access, with errors that name files.

`open_split` works for the embedded corpus (``espeak_speech/small``) and for any
TFDS dataset prepared as array_record (e.g. ``librispeech``), without TensorFlow.
A missing dataset says which command builds it; a truncated or corrupt file is
reported with its path, at open time or when a record is read.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow_datasets as tfds

from asrjax.data import espeak_corpus  # noqa: F401  (registers the espeak builders with TFDS)
from asrjax.data.pipeline import DataError


class DatasetMissingError(FileNotFoundError):
  """The requested dataset/config/split has not been prepared under data_dir."""


@dataclasses.dataclass
class Split:
  """A random-access split and what describes it."""

  source: object  # `tfds.data_source` split: len() and __getitem__
  files: list
  builder: tfds.core.DatasetBuilder

  @property
  def metadata(self) -> dict:
    return dict(self.builder.info.metadata or {})

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, i: int) -> dict:
    """Record ``i``; a corrupt record raises `DataError` naming the split's files."""
    try:
      return self.source[int(i)]
    except Exception as e:  # array_record / protobuf raise many types for corrupt data
      raise DataError(f"cannot read example {int(i)} from {self.files}: {e}") from e


def open_split(name: str, split: str, data_dir: str) -> Split:
  """Opens ``name`` (``"dataset/config"``) ``split`` prepared under ``data_dir``.

  Raises:
    DatasetMissingError: not prepared; the message gives the build command.
    DataError: naming the files if they cannot be opened.
  """
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    config = name.split("/")[1] if "/" in name else "tiny"
    raise DatasetMissingError(
        f"{name} is not prepared under {data_dir}. Build it with: "
        f"python experiments/build_corpus.py --config={config} --data_dir={data_dir}"
        if name.startswith("espeak_") else
        f"{name} is not prepared under {data_dir}; prepare it with tfds (array_record format)."
    )
  if split not in builder.info.splits:
    raise ValueError(f"{name} has splits {list(builder.info.splits)}, not {split!r}.")
  files = [os.fspath(p) for p in builder.info.splits[split].filepaths]
  missing = [f for f in files if not os.path.exists(f)]
  if missing:
    raise DataError(f"{name} split {split}: missing data files {missing}.")
  try:
    source = builder.as_data_source(split=split)
    len(source)
  except Exception as e:
    raise DataError(f"cannot open {name} split {split} from {files}: {e}") from e
  return Split(source, files, builder)
