"""Opening a prepared TFDS split for random access, with errors that name files.

`open_split` works for the embedded corpus (``espeak_speech/small``) and for any
TFDS dataset prepared as array_record (e.g. ``librispeech``), without TensorFlow.
A missing dataset says which command builds it; an unknown dataset or config name
lists the close matches; a truncated or corrupt file is reported with its path, at
open time or when a record is read. The split's sample rate (from its description:
the audio feature's ``sample_rate`` or ``metadata["sample_rate"]``) must be the one
asked for, 16 kHz by default, or the split is refused with both rates named.

A prepared dataset is opened from its directory (``tfds.builder_from_directory``):
no builder code runs, so opening a split of the embedded corpus does not import
the synthesis stack (`asrjax.corpus`); that is imported only to explain a dataset
that is not prepared (its configs and the build command).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os

import numpy as np
import tensorflow_datasets as tfds

from asrjax.data import audio as audio_lib
from asrjax.data import catalog
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

  @property
  def sample_rate(self) -> int | None:
    """Hz, as the dataset declares it (``None``: not declared)."""
    return catalog.info_sample_rate(self.builder.info, _audio_key(self.builder.name))

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, i: int) -> dict:
    """Record ``i``; a corrupt record raises `DataError` naming the split's files."""
    try:
      return self.source[int(i)]
    except Exception as e:  # array_record / protobuf raise many types for corrupt data
      raise DataError(f"cannot read example {int(i)} from {self.files}: {e}") from e


class Subset:
  """Examples ``indices`` of ``split`` (in that order), with its files, sample rate and metadata."""

  def __init__(self, split, indices):
    self._split, self.indices = split, np.asarray(indices, np.int64)
    bad = self.indices[(self.indices < 0) | (self.indices >= len(split))]
    if bad.size:
      raise ValueError(f"Subset indices {bad[:3].tolist()} are outside the split's {len(split)} examples.")
    self.files = list(getattr(split, "files", []))
    self.sample_rate = getattr(split, "sample_rate", None)

  @property
  def metadata(self) -> dict:
    return dict(getattr(self._split, "metadata", None) or {})

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, i: int) -> dict:
    return self._split[int(self.indices[int(i)])]


def speaker_subset(split, speakers) -> Subset:
  """The examples of ``split`` whose ``speaker_id`` is in ``speakers`` (one pass over the split).

  Raises:
    ValueError: no speakers given, or a speaker with no example in the split (named).
  """
  wanted = {str(s) for s in speakers}
  if not wanted:
    raise ValueError("speaker_subset needs at least one speaker.")
  keep, seen = [], set()
  for i in range(len(split)):
    s = catalog.as_text(split[i].get("speaker_id", ""))
    if s in wanted:
      keep.append(i)
      seen.add(s)
  missing = sorted(wanted - seen)
  if missing:
    raise ValueError(f"{len(missing)} of the {len(wanted)} speakers have no example in the split, e.g. "
                     f"{missing[:3]}.")
  return Subset(split, keep)


def _audio_key(dataset: str) -> str:
  try:
    return catalog.fields_for(dataset).audio
  except ValueError:
    return "audio"


def _prepared_dir(name: str, data_dir: str) -> str | None:
  """``<data_dir>/<dataset>/<config>/<version>`` of the newest prepared version of ``name``
  (one with a ``dataset_info.json``), or None."""
  dataset, _, rest = name.partition("/")
  config, _, version = rest.partition(":")
  parts = [data_dir, dataset.split(":")[0]] + ([config] if config else [])
  root = os.path.join(*parts)
  if not os.path.isdir(root):
    return None
  found = []
  for v in ([version] if version else os.listdir(root)):
    try:
      key = tuple(int(x) for x in v.split("."))
    except ValueError:
      continue
    if os.path.exists(os.path.join(root, v, "dataset_info.json")):
      found.append((key, v))
  return os.path.join(root, max(found)[1]) if found else None


_OWN = ("espeak_", "synth_")  # the embedded corpora's builder names (asrjax.corpus.espeak_corpus)


def _builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
  """The prepared dataset's read-only builder; else ``tfds.builder`` (for `open_split`'s
  "not prepared" message), with a short message for an unknown dataset (TFDS lists its
  whole catalogue)."""
  if not isinstance(name, str) or not name or name.count("/") > 1:
    raise ValueError(f"dataset name must be 'dataset' or 'dataset/config'; got {name!r}.")
  prepared = _prepared_dir(name, data_dir)
  if prepared is not None:
    return tfds.builder_from_directory(prepared)
  if name.startswith(_OWN):
    from asrjax.corpus import espeak_corpus  # noqa: F401, PLC0415 -- registers the builders: configs, build command
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    base = name.split("/")[0].split(":")[0]
    close = difflib.get_close_matches(base, tfds.list_builders(with_community_datasets=False), n=3)
    raise ValueError(
        f"unknown dataset {base!r}" + (f"; did you mean {' or '.join(map(repr, close))}?" if close else ".")
        + " asrjax's own corpora are 'synth_speech' and 'synth_multitalker' (espeak-ng, flite and, held out, "
        "festival) and the older 'espeak_speech' and 'espeak_multitalker' (configs tiny|small|full).") from None


def open_split(name: str, split: str, data_dir: str, *, sample_rate: int | None = audio_lib.SAMPLE_RATE) -> Split:
  """Opens ``name`` (``"dataset/config"``) ``split`` prepared under ``data_dir``.

  Args:
    name: ``"dataset"`` or ``"dataset/config"``, e.g. ``"espeak_speech/tiny"``.
    split: e.g. ``"train"``.
    data_dir: the TFDS data directory.
    sample_rate: the rate (Hz) the caller's front end needs; a split declaring another
      is refused. ``None`` skips the check. A split that declares no rate is accepted
      with a logged warning.

  Raises:
    ValueError: unknown dataset, config or split (naming the valid ones), or a split
      whose sample rate is not ``sample_rate`` (naming both).
    DatasetMissingError: not prepared; the message gives the build command.
    DataError: naming the files if they cannot be opened.
  """
  builder = _builder(name, data_dir)
  if not builder.is_prepared():
    config = name.split("/")[1] if "/" in name else "tiny"
    raise DatasetMissingError(
        f"{name} is not prepared under {data_dir}. Build it with: "
        f"python experiments/build_corpus.py --corpus={name.split('_')[0]} --config={config} --data_dir={data_dir}"
        if name.startswith(_OWN) else
        f"{name} is not prepared under {data_dir}; prepare it with tfds (array_record format)."
    )
  if split not in builder.info.splits:
    raise ValueError(f"{name} has splits {list(builder.info.splits)}, not split {split!r}.")
  found = catalog.info_sample_rate(builder.info, _audio_key(name))
  if sample_rate is not None:
    if found is None:
      logging.warning("%s declares no sample rate; assuming %s Hz.", name, sample_rate)
    audio_lib.check_sample_rate(found, expected=sample_rate, name=f"{name} split {split}")
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
