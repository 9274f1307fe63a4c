"""Synthetic speakers: synthesizer voice settings plus demographic and geographic metadata.

An espeak-ng speaker (`sample_speakers`) is an English voice (accent) x voice variant
(which fixes the gender) x pitch x speaking rate x word gap x a voice-quality filter.
A flite or festival speaker (`sample_voice_speakers`) is one recorded base voice
(`asrjax.corpus.synthesizers.BaseVoice`: its talker, gender and accent) widened by a
formant shift, a target f0, a speaking rate, a voice-quality filter, an output level
and a codec-like bandwidth. Every draw comes from an explicit
`numpy.random.Generator`, and every speaker records its ``family``, ``base_voice``
and ``talker`` (so splits can keep a talker out of training) and carries the
metadata that the fairness and speaker-verification methods need:

* accent (the espeak-ng voice) and its home region;
* gender (from the variant) and an age band;
* a home location: latitude/longitude drawn around the accent's region centre --
  and, for ``MOVED_FRACTION`` of speakers, around another region's centre -- so
  geography correlates with accent but not perfectly;
* a zip-like ``area_code`` (the 7-digit index of a 0.25-degree grid cell) and
  synthetic census-style attributes of that area (``demographic_group``,
  ``income_band``): a function of the area alone, the same for every speaker
  living there, skewed by the nearest accent region so they follow geography;
* a ``difficulty`` ("normal" or "hard": fast speech, low SNR, far field) that the
  acoustic-condition sampler (`asrjax.corpus.synthesis`) uses, so that word error
  rates really differ across cohorts.

Variant names are validated against espeak-ng's own list: espeak-ng exits 0 and
silently falls back to the plain voice for an unknown or mis-cased variant
(``en-us+female3`` sounds exactly like ``en-us``).
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import zlib

import numpy as np

from asrjax.corpus import system_tools


@dataclasses.dataclass(frozen=True)
class Accent:
  """An espeak-ng English voice and the region whose speakers it stands for."""

  voice: str
  region: str
  latitude: float
  longitude: float
  spread_deg: float  # standard deviation of home locations around the centre


ACCENTS: tuple[Accent, ...] = (
    Accent("en-us", "general_american", 39.8, -98.6, 5.0),
    Accent("en-us-nyc", "new_york_city", 40.71, -73.95, 0.35),
    Accent("en-gb", "southern_england", 51.5, -0.12, 0.7),
    Accent("en-gb-x-rp", "home_counties", 51.75, -1.26, 0.6),
    Accent("en-gb-scotland", "scotland", 55.95, -3.6, 0.8),
    Accent("en-gb-x-gbclan", "lancashire", 54.05, -2.8, 0.4),
    Accent("en-gb-x-gbcwmd", "west_midlands", 52.48, -1.9, 0.4),
    Accent("en-029", "caribbean", 18.0, -76.8, 1.5),
)

# Human-sounding variants (robot, whisper, "demonic", announcer ... left out; "caleb"
# renders exactly like "klatt", so only one of the two is kept).
VARIANTS_MALE: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "adam", "Andy", "antonio", "benjamin",
    "boris", "david", "Denis", "Diogo", "ed", "edward", "Gene", "gustave", "Henrique",
    "Hugo", "iven", "iven2", "Jacky", "john", "Lee", "marcelo", "Marco", "Mario", "max",
    "Michael", "michel", "miguel", "Mike", "Nguyen", "pablo", "paul", "pedro", "quincy", "rob",
    "robert", "zac", "norbert", "sandro", "shelby", "travis", "victor", "grandpa", "klatt",
    "klatt2", "klatt3",
)
VARIANTS_FEMALE: tuple[str, ...] = (
    "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "aunty", "belinda", "linda",
    "steph", "steph2", "steph3", "anika", "grandma",
)
OLD_VARIANTS = frozenset({"m1", "f1", "grandpa", "grandma"})

AGE_BANDS = ("18-29", "30-44", "45-59", "60+")
DEMOGRAPHIC_GROUPS = ("group_1", "group_2", "group_3", "group_4", "group_5")
INCOME_BANDS = ("low", "lower_middle", "upper_middle", "high")
MOVED_FRACTION = 0.1
HARD_FRACTION = 0.15
AREA_CELL_DEG = 0.25


@dataclasses.dataclass(frozen=True)
class Speaker:
  """One synthetic speaker; every field is stored with each of its utterances."""

  speaker_id: str
  accent: str  # espeak-ng voice, e.g. "en-gb-scotland"
  region: str  # home region of the accent
  variant: str  # espeak-ng variant file name, e.g. "f3"
  gender: str  # "female" | "male"
  age_band: str
  pitch: int  # espeak-ng -p, 0..99
  rate: int  # espeak-ng -s, words per minute
  word_gap: int  # espeak-ng -g, units of 10 ms
  timbre_db: float  # sox treble gain: a voice-quality / channel colour
  latitude: float
  longitude: float
  area_code: str
  demographic_group: str
  income_band: str
  difficulty: str  # "normal" | "hard"
  # Synthesizer family and base voice (`asrjax.corpus.synthesizers`). For espeak-ng the base
  # voice is the variant (the accent only changes pronunciation) and there is no talker; for
  # flite and festival ``variant`` is the voice name, ``pitch`` the target mean f0 in Hz (0:
  # the voice's own) and ``rate`` the speaking rate in percent of the voice's own.
  family: str = "espeak-ng"
  base_voice: str = ""  # "family:voice", e.g. "flite:awb" or "espeak-ng:f3"
  talker: str = ""  # the person the base voice was recorded from ("" for espeak-ng)
  # Widening (sox, all families): formant (and pitch) shift in cents, output level below
  # -3 dBFS peak, low-pass "codec" bandwidth (0: full band).
  formant_cents: int = 0
  level_db: float = 0.0
  bandwidth_hz: int = 0

  @property
  def espeak_voice(self) -> str:
    return f"{self.accent}+{self.variant}"


def require_espeak() -> str:
  """Path of espeak-ng, or a `RuntimeError` that says how to install it."""
  return system_tools.require("espeak-ng")


@functools.lru_cache(maxsize=None)
def espeak_variants() -> dict[str, str]:
  """``{variant file name: "male" | "female" | "unknown"}`` as espeak-ng lists them."""
  out = subprocess.run(
      [require_espeak(), "--voices=variant"], check=True, capture_output=True, text=True
  ).stdout
  variants = {}
  for line in out.splitlines()[1:]:
    cols = line.split()
    if len(cols) >= 5 and cols[4].startswith("!v/"):
      gender = {"M": "male", "F": "female"}.get(cols[2].split("/")[-1], "unknown")
      variants[cols[4][3:]] = gender
  return variants


@functools.lru_cache(maxsize=None)
def espeak_voices() -> frozenset[str]:
  """Language names of the English voices espeak-ng ships (``en-us``, ``en-gb-scotland`` ...)."""
  out = subprocess.run(
      [require_espeak(), "--voices=en"], check=True, capture_output=True, text=True
  ).stdout
  return frozenset(line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1)


def validate_voices(accents=ACCENTS, male=VARIANTS_MALE, female=VARIANTS_FEMALE) -> None:
  """Raises `ValueError` naming any voice or variant that espeak-ng would silently ignore."""
  missing = sorted({a.voice for a in accents} - espeak_voices())
  if missing:
    raise ValueError(f"espeak-ng has no English voice(s) {missing}; it lists {sorted(espeak_voices())}.")
  known = espeak_variants()
  for names, gender in ((male, "male"), (female, "female")):
    for name in names:
      if name not in known:
        raise ValueError(
            f"espeak-ng has no variant {name!r} (names are case-sensitive file names from "
            "`espeak-ng --voices=variant`); it would silently use the plain voice."
        )
      if known[name] != gender:
        raise ValueError(f"variant {name!r} is listed as {known[name]}, not {gender}.")


def _stable_uniform(*parts) -> float:
  """A deterministic number in [0, 1) from the given parts (crc32; no Python `hash`)."""
  return zlib.crc32("|".join(map(str, parts)).encode()) / 2**32


def area_code(latitude: float, longitude: float) -> str:
  """Zip-like 7-digit code: row (3 digits) and column (4 digits) of the ``AREA_CELL_DEG`` grid cell."""
  row = int(np.floor((latitude + 90.0) / AREA_CELL_DEG))
  col = int(np.floor(((longitude + 180.0) % 360.0) / AREA_CELL_DEG))
  return f"{row:03d}{col:04d}"


def area_centre(code: str) -> tuple[float, float]:
  """``(latitude, longitude)`` of the centre of the cell ``code`` names."""
  row, col = int(code[:3]), int(code[3:])
  return (row + 0.5) * AREA_CELL_DEG - 90.0, (col + 0.5) * AREA_CELL_DEG - 180.0


def nearest_region(latitude: float, longitude: float) -> str:
  """The accent region whose centre is closest (in degrees) to the location."""
  return min(ACCENTS, key=lambda a: (a.latitude - latitude) ** 2 + (a.longitude - longitude) ** 2).region


def area_attributes(code: str, seed: int) -> tuple[str, str]:
  """Synthetic census attributes ``(demographic_group, income_band)`` of an area.

  Deterministic in ``(code, seed)``; the group distribution is skewed towards a
  dominant group of the nearest accent region, so that demographic group
  correlates with geography, as in real census data.
  """
  region = nearest_region(*area_centre(code))
  skew = int(_stable_uniform("region", region, seed) * len(DEMOGRAPHIC_GROUPS))
  u = _stable_uniform("group", code, seed)
  # Majority group: the region's dominant group with probability 0.6, else uniform.
  group = skew if u < 0.6 else int((u - 0.6) / 0.4 * len(DEMOGRAPHIC_GROUPS))
  income = int(_stable_uniform("income", code, seed) * len(INCOME_BANDS))
  return DEMOGRAPHIC_GROUPS[min(group, len(DEMOGRAPHIC_GROUPS) - 1)], INCOME_BANDS[income]


def _home(rng: np.random.Generator, accent: Accent, seed: int) -> tuple:
  """``(latitude, longitude, area_code, demographic_group, income_band)``: a home around the accent's
  region centre, or another region's for ``MOVED_FRACTION`` of speakers."""
  home = accent
  if rng.random() < MOVED_FRACTION:
    home = ACCENTS[int(rng.integers(len(ACCENTS)))]
  lat = float(np.clip(home.latitude + home.spread_deg * rng.normal(), -89.0, 89.0))
  lon = float(home.longitude + home.spread_deg * rng.normal())
  code = area_code(lat, lon)
  return (lat, lon, code, *area_attributes(code, seed))


