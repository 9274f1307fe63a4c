"""The run config a workdir keeps: round trip, the fields that define a run, refusals."""

import importlib.util
import json
import os

import pytest

from asrjax.train import run_config
from asrjax.tasks import transducer_asr

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(variant="tiny"):
  spec = importlib.util.spec_from_file_location("c", os.path.join(ROOT, "experiments/configs/convrnnt.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(variant)


def test_round_trip_gives_the_same_fields_with_tuples(tmp_path):
  config = _config()
  config.train.prune_range = 5  # an override
  run_config.save(config, str(tmp_path))
  loaded = run_config.load(str(tmp_path))
  assert loaded.to_dict() == config.to_dict()  # tuples come back as tuples
  assert loaded.data.buckets == (32_000, 64_000, 96_000, 160_000) and loaded.train.prune_range == 5


def test_only_defining_fields_make_a_run_incompatible(tmp_path):
  run = _config()
  run_config.save(run, str(tmp_path))
  later = _config()
  later.train.num_steps, later.eval.decoder, later.eval.limit = 99, "beam", 7  # may change between sittings
  run_config.check_compatible(later, str(tmp_path))
  other = _config()
  other.model.encoder.channels, other.data.tokenizer = 24, "sentencepiece"
  with pytest.raises(ValueError, match=r"another model, tokenizer or front end.*\n  data\.tokenizer: 'char' != "
                                       r"'sentencepiece'\n  model\.encoder\.channels: 16 != 24\n.*omit --config"):
    run_config.check_compatible(other, str(tmp_path))


def test_no_file_is_none_and_a_broken_file_is_named(tmp_path):
  assert run_config.load(str(tmp_path)) is None
  run_config.check_compatible(_config(), str(tmp_path))  # nothing to compare with
  (tmp_path / "config.json").write_text("{not json")
  with pytest.raises(ValueError, match="config.json is not a readable run config"):
    run_config.load(str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps({"eval": {}}))
  with pytest.raises(ValueError, match="lacks the data, model and train sections"):
    run_config.load(str(tmp_path))


def test_decoding_options_merge_lm_then_config_then_the_caller(tmp_path):
  """One order everywhere (trainer, evaluate.py, Recognizer): a caller's option beats the config's LM weight."""
  from asrjax.data import tokenizer as tokenizer_lib
  from asrjax.decoding import ngram_lm
  tok = tokenizer_lib.CharTokenizer.build(["ab ba"])
  config = _config()
  config.eval.decoder, config.eval.decoder_options = "beam", {"beam": 6}
  config.eval.lm.update(dict(order=2, weight=0.5, length_bonus=0.2))
  ngram_lm.NgramLM.fit([tok.encode("ab ba")], tok.vocab_size, 2, config.eval.lm.discount).save(
      str(tmp_path / "ngram_lm.npz"))  # found by make_lm: no corpus needed
  got = transducer_asr.decoding_options(config, "beam", tok, str(tmp_path), {"lm_weight": 0.1, "beam": 3})
  assert isinstance(got.pop("lm"), ngram_lm.NgramLM)
  assert got == {"lm_weight": 0.1, "length_bonus": 0.2, "beam": 3}
  assert transducer_asr.decoding_options(config, "greedy", tok, str(tmp_path)) == {}  # the LM and beam=6 are the beam's
  on_device = transducer_asr.decoding_options(config, "maes", tok, str(tmp_path))  # maes fuses the LM too
  assert isinstance(on_device.pop("lm"), ngram_lm.NgramLM)
  assert on_device == {"lm_weight": 0.5, "length_bonus": 0.2}
  config.eval.decoder = "greedy"
  with pytest.raises(ValueError, match=r"implemented for the \['beam', 'maes'\] decoders, not 'greedy'"):
    transducer_asr.decoding_options(config, "greedy", tok, str(tmp_path), strict=True)


def test_as_finetune_sets_the_source_steps_and_a_short_warmup():
  import ml_collections
  c = ml_collections.ConfigDict({"train": {"num_steps": 9000, "init_from": ""},
                                 "optimizer": {"learning_rate": 1e-3, "warmup_steps": 500}})
  out = run_config.as_finetune(c, "workdirs/base", 120, 5e-4)
  assert out is c and (c.train.num_steps, c.train.init_from) == (120, "workdirs/base")
  assert (c.optimizer.learning_rate, c.optimizer.warmup_steps) == (5e-4, 24)  # min(50, 120 / 5)
  assert run_config.as_finetune(c, "b", 1000, 1e-4).optimizer.warmup_steps == 50
