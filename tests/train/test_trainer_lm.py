"""The trainer's n-gram LM set-up: counted on the training transcripts, cached, and beam-only."""

import os

import numpy as np
import pytest

from asrjax.data.tokenizer import CharTokenizer
from asrjax.tasks import transducer_asr
from experiments.configs import convrnnt

TEXTS = ["set a timer", "set an alarm", "play some music"]


def _config(order):
  c = convrnnt.get_config("tiny")
  c.eval.lm.order = order
  c.eval.lm.weight = 0.4
  return c


def test_lm_is_counted_on_transcripts_cached_and_rebuilt_on_new_settings(tmp_path):
  tok = CharTokenizer.build(TEXTS)
  split = [{"text": t.encode()} for t in TEXTS]
  workdir = str(tmp_path)
  assert transducer_asr.make_lm(_config(0), split, tok, workdir) is None
  lm = transducer_asr.make_lm(_config(3), split, tok, workdir)
  assert os.path.exists(os.path.join(workdir, "ngram_lm.npz"))
  # "s" starts two of three transcripts: P(s | <s>) = (2 - D) / 3 + D * 2 / 3 * P_lower(s) > 0.4
  assert np.exp(lm.log_probs([])[tok.encode("s")[0]]) > 0.4
  again = transducer_asr.make_lm(_config(3), None, tok, workdir)  # from the cache: no split needed
  np.testing.assert_array_equal(again.log_probs(tok.encode("se")), lm.log_probs(tok.encode("se")))
  bigram = transducer_asr.make_lm(_config(2), split, tok, workdir)
  assert bigram.order == 2
  options = transducer_asr.lm_decoder_options(_config(2), "beam", bigram)
  assert options["lm"] is bigram and options["lm_weight"] == 0.4
  with pytest.raises(ValueError, match="beam"):
    transducer_asr.lm_decoder_options(_config(2), "greedy", bigram)
  assert transducer_asr.lm_decoder_options(_config(0), "greedy", None) == {}


def test_word_lm_wraps_the_cached_character_lm(tmp_path):
  tok = CharTokenizer.build(TEXTS)
  split = [{"text": t.encode()} for t in TEXTS]
  config = _config(3)
  config.eval.lm.word_order = 2
  config.eval.lm.char_weight = 0.25
  lm = transducer_asr.make_lm(config, split, tok, str(tmp_path))
  assert lm.words == sorted({"set", "a", "timer", "an", "alarm", "play", "some", "music"})
  assert lm.char_weight == 0.25 and lm.word_lm.order == 2 and lm.char_lm.order == 3
  assert os.path.exists(os.path.join(tmp_path, "ngram_lm.npz"))
  # "set a" continues with " timer" or "n alarm": the lexicon gives no other letter after "set a t"
  p = np.exp(lm.log_probs(tok.encode("set a t")))
  q = np.exp(lm.char_lm.log_probs(tok.encode("set a t")))
  np.testing.assert_allclose(p[tok.encode("i")[0]], 0.75 + 0.25 * q[tok.encode("i")[0]], rtol=1e-9)
  config.eval.lm.order = 0
  with pytest.raises(ValueError, match="word_order needs"):
    transducer_asr.make_lm(config, split, tok, str(tmp_path))


class _Unreadable(list):
  """A split whose records must not be read (the cache should answer)."""

  def __getitem__(self, i):
    raise AssertionError("the transcripts should come from the workdir cache")


def test_word_lm_transcripts_are_cached_and_reread_when_the_split_changes(tmp_path):
  tok = CharTokenizer.build(TEXTS + ["stop"])
  config = _config(3)
  config.eval.lm.word_order = 2
  transducer_asr.make_lm(config, [{"text": t.encode()} for t in TEXTS], tok, str(tmp_path))
  # same dataset and size: the cached transcripts are used, no record is read
  lm = transducer_asr.make_lm(config, _Unreadable(range(len(TEXTS))), tok, str(tmp_path))
  assert "stop" not in lm.words and "alarm" in lm.words
  # another number of examples: read again
  grown = [{"text": t.encode()} for t in TEXTS + ["stop"]]
  assert "stop" in transducer_asr.make_lm(config, grown, tok, str(tmp_path)).words
  config.data.name = "espeak_speech/small"  # another dataset of the same size: read again
  with pytest.raises(AssertionError, match="workdir cache"):
    transducer_asr.make_lm(config, _Unreadable(range(len(TEXTS) + 1)), tok, str(tmp_path))
