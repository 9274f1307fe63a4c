"""Offline speech synthesis: a synthesizer, then sox effects and seeded additive noise.

One utterance = the speaker's synthesizer (`asrjax.corpus.synthesizers`: espeak-ng,
flite or festival, at its own rate) piped through ``sox -R -D`` (repeatable, no
dither) for resampling to 16 kHz, the speaker's formant shift, tempo (voices whose
synthesizer cannot stretch durations) and low-pass bandwidth, speed perturbation,
the voice-quality filter, optional telephone band-limiting and reverberation, then
peak normalisation and the speaker's level; additive noise (white, pink or brown)
is then mixed in NumPy at the condition's SNR from a per-utterance seed. Every step
is deterministic, so the same text, speaker, condition and seed give the same int16
samples on any machine with the same synthesizer and sox. The widening effects are
off for espeak-ng speakers of the old `espeak_speech` corpus, whose audio is unchanged.

References:
  Ko et al., "Audio augmentation for speech recognition", Interspeech 2015 (speed
  perturbation); Kim et al., "Generation of large-scale simulated utterances in
  virtual rooms to train deep-neural networks for far-field speech recognition in
  Google Home", Interspeech 2017 (reverberation and noise).
"""

from __future__ import annotations

import dataclasses
import subprocess

import numpy as np

from asrjax.corpus import speakers as speakers_lib
from asrjax.corpus import synthesizers, system_tools

SAMPLE_RATE = 16_000
NOISE_TYPES = ("white", "pink", "brown")


@dataclasses.dataclass(frozen=True)
class Condition:
  """Acoustic condition of one utterance; stored with it as metadata."""

  speed: float = 1.0  # sox speed factor (tempo and pitch)
  snr_db: float | None = None  # None = no added noise
  noise: str = "white"
  reverb: int = 0  # sox reverberance 0..100; 0 = dry
  band_limited: bool = False  # 300-3400 Hz telephone channel


def require_sox() -> str:
  """Path of sox, or a `RuntimeError` that says how to install it."""
  return system_tools.require("sox")


def sample_condition(rng: np.random.Generator, speaker: speakers_lib.Speaker) -> Condition:
  """Draws an utterance's condition; "hard" speakers get low SNR and far-field reverb more often."""
  hard = speaker.difficulty == "hard"
  snr_choices = (None, 15.0, 5.0, 0.0) if hard else (None, 20.0, 10.0, 5.0)
  snr = snr_choices[int(rng.choice(4, p=(0.1, 0.3, 0.4, 0.2) if hard else (0.4, 0.3, 0.2, 0.1)))]
  reverb = int(rng.integers(60, 95)) if (hard and rng.random() < 0.6) else (
      int(rng.integers(20, 50)) if rng.random() < 0.25 else 0)
  return Condition(
      speed=float(rng.choice((0.9, 1.0, 1.1), p=(0.2, 0.6, 0.2))),
      snr_db=snr,
      noise=NOISE_TYPES[int(rng.integers(len(NOISE_TYPES)))],
      reverb=reverb,
      band_limited=bool(rng.random() < 0.1),
  )


def _sox_effects(speaker: speakers_lib.Speaker, condition: Condition) -> list[str]:
  effects = ["rate", "-h", str(SAMPLE_RATE)]
  if speaker.formant_cents:
    effects += ["pitch", str(speaker.formant_cents)]
  if speaker.family != "espeak-ng" and speaker.rate != 100 and not synthesizers.voice(speaker.base_voice).native_rate:
    effects += ["tempo", "-s", f"{speaker.rate / 100:g}"]
  if speaker.bandwidth_hz:
    effects += ["sinc", f"-{speaker.bandwidth_hz}"]
  if condition.speed != 1.0:
    effects += ["speed", f"{condition.speed:g}", "rate", "-h", str(SAMPLE_RATE)]
  if speaker.timbre_db:
    effects += ["treble", f"{speaker.timbre_db:g}"]
  if condition.band_limited:
    effects += ["sinc", "300-3400"]
  if condition.reverb:
    effects += ["reverb", str(condition.reverb)]
  effects += ["gain", "-n", "-3"]  # peak-normalise to -3 dBFS
  return effects + (["gain", f"{speaker.level_db:g}"] if speaker.level_db else [])


def render_clean(text: str, speaker: speakers_lib.Speaker, condition: Condition) -> np.ndarray:
  """Synthesizer + sox effects, before noise: ``[N]`` float32 in [-1, 1] at 16 kHz."""
  if not text.strip():
    raise ValueError("cannot synthesise empty text.")
  sox = [require_sox(), "-R", "-D", "-t", "wav", "-", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1",
         "-"] + _sox_effects(speaker, condition)
  wav = synthesizers.render_wav(text, speaker)
  raw = subprocess.run(sox, input=wav, check=True, capture_output=True).stdout
  audio = np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
  if audio.size == 0:
    voice = speaker.espeak_voice if speaker.family == "espeak-ng" else speaker.base_voice
    raise RuntimeError(f"{speaker.family}/sox produced no audio for {text!r} with voice {voice}.")
  return audio


def colored_noise(rng: np.random.Generator, num: int, kind: str) -> np.ndarray:
  """Unit-variance noise ``[num]``: white, pink (1/f power) or brown (1/f^2 power)."""
  if kind not in NOISE_TYPES:
    raise ValueError(f"unknown noise {kind!r}; expected one of {NOISE_TYPES}.")
  white = rng.standard_normal(num)
  if kind == "white" or num < 2:
    noise = white
  else:
    spectrum = np.fft.rfft(white)
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    spectrum /= np.sqrt(f) if kind == "pink" else f
    noise = np.fft.irfft(spectrum, num)
  noise = noise - noise.mean()
  return (noise / (noise.std() + 1e-12)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float | None, noise: str, rng: np.random.Generator) -> np.ndarray:
  """Mixes noise at ``snr_db`` relative to the speech power (power of samples above -40 dB of peak)."""
  if snr_db is None:
    return audio
  active = audio[np.abs(audio) > 0.01 * np.max(np.abs(audio))]
  speech_power = float(np.mean(active**2)) if active.size else 0.0
  scale = np.sqrt(speech_power / 10 ** (snr_db / 10))
  return audio + scale * colored_noise(rng, audio.size, noise)


def to_int16(audio: np.ndarray) -> np.ndarray:
  """Float in [-1, 1] -> int16, clipping; peak-normalised first if the mix clips."""
  peak = float(np.max(np.abs(audio))) if audio.size else 0.0
  if peak > 1.0:
    audio = audio / peak
  return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def synthesize(
    text: str, speaker: speakers_lib.Speaker, condition: Condition, noise_seed: int,
    clean: np.ndarray | None = None,
) -> np.ndarray:
  """One utterance as ``[N]`` int16 samples at 16 kHz (``clean``: its `render_clean` output, if already made)."""
  audio = render_clean(text, speaker, condition) if clean is None else clean
  return to_int16(add_noise(audio, condition.snr_db, condition.noise, np.random.default_rng(noise_seed)))


def speech_span(audio: np.ndarray, threshold: float = 0.02) -> tuple[int, int]:
  """``(first, last + 1)`` sample whose magnitude exceeds ``threshold`` x peak (clean audio)."""
  mag = np.abs(audio.astype(np.float32))
  idx = np.nonzero(mag > threshold * mag.max())[0] if mag.size and mag.max() > 0 else np.zeros(0, int)
  if idx.size == 0:
    return 0, 0
  return int(idx[0]), int(idx[-1]) + 1
