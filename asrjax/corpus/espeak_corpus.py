"""TFDS builders of the embedded corpus: ``synth_speech`` / ``synth_multitalker`` (the
multi-synthesizer corpus, issue 16) and ``espeak_speech`` / ``espeak_multitalker`` (the
espeak-ng-only corpus, still buildable by name).

Each executes a `corpus_plan.CorpusPlan` (configs ``tiny``, ``small``, ``full``):

* ``*_speech``: single-speaker utterances, splits ``train``/``dev``/``test`` (and, for
  ``synth_speech``, ``test_unseen``: the held-out synthesizer family, festival), 16 kHz
  int16 audio and every speaker/condition field as features; the speaker-verification
  trials over ``test`` (each side's family and base voice recorded) and the speaker
  table live in ``info.metadata``.
* ``*_multitalker``: two-talker mixtures, splits ``train``/``test``, with each turn's
  speaker, transcript and start/end time.

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

from asrjax import atomic_file
from asrjax.corpus import corpus_plan, mixing, speakers as speakers_lib, synthesis, synthesizers

_RAM_BUFFER_BYTES = 16 << 30

_SPEAKER_FIELDS = (
    "speaker_id", "accent", "region", "variant", "gender", "age_band", "area_code",
    "demographic_group", "income_band", "difficulty",
)
# What `synth_speech` adds to every example (and a mixture's turns add ``family``).
_VOICE_FIELDS = ("family", "base_voice", "talker")
_WIDENING_FIELDS = {"formant_cents": np.int32, "level_db": np.float32, "bandwidth_hz": np.int32}


class EspeakConfig(tfds.core.BuilderConfig):
  """A TFDS builder config wrapping a `corpus_plan.CorpusConfig`."""

  def __init__(self, corpus: corpus_plan.CorpusConfig):
    super().__init__(name=corpus.name, description=f"{corpus.num_speakers} speakers, {corpus.utterances}")
    self.corpus = corpus


def tool_versions(families=("espeak-ng",)) -> dict:
  """Versions of the synthesizers and sox (the corpus is byte-identical only for equal versions)."""
  sox = subprocess.run([synthesis.require_sox(), "--version"], capture_output=True, text=True).stdout
  sox_version = re.search(r"SoX v\S+", sox)
  versions = {f.replace("-", "_"): synthesizers.tool_version(f) for f in families}
  return {**versions, "sox": sox_version.group(0) if sox_version else sox.strip()}


def check_config(name, configs=corpus_plan.CONFIGS) -> str:
  """``name`` if it is a corpus config (``tiny``, ``small``, ``full``), else a `ValueError` suggesting the closest."""
  valid = list(configs)
  if isinstance(name, str) and name in configs:
    return name
  close = difflib.get_close_matches(name.lower(), valid, n=1, cutoff=0.5) if isinstance(name, str) else []
  hint = f" Did you mean {close[0]!r}?" if close else ""
  raise ValueError(f"unknown corpus config {name!r}: choose one of {'|'.join(valid)}.{hint}")


SYNTH_FAMILIES = synthesizers.FAMILIES  # every family; the config decides which one is held out


def missing_tools(families=("espeak-ng",)) -> list[str]:
  """The external programs a build of ``families`` needs (they and sox) that are not on ``PATH``."""
  return synthesizers.missing_programs(families)


def require_tools(families=("espeak-ng",)) -> None:
  """A short `RuntimeError` with the install command unless every program ``families`` need is installed."""
  missing = missing_tools(families)
  if missing:
    names = " and ".join(missing) if len(missing) <= 2 else ", ".join(missing[:-1]) + " and " + missing[-1]
    tools = list(families) + ["sox"]
    used = " and ".join(tools) if len(tools) <= 2 else ", ".join(tools[:-1]) + " and " + tools[-1]
    packages = []
    for program in missing:
      packages.append(synthesizers.PACKAGES[program])
      for family in families:  # festival and mbrola ship without voices
        if program == synthesizers.PROGRAMS[family][-1] and family in synthesizers.VOICE_PACKAGES:
          packages += list(synthesizers.VOICE_PACKAGES[family].values())
    components = ""
    if {"mbrola", "pico2wave"} & set(missing):
      components = (" (mbrola and its voices are in Debian's contrib component, libttspico-utils in non-free; "
                    "Ubuntu: multiverse)")
    raise RuntimeError(
        f"{names} {'is' if len(missing) == 1 else 'are'} not installed; the embedded corpus is synthesised with "
        f"{used}. Install with `sudo apt-get install {' '.join(dict.fromkeys(packages))}` (Debian/Ubuntu{components}) "
        f"or `make system-deps`.")


# Samples stored as their raw int16 bytes: TFDS's default writes every sample as a protobuf
# int64 varint, ~15 ms of the writer's Python per utterance (the build's bottleneck) and
# ~3x the bytes (BUILD_NOTES.md, "Measured: the five-family `full`").
_AUDIO = tfds.features.Tensor(shape=(None,), dtype=np.int16, encoding=tfds.features.Encoding.BYTES)
_RELEASE_NOTES = {
    "1.0.0": "First release; audio stored as an int64 list.",
    "1.1.0": ("Audio stored as raw int16 bytes (faster to write and read). synth_*: festival's utterances "
              "(test_unseen) no longer end in a stray RIFF header read as 22 samples of audio (text2wave "
              "appends its final header when writing to a pipe), which also set their peak level; every "
              "other example is unchanged."),
}


def _cache_file(cache_dir: str, utt_id: str) -> str:
  return os.path.join(cache_dir, f"{utt_id}.npy")


def _load_clean(cache_dir: str | None, utt_id: str):
  """The cached clean render of ``utt_id`` (float32, as `synthesis.render_clean` returns it), or None."""
  path = _cache_file(cache_dir, utt_id) if cache_dir else None
  if not path or not os.path.exists(path):
    return None
  return np.load(path).astype(np.float32) / 32768.0


def _save_clean(cache_dir: str, utt_id: str, clean: np.ndarray) -> None:
  os.makedirs(cache_dir, exist_ok=True)
  with atomic_file.open(_cache_file(cache_dir, utt_id), "wb") as f:
    np.save(f, np.round(clean * 32768.0).astype(np.int16))  # exact: render_clean is int16 / 32768


def clean_cache_dir(data_dir: str, config: str, family: str = "espeak") -> str:
  """Where a speech build leaves the clean renders its config's mixtures reuse (removed after them)."""
  return os.path.join(data_dir, "_clean_renders", f"{family}-{config}")


