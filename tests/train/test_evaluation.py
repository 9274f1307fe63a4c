"""The metadata labels WER is broken down by."""

import math

from asrjax.train import evaluation


def test_example_groups_decodes_fields_and_adds_the_condition():
  record = {"audio": [0], "text": b"hi", "accent": b"en-gb-scotland", "variant": b"aunty", "noise": b"pink",
            "snr_db": 5.0, "reverb": 0, "band_limited": False, "latitude": 1.0}
  assert evaluation.example_groups(record) == {
      "accent": "en-gb-scotland", "variant": "aunty", "noise": "pink", "snr_db": "5.0", "band_limited": "False",
      "condition": "noise 0-5 dB"}


def test_example_groups_without_condition_fields():
  # a LibriSpeech-like record: no recording-condition metadata, so no "condition" label
  assert evaluation.example_groups({"text": "hi", "gender": "f", "snr_db": math.inf}) == {
      "gender": "f", "snr_db": "inf"}
