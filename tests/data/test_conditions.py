"""Recording-condition classes, on hand-built metadata rows."""

import math

import pytest

from asrjax.data import conditions


def _meta(noise="none", snr=math.inf, reverb=0, band=False):
  return {"noise": noise.encode(), "snr_db": snr, "reverb": reverb, "band_limited": band}


@pytest.mark.parametrize("meta, expected", [
    (_meta(), "clean"),
    (_meta("white", 0.0), "noise 0-5 dB"),
    (_meta("pink", 5.0), "noise 0-5 dB"),  # the boundary belongs to the low-SNR class
    (_meta("brown", 5.0, reverb=80, band=True), "noise 0-5 dB"),  # low SNR wins over other degradations
    (_meta("white", 10.0), "other degraded"),
    (_meta("pink", 20.0), "other degraded"),
    (_meta(reverb=70), "other degraded"),
    (_meta(band=True), "other degraded"),
    (_meta("none", 0.0), "clean"),  # noise "none" means nothing was added, whatever the SNR field says
])
def test_recording_condition(meta, expected):
  assert conditions.recording_condition(meta) == expected


def test_missing_fields_are_named():
  with pytest.raises(KeyError, match="reverb"):
    conditions.recording_condition({"noise": "none", "snr_db": math.inf, "band_limited": False})