def sample_speakers(rng: np.random.Generator, num: int, *, seed: int, prefix: str = "spk") -> list[Speaker]:
  """Draws ``num`` speakers, accents round-robin so every accent is represented.

  Args:
    rng: the only source of randomness.
    num: number of speakers.
    seed: corpus seed, used for the (deterministic) census attributes of areas.
    prefix: speaker ids are ``f"{prefix}{index:04d}"``.
  """
  speakers = []
  for i in range(num):
    accent = ACCENTS[i % len(ACCENTS)]
    gender = "female" if rng.random() < 0.5 else "male"
    variants = VARIANTS_FEMALE if gender == "female" else VARIANTS_MALE
    variant = variants[int(rng.integers(len(variants)))]
    age_band = "60+" if variant in OLD_VARIANTS else AGE_BANDS[int(rng.integers(len(AGE_BANDS)))]
    hard = rng.random() < HARD_FRACTION
    pitch = int(rng.integers(45, 85) if gender == "female" else rng.integers(25, 60))
    rate = int(rng.integers(200, 250) if hard else rng.integers(135, 195))
    if age_band == "60+":
      rate = int(rate * 0.9)
    lat, lon, code, group, income = _home(rng, accent, seed)
    speakers.append(
        Speaker(
            speaker_id=f"{prefix}{i:04d}",
            accent=accent.voice,
            region=accent.region,
            variant=variant,
            gender=gender,
            age_band=age_band,
            pitch=pitch,
            rate=rate,
            word_gap=int(rng.integers(0, 3)),
            timbre_db=float(np.round(rng.uniform(-6.0, 6.0), 1)),
            latitude=round(lat, 4),
            longitude=round(lon, 4),
            area_code=code,
            demographic_group=group,
            income_band=income,
            difficulty="hard" if hard else "normal",
            base_voice=f"espeak-ng:{variant}",
        )
    )
  return speakers


