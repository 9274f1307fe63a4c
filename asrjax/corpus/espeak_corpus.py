"""TFDS builders of the embedded corpus: ``espeak_speech`` and ``espeak_multitalker``.

Both execute a `corpus_plan.CorpusPlan` (configs ``tiny``, ``small``, ``full``):

* ``espeak_speech``: single-speaker utterances, splits ``train``/``dev``/``test``,
  16 kHz int16 audio and every speaker/condition field as features; the
  speaker-verification trials over ``test`` and the speaker table live in
  ``info.metadata``.
* ``espeak_multitalker``: two-talker mixtures, splits ``train``/``test``, with each
  turn's speaker, transcript and start/end time.

Storage is array_record read through `tfds.data_source` (random access, no
TensorFlow needed): audio is a ``Tensor(shape=(None,), dtype=int16)`` rather than
``tfds.features.Audio``, which would need TensorFlow to define or read the data.
Examples are written in plan order (TFDS shuffling disabled: it needs TensorFlow
for splits larger than its memory buffer). Synthesis runs in a spawn-context process pool (JAX may already be running in the
parent, so no fork) with results consumed in plan order, so the examples do not
depend on the number of workers.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import multiprocessing
import os
import re
import subprocess

from unittest import mock

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle as tfds_shuffle

from asrjax.corpus import corpus_plan, mixing, speakers as speakers_lib, synthesis, system_tools

_RAM_BUFFER_BYTES = 16 << 30

_SPEAKER_FIELDS = (
    "speaker_id", "accent", "region", "variant", "gender", "age_band", "area_code",
    "demographic_group", "income_band", "difficulty",
)


class EspeakConfig(tfds.core.BuilderConfig):
  """A TFDS builder config wrapping a `corpus_plan.CorpusConfig`."""

  def __init__(self, corpus: corpus_plan.CorpusConfig):
    super().__init__(name=corpus.name, description=f"{corpus.num_speakers} speakers, {corpus.utterances}")
    self.corpus = corpus


def tool_versions() -> dict:
  """espeak-ng and sox versions (the corpus is byte-identical only for equal versions)."""
  espeak = subprocess.run([speakers_lib.require_espeak(), "--version"], capture_output=True, text=True).stdout
  sox = subprocess.run([synthesis.require_sox(), "--version"], capture_output=True, text=True).stdout
  sox_version = re.search(r"SoX v\S+", sox)
  return {"espeak_ng": espeak.split("Data at")[0].strip(), "sox": sox_version.group(0) if sox_version else sox.strip()}


def check_config(name) -> str:
  """``name`` if it is a corpus config (``tiny``, ``small``, ``full``), else a `ValueError` suggesting the closest."""
  valid = list(corpus_plan.CONFIGS)
  if isinstance(name, str) and name in corpus_plan.CONFIGS:
    return name
  close = difflib.get_close_matches(name.lower(), valid, n=1, cutoff=0.5) if isinstance(name, str) else []
  hint = f" Did you mean {close[0]!r}?" if close else ""
  raise ValueError(f"unknown corpus config {name!r}: choose one of {'|'.join(valid)}.{hint}")


def missing_tools() -> list[str]:
  """The external programs the corpus build needs (espeak-ng, sox) that are not on ``PATH``."""
  missing = []
  for tool in ("espeak-ng", "sox"):
    try:
      system_tools.require(tool)
    except RuntimeError:
      missing.append(tool)
  return missing


def require_tools() -> None:
  """A short `RuntimeError` with the install command unless espeak-ng and sox are both installed."""
  missing = missing_tools()
  if missing:
    names = " and ".join(missing)
    raise RuntimeError(
        f"{names} {'is' if len(missing) == 1 else 'are'} not installed; the embedded corpus is synthesised with "
        f"espeak-ng and sox. Install with `sudo apt-get install {' '.join(missing)}` (Debian/Ubuntu) or "
        f"`make system-deps`.")


def _speech_example(spec: corpus_plan.UtteranceSpec) -> tuple[str, dict]:
  audio = synthesis.synthesize(spec.text, spec.speaker, spec.condition, spec.noise_seed)
  sp, c = spec.speaker, spec.condition
  example = {
      "id": spec.utt_id,
      "audio": audio,
      "text": spec.text,
      "kind": spec.kind,
      "domain": spec.domain,
      **{f: getattr(sp, f) for f in _SPEAKER_FIELDS},
      "pitch": sp.pitch,
      "rate": sp.rate,
      "latitude": np.float32(sp.latitude),
      "longitude": np.float32(sp.longitude),
      "speed": np.float32(c.speed),
      "snr_db": np.float32(np.inf if c.snr_db is None else c.snr_db),
      "noise": c.noise if c.snr_db is not None else "none",
      "reverb": c.reverb,
      "band_limited": c.band_limited,
  }
  return spec.utt_id, example


def _mixture_example(spec: corpus_plan.MixtureSpec) -> tuple[str, dict]:
  audio, turns = mixing.render_mixture(spec)
  speakers = {spec.first.speaker.speaker_id: spec.first.speaker, spec.second.speaker.speaker_id: spec.second.speaker}
  example = {
      "id": spec.mix_id,
      "audio": audio,
      "num_speakers": len(speakers),
      "overlap": np.float32(spec.overlap),
      "turns": [
          {
              "speaker_id": t.speaker_id,
              "text": t.text,
              "start": np.float32(t.start),
              "end": np.float32(t.end),
              "accent": speakers[t.speaker_id].accent,
              "gender": speakers[t.speaker_id].gender,
          }
          for t in turns
      ],
  }
  return spec.mix_id, example


class _EspeakBuilder(tfds.core.GeneratorBasedBuilder):
  """Shared plumbing: configs, the plan, and the ordered process pool."""

  BUILDER_CONFIGS = [EspeakConfig(c) for c in corpus_plan.CONFIGS.values()]
  DEFAULT_CONFIG_NAME = "tiny"

  def __init__(self, *, num_workers: int | None = None, **kwargs):
    if isinstance(kwargs.get("config"), str):
      check_config(kwargs["config"])
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int)
                                    or num_workers < 1):
      raise ValueError(f"num_workers must be None (all cores) or an integer >= 1; got {num_workers!r}.")
    self._num_workers = num_workers or os.cpu_count() or 1
    super().__init__(**kwargs)

  @functools.cached_property
  def plan(self) -> corpus_plan.CorpusPlan:
    speakers_lib.validate_voices()
    return corpus_plan.plan_corpus(self.builder_config.corpus)

  def download_and_prepare(self, *args, **kwargs):
    """TFDS's `download_and_prepare`, keeping each split in RAM when TensorFlow is absent.

    TFDS's writer sorts a split through a shuffler that spills to disk with
    `tf.io.gfile` once the split exceeds 1 GiB. Without TensorFlow the buffer is
    raised to ``_RAM_BUFFER_BYTES`` instead (the ``full`` train split needs ~5 GiB).

    Raises:
      RuntimeError: before anything is written, when the dataset still has to be
        built and espeak-ng or sox is missing (the message gives the install command).
    """
    if not self.is_prepared():
      require_tools()
    if importlib.util.find_spec("tensorflow") is None:
      with mock.patch.object(tfds_shuffle, "MAX_MEM_BUFFER_SIZE", _RAM_BUFFER_BYTES):
        return super().download_and_prepare(*args, **kwargs)
    return super().download_and_prepare(*args, **kwargs)

  def _ordered_map(self, fn, items):
    if self._num_workers == 1:
      yield from map(fn, items)
      return
    with multiprocessing.get_context("spawn").Pool(self._num_workers) as pool:
      yield from pool.imap(fn, items, chunksize=4)


class EspeakSpeech(_EspeakBuilder):
  """Single-speaker espeak-ng utterances with speaker, geographic and condition metadata."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self) -> tfds.core.DatasetInfo:
    text = tfds.features.Text
    features = {
        "id": text(), "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
        "text": text(), "kind": text(), "domain": text(),
        **{f: text() for f in _SPEAKER_FIELDS},
        "pitch": np.int32, "rate": np.int32, "latitude": np.float32, "longitude": np.float32,
        "speed": np.float32, "snr_db": np.float32, "noise": text(), "reverb": np.int32, "band_limited": np.bool_,
    }
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict(features),
        metadata=tfds.core.MetadataDict(),
        # Plan order is already random; TFDS's shuffler would spill to disk through
        # tf.io.gfile (TensorFlow) once a split outgrows its memory buffer.
        disable_shuffling=True,
        homepage="https://github.com/espeak-ng/espeak-ng",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    plan = self.plan
    self.info.metadata["sample_rate"] = synthesis.SAMPLE_RATE
    self.info.metadata["tools"] = tool_versions()
    self.info.metadata["sv_trials"] = [list(t) for t in plan.trials]
    self.info.metadata["speakers"] = {
        split: [dict(vars(s)) for s in spk] for split, spk in plan.speakers.items()
    }
    return {split: self._generate_examples(plan.utterances[split]) for split in corpus_plan.ASR_SPLITS}

  def _generate_examples(self, specs):
    yield from self._ordered_map(_speech_example, specs)


class EspeakMultitalker(_EspeakBuilder):
  """Two-talker espeak-ng mixtures with per-turn speaker, transcript and timing."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self) -> tfds.core.DatasetInfo:
    text = tfds.features.Text
    turns = tfds.features.Sequence({
        "speaker_id": text(), "text": text(), "start": np.float32, "end": np.float32,
        "accent": text(), "gender": text(),
    })
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "id": text(), "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
            "num_speakers": np.int32, "overlap": np.float32, "turns": turns,
        }),
        metadata=tfds.core.MetadataDict(),
        # Plan order is already random; TFDS's shuffler would spill to disk through
        # tf.io.gfile (TensorFlow) once a split outgrows its memory buffer.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    self.info.metadata["sample_rate"] = synthesis.SAMPLE_RATE
    self.info.metadata["tools"] = tool_versions()
    return {split: self._generate_examples(self.plan.mixtures[split]) for split in corpus_plan.MIX_SPLITS}

  def _generate_examples(self, specs):
    yield from self._ordered_map(_mixture_example, specs)
