"""pocketsphinx baseline: normalisation and a real decode with an in-domain LM."""

import shutil

import numpy as np
import pytest

from asrjax.baselines import pocketsphinx_asr as P

pytest.importorskip("pocketsphinx")


def test_normalise_strips_fillers_and_variants():
  assert P.normalise("<s> Turn(2) [NOISE] ON ++BREATH++ the lights </s>") == "turn on the lights"


@pytest.mark.slow  # 10 s; the default suite's 15-minute budget (BUILD_NOTES)
@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed")
def test_decodes_synthetic_speech_with_in_domain_lm(tmp_path):
  import subprocess
  raw = subprocess.run(
      "espeak-ng -v en-us --stdout 'set a timer for ten minutes' | sox -t wav - -t raw -r 16000 -e signed -b 16 -c 1 -",
      shell=True, check=True, capture_output=True).stdout
  lm = P.build_arpa_lm(["set a timer for ten minutes", "play some music", "set an alarm for seven"],
                       str(tmp_path / "lm.arpa"))
  assert P.Recognizer(lm=lm).recognize(np.frombuffer(raw, np.int16)) == "set a timer for ten minutes"


def test_bad_audio_is_rejected():
  r = P.Recognizer()
  assert r.recognize(np.zeros(0, np.int16)) == ""
  with pytest.raises(ValueError, match="int16"):
    r.recognize(np.zeros(100, np.float32))
