"""What the embedded corpus contains, decided before any audio exists.

`plan_corpus(config)` is a pure function of a `CorpusConfig`: it draws the
speakers, splits them by accent (espeak-ng) or by base voice (flite) into
train/dev/test speakers (so dev and test speakers are unseen in training, as in
LibriSpeech and VoxCeleb), puts the held-out synthesizer family's speakers
(festival in `SYNTH_CONFIGS`) into ``test_unseen`` alone, assigns
generated sentences to speakers, draws each utterance's acoustic condition and
noise seed, and lays out the speaker-verification trials and the two-talker
mixtures. Synthesis (`asrjax.corpus.synthesis`) then only executes the plan, so
the corpus is byte-deterministic whatever the number of worker processes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asrjax.corpus import speakers as speakers_lib
from asrjax.corpus import synthesis, synthesizers
from asrjax.corpus.text import generator as text_generator

ASR_SPLITS = ("train", "dev", "test")
UNSEEN_SPLIT = "test_unseen"  # the held-out synthesizer family's own test split
MIX_SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
  """Size of one corpus configuration.

  Attributes:
    name: "tiny" | "small" | "full" (or any custom name).
    speakers_per_accent: speakers drawn per espeak-ng accent.
    speaker_split: fractions of each accent's speakers for train/dev/test.
    utterances: utterances per ASR split.
    trials_per_group: speaker-verification target and non-target trials per
      (gender, accent) group of the enrolment speaker, each.
    mixtures: two-talker mixtures per split (train from train speakers, test from
      test speakers).
    seed: corpus seed; every random draw derives from it.
    families: speakers drawn per base voice of each recorded-voice family
      (`asrjax.corpus.synthesizers.VOICES`), e.g. ``{"flite": 60, "festival": 12}``;
      empty for the espeak-ng-only corpus (``espeak_speech``).
    heldout_family: the family kept entirely out of training and tuning: its
      speakers make up the ``test_unseen`` split (``utterances["test_unseen"]``
      sentences, the first ones of ``test``, so both test sets say the same words),
      and voices of other families recorded from one of its talkers are not used.
    family_share: share of the train/dev/test utterances per training family
      (espeak-ng and the non-held-out keys of ``families``), summing to 1.

  Every field is checked at construction (`ValueError` naming it): at least 3
  speakers per accent (one each for train, dev and test), at least one utterance per
  ASR split and two in a split that has mixtures, counts >= 0, split fractions >= 0
  summing to 1, seed >= 0.
  """

  name: str
  speakers_per_accent: int
  utterances: dict
  trials_per_group: int
  mixtures: dict
  speaker_split: tuple = (0.7, 0.1, 0.2)
  seed: int = 20_221_018
  families: dict = dataclasses.field(default_factory=dict)
  heldout_family: str = ""
  family_share: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    def integer(field, value, minimum):
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"CorpusConfig.{field} must be an integer >= {minimum}; got {value!r}.")

    if not isinstance(self.name, str) or not self.name:
      raise ValueError(f"CorpusConfig.name must be a non-empty string; got {self.name!r}.")
    integer("speakers_per_accent", self.speakers_per_accent, 3)
    if self.heldout_family:
      integer(f"utterances[{UNSEEN_SPLIT!r}]", self.utterances.get(UNSEEN_SPLIT), 1)
      if self.utterances[UNSEEN_SPLIT] > self.utterances.get("test", 0):
        raise ValueError(f"CorpusConfig.utterances[{UNSEEN_SPLIT!r}] reads the first sentences of 'test', so it "
                         f"cannot exceed utterances['test']; got {self.utterances}.")
    integer("trials_per_group", self.trials_per_group, 0)
    integer("seed", self.seed, 0)
    self._check_families()
    for field, splits in (("utterances", self.asr_splits), ("mixtures", MIX_SPLITS)):
      value = getattr(self, field)
      if not isinstance(value, dict) or set(value) != set(splits):
        raise ValueError(f"CorpusConfig.{field} must map exactly {splits} to counts; got {value!r}.")
    for split in ASR_SPLITS:
      needed = 2 if self.mixtures.get(split, 0) else 1
      integer(f"utterances[{split!r}]", self.utterances[split], needed)
    for split in MIX_SPLITS:
      integer(f"mixtures[{split!r}]", self.mixtures[split], 0)
    fractions = tuple(self.speaker_split) if isinstance(self.speaker_split, (tuple, list)) else ()
    if (len(fractions) != 3 or not all(isinstance(f, (int, float)) and 0.0 <= f <= 1.0 for f in fractions)
        or abs(sum(fractions) - 1.0) > 1e-6):
      raise ValueError(f"CorpusConfig.speaker_split must be 3 fractions in [0, 1] (train, dev, test) summing to 1; "
                       f"got {self.speaker_split!r}.")

  def _check_families(self):
    if not isinstance(self.families, dict) or not set(self.families) <= set(synthesizers.VOICES):
      raise ValueError(f"CorpusConfig.families must map families of {sorted(synthesizers.VOICES)} to speakers per "
                       f"base voice; got {self.families!r}.")
    if self.heldout_family and self.heldout_family not in self.families:
      raise ValueError(f"CorpusConfig.heldout_family {self.heldout_family!r} must be one of families "
                       f"{sorted(self.families)} (or empty).")
    for family, count in self.families.items():
      least = 1 if family == self.heldout_family else 3  # train, dev and test speakers per base voice
      if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < least:
        raise ValueError(f"CorpusConfig.families[{family!r}] must be an integer >= {least}; got {count!r}.")
    if self.families:
      share = self.family_share
      if (not isinstance(share, dict) or set(share) != set(self.training_families)
          or not all(isinstance(v, (int, float)) and v >= 0 for v in share.values()) or abs(sum(share.values()) - 1) > 1e-6):
        raise ValueError(f"CorpusConfig.family_share must map the training families {self.training_families} to "
                         f"shares >= 0 summing to 1; got {share!r}.")
    elif self.family_share:
      raise ValueError(f"CorpusConfig.family_share needs families; got {self.family_share!r}.")

  @property
  def asr_splits(self) -> tuple:
    """train/dev/test, and ``test_unseen`` when a family is held out."""
    return ASR_SPLITS + ((UNSEEN_SPLIT,) if self.heldout_family else ())

  @property
  def training_families(self) -> tuple:
    """espeak-ng and every family of ``families`` but the held-out one."""
    return ("espeak-ng",) + tuple(f for f in synthesizers.FAMILIES if f in self.families and f != self.heldout_family)

  @property
  def num_speakers(self) -> int:
    """espeak-ng speakers (the recorded-voice families add ``families[f]`` per base voice)."""
    return self.speakers_per_accent * len(speakers_lib.ACCENTS)


CONFIGS = {
    "tiny": CorpusConfig("tiny", 4, {"train": 48, "dev": 12, "test": 16}, 2, {"train": 8, "test": 4},
                         speaker_split=(0.5, 0.25, 0.25)),
    "small": CorpusConfig("small", 25, {"train": 6_000, "dev": 400, "test": 800}, 25,
                          {"train": 1_000, "test": 200}),
    "full": CorpusConfig("full", 75, {"train": 40_000, "dev": 2_000, "test": 4_000}, 100,
                         {"train": 8_000, "test": 1_000}),
}

# The multi-synthesizer corpus (``synth_speech``): espeak-ng, flite, MBROLA and Pico for
# training (8 recorded talkers besides espeak-ng's rules), festival held out as the
# standing cross-synthesizer test.
_SYNTH = dict(heldout_family="festival",
              family_share={"espeak-ng": 0.4, "flite": 0.2, "mbrola": 0.2, "pico": 0.2})
SYNTH_CONFIGS = {
    "tiny": CorpusConfig("tiny", 4, {"train": 48, "dev": 12, "test": 16, UNSEEN_SPLIT: 12}, 2,
                         {"train": 8, "test": 4}, speaker_split=(0.5, 0.25, 0.25),
                         families={"flite": 4, "mbrola": 4, "pico": 4, "festival": 2}, **_SYNTH),
    "small": CorpusConfig("small", 25, {"train": 6_000, "dev": 400, "test": 800, UNSEEN_SPLIT: 400}, 25,
                          {"train": 1_000, "test": 200}, families={"flite": 20, "mbrola": 10, "pico": 10, "festival": 6},
                          **_SYNTH),
    "full": CorpusConfig("full", 75, {"train": 40_000, "dev": 2_000, "test": 4_000, UNSEEN_SPLIT: 1_200}, 100,
                         {"train": 8_000, "test": 1_000},
                         families={"flite": 60, "mbrola": 30, "pico": 30, "festival": 12}, **_SYNTH),
}


@dataclasses.dataclass(frozen=True)
class UtteranceSpec:
  """Everything needed to synthesise one utterance and describe it."""

  utt_id: str
  text: str
  kind: str
  domain: str
  speaker: speakers_lib.Speaker
  condition: synthesis.Condition
  noise_seed: int


@dataclasses.dataclass(frozen=True)
class MixtureSpec:
  """Two utterances (synthesised without noise) mixed with a controlled overlap.

  ``overlap`` > 0: the second talker starts that fraction of the shorter turn's
  speech before the first one ends; < 0: a gap of ``-overlap`` seconds.
  """

  mix_id: str
  first: UtteranceSpec
  second: UtteranceSpec
  overlap: float
  gain_db: float  # level of the second talker relative to the first
  condition: synthesis.Condition  # noise of the whole mixture
  noise_seed: int


@dataclasses.dataclass(frozen=True)
class CorpusPlan:
  speakers: dict  # split -> list[Speaker]
  utterances: dict  # split -> list[UtteranceSpec]
  trials: list  # (enrol utt_id, test utt_id, is_target) over the test split
  mixtures: dict  # split -> list[MixtureSpec]


def split_group(group: list, fractions: tuple, what: str = "accent") -> dict:
  """The first ``fractions[0]`` of ``group`` train, then dev, then test (at least one each)."""
  n_train = max(1, int(round(fractions[0] * len(group))))
  n_dev = max(1, int(round(fractions[1] * len(group))))
  if n_train + n_dev >= len(group):
    raise ValueError(f"{len(group)} speakers per {what} cannot fill train/dev/test splits {fractions}.")
  return {"train": group[:n_train], "dev": group[n_train : n_train + n_dev], "test": group[n_train + n_dev :]}


def split_speakers(speakers: list, fractions: tuple) -> dict:
  """Per accent, the first ``fractions[0]`` of speakers train, then dev, then test (at least one each)."""
  out = {s: [] for s in ASR_SPLITS}
  for accent in speakers_lib.ACCENTS:
    for split, members in split_group([s for s in speakers if s.accent == accent.voice], fractions).items():
      out[split] += members
  return out


def recorded_speakers(rng: np.random.Generator, config: CorpusConfig) -> dict:
  """Speakers of the recorded-voice families, by split: per base voice, split like `split_speakers`.

  The held-out family's speakers all go to ``test_unseen``. A voice of a training
  family recorded from one of the held-out family's talkers is not used at all (flite's
  ``kal``, ``kal16`` and ``slt`` when festival is held out): its talker would be heard in
  training and make the unseen test easy.
  """
  out = {s: [] for s in config.asr_splits}
  held_talkers = {v.talker for v in synthesizers.VOICES.get(config.heldout_family, ())}
  for family in synthesizers.FAMILIES:
    if family not in config.families:
      continue
    for base in synthesizers.voices(family):
      if family != config.heldout_family and base.talker in held_talkers:
        continue
      group = speakers_lib.sample_voice_speakers(
          rng, base, config.families[family], seed=config.seed, prefix=f"{family}-{base.name}-")
      if family == config.heldout_family:
        out[UNSEEN_SPLIT] += group
      else:
        for split, members in split_group(group, config.speaker_split, "base voice").items():
          out[split] += members
  return out


def _utterances(rng, split, sentences, speakers, family_share=None) -> list[UtteranceSpec]:
  """Specs of ``sentences``, each by a speaker of ``speakers`` cycling through random permutations.

  With ``family_share`` each sentence first draws its speaker's family with those
  probabilities, then the family's next speaker in its own cycle.
  """
  if family_share:
    pools = {f: [s for s in speakers if s.family == f] for f in family_share}
    families = list(family_share)
    picks = rng.choice(len(families), size=len(sentences), p=[family_share[f] for f in families])
    cursor = {f: 0 for f in families}
    orders = {f: np.concatenate([rng.permutation(len(pools[f])) for _ in range(len(sentences) // len(pools[f]) + 1)])
              for f in families}
    chosen = []
    for k in picks:
      f = families[int(k)]
      chosen.append(pools[f][int(orders[f][cursor[f]])])
      cursor[f] += 1
  else:
    order = np.concatenate([rng.permutation(len(speakers)) for _ in range(len(sentences) // len(speakers) + 1)])
    chosen = [speakers[int(order[i])] for i in range(len(sentences))]
  specs = []
  for i, sentence in enumerate(sentences):
    speaker = chosen[i]
    specs.append(
        UtteranceSpec(
            utt_id=f"{split}-{speaker.speaker_id}-{i:06d}",
            text=sentence.text,
            kind=sentence.kind,
            domain=sentence.domain,
            speaker=speaker,
            condition=synthesis.sample_condition(rng, speaker),
            noise_seed=int(rng.integers(2**31)),
        )
    )
  return specs


def plan_trials(rng: np.random.Generator, specs: list, per_group: int) -> list:
  """Speaker-verification trials over ``specs``, balanced by the enrolment speaker's gender and accent.

  For each (gender, accent) group: ``per_group`` target trials (same speaker,
  different utterances) and ``per_group`` non-target trials, half of them against
  a speaker of the same gender and accent where one exists (hard negatives).
  """
  by_speaker = {}
  for s in specs:
    by_speaker.setdefault(s.speaker.speaker_id, []).append(s)
  groups = {}
  for utts in by_speaker.values():
    sp = utts[0].speaker
    groups.setdefault((sp.gender, sp.accent), []).append(utts)
  trials = []
  for key in sorted(groups):
    members = groups[key]
    eligible = [u for u in members if len(u) >= 2]
    for _ in range(per_group if eligible else 0):
      utts = eligible[int(rng.integers(len(eligible)))]
      a, b = rng.choice(len(utts), size=2, replace=False)
      trials.append((utts[a].utt_id, utts[b].utt_id, True))
    for j in range(per_group):
      enrol_spk = members[int(rng.integers(len(members)))]
      same_group = [u for u in members if u is not enrol_spk]
      pool = same_group if (j % 2 == 0 and same_group) else [
          u for k, g in groups.items() for u in g if u[0].speaker.speaker_id != enrol_spk[0].speaker.speaker_id]
      if not pool:
        continue
      other = pool[int(rng.integers(len(pool)))]
      trials.append((enrol_spk[int(rng.integers(len(enrol_spk)))].utt_id,
                     other[int(rng.integers(len(other)))].utt_id, False))
  return trials


def plan_mixtures(rng: np.random.Generator, split: str, specs: list, num: int) -> list:
  """Two-talker mixtures of utterances by different speakers in ``specs``."""
  mixtures = []
  for i in range(num):
    while True:
      a, b = rng.choice(len(specs), size=2, replace=False)
      if specs[a].speaker.speaker_id != specs[b].speaker.speaker_id:
        break
    clean = lambda s: dataclasses.replace(s, condition=dataclasses.replace(s.condition, snr_db=None))
    overlap = float(rng.choice([-0.5, -0.2, 0.0, 0.1, 0.25, 0.5], p=[0.1, 0.15, 0.15, 0.2, 0.2, 0.2]))
    noise = synthesis.Condition(
        snr_db=(None, 20.0, 10.0)[int(rng.integers(3))], noise=synthesis.NOISE_TYPES[int(rng.integers(3))])
    mixtures.append(MixtureSpec(
        mix_id=f"mix-{split}-{i:06d}", first=clean(specs[a]), second=clean(specs[b]), overlap=overlap,
        gain_db=float(np.round(rng.uniform(-3.0, 3.0), 1)), condition=noise, noise_seed=int(rng.integers(2**31)),
    ))
  return mixtures


def plan_corpus(config: CorpusConfig) -> CorpusPlan:
  """The whole corpus of ``config`` as specs; deterministic in ``config``."""
  if config.families:
    return _plan_synth_corpus(config)
  rng = np.random.default_rng(config.seed)
  speakers = speakers_lib.sample_speakers(rng, config.num_speakers, seed=config.seed)
  by_split = split_speakers(speakers, config.speaker_split)
  sentences = text_generator.make_splits(config.seed, {s: config.utterances[s] for s in ASR_SPLITS})
  utterances = {s: _utterances(rng, s, sentences[s], by_split[s]) for s in ASR_SPLITS}
  trials = plan_trials(rng, utterances["test"], config.trials_per_group)
  mixtures = {s: plan_mixtures(rng, s, utterances[s], config.mixtures[s]) for s in MIX_SPLITS}
  return CorpusPlan(by_split, utterances, trials, mixtures)


def _plan_synth_corpus(config: CorpusConfig) -> CorpusPlan:
  """A multi-family corpus: espeak-ng speakers as in `plan_corpus` (with a drawn level and
  bandwidth), the recorded-voice families' speakers (`recorded_speakers`), utterances
  split between training families by ``family_share``, and ``test_unseen``: the first
  sentences of ``test`` read by the held-out family."""
  rng = np.random.default_rng(config.seed)
  espeak = speakers_lib.sample_speakers(rng, config.num_speakers, seed=config.seed)
  espeak = [speakers_lib.draw_channel(rng, s) for s in espeak]
  by_split = {s: list(v) for s, v in split_speakers(espeak, config.speaker_split).items()}
  for split, members in recorded_speakers(rng, config).items():
    by_split.setdefault(split, []).extend(members)
  sentences = text_generator.make_splits(config.seed, {s: config.utterances[s] for s in ASR_SPLITS})
  share = {f: v for f, v in config.family_share.items() if v > 0}
  utterances = {s: _utterances(rng, s, sentences[s], by_split[s], share) for s in ASR_SPLITS}
  if config.heldout_family:
    unseen = sentences["test"][: config.utterances[UNSEEN_SPLIT]]
    utterances[UNSEEN_SPLIT] = _utterances(rng, UNSEEN_SPLIT, unseen, by_split[UNSEEN_SPLIT])
  trials = plan_trials(rng, utterances["test"], config.trials_per_group)
  mixtures = {s: plan_mixtures(rng, s, utterances[s], config.mixtures[s]) for s in MIX_SPLITS}
  return CorpusPlan(by_split, utterances, trials, mixtures)
