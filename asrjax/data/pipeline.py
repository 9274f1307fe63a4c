"""Deterministic, resumable, length-bucketed batches from a TFDS data source.

Design. Batches are a pure function of ``(seed, step)``: `batch_schedule` shuffles
each epoch's example indices, sorts them by length within windows of
``sort_window`` batches, cuts batches, gives each batch the smallest audio bucket
that holds its longest example, and shuffles the batch order. A batch's shapes come
from a small fixed set (one per bucket), so the train step compiles once per
bucket, never per batch. Resuming from a checkpoint needs only the step number;
multi-host training gives every host the same global batch and each host reads
its own contiguous slice (``host_index``/``host_count``).

Reading uses `tfds.data_source` (array_record random access) -- no TensorFlow and
no worker processes: the host only reads, tokenises and pads int16 audio; log-mel
features and SpecAugment run on the accelerator inside the jitted train step
(`asrjax.frontend.features`, `asrjax.frontend.spec_augment`). A background thread keeps
``prefetch`` batches ready.

Audio follows `asrjax.data.audio`'s contract: mono ``[N]`` int16, int32/int64 within
the int16 range, or float in ``[-1, 1]`` (scaled by 32768), at 16 kHz; anything else
(float audio in int16 scale, NaN, multi-channel, 8-bit) is a `ValueError` naming the
example, raised by `build_index` before training starts. The sample rate is checked
where the dataset states it (`asrjax.data.sources.open_split`).

Examples that cannot be trained on are dropped and counted, never passed on:
empty audio, audio longer than the largest bucket, transcripts with more tokens
than ``max_labels``, and transcripts needing more than ``labels_per_frame`` labels per
encoder frame.

Labels are padded per bucket too (``max_labels`` may be one length per bucket): the
joint network's ``[B, T, U, H]`` activations are the largest tensor of transducer
training, and short audio never carries long transcripts, so padding every batch
to the longest transcript of the corpus would waste most of that work.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from asrjax.data import audio as audio_lib, catalog


class DataError(RuntimeError):
  """A record could not be read; the message names the split's files."""


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Batching options.

  Every field is checked at construction; a bad value is a `ValueError` naming it.

  Attributes:
    batch_size: global batch size (all hosts together), >= 1; divisible by host_count.
    buckets: audio lengths in samples, >= 1 and non-decreasing (at least one); each
      batch is padded to one.
    max_labels: label padding length (>= 1), one int or one per bucket
      (non-decreasing); transcripts longer than the last are dropped. A batch gets the
      first bucket that holds both its longest audio and its longest transcript.
    sort_window: batches per window sorted by length before cutting, >= 1.
    seed: shuffling seed, >= 0.
    frame_step: samples per encoder input frame (10 ms = 160 at 16 kHz), >= 1.
    subsampling: encoder time reduction (input frames per encoder frame), >= 1.
    labels_per_frame: transcripts needing more labels per encoder frame are dropped
      (1 for CTC; a transducer may emit several labels in one frame), >= 1.
  """

  batch_size: int
  buckets: tuple = (32_000, 64_000, 96_000, 160_000)
  max_labels: int | tuple = 128
  sort_window: int = 16
  seed: int = 0
  frame_step: int = 160
  subsampling: int = 1
  labels_per_frame: int = 1

  def __post_init__(self):
    for field in ("batch_size", "sort_window", "frame_step", "subsampling", "labels_per_frame"):
      _check_int(field, getattr(self, field), minimum=1)
    _check_int("seed", self.seed, minimum=0)
    if isinstance(self.buckets, (str, bytes)) or not isinstance(self.buckets, (Sequence, np.ndarray)) or not len(
        self.buckets):
      raise ValueError(f"buckets must be a non-empty sequence of audio lengths in samples; got {self.buckets!r}.")
    for b in self.buckets:
      _check_int("buckets", b, minimum=1)
    object.__setattr__(self, "buckets", tuple(int(b) for b in self.buckets))
    if isinstance(self.max_labels, (Sequence, np.ndarray)) and not isinstance(self.max_labels, (str, bytes)):
      for n in self.max_labels:
        _check_int("max_labels", n, minimum=1)
      object.__setattr__(self, "max_labels", tuple(int(n) for n in self.max_labels))
    else:
      _check_int("max_labels", self.max_labels, minimum=1)
    labels = self.label_lengths
    if len(labels) != len(self.buckets):
      raise ValueError(f"max_labels {self.max_labels} needs one length per bucket {self.buckets}.")
    if list(self.buckets) != sorted(self.buckets):
      raise ValueError(f"buckets {self.buckets} must be non-decreasing (ascending audio lengths).")
    if list(labels) != sorted(labels):
      raise ValueError(f"max_labels {self.max_labels} must be non-decreasing, like the buckets {self.buckets}.")

  @property
  def label_lengths(self) -> tuple:
    """Label padding length of each bucket."""
    if isinstance(self.max_labels, (int, np.integer)):
      return (int(self.max_labels),) * len(self.buckets)
    return tuple(int(x) for x in self.max_labels)


def _check_int(field: str, value, *, minimum: int) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"PipelineConfig.{field} must be an integer >= {minimum}; got {value!r}.")
  if value < minimum:
    raise ValueError(f"PipelineConfig.{field} must be >= {minimum}; got {value}.")


def _name(i: int, ex) -> str:
  """How errors name example ``i`` (with its id when it has one)."""
  uid = ex.get("id") if isinstance(ex, dict) else None
  return f"example {i}" + (f" (id {_text(uid)!r})" if uid is not None else "")


def _field(i: int, ex, key: str):
  try:
    return ex[key]
  except (KeyError, TypeError):
    fields = sorted(ex) if isinstance(ex, dict) else type(ex).__name__
    raise ValueError(f"{_name(i, ex)} has no {key!r} field; it has {fields}.") from None


def _encode(i: int, ex, encode, text_key: str) -> list[int]:
  """``encode`` of example ``i``'s transcript, with errors (unknown characters) naming the example."""
  try:
    ids = list(encode(_text(_field(i, ex, text_key))))
  except ValueError as e:
    raise ValueError(f"{_name(i, ex)}: cannot encode its transcript: {e}") from None
  if any(int(t) <= 0 for t in ids):
    raise ValueError(f"{_name(i, ex)}: encode returned ids {ids[:20]}...; labels must be >= 1 (0 is the blank).")
  return ids


