"""A recording's condition in three coarse classes, from the espeak corpus' metadata.

The per-field breakdowns (noise type, SNR, reverberation, telephone band) split the
test set too finely to read at a glance; these three classes are what separates the
errors of the ConvRNN-T runs (BUILD_NOTES.md, "cpu_long"):

* ``clean``: no additive noise, dry (reverberance 0) and full band;
* ``noise 0-5 dB``: additive noise at an SNR of 5 dB or less, whatever else;
* ``other degraded``: everything else (noise at 10 dB or more, reverberation,
  telephone band).
"""

from __future__ import annotations

import math

from asrjax.data import catalog

CONDITIONS = ("clean", "noise 0-5 dB", "other degraded")
FIELDS = ("noise", "snr_db", "reverb", "band_limited")


def recording_condition(example) -> str:
  """One of `CONDITIONS` for an example (a record or its metadata) with `FIELDS`.

  ``snr_db`` is ``inf`` (and ``noise`` is ``"none"``) when no noise was added.

  Raises:
    KeyError: naming the missing fields (corpora other than the espeak ones lack them).
  """
  missing = [f for f in FIELDS if f not in example]
  if missing:
    raise KeyError(f"a recording condition needs the fields {FIELDS}; this example lacks {missing}.")
  snr = float(example["snr_db"])
  noisy = catalog.as_text(example["noise"]) != "none" and math.isfinite(snr)
  if noisy and snr <= 5.0:
    return "noise 0-5 dB"
  if noisy or int(example["reverb"]) or bool(example["band_limited"]):
    return "other degraded"
  return "clean"
