"""The comparison's config overrides give a consistent config for every model of the demo variant."""

import pytest

from asrjax.data.tokenizer import CharTokenizer
from asrjax.tasks import transducer_asr
from experiments import convrnnt_vs_baselines as compare


@pytest.mark.parametrize("model", ["convrnnt", "lstm_rnnt", "conformer", "contextnet"])
def test_greedy_comparison_of_the_demo_variant_needs_no_lm(model, tmp_path):
  config, _ = compare.load_config(model, "demo")
  assert config.eval.lm.order and config.eval.lm.word_order  # the demo decodes with both LMs
  config = compare.overrides(config, seed=3, data_dir="/nowhere", splits=["dev", "test"], num_steps=11)
  assert (config.train.seed, config.train.num_steps, config.eval.splits) == (3, 11, ("dev", "test"))
  tok = CharTokenizer.build(["a b"])
  # no LM: make_lm must neither fail on the demo's word LM setting nor open the (absent) data
  lm = transducer_asr.make_lm(config, None, tok, str(tmp_path))
  assert lm is None and transducer_asr.lm_decoder_options(config, config.eval.decoder, lm) == {}


def test_config_decoding_keeps_the_variant_lm():
  config, _ = compare.load_config("convrnnt", "demo")
  config = compare.overrides(config, seed=0, data_dir="/nowhere", splits=["test"], decoder="config")
  assert config.eval.decoder == "maes" and config.eval.lm.order == 12 and config.eval.lm.word_order == 4