@dataclasses.dataclass(frozen=True)
class Index:
  """What the schedule needs of each example, gathered once per split."""

  num_samples: np.ndarray  # [N] int64
  num_labels: np.ndarray  # [N] int64


def build_index(source: Sequence[dict], encode: Callable[[str], list[int]], text_key: str = "text", *,
                label_count: Callable[[dict], int] | None = None) -> Index:
  """One pass over ``source``: audio length and token count of every example.

  It also checks every example before training starts: the source's declared sample
  rate (`catalog.sample_rate_of`), audio by `asrjax.data.audio`'s contract and transcripts by ``encode`` (a strict tokenizer refuses unknown
  characters rather than dropping them), raising `ValueError` naming the example.
  ``label_count(example)`` replaces ``len(encode(example[text_key]))`` for examples
  whose labels are not one transcript (multi-talker mixtures: the longest channel).
  """
  audio_lib.check_sample_rate(catalog.sample_rate_of(source), name="build_index: source")
  samples, labels = [], []
  for i in range(len(source)):
    ex = source[i]
    samples.append(audio_lib.to_int16(_field(i, ex, "audio"), name=_name(i, ex)).size)
    if label_count is None:
      labels.append(len(_encode(i, ex, encode, text_key)))
      continue
    try:
      labels.append(int(label_count(ex)))
    except (ValueError, KeyError) as e:
      raise ValueError(f"{_name(i, ex)}: cannot label it: {e}") from None
  return Index(np.array(samples, np.int64), np.array(labels, np.int64))


def _text(x: Any) -> str:
  return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def usable(index: Index, config: PipelineConfig) -> np.ndarray:
  """``[N]`` bool: examples that fit the buckets and the label budget."""
  frames = index.num_samples // config.frame_step // max(config.subsampling, 1)
  return (
      (index.num_samples > 0)
      & (index.num_samples <= config.buckets[-1])
      & (index.num_labels <= config.label_lengths[-1])
      & (index.num_labels <= np.maximum(frames, 0) * config.labels_per_frame)
  )


