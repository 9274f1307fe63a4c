"""Two-talker mixtures with known turn times, for multi-talker ASR (Sklyar et al., 2022).

Each talker's utterance is synthesised without noise; its speech span (first to
last sample above 2% of its peak) defines the turn. The second talker is placed so
that its speech starts ``overlap x shorter turn`` before the first talker's speech
ends (or ``-overlap`` seconds after it, for a gap), scaled by ``gain_db``, and the
noise of the mixture is added last. Turn start/end times are in seconds from the
start of the mixture.

References:
  Sklyar et al., "Separator-transducer-segmenter: streaming recognition and
  segmentation of multi-party speech", Interspeech 2022.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from asrjax.corpus import synthesis

if TYPE_CHECKING:
  from asrjax.corpus import corpus_plan


@dataclasses.dataclass(frozen=True)
class Turn:
  speaker_id: str
  text: str
  start: float  # seconds
  end: float  # seconds


def place_second(first_span: tuple[int, int], second_span: tuple[int, int], overlap: float, rate: int) -> int:
  """Sample offset at which the second talker's audio starts in the mixture (>= 0)."""
  shorter = min(first_span[1] - first_span[0], second_span[1] - second_span[0])
  target_speech_start = first_span[1] - (overlap * shorter if overlap >= 0 else overlap * rate)
  return max(0, int(round(target_speech_start)) - second_span[0])


def render_mixture(spec: corpus_plan.MixtureSpec, clean=(None, None)) -> tuple[np.ndarray, list[Turn]]:
  """``([N] int16 mixture, turns sorted by start time)``.

  ``clean``: the two talkers' `synthesis.render_clean` outputs where already made
  (the speech build renders the same utterances; see `espeak_corpus`), else None.
  """
  rate = synthesis.SAMPLE_RATE
  a, b = clean
  if a is None:
    a = synthesis.render_clean(spec.first.text, spec.first.speaker, spec.first.condition)
  if b is None:
    b = synthesis.render_clean(spec.second.text, spec.second.speaker, spec.second.condition)
  b = b * 10 ** (spec.gain_db / 20)
  span_a, span_b = synthesis.speech_span(a), synthesis.speech_span(b)
  offset = place_second(span_a, span_b, spec.overlap, rate)
  mix = np.zeros(max(a.size, offset + b.size), np.float32)
  mix[: a.size] += a
  mix[offset : offset + b.size] += b
  noisy = synthesis.add_noise(mix, spec.condition.snr_db, spec.condition.noise, np.random.default_rng(spec.noise_seed))
  turns = [
      Turn(spec.first.speaker.speaker_id, spec.first.text, span_a[0] / rate, span_a[1] / rate),
      Turn(spec.second.speaker.speaker_id, spec.second.text, (offset + span_b[0]) / rate, (offset + span_b[1]) / rate),
  ]
  return synthesis.to_int16(noisy), sorted(turns, key=lambda t: t.start)
