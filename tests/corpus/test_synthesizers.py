"""flite, MBROLA, Pico and festival voices, validated like espeak-ng's: each renders, each differs, and the
speaker settings and acoustic conditions are measured on their output."""

import dataclasses
import hashlib
import shutil
import subprocess

import numpy as np
import pytest

from asrjax.corpus import speakers as S
from asrjax.corpus import synthesis as Y
from asrjax.corpus import synthesizers as Z

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("flite", "text2wave", "festival", "mbrola", "pico2wave", "sox")),
    reason="flite/festival/mbrola/pico/sox not installed (make system-deps)")

TEXT = "please add milk eggs and bread to my shopping list"
FAMILIES = ("flite", "mbrola", "pico", "festival")
RECORDED = [v for family in FAMILIES for v in Z.voices(family)]


def neutral(base: Z.BaseVoice, **changes) -> S.Speaker:
  """A speaker of ``base`` with no widening: the voice's own pitch and rate, no effects."""
  s = S.sample_voice_speakers(np.random.default_rng(0), base, 1, seed=0, prefix="t-")[0]
  s = dataclasses.replace(s, pitch=0, rate=100, timbre_db=0.0, formant_cents=0, level_db=0.0, bandwidth_hz=0)
  return dataclasses.replace(s, **changes)


def median_f0(x: np.ndarray, rate: int = Y.SAMPLE_RATE) -> float:
  """Median autocorrelation f0 (60-400 Hz) of the voiced 40 ms frames: an estimator independent of the synthesizers."""
  frame, hop, out = int(0.04 * rate), int(0.01 * rate), []
  window = np.hanning(frame)
  for i in range(0, x.size - frame, hop):
    w = x[i : i + frame] * window
    if np.sqrt(np.mean(w**2)) < 0.02 * np.abs(x).max():
      continue
    ac = np.correlate(w, w, "full")[frame - 1 :]
    lo, hi = rate // 400, rate // 60
    k = lo + int(np.argmax(ac[lo:hi]))
    if ac[k] > 0.4 * ac[0]:
      out.append(rate / k)
  return float(np.median(out))


def high_fraction(x: np.ndarray, above_hz: float) -> float:
  p = np.abs(np.fft.rfft(x)) ** 2
  f = np.fft.rfftfreq(x.size, 1 / Y.SAMPLE_RATE)
  return float(p[f > above_hz].sum() / p.sum())


def test_every_voice_is_installed_and_listed():
  for family in FAMILIES:
    Z.validate_voices(family)  # raises naming the package of any voice the program lacks


def test_every_voice_renders_and_sounds_different():
  digests = {}
  for base in RECORDED:
    audio = Y.render_clean(TEXT, neutral(base), Y.Condition())
    assert 1.5 < audio.size / Y.SAMPLE_RATE < 8 and np.abs(audio).max() > 0.5, base.key  # -3 dBFS peak
    digests[base.key] = hashlib.md5(audio.tobytes()).hexdigest()
  assert len(set(digests.values())) == len(RECORDED), digests


@pytest.mark.parametrize("base", [v for v in RECORDED if v.native_pitch], ids=lambda v: v.key)
def test_native_pitch_reaches_its_target(base):
  for target in (90, 150):
    measured = median_f0(Y.render_clean(TEXT, neutral(base, pitch=target), Y.Condition()))
    assert abs(measured / target - 1) < 0.12, (base.key, target, measured)


@pytest.mark.parametrize("base", [Z.voice("flite:rms"), Z.voice("festival:kal_diphone"), Z.voice("mbrola:us2"),
                                  Z.voice("pico:en-GB"), Z.voice("festival:cmu_us_slt_arctic_hts")],
                         ids=lambda v: v.key)
def test_rate_changes_the_duration(base):
  """Natively (flite, festival diphones, espeak-ng for MBROLA, Pico's markup) or through sox tempo
  (the HTS voice): duration ~ 1 / rate."""
  slow, fast = (Y.render_clean(TEXT, neutral(base, rate=r), Y.Condition()).size for r in (80, 125))
  assert abs((slow / fast) / (125 / 80) - 1) < 0.15, (base.key, slow, fast)


