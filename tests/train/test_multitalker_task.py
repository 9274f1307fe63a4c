"""The multi-talker task: its objective is the per-channel RNN-T loss plus the latency term, the boundaries reach
the penalty in encoder frames, and each channel's decoded labels become turns with hand-computed times."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.data import multitalker as mix_data
from asrjax.data.tokenizer import CharTokenizer, TurnTokenizer
from asrjax.frontend.featurize import featurize
from asrjax.inference import multitalker as mt_eval
from asrjax.losses import rnnt_loss
from asrjax.tasks import multitalker_asr

TOK = TurnTokenizer(CharTokenizer.build(["ab c", "ba"]))  # " " 2, a 3, b 4, c 5; <sot> 6, <eot> 7


@functools.lru_cache(maxsize=None)
def _params():
  return _task()[0].init(jax.random.key(0))


@functools.lru_cache(maxsize=None)
def _task(weight=0.0, buffer=0.0, early=0.0):
  from asrjax import models  # noqa: PLC0415
  from asrjax.tasks import transducer_asr as base  # noqa: PLC0415

  spec = __import__("importlib").util.spec_from_file_location("c", "experiments/configs/sts_multitalker.py")
  mod = __import__("importlib").util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config("tiny")
  config.train.turn_latency.update(dict(weight=weight, buffer_frames=buffer, early_weight=early))
  config.data.buckets = (16_000,)
  config.data.max_labels = (8,)
  model = models.build(config.model, TOK.vocab_size)
  loss = base.make_loss_config(config, None)
  batch = multitalker_asr._shape_batch(config, model)
  task = multitalker_asr.MultitalkerASR(model, loss, base.model_optimizer(config), batch, TOK, config=config)
  return task, config


@functools.lru_cache(maxsize=None)
def _jitted_objective(task):
  return jax.jit(lambda p, b: task.objective(p, b, jax.random.key(1), 0, trained="model"))


def _objective(task, params, batch):
  """The task's objective, jitted as the train step runs it (on the fields the step reads), compiled once a task."""
  return _jitted_objective(task)(params, {k: batch[k] for k in task.batch_fields})


def _batch(boundary_shift=0.0):
  rng = np.random.default_rng(0)
  ex = lambda uid: {"id": uid, "audio": (rng.normal(size=16_000) * 3000).astype(np.int16), "overlap": 0.1,
                    "turns": {"speaker_id": [b"A", b"B"], "text": [b"ab", b"c"], "start": [0.1, 0.4],
                              "end": [0.6 + boundary_shift, 0.9 + boundary_shift]}}
  return mix_data.pad_mixture_batch([ex("m0"), ex("m1")], TOK, 16_000, 8)


def test_the_loss_term_is_the_mean_rnnt_loss_of_every_channel_and_the_penalty_is_its_own_term():
  task, config = _task(weight=0.5)
  params = _params()
  batch = _batch()
  out = _objective(task, params, batch)
  # independent: the model's logits and the plain RNN-T loss of each (mixture, channel) row
  feats, pads = featurize(batch, jax.random.split(jax.random.key(1))[0], task.front_end, train=True)
  logits, enc_pads = jax.jit(task.model.apply)(params["model"], feats, pads, batch["labels"], batch["label_paddings"])
  rows = rnnt_loss(logits, enc_pads, batch["labels"].reshape(4, -1), batch["label_paddings"].reshape(4, -1))
  np.testing.assert_allclose(out.terms["loss"], jnp.mean(rows), rtol=1e-5)
  assert float(out.terms["turn_latency"]) > 0
  np.testing.assert_allclose(out.value(), out.terms["loss"] + out.terms["turn_latency"], rtol=1e-6)
  off, _ = _task(weight=0.0)
  zero = _objective(off, params, batch)
  assert float(zero.terms["turn_latency"]) == 0.0
  np.testing.assert_allclose(zero.terms["loss"], out.terms["loss"], rtol=1e-6)


def test_boundaries_reach_the_penalty_in_encoder_frames():
  task, _ = _task(weight=0.5)
  params = _params()
  late_ok = _batch(boundary_shift=30.0)  # every <eot> boundary far after the audio: no <eot> can be late
  term = lambda b: float(_objective(task, params, b).terms["turn_latency"])
  base_term = term(_batch())
  no_sot = dict(late_ok, turn_mask=late_ok["turn_mask"] * (late_ok["labels"] == TOK.eot_id))  # <eot> only
  assert term(no_sot) == 0.0
  assert term(late_ok) < base_term  # only the <sot>s can still be late
  assert task.frame_seconds == pytest.approx(0.03)  # tiny: 3 x 10 ms


def test_the_early_side_reaches_the_objective():
  params = _params()
  early_all = _batch(boundary_shift=30.0)  # every <eot> boundary far after the audio: any <eot> is early
  eot_only = dict(early_all, turn_mask=early_all["turn_mask"] * (early_all["labels"] == TOK.eot_id))
  term = lambda task: float(_objective(task, params, eot_only).terms["turn_latency"])
  assert term(_task(weight=0.5)[0]) == 0.0  # late-only: nothing is late
  assert term(_task(weight=0.5, early=0.5)[0]) > 0.0
  assert term(_task(weight=0.0, early=0.5)[0]) > 0.0


def test_decoded_labels_become_turns_with_hand_computed_times():
  sot, eot, a, b, c = TOK.sot_id, TOK.eot_id, 3, 4, 5
  turns = mt_eval.hypothesis_turns(TOK, [sot, a, b, eot, sot, c], [0, 1, 2, 4, 6, 7], 0.04, "1")
  assert [(t.speaker, t.words, round(t.start, 6), round(t.end, 6), t.closed) for t in turns] == [
      ("1", "ab", 0.04, 0.2, True), ("1", "c", 0.28, 0.32, False)]
  no_sot = mt_eval.hypothesis_turns(TOK, [a, sot, b], [0, 1, 2], 0.04, "0")
  assert [(t.words, round(t.start, 6), round(t.end, 6), t.closed) for t in no_sot] == [
      ("a", 0.04, 0.04, False), ("b", 0.08, 0.12, False)]
  plain = mt_eval.hypothesis_turns(TOK.base, [a, 2, b], [1, 1, 5], 0.04, "0")
  assert [(t.words, round(t.start, 6), round(t.end, 6)) for t in plain] == [("a b", 0.08, 0.24)]
  assert mt_eval.hypothesis_turns(TOK, [], [], 0.04, "0") == []


def test_config_problems_name_the_multitalker_fields():
  from asrjax.train import config_check  # noqa: PLC0415

  _, config = _task()
  config = config.copy_and_resolve_references()  # the cached task's config stays as it is
  assert config_check.problems(config) == []
  config.model.sts.channels = 0
  config.train.turn_latency.weight = -1.0
  config.train.turn_latency.early_buffer_frames = -2.0
  config.train.prune_range = 5
  found = "\n".join(config_check.problems(config))
  for field in ("model.sts.channels", "train.turn_latency.weight", "train.turn_latency.early_buffer_frames",
                "train.prune_range"):
    assert field in found, (field, found)
