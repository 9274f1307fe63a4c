"""One example layout for every speech corpus: the embedded one and TFDS catalogue sets.

The pipeline and the trainers read ``audio`` (int16 ``[N]`` at 16 kHz), ``text``
(lowercase words), ``speaker_id`` and ``id``. `standardize` maps a TFDS split of a
known corpus onto that layout: LibriSpeech stores audio as ``speech`` (int64) and
uppercase transcripts; VoxCeleb has no transcripts and a ``label`` per speaker.
Audio outside the int16 range is an error, never silently wrapped.

LibriSpeech and VoxCeleb use ``tfds.features.Audio`` and need TensorFlow
(``pip install -e '.[catalog]'``); the embedded corpus does not.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Fields:
  """Where a corpus keeps each standard field (None: the corpus has no such field)."""

  audio: str = "audio"
  text: str | None = "text"
  speaker: str | None = "speaker_id"
  id: str | None = "id"
  lowercase: bool = False


KNOWN: dict[str, Fields] = {
    "espeak_speech": Fields(),
    "librispeech": Fields(audio="speech", text="text", speaker="speaker_id", id="id", lowercase=True),
    "voxceleb": Fields(audio="audio", text=None, speaker="label", id=None),
}


def as_text(x) -> str:
  """A record's string field as ``str`` (array_record sources return ``bytes``)."""
  return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def fields_for(name: str) -> Fields:
  """Field layout of dataset ``name`` (``"dataset"`` or ``"dataset/config"``)."""
  base = name.split("/")[0].split(":")[0]
  if base not in KNOWN:
    raise ValueError(f"no field layout for dataset {base!r}; known: {sorted(KNOWN)}.")
  return KNOWN[base]


class Standardized(Sequence):
  """Random-access view of ``source`` with the standard fields (others passed through)."""

  def __init__(self, source, fields: Fields):
    self._source, self._fields = source, fields

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, i: int) -> dict:
    ex = dict(self._source[i])
    f = self._fields
    audio = np.asarray(ex.pop(f.audio))
    if audio.ndim != 1:
      raise ValueError(f"example {i}: audio must be [N]; got shape {audio.shape}.")
    if audio.dtype != np.int16:
      if audio.size and (audio.min() < -32768 or audio.max() > 32767):
        raise ValueError(f"example {i}: audio values outside the int16 range ({audio.min()}, {audio.max()}).")
      audio = audio.astype(np.int16)
    ex["audio"] = audio
    if f.text is not None:
      text = as_text(ex.pop(f.text))
      ex["text"] = " ".join(text.lower().split()) if f.lowercase else text
    if f.speaker is not None:
      ex["speaker_id"] = as_text(ex.pop(f.speaker))
    ex["id"] = as_text(ex.pop(f.id)) if f.id is not None else str(i)
    return ex


def standardize(name: str, source) -> Standardized:
  """``source`` (a split of dataset ``name``) with the standard fields."""
  return Standardized(source, fields_for(name))
