"""One example layout for every speech corpus: the embedded one and TFDS catalogue sets.

The pipeline and the trainers read ``audio`` (int16 ``[N]`` at 16 kHz), ``text``
(lowercase words), ``speaker_id`` and ``id``. `standardize` maps a TFDS split of a
known corpus onto that layout: LibriSpeech stores audio as ``speech`` (int64) and
uppercase transcripts; VoxCeleb has no transcripts and an integer ``label`` per speaker
(named back ``id1nnnn``, as VoxCeleb names its speakers).
Audio is converted by `asrjax.data.audio.to_int16`: int16 as is, int32/int64 within
the int16 range (outside it is an error, never silently wrapped), float in
``[-1, 1]`` scaled by 32768 (int16-scaled floats, NaN and multi-channel arrays are
errors naming the example). The sample rate is checked once, when the view is made:
given, or read from the source's description (`sample_rate_of`), it must be 16 kHz.

LibriSpeech and VoxCeleb use ``tfds.features.Audio`` and need TensorFlow
(``pip install -e '.[catalog]'``); the embedded corpus does not.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from asrjax.data import audio as audio_lib


@dataclasses.dataclass(frozen=True)
class Fields:
  """Where a corpus keeps each standard field (None: the corpus has no such field)."""

  audio: str = "audio"
  text: str | None = "text"
  speaker: str | None = "speaker_id"
  id: str | None = "id"
  lowercase: bool = False
  speaker_format: str | None = None  # an integer speaker label's name (``str.format``); None: ``str(label)``


KNOWN: dict[str, Fields] = {
    "espeak_speech": Fields(),
    "synth_speech": Fields(),
    "librispeech": Fields(audio="speech", text="text", speaker="speaker_id", id="id", lowercase=True),
    # TFDS VoxCeleb's label is the integer n of speaker id1nnnn (``int(name[3:])``): named back "id1%04d"
    "voxceleb": Fields(audio="audio", text=None, speaker="label", id=None, speaker_format="id1{:04d}"),
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


def sample_rate_of(source, audio_key: str = "audio") -> int | None:
  """The sample rate (Hz) ``source`` declares, or ``None`` when it declares none.

  Looked up, in order: ``source.sample_rate`` (`asrjax.data.sources.Split`), then the
  TFDS description (``source.dataset_info`` of a ``tfds.data_source``, or
  ``source.builder.info``): the ``sample_rate`` of the audio feature
  (``tfds.features.Audio``), else ``metadata["sample_rate"]`` (the embedded corpus).
  """
  rate = getattr(source, "sample_rate", None)
  if rate is not None:
    return rate
  info = getattr(source, "dataset_info", None)
  if info is None and getattr(source, "builder", None) is not None:
    info = source.builder.info
  if info is None:
    return None
  return info_sample_rate(info, audio_key)


def info_sample_rate(info, audio_key: str = "audio") -> int | None:
  """Sample rate declared by a ``tfds.core.DatasetInfo`` (audio feature, else metadata), or ``None``."""
  try:
    feature = info.features[audio_key]
  except (KeyError, TypeError, AttributeError):
    feature = None
  rate = getattr(feature, "sample_rate", None)
  if rate is None:
    rate = dict(getattr(info, "metadata", None) or {}).get("sample_rate")
  return rate


class Standardized(Sequence):
  """Random-access view of ``source`` with the standard fields (others passed through).

  Args:
    source: random-access records (``len`` and ``[i]``).
    fields: where ``source`` keeps each standard field.
    sample_rate: the source's rate in Hz; ``None`` reads it from the source
      (`sample_rate_of`; not checked when the source declares none).
    expected_sample_rate: the rate the front end needs (16 kHz); a different one is a
      `ValueError` naming both, raised here, not at the first record.
  """

  def __init__(self, source, fields: Fields, *, sample_rate: int | None = None,
               expected_sample_rate: int = audio_lib.SAMPLE_RATE):
    self._source, self._fields = source, fields
    found = sample_rate if sample_rate is not None else sample_rate_of(source, fields.audio)
    audio_lib.check_sample_rate(found, expected=expected_sample_rate, name="Standardized source")

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, i: int) -> dict:
    ex = dict(self._source[i])
    f = self._fields
    if f.audio not in ex:
      raise ValueError(f"example {i} has no audio field {f.audio!r}; it has {sorted(ex)}.")
    ex["audio"] = audio_lib.to_int16(ex.pop(f.audio), name=f"example {i}")
    if f.text is not None:
      text = as_text(ex.pop(f.text))
      ex["text"] = " ".join(text.lower().split()) if f.lowercase else text
    if f.speaker is not None:
      label = ex.pop(f.speaker)
      integer = isinstance(label, (int, np.integer)) or (isinstance(label, np.ndarray) and label.ndim == 0
                                                         and np.issubdtype(label.dtype, np.integer))
      ex["speaker_id"] = f.speaker_format.format(int(label)) if f.speaker_format and integer else as_text(label)
    ex["id"] = as_text(ex.pop(f.id)) if f.id is not None else str(i)
    return ex


def standardize(name: str, source, *, sample_rate: int | None = None,
                expected_sample_rate: int = audio_lib.SAMPLE_RATE) -> Standardized:
  """``source`` (a split of dataset ``name``) with the standard fields (see `Standardized`)."""
  return Standardized(source, fields_for(name), sample_rate=sample_rate, expected_sample_rate=expected_sample_rate)