def batch_schedule(index: Index, config: PipelineConfig, epoch: int) -> list[tuple[np.ndarray, int]]:
  """Epoch ``epoch``'s global batches: ``[(example indices [batch_size], bucket index)]``.

  Deterministic in ``(index, config, epoch)``; the last partial batch is dropped.
  """
  keep = np.nonzero(usable(index, config))[0]
  rng = np.random.default_rng([config.seed, epoch])
  order = keep[rng.permutation(keep.size)]
  window = config.batch_size * config.sort_window
  batches = []
  for start in range(0, order.size, window):
    chunk = order[start : start + window]
    chunk = chunk[np.argsort(index.num_samples[chunk], kind="stable")]
    for b in range(0, chunk.size - config.batch_size + 1, config.batch_size):
      ids = chunk[b : b + config.batch_size]
      longest, most = index.num_samples[ids].max(), index.num_labels[ids].max()
      bucket = next(i for i, (s, n) in enumerate(zip(config.buckets, config.label_lengths))
                    if s >= longest and n >= most)
      batches.append((ids, bucket))
  perm = rng.permutation(len(batches))
  return [batches[i] for i in perm]


def pad_batch(examples: list[dict], encode, bucket: int, max_labels: int, text_key: str = "text") -> dict:
  """Pads a list of examples to ``[b, bucket]`` audio and ``[b, max_labels]`` labels.

  Args:
    examples: dicts with ``audio`` (``[N]``, by `asrjax.data.audio`'s contract: int16,
      int32/int64 in the int16 range, or float in ``[-1, 1]`` scaled by 32768) and the
      transcript under ``text_key``. Empty audio gives an all-padded row.
    encode: text -> token ids, each >= 1 (0 is the blank).
    bucket: audio length ``S`` (samples) to pad to; every example must fit.
    max_labels: label length ``L`` to pad to; every transcript must fit.

  Returns:
    ``audio`` int16 ``[b, S]``, ``audio_paddings`` float32 ``[b, S]`` (1.0 = padded
    sample), ``labels`` int32 ``[b, L]``, ``label_paddings`` float32 ``[b, L]``,
    ``ids`` (list of str).

  Raises:
    ValueError: naming the example, for audio the contract refuses, audio longer than
      ``bucket``, or a transcript longer than ``max_labels``.
  """
  for arg, value in (("bucket", bucket), ("max_labels", max_labels)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
      raise ValueError(f"pad_batch: {arg} must be an integer >= 0; got {value!r}.")
  b = len(examples)
  audio = np.zeros((b, bucket), np.int16)
  audio_pad = np.ones((b, bucket), np.float32)
  labels = np.zeros((b, max_labels), np.int32)
  label_pad = np.ones((b, max_labels), np.float32)
  for i, ex in enumerate(examples):
    a = audio_lib.to_int16(_field(i, ex, "audio"), name=_name(i, ex))
    if a.size > bucket:
      raise ValueError(f"pad_batch: {_name(i, ex)} has {a.size} samples; they do not fit bucket={bucket}.")
    audio[i, : a.size] = a
    audio_pad[i, : a.size] = 0.0
    ids = _encode(i, ex, encode, text_key)
    if len(ids) > max_labels:
      raise ValueError(f"pad_batch: {_name(i, ex)} has {len(ids)} labels; they do not fit max_labels={max_labels}.")
    labels[i, : len(ids)] = ids
    label_pad[i, : len(ids)] = 0.0
  return {
      "audio": audio,
      "audio_paddings": audio_pad,
      "labels": labels,
      "label_paddings": label_pad,
      "ids": [_text(ex.get("id", "")) if isinstance(ex, dict) else "" for ex in examples],
  }


class BatchIterator(Iterator[dict]):
  """Endless host-local batches; ``state()`` / ``restore(state)`` checkpoint it.

  Args:
    source: random-access examples (e.g. `tfds.data_source` split).
    index: `build_index` of ``source``.
    encode: text -> token ids (no blank).
    config: batching options.
    host_index, host_count: this host's slice of every global batch.
    step: global step to start from (resume).
    files: the split's files, named in read errors.
    pad: ``(examples, bucket, max_labels) -> batch`` replacing `pad_batch` (with
      ``encode``) for examples whose labels are not one transcript (multi-talker).
  """

  def __init__(self, source, index: Index, encode, config: PipelineConfig, *, host_index: int = 0,
               host_count: int = 1, step: int = 0, prefetch: int = 2, files: Sequence[str] = (),
               pad: Callable[[list, int, int], dict] | None = None):
    if isinstance(host_count, bool) or not isinstance(host_count, (int, np.integer)) or host_count < 1:
      raise ValueError(f"host_count must be an integer >= 1; got {host_count!r}.")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
      raise ValueError(f"step must be an integer >= 0 (the global step to resume from); got {step!r}.")
    if config.batch_size % host_count:
      raise ValueError(f"batch_size {config.batch_size} is not divisible by host_count {host_count}.")
    if (isinstance(host_index, bool) or not isinstance(host_index, (int, np.integer))
        or not 0 <= host_index < host_count):
      raise ValueError(f"host_index {host_index} outside [0, {host_count}).")
    if len(index.num_samples) != len(source):
      raise ValueError(f"index covers {len(index.num_samples)} examples but the source has {len(source)}.")
    self._source, self._index, self._encode, self._config = source, index, encode, config
    self._host_index, self._host_count, self._files = host_index, host_count, list(files)
    self._pad = pad or (lambda examples, bucket, max_labels: pad_batch(examples, encode, bucket, max_labels))
    self._epochs: dict[int, list] = {}
    self._step = step
    self._prefetch = prefetch
    self._queue: queue.Queue | None = None
    self._thread: threading.Thread | None = None
    if not self._epoch_batches(0):
      raise ValueError(
          f"no full batch of {config.batch_size}: {int(usable(index, config).sum())} of "
          f"{len(index.num_samples)} examples fit buckets {config.buckets} and max_labels {config.max_labels}."
      )

  @property
  def dropped(self) -> int:
    """Examples never used: empty, too long, or too many labels."""
    return int((~usable(self._index, self._config)).sum())

  def _epoch_batches(self, epoch: int) -> list:
    if epoch not in self._epochs:
      self._epochs = {epoch: batch_schedule(self._index, self._config, epoch)}
    return self._epochs[epoch]

  def _read(self, i: int) -> dict:
    try:
      return self._source[int(i)]
    except Exception as e:  # array_record/protobuf raise many types for corrupt data
      raise DataError(f"cannot read example {int(i)} from {self._files or 'the data source'}: {e}") from e

  def batch_at(self, step: int) -> dict:
    """This host's part of global batch ``step`` (pure function of the step)."""
    per_epoch = len(self._epoch_batches(0))
    ids, bucket = self._epoch_batches(step // per_epoch)[step % per_epoch]
    per_host = len(ids) // self._host_count
    mine = ids[self._host_index * per_host : (self._host_index + 1) * per_host]
    batch = self._pad([self._read(i) for i in mine], self._config.buckets[bucket], self._config.label_lengths[bucket])
    batch["step"] = step
    return batch

  def state(self) -> dict:
    """The next step to be returned: all that is needed to resume."""
    return {"step": self._step}

  def restore(self, state: dict) -> None:
    step = state.get("step") if isinstance(state, dict) else None
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
      raise ValueError(f"restore: state must be {{'step': int >= 0}} as returned by state(); got {state!r}.")
    self._stop()
    self._step = int(step)

  def _worker(self, start: int, out: queue.Queue, stop: threading.Event) -> None:
    step = start
    while not stop.is_set():
      try:
        item = self.batch_at(step)
      except Exception as e:  # surfaced in __next__
        item = e
      out.put(item)
      step += 1

  def _stop(self) -> None:
    if self._thread is not None:
      self._stop_event.set()
      while self._thread.is_alive():
        try:
          self._queue.get_nowait()
        except queue.Empty:
          self._thread.join(timeout=0.01)
      self._thread = None

  def __next__(self) -> dict:
    if self._prefetch <= 0:
      batch = self.batch_at(self._step)
    else:
      if self._thread is None:
        self._queue = queue.Queue(maxsize=self._prefetch)
        self._stop_event = threading.Event()
        self._thread = threading.Thread(
            target=self._worker, args=(self._step, self._queue, self._stop_event), daemon=True)
        self._thread.start()
      batch = self._queue.get()
      if isinstance(batch, Exception):
        self._stop()
        raise batch
    self._step += 1
    return batch

  def close(self) -> None:
    self._stop()