def _speech_example(spec: corpus_plan.UtteranceSpec, voice_fields: bool = False,
                    cache_dir: str | None = None) -> tuple[str, dict]:
  clean = None
  if cache_dir:  # this utterance is in a mixture: keep its clean render for the multitalker build
    clean = synthesis.render_clean(spec.text, spec.speaker, spec.condition)
    _save_clean(cache_dir, spec.utt_id, clean)
  audio = synthesis.synthesize(spec.text, spec.speaker, spec.condition, spec.noise_seed, clean)
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
  if voice_fields:
    example.update({f: getattr(sp, f) for f in _VOICE_FIELDS})
    example.update({f: dtype(getattr(sp, f)) for f, dtype in _WIDENING_FIELDS.items()})
  return spec.utt_id, example


def _mixture_example(spec: corpus_plan.MixtureSpec, voice_fields: bool = False,
                     cache_dir: str | None = None) -> tuple[str, dict]:
  clean = (_load_clean(cache_dir, spec.first.utt_id), _load_clean(cache_dir, spec.second.utt_id))
  audio, turns = mixing.render_mixture(spec, clean)
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
              **({"family": speakers[t.speaker_id].family} if voice_fields else {}),
          }
          for t in turns
      ],
  }
  return spec.mix_id, example


def _call(call):
  fn, item, voice_fields, cache_dir = call
  return fn(item, voice_fields=voice_fields, cache_dir=cache_dir)


def _item_id(item) -> str:
  return item.utt_id if isinstance(item, corpus_plan.UtteranceSpec) else item.mix_id


class _EspeakBuilder(tfds.core.GeneratorBasedBuilder):
  """Shared plumbing: configs, the plan, and the ordered process pool."""

  BUILDER_CONFIGS = [EspeakConfig(c) for c in corpus_plan.CONFIGS.values()]
  DEFAULT_CONFIG_NAME = "tiny"
  CONFIGS = corpus_plan.CONFIGS
  FAMILIES = ("espeak-ng",)
  VOICE_FIELDS = False  # examples carry family/base_voice/talker and the widening

  def __init__(self, *, num_workers: int | None = None, clean_cache: str | None = None, **kwargs):
    """``clean_cache``: a folder for the clean renders of the utterances the mixtures use (the
    speech builder writes them, the multitalker builder reads them: each is rendered once;
    `clean_cache_dir` names one; the output is the same with or without it)."""
    if isinstance(kwargs.get("config"), str):
      check_config(kwargs["config"], self.CONFIGS)
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int)
                                    or num_workers < 1):
      raise ValueError(f"num_workers must be None (all cores) or an integer >= 1; got {num_workers!r}.")
    self._num_workers = num_workers or os.cpu_count() or 1
    self._clean_cache = clean_cache
    super().__init__(**kwargs)

  @functools.cached_property
  def plan(self) -> corpus_plan.CorpusPlan:
    speakers_lib.validate_voices()
    for family in self.FAMILIES[1:]:
      synthesizers.validate_voices(family)
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
      require_tools(self.FAMILIES)
    if importlib.util.find_spec("tensorflow") is None:
      with mock.patch.object(tfds_shuffle, "MAX_MEM_BUFFER_SIZE", _RAM_BUFFER_BYTES):
        return super().download_and_prepare(*args, **kwargs)
    return super().download_and_prepare(*args, **kwargs)

  def _ordered_map(self, fn, items, cached=frozenset()):
    """``fn(item)`` in order; items whose id is in ``cached`` get the clean-render cache folder."""
    calls = [(fn, item, self.VOICE_FIELDS, self._clean_cache if _item_id(item) in cached else None)
             for item in items]
    if self._num_workers == 1:
      yield from map(_call, calls)
      return
    with multiprocessing.get_context("spawn").Pool(self._num_workers) as pool:
      yield from pool.imap(_call, calls, chunksize=4)