@pytest.mark.parametrize("key", ["flite:awb", "festival:ked_diphone"])
def test_formant_shift_moves_the_pitch_with_it(key):
  """sox ``pitch`` scales every frequency by 2^(cents / 1200): the measured f0 follows."""
  base = Z.voice(key)
  plain = median_f0(Y.render_clean(TEXT, neutral(base), Y.Condition()))
  shifted = median_f0(Y.render_clean(TEXT, neutral(base, formant_cents=150), Y.Condition()))
  assert abs(shifted / plain / 2 ** (150 / 1200) - 1) < 0.05, (plain, shifted)


@pytest.mark.parametrize("key", ["flite:rms", "mbrola:us1", "pico:en-US", "festival:cmu_us_slt_arctic_hts"])
def test_level_bandwidth_and_conditions_measured_on_the_output(key):
  base = Z.voice(key)
  speaker = neutral(base)
  clean = Y.render_clean(TEXT, speaker, Y.Condition())
  quiet = Y.render_clean(TEXT, neutral(base, level_db=-12.0), Y.Condition())
  assert abs(20 * np.log10(np.abs(quiet).max() / np.abs(clean).max()) + 12.0) < 0.1
  narrow = Y.render_clean(TEXT, neutral(base, bandwidth_hz=4000), Y.Condition())
  # relative to the voice's own energy there (MBROLA and Pico voices have little above 4 kHz)
  assert high_fraction(narrow, 4300) < 0.02 * high_fraction(clean, 4300) and high_fraction(clean, 4300) > 1e-4
  phone = Y.render_clean(TEXT, speaker, Y.Condition(band_limited=True))
  assert high_fraction(phone, 3800) < 0.05 * high_fraction(clean, 3800)
  fast = Y.render_clean(TEXT, speaker, Y.Condition(speed=1.1))
  assert abs(fast.size / clean.size - 1 / 1.1) < 0.01
  for snr in (0.0, 10.0):
    noisy = Y.add_noise(clean, snr, "pink", np.random.default_rng(0))
    active = np.abs(clean) > 0.01 * np.abs(clean).max()
    measured = 10 * np.log10(np.mean(clean[active] ** 2) / np.mean((noisy - clean) ** 2))
    assert abs(measured - snr) < 0.3
  a = Y.synthesize(TEXT, speaker, Y.Condition(snr_db=10.0, reverb=40), 5)
  assert np.array_equal(a, Y.synthesize(TEXT, speaker, Y.Condition(snr_db=10.0, reverb=40), 5))  # deterministic


def test_widened_speakers_keep_the_base_voice_and_draw_the_metadata():
  base = Z.voice("flite:awb")
  speakers = S.sample_voice_speakers(np.random.default_rng(4), base, 400, seed=4, prefix="w-")
  assert {(s.family, s.base_voice, s.talker, s.gender, s.accent, s.variant) for s in speakers} == {
      ("flite", "flite:awb", "awb", "male", "en-gb-scotland", "awb")}
  assert len({s.speaker_id for s in speakers}) == 400
  cents = np.array([s.formant_cents for s in speakers])
  assert cents.min() >= -150 and cents.max() <= 150 and cents.std() > 60
  f0 = np.array([s.pitch * 2 ** (s.formant_cents / 1200) for s in speakers])  # the f0 heard after the shift
  assert np.all((f0 > 0.78 * base.f0_hz) & (f0 < 1.22 * base.f0_hz))
  assert 0.1 < np.mean([s.difficulty == "hard" for s in speakers]) < 0.2
  assert all(85 * 0.9 - 1 <= s.rate <= 140 for s in speakers)
  assert {s.bandwidth_hz for s in speakers} == set(S.BANDWIDTHS_HZ)
  assert all(-18 <= s.level_db <= 0 for s in speakers)
  rms = S.sample_voice_speakers(np.random.default_rng(4), Z.voice("flite:rms"), 20, seed=4, prefix="r-")
  assert {s.pitch for s in rms} == {0}  # flite cannot set rms's f0: only the shift moves it


def _text2wave(text: str, speaker: S.Speaker, base: Z.BaseVoice, tmp_path) -> bytes:
  """The reference: one fresh ``text2wave`` process for the utterance, writing a file (its header complete)."""
  setup = "(begin (voice_%s) %s)" % (base.name, Z._festival_setup(speaker, base))
  out = tmp_path / "ref.wav"
  subprocess.run([shutil.which("text2wave"), "-eval", setup, "-o", str(out)], input=text.encode(), check=True,
                 capture_output=True)
  return out.read_bytes()


