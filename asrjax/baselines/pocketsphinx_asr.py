"""pocketsphinx (CMU Sphinx) as the hybrid HMM/GMM baseline recogniser.

pocketsphinx ships an en-US acoustic model, the CMU pronouncing dictionary and a
general English trigram LM, and runs offline. `build_arpa_lm` builds a
fixed-backoff trigram ARPA model from training text with pocketsphinx's own
`pocketsphinx.lm.ArpaBoLM`, so the baseline can also be scored with an in-domain
LM. Hypotheses are normalised like asrjax's corpus text: lowercase words, no
fillers (``<s>``, ``[NOISE]``), no alternate-pronunciation markers (``word(2)``).

References:
  Huggins-Daines et al., "PocketSphinx: a free, real-time continuous speech
  recognition system for hand-held devices", ICASSP 2006.
"""

from __future__ import annotations

import re

import numpy as np


def _require():
  try:
    import pocketsphinx  # noqa: F401
  except ImportError as e:
    raise ImportError(
        "pocketsphinx is not installed; install the baseline extra: pip install -e '.[baselines]'"
    ) from e
  return pocketsphinx


def build_arpa_lm(sentences: list[str], path: str, discount_mass: float = 0.5) -> str:
  """Writes a trigram ARPA LM of ``sentences`` (one per item) to ``path``; returns ``path``."""
  _require()
  from pocketsphinx import lm as ps_lm

  lm = ps_lm.ArpaBoLM(text="\n".join(sentences), add_start=True, discount_mass=discount_mass)
  lm.compute()
  lm.write_file(path)
  return path


def normalise(hypothesis: str) -> str:
  """pocketsphinx words -> corpus text: lowercase, fillers and ``(n)`` variants removed."""
  words = []
  for w in hypothesis.split():
    if w.startswith(("<", "[", "++")):
      continue
    words.append(re.sub(r"\(\d+\)$", "", w).lower())
  return " ".join(words)


class Recognizer:
  """A pocketsphinx decoder for 16 kHz int16 audio.

  Args:
    lm: ARPA/DMP LM path (default: pocketsphinx's en-us LM).
  """

  def __init__(self, lm: str | None = None):
    ps = _require()
    kwargs = {"samprate": 16000, "loglevel": "FATAL"}
    if lm is not None:
      kwargs["lm"] = lm
    self._decoder = ps.Decoder(**kwargs)

  def recognize(self, audio: np.ndarray) -> str:
    """``[N]`` int16 samples -> normalised text ('' for silence or empty input)."""
    audio = np.asarray(audio)
    if audio.dtype != np.int16 or audio.ndim != 1:
      raise ValueError(f"expected [N] int16 audio; got {audio.dtype} {audio.shape}.")
    if audio.size == 0:
      return ""
    self._decoder.start_utt()
    self._decoder.process_raw(audio.tobytes(), full_utt=True)
    self._decoder.end_utt()
    hyp = self._decoder.hyp()
    return normalise(hyp.hypstr) if hyp is not None else ""