class EspeakSpeech(_EspeakBuilder):
  """Single-speaker espeak-ng utterances with speaker, geographic and condition metadata."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = _RELEASE_NOTES

  def _info(self) -> tfds.core.DatasetInfo:
    text = tfds.features.Text
    features = {
        "id": text(), "audio": _AUDIO,
        "text": text(), "kind": text(), "domain": text(),
        **{f: text() for f in _SPEAKER_FIELDS},
        "pitch": np.int32, "rate": np.int32, "latitude": np.float32, "longitude": np.float32,
        "speed": np.float32, "snr_db": np.float32, "noise": text(), "reverb": np.int32, "band_limited": np.bool_,
    }
    if self.VOICE_FIELDS:
      features.update({f: text() for f in _VOICE_FIELDS})
      features.update(_WIDENING_FIELDS)
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
    self.info.metadata["tools"] = tool_versions(self.FAMILIES)
    speaker_of = {u.utt_id: u.speaker for u in plan.utterances["test"]}
    self.info.metadata["sv_trials"] = [list(t) for t in plan.trials]
    if self.VOICE_FIELDS:  # each side's family and base voice
      self.info.metadata["sv_trial_columns"] = ["enrol", "test", "target", "enrol_family", "test_family",
                                                "enrol_base_voice", "test_base_voice"]
      self.info.metadata["sv_trials"] = [
          [e, t, y, speaker_of[e].family, speaker_of[t].family, speaker_of[e].base_voice, speaker_of[t].base_voice]
          for e, t, y in plan.trials]
    self.info.metadata["speakers"] = {
        split: [dict(vars(s)) for s in spk] for split, spk in plan.speakers.items()
    }
    return {split: self._generate_examples(plan.utterances[split])
            for split in self.builder_config.corpus.asr_splits}

  def _generate_examples(self, specs):
    in_mixtures = frozenset(u.utt_id for ms in self.plan.mixtures.values() for m in ms for u in (m.first, m.second))
    yield from self._ordered_map(_speech_example, specs, in_mixtures if self._clean_cache else frozenset())


class EspeakMultitalker(_EspeakBuilder):
  """Two-talker espeak-ng mixtures with per-turn speaker, transcript and timing."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = _RELEASE_NOTES

  def _info(self) -> tfds.core.DatasetInfo:
    text = tfds.features.Text
    turns = tfds.features.Sequence({
        "speaker_id": text(), "text": text(), "start": np.float32, "end": np.float32,
        "accent": text(), "gender": text(), **({"family": text()} if self.VOICE_FIELDS else {}),
    })
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "id": text(), "audio": _AUDIO,
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
    self.info.metadata["tools"] = tool_versions(self.FAMILIES)
    return {split: self._generate_examples(self.plan.mixtures[split]) for split in corpus_plan.MIX_SPLITS}

  def _generate_examples(self, specs):
    yield from self._ordered_map(_mixture_example, specs, frozenset(m.mix_id for m in specs))


class _SynthBuilder(_EspeakBuilder):
  """The multi-synthesizer corpus's configs and families (`corpus_plan.SYNTH_CONFIGS`)."""

  BUILDER_CONFIGS = [EspeakConfig(c) for c in corpus_plan.SYNTH_CONFIGS.values()]
  CONFIGS = corpus_plan.SYNTH_CONFIGS
  FAMILIES = SYNTH_FAMILIES
  VOICE_FIELDS = True


class SynthSpeech(_SynthBuilder, EspeakSpeech):
  """Single-speaker utterances by espeak-ng, flite and festival voices; festival only in ``test_unseen``."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = _RELEASE_NOTES


class SynthMultitalker(_SynthBuilder, EspeakMultitalker):
  """Two-talker mixtures of the training families' (espeak-ng, flite) speakers."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = _RELEASE_NOTES