BANDWIDTHS_HZ = (0, 0, 0, 7000, 5500, 4000)  # codec-like low-pass; 0 = full band (half the speakers)


def draw_channel(rng: np.random.Generator, speaker: Speaker) -> Speaker:
  """``speaker`` with a drawn output level (-18..0 dB) and codec-like bandwidth (`BANDWIDTHS_HZ`)."""
  return dataclasses.replace(
      speaker, level_db=float(np.round(rng.uniform(-18.0, 0.0), 1)),
      bandwidth_hz=int(BANDWIDTHS_HZ[int(rng.integers(len(BANDWIDTHS_HZ)))]))


def _accent(voice_name: str) -> Accent:
  return next(a for a in ACCENTS if a.voice == voice_name)


def sample_voice_speakers(rng: np.random.Generator, base, num: int, *, seed: int, prefix: str) -> list[Speaker]:
  """``num`` speakers widened from one recorded `asrjax.corpus.synthesizers.BaseVoice`.

  Each speaker keeps the base voice's gender, talker and accent and draws the same
  metadata as an espeak-ng speaker (age band, difficulty, home location around the
  accent's region -- or another region's for ``MOVED_FRACTION`` -- area code and census
  attributes), plus the widening: a formant shift of -150..150 cents (sox ``pitch``,
  which moves the pitch with it), a target mean f0 within +-20% of the voice's own where
  the synthesizer sets one (compensated for the shift), a speaking rate of 85-115% of
  the voice's (120-140% for "hard" speakers, x0.9 at 60+), a treble colour, an output
  level and a codec-like bandwidth (`draw_channel`).

  Args:
    rng: the only source of randomness.
    base: the base voice.
    num: number of speakers.
    seed: corpus seed (census attributes of areas).
    prefix: speaker ids are ``f"{prefix}{index:04d}"``.
  """
  accent = _accent(base.accent)
  speakers = []
  for i in range(num):
    age_band = AGE_BANDS[int(rng.integers(len(AGE_BANDS)))]
    hard = rng.random() < HARD_FRACTION
    cents = int(rng.integers(-150, 151))
    pitch = 0
    if base.native_pitch:
      target = base.f0_hz * rng.uniform(0.8, 1.2)
      pitch = int(round(target / 2 ** (cents / 1200)))
    rate = int(rng.integers(120, 141) if hard else rng.integers(85, 116))
    if age_band == "60+":
      rate = int(rate * 0.9)
    lat, lon, code, group, income = _home(rng, accent, seed)
    speaker = Speaker(
        speaker_id=f"{prefix}{i:04d}", accent=accent.voice, region=accent.region, variant=base.name,
        gender=base.gender, age_band=age_band, pitch=pitch, rate=rate, word_gap=0,
        timbre_db=float(np.round(rng.uniform(-6.0, 6.0), 1)), latitude=round(lat, 4), longitude=round(lon, 4),
        area_code=code, demographic_group=group, income_band=income, difficulty="hard" if hard else "normal",
        family=base.family, base_voice=base.key, talker=base.talker, formant_cents=cents)
    speakers.append(draw_channel(rng, speaker))
  return speakers
