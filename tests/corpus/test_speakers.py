"""Speakers: voices validated against espeak-ng, metadata ranges, distinct audio per speaker."""

import dataclasses
import hashlib

import shutil

import numpy as np
import pytest

from asrjax.corpus import speakers as S
from asrjax.corpus import system_tools
from asrjax.corpus import synthesis as Y

pytestmark = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed (make system-deps)")


def _clean(text, speaker):
  return Y.render_clean(text, speaker, Y.Condition())


def test_all_voices_and_variants_exist_in_espeak():
  S.validate_voices()  # raises on any name espeak-ng would silently ignore


@pytest.mark.parametrize("bad", ["female3", "annie", "M3"])
def test_unknown_or_miscased_variant_is_rejected(bad):
  with pytest.raises(ValueError, match="no variant"):
    S.validate_voices(male=(bad,), female=())


def test_every_variant_changes_the_audio():
  """espeak-ng falls back to the plain voice for bad names; each variant we use must sound different."""
  base = S.sample_speakers(np.random.default_rng(0), 1, seed=0)[0]
  base = dataclasses.replace(base, accent="en-us", pitch=50, rate=170, word_gap=0, timbre_db=0.0)
  plain = hashlib.md5(Y.subprocess.run(
      ["espeak-ng", "-v", "en-us", "-p", "50", "-s", "170", "-g", "0", "--stdout", "turn on the lights"],
      check=True, capture_output=True).stdout).hexdigest()
  digests = {}
  for variant in S.VARIANTS_MALE + S.VARIANTS_FEMALE:
    out = Y.subprocess.run(
        ["espeak-ng", "-v", f"en-us+{variant}", "-p", "50", "-s", "170", "-g", "0", "--stdout", "turn on the lights"],
        check=True, capture_output=True).stdout
    digests[variant] = hashlib.md5(out).hexdigest()
  assert plain not in digests.values()
  assert len(set(digests.values())) == len(digests), "two variants produce identical audio"


def test_distinct_speakers_give_distinct_audio():
  speakers = S.sample_speakers(np.random.default_rng(1), 16, seed=1)
  clips = {s.speaker_id: _clean("what is the weather like tomorrow", s).tobytes() for s in speakers}
  assert len(set(clips.values())) == len(speakers)


def test_metadata_ranges_and_correlations():
  speakers = S.sample_speakers(np.random.default_rng(2), 800, seed=2)
  assert {s.accent for s in speakers} == {a.voice for a in S.ACCENTS}
  assert 0.4 < np.mean([s.gender == "female" for s in speakers]) < 0.6
  assert 0.1 < np.mean([s.difficulty == "hard" for s in speakers]) < 0.2
  assert all(-90 <= s.latitude <= 90 and -180 <= s.longitude <= 180 for s in speakers)
  assert all(len(s.area_code) == 7 and s.area_code.isdigit() for s in speakers)
  for s in speakers[:50]:  # the code names the cell that holds the home location
    lat, lon = S.area_centre(s.area_code)
    assert abs(lat - s.latitude) <= S.AREA_CELL_DEG / 2 + 1e-9
    assert abs((lon - s.longitude + 180) % 360 - 180) <= S.AREA_CELL_DEG / 2 + 1e-9
  assert all(s.demographic_group in S.DEMOGRAPHIC_GROUPS and s.income_band in S.INCOME_BANDS for s in speakers)
  assert all(s.age_band in S.AGE_BANDS for s in speakers)
  # geography follows accent, but not perfectly (MOVED_FRACTION of speakers live elsewhere)
  centres = {a.voice: np.array([a.latitude, a.longitude]) for a in S.ACCENTS}
  nearest_own = [
      min(centres, key=lambda v: np.linalg.norm(centres[v] - [s.latitude, s.longitude])) == s.accent
      for s in speakers
  ]
  assert 0.75 < np.mean(nearest_own) < 0.99
  # census attributes are a property of the area: equal codes -> equal attributes
  by_code = {}
  for s in speakers:
    by_code.setdefault(s.area_code, set()).add((s.demographic_group, s.income_band))
  assert all(len(v) == 1 for v in by_code.values())


def test_missing_espeak_says_how_to_install(monkeypatch):
  monkeypatch.setattr(system_tools.shutil, "which", lambda name: None)
  with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
    S.require_espeak()
  with pytest.raises(RuntimeError, match="apt-get install sox"):
    Y.require_sox()
