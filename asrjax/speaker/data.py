"""Speaker-verification data: a split's speaker table, and speaker-balanced crop batches.

Training batches hold ``P`` speakers x ``K`` utterances each (so every batch has target
pairs for a pairwise loss), each utterance a random crop of ``crop_samples`` (shorter
utterances zero-padded, their paddings marked). A batch is a pure function of
``(seed, step)``, so resuming at a step gives the batches an uninterrupted run would
have seen, on any number of hosts (each takes its rows of the global batch).

References:
  Wan et al., "Generalized end-to-end loss for speaker verification", ICASSP 2018 (the
  P x K batch).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from asrjax import atomic_file
from asrjax.data import catalog

GROUP_FIELDS = ("gender", "accent", "region", "family", "noise", "band_limited")


@dataclasses.dataclass(frozen=True)
class SpeakerTable:
  """Per utterance of a split: ``speaker [N]`` (index into ``speakers``), ``ids [N]``,
  ``num_samples [N]`` and ``groups`` (``{field: [N] str}``, the fields of `GROUP_FIELDS`
  the split has)."""

  speakers: tuple
  speaker: np.ndarray
  ids: tuple
  num_samples: np.ndarray
  groups: dict

  def utterances_of(self) -> list[np.ndarray]:
    """``[S]`` arrays of utterance indices, one per speaker."""
    order = np.argsort(self.speaker, kind="stable")
    bounds = np.searchsorted(self.speaker[order], np.arange(len(self.speakers) + 1))
    return [order[bounds[s]:bounds[s + 1]] for s in range(len(self.speakers))]


def speaker_table(split, cache: str | None = None) -> SpeakerTable:
  """Reads every example's speaker, id, length and group fields (once: ``cache``, a JSON path,
  keeps them).

  Raises:
    ValueError: the split has no examples, or an example lacks ``speaker_id``.
  """
  if cache and os.path.exists(cache):
    with open(cache) as f:
      d = json.load(f)
    return SpeakerTable(tuple(d["speakers"]), np.asarray(d["speaker"], np.int32), tuple(d["ids"]),
                        np.asarray(d["num_samples"], np.int64), {k: np.asarray(v) for k, v in d["groups"].items()})
  if len(split) == 0:
    raise ValueError("the split has no examples.")
  names, ids, lengths, groups = [], [], [], {}
  for i in range(len(split)):
    ex = split[i]
    if "speaker_id" not in ex:
      raise ValueError(f"example {i} has no speaker_id: speaker verification needs speaker labels.")
    names.append(catalog.as_text(ex["speaker_id"]))
    ids.append(catalog.as_text(ex["id"]) if "id" in ex else str(i))
    lengths.append(int(np.asarray(ex["audio"]).shape[-1]))
    for k in GROUP_FIELDS:
      if k in ex:
        v = ex[k]
        groups.setdefault(k, []).append(catalog.as_text(v) if isinstance(v, bytes) else str(v.item() if hasattr(
            v, "item") else v))
  speakers, speaker = np.unique(np.asarray(names), return_inverse=True)
  table = SpeakerTable(tuple(speakers.tolist()), speaker.astype(np.int32), tuple(ids), np.asarray(lengths, np.int64),
                       {k: np.asarray(v) for k, v in groups.items() if len(v) == len(names)})
  if cache:
    with atomic_file.open(cache) as f:
      json.dump({"speakers": list(table.speakers), "speaker": table.speaker.tolist(), "ids": list(table.ids),
                 "num_samples": table.num_samples.tolist(),
                 "groups": {k: v.tolist() for k, v in table.groups.items()}}, f)
  return table


def crop(audio: np.ndarray, length: int, position: float) -> tuple[np.ndarray, np.ndarray]:
  """The ``length``-sample window of int16 ``audio [N]`` starting ``position`` (in [0, 1)) of
  the way into the possible starts, and its paddings ``[length]``; an utterance shorter
  than ``length`` is kept whole and zero-padded at the end."""
  n = audio.shape[0]
  start = int(position * (n - length + 1)) if n >= length else 0
  window = audio[start:start + length]
  out, pads = np.zeros(length, np.int16), np.zeros(length, np.float32)
  out[:window.shape[0]] = window
  pads[window.shape[0]:] = 1.0
  return out, pads


class CropBatches:
  """Speaker-balanced training batches (`asrjax.train.task.Batches`).

  Each global batch: ``speakers_per_batch`` distinct speakers (drawn without replacement),
  ``utterances_per_speaker`` of each (without replacement where the speaker has enough),
  each cropped to ``crop_samples``. Items: ``{"audio": int16 [b, crop], "audio_paddings":
  [b, crop], "speaker": int32 [b], "utterance": int32 [b]}`` with ``b`` this host's rows, and
  for each of ``fields`` (``{name: [N]}``, one value per utterance) its rows' values.
  """

  dropped = 0

  def __init__(self, split, table: SpeakerTable, *, speakers_per_batch: int, utterances_per_speaker: int,
               crop_samples: int, seed: int, step: int = 0, host_index: int = 0, host_count: int = 1,
               fields: dict | None = None):
    for name, v, lo in (("speakers_per_batch", speakers_per_batch, 1), ("utterances_per_speaker",
                                                                          utterances_per_speaker, 1),
                        ("crop_samples", crop_samples, 1)):
      if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}; got {v!r}.")
    self._per = table.utterances_of()
    usable = [s for s, u in enumerate(self._per) if len(u)]
    if len(usable) < speakers_per_batch:
      raise ValueError(f"speakers_per_batch={speakers_per_batch} but the split has {len(usable)} speakers.")
    rows = speakers_per_batch * utterances_per_speaker
    if rows % host_count:
      raise ValueError(f"the global batch ({rows} rows) must divide among {host_count} hosts.")
    self._split, self._usable = split, np.asarray(usable)
    self._p, self._k, self._crop, self._seed = speakers_per_batch, utterances_per_speaker, crop_samples, seed
    self._rows = slice(host_index * rows // host_count, (host_index + 1) * rows // host_count)
    self.step = step
    self._fields = {k: np.asarray(v) for k, v in (fields or {}).items()}
    for k, v in self._fields.items():
      if v.shape[:1] != (len(table.ids),):
        raise ValueError(f"fields[{k!r}] must have one value per utterance ({len(table.ids)}); got {list(v.shape)}.")

  def batch_at(self, step: int) -> dict:
    rng = np.random.default_rng([self._seed, step])
    speakers = rng.choice(self._usable, size=self._p, replace=False)
    utts = np.concatenate([rng.choice(self._per[s], size=self._k, replace=len(self._per[s]) < self._k)
                           for s in speakers])
    spk = np.repeat(speakers, self._k)
    positions = rng.random(len(utts))  # every row's crop is drawn (the same draws on every host)
    rows = range(len(utts))[self._rows]  # only this host's rows are read
    crops = [crop(np.asarray(self._split[int(utts[r])]["audio"], np.int16), self._crop, positions[r]) for r in rows]
    return {"audio": np.stack([c[0] for c in crops]), "audio_paddings": np.stack([c[1] for c in crops]),
            "speaker": spk[self._rows].astype(np.int32), "utterance": utts[self._rows].astype(np.int32),
            **{k: v[utts[self._rows]] for k, v in self._fields.items()}}

  def __next__(self) -> dict:
    batch = self.batch_at(self.step)
    self.step += 1
    return batch

  def state(self) -> dict:
    return {"step": self.step}

  def close(self) -> None:
    pass


__all__ = ["CropBatches", "GROUP_FIELDS", "SpeakerTable", "crop", "speaker_table"]