def test_festival_sessions_render_text2waves_bytes(tmp_path):
  """One interpreter per base voice, speakers interleaved (pitch and rate changed, then not), gives the
  bytes a fresh text2wave gives each utterance: no speaker's settings leak into the next utterance."""
  Z.close_festival_sessions()
  speakers = [s for base in Z.voices("festival")
              for s in S.sample_voice_speakers(np.random.default_rng(3), base, 3, seed=3, prefix="f-")]
  speakers += [neutral(base) for base in Z.voices("festival")]
  assert any(s.rate != 100 for s in speakers) and any(s.pitch for s in speakers)
  order = np.random.default_rng(0).permutation(len(speakers) * 2) % len(speakers)
  texts = [TEXT, "turn off the lights in the kitchen. then call mum!", "what's the weather, tomorrow?"]
  for n, i in enumerate(order):
    speaker, text = speakers[i], texts[n % len(texts)]
    base = Z.voice(speaker.base_voice)
    assert Z.render_wav(text, speaker) == _text2wave(text, speaker, base, tmp_path), (n, speaker, text)
  assert set(Z._FESTIVAL_SESSIONS) == {v.key for v in Z.voices("festival")}
  Z.close_festival_sessions()
  assert not Z._FESTIVAL_SESSIONS


def test_festival_reports_a_voice_it_does_not_have(monkeypatch):
  """text2wave exits 0 with the default voice for an unknown one; the error must surface."""
  ghost = Z.BaseVoice("festival", "ghost_diphone", "ghost", "male", "en-us", True, True, 100.0)
  monkeypatch.setitem(Z.VOICES, "festival", Z.VOICES["festival"] + (ghost,))
  with pytest.raises(RuntimeError, match="festival failed on voice ghost_diphone"):
    Z.render_wav(TEXT, neutral(ghost))
  Z.installed_voices.cache_clear()
  with pytest.raises(ValueError, match=r"festival has no voice\(s\) \['ghost_diphone'\]"):
    Z.validate_voices("festival")
  Z.installed_voices.cache_clear()


def test_missing_festival_voice_names_its_package(monkeypatch):
  monkeypatch.setattr(Z, "installed_voices", lambda family: frozenset({"kal_diphone", "cmu_us_slt_arctic_hts"}))
  with pytest.raises(ValueError, match=r"\['ked_diphone'\].*sudo apt-get install festvox-kdlpc16k"):
    Z.validate_voices("festival")


def test_missing_mbrola_database_is_found_on_disk(monkeypatch, tmp_path):
  """espeak-ng lists every mb-* voice whether or not its database is installed."""
  (tmp_path / "us1").mkdir()
  (tmp_path / "us1" / "us1").write_bytes(b"x")
  (tmp_path / "us2").mkdir()  # a folder without its database
  monkeypatch.setattr(Z, "MBROLA_DIR", str(tmp_path))
  Z.installed_voices.cache_clear()
  try:
    assert Z.installed_voices("mbrola") == {"us1"}
    with pytest.raises(ValueError, match=r"mbrola has no voice\(s\) \['us2', 'us3', 'en1'\].*apt-get install "
                                         r"mbrola-en1 mbrola-us2 mbrola-us3"):
      Z.validate_voices("mbrola")
  finally:
    Z.installed_voices.cache_clear()


def test_pico_refuses_markup_in_the_text():
  with pytest.raises(ValueError, match="must not hold markup"):
    Z.render_wav("turn <speed level='500'>on</speed>", neutral(Z.voice("pico:en-US")))


def test_festival_with_nothing_to_say_is_an_error_and_the_session_goes_on():
  """No utterance: an error, not an empty file for sox to read as 0 samples. festival itself crashes on
  "..." (text2wave too, status 139): that is reported, and the next render starts a fresh interpreter."""
  base = Z.voice("festival:kal_diphone")
  with pytest.raises(RuntimeError, match=r"festival wrote no audio on voice kal_diphone for '   '"):
    Z.render_wav("   ", neutral(base))
  with pytest.raises(RuntimeError, match=r"festival failed on voice kal_diphone \('  \.\.\. '\): the interpreter "
                                         r"exited with status -11"):
    Z.render_wav("  ... ", neutral(base))
  assert Z.render_wav(TEXT, neutral(base))[:4] == b"RIFF"


def test_unknown_base_voice_is_refused():
  with pytest.raises(ValueError, match="unknown base voice 'flite:nobody'"):
    Z.voice("flite:nobody")
