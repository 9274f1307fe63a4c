"""Multi-talker transducer ASR (separator-transducer-segmenter): the task on the one trainer.

The transducer task (`asrjax.tasks.transducer_asr`) with mixtures for utterances: the
tokenizer gains ``<sot>`` / ``<eot>`` (`asrjax.data.tokenizer.TurnTokenizer`, trained on the
turns' texts), batches carry one target per output channel by the first-free rule
(`asrjax.data.multitalker`), the model is `asrjax.models.sts.MultiChannelTransducer`, and
evaluation decodes every channel and scores ORC / cp / tcpWER, turn timing and turn
counting per overlap bin (`asrjax.inference.multitalker`).

Objective terms: ``loss`` -- the RNN-T loss of every channel (FastEmit as configured),
mean over channels and mixtures -- and ``turn_latency``, the late-emission penalty of the
turn tokens (`asrjax.losses.turn_latency`, weight ``train.turn_latency.weight`` per frame of
lateness past ``buffer_frames``, and optionally ``early_weight`` per frame of earliness past
``early_buffer_frames``); their sum is the penalised lattice's loss. Configuration:
``data.turn_end_tokens`` (False: the start-only ablation, ``<sot>`` alone), ``model.sts.channels``.

References:
  Sklyar, Piunova, Osendorfer, "Separator-transducer-segmenter: streaming recognition and
  segmentation of multi-party speech", Interspeech 2022.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from asrjax import models
from asrjax.data import multitalker as mix_data
from asrjax.data import pipeline, sources
from asrjax.data.tokenizer import TurnTokenizer
from asrjax.frontend.featurize import featurize
from asrjax.inference import batch_decoder
from asrjax.losses import turn_latency
from asrjax.tasks import transducer_asr as base
from asrjax.train import task as task_lib


def _log_probs(logits, labels, blank_id: int):
  """``(blank [N, T, U+1], next label [N, T, U+1])`` log-probs of ``logits [N, T, U+1, V]``: the RNN-T
  loss's own gather (`asrjax.losses.rnnt`, the same numerics)."""
  from asrjax.losses import rnnt  # noqa: PLC0415

  ext = jnp.concatenate([labels, jnp.zeros((labels.shape[0], 1), labels.dtype)], axis=1)
  _, _, blank, nxt = rnnt._gathered_log_probs(logits, ext, blank_id)  # noqa: SLF001 -- one gather for both losses
  return blank, nxt


def objective(params, model, batch: dict, key, loss: base.LossConfig, latency: dict, frame_seconds: float):
  """The multi-talker objective (module docstring) on ``batch`` (labels ``[B, C, U]``)."""
  feature_key, dropout_key = jax.random.split(key)
  feats, pads = featurize(batch, feature_key, loss.front_end, train=True)
  cast = lambda t: jax.tree.map(lambda x: x.astype(loss.compute_dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, t)
  labels, label_pads = batch["labels"], batch["label_paddings"]
  (logits, enc_pads), _ = model.apply(cast(params), feats.astype(loss.compute_dtype), pads, labels, label_pads,
                                      rngs={"dropout": dropout_key}, mutable=["losses"])
  rows, row_pads = labels.reshape(-1, labels.shape[-1]), label_pads.reshape(-1, labels.shape[-1])
  blank_lp, label_lp = _log_probs(logits, rows, loss.blank_id)
  boundaries = jnp.floor(batch["turn_boundaries"].reshape(rows.shape) / frame_seconds)
  penalised, term = turn_latency.penalised_loss(
      blank_lp, label_lp, enc_pads, rows, row_pads, boundaries, batch["turn_mask"].reshape(rows.shape),
      weight=float(latency.get("weight", 0.0)), buffer=float(latency.get("buffer_frames", 0.0)),
      early_weight=float(latency.get("early_weight", 0.0)), early_buffer=float(latency.get("early_buffer_frames", 0.0)),
      blank_id=loss.blank_id, fastemit_lambda=loss.fastemit_lambda)
  plain = penalised - term
  num_labels = jnp.maximum(jnp.sum(1.0 - row_pads), 1.0)
  out = task_lib.Objective({"loss": jnp.mean(plain), "turn_latency": jnp.mean(term)},
                           {"loss": 1.0, "turn_latency": 1.0}, {"loss_per_label": jnp.sum(plain) / num_labels})
  return task_lib.with_weights(out, dict(loss.loss_weights))


def config_problems(config) -> list[str]:
  """The transducer task's checks plus this task's fields."""
  from asrjax.train import config_check as cc  # noqa: PLC0415

  out = [p for p in base.config_problems(config) if not p.startswith("model.name")]
  c = cc.Checker(config)
  c.need("model.name", lambda x: x == "sts", "'sts' (the multi-channel transducer)")
  c.need("model.sts.channels", cc.pos_int, "a positive integer")
  c.need("data.turn_end_tokens", lambda x: isinstance(x, bool), "True (<sot> and <eot>) or False (<sot> only)")
  c.need("train.turn_latency.weight", cc.nonneg, "a finite number >= 0 (0 = no penalty)")
  c.need("train.turn_latency.buffer_frames", cc.nonneg, "a finite number >= 0")
  for field in ("early_weight", "early_buffer_frames"):  # absent from configs made before the early side existed
    if field in config.get("train", {}).get("turn_latency", {}):
      c.need(f"train.turn_latency.{field}", cc.nonneg, "a finite number >= 0")
  if config.get("train", {}).get("prune_range", 0):
    c.out.append("train.prune_range: the multi-talker task trains with the full loss (the latency penalty needs "
                 "the whole lattice); set 0")
  return out + c.out


class MultitalkerASR(base.TransducerASR):
  """The separator-transducer-segmenter task (`asrjax.train.task.Task`); see the module docstring."""

  batch_fields = ("audio", "audio_paddings", "labels", "label_paddings", "turn_boundaries", "turn_mask")
  config_problems = staticmethod(config_problems)

  @classmethod
  def from_config(cls, config, workdir: str, train_split=None) -> "MultitalkerASR":
    if train_split is None and not os.path.exists(base.tokenizer_path(config, workdir)):
      raise FileNotFoundError(f"no tokenizer at {base.tokenizer_path(config, workdir)}: is {workdir} a training "
                              "workdir?")
    tok = TurnTokenizer(base.make_tokenizer(config, train_split, workdir))
    loss = base.make_loss_config(config, base.make_feature_stats(config, train_split, workdir))
    model = models.build(config.model, tok.vocab_size)
    return cls(model, loss, base.model_optimizer(config), _shape_batch(config, model), tok, config=config,
               workdir=workdir, train_split=train_split)

  @property
  def vocab_growth(self) -> tuple[int, int]:
    """``(base vocabulary, with the turn tokens)``: a single-speaker run's embedding rows and joint
    outputs fill the first positions when ``train.init_transfer='overlap'`` starts this model
    from it (`asrjax.train.trainer.transfer_plan`)."""
    return self.tokenizer.base.vocab_size, self.tokenizer.vocab_size

  @property
  def frame_seconds(self) -> float:
    return float(batch_decoder.encoder_frame_seconds(self.model))

  def objective(self, params: dict, batch: dict, key, step, *, trained: str) -> task_lib.Objective:
    del trained, step
    return objective(params["model"], self.model, batch, key, self.loss, dict(self.config.train.turn_latency)
                     if self.config is not None else {}, self.frame_seconds)

  def _pad(self, examples, bucket, max_labels):
    return mix_data.pad_mixture_batch(examples, self.tokenizer, bucket, max_labels, channels=self.model.channels,
                                      end_tokens=bool(self.config.data.turn_end_tokens))

  def batches(self, step: int) -> pipeline.BatchIterator:
    self._run("batches")
    if self._index is None:
      count = lambda ex: mix_data.label_count(ex, self.tokenizer, self.model.channels,
                                              end_tokens=bool(self.config.data.turn_end_tokens))
      self._index = pipeline.build_index(self.train_split, self.tokenizer.encode, label_count=count)
    return pipeline.BatchIterator(self.train_split, self._index, self.tokenizer.encode,
                                  base.pipeline_config(self.config), host_index=jax.process_index(),
                                  host_count=jax.process_count(), step=step, files=self.train_split.files,
                                  pad=self._pad)

  def evaluate(self, params: dict, step: int) -> dict:
    """``{split: (record, scalars)}``: `asrjax.inference.multitalker.evaluate_mixtures` of each split."""
    from asrjax.inference import multitalker as mt_eval  # noqa: PLC0415

    self._run("evaluate")
    config, out = self.config, {}
    for split_name in config.eval.splits:
      split = sources.open_split(config.data.name, split_name, config.data.data_dir)
      ev = mt_eval.evaluate_mixtures(self.model, params["model"], split, self.tokenizer, decoder=config.eval.decoder,
                                     limit=config.eval.limit, front_end=self.front_end)
      overall = ev["metrics"]["overall"]
      record = {**ev["metrics"], "channel_wer": ev["channel_wer"], "rtf": ev["rtf"], "decoder": config.eval.decoder}
      out[split_name] = (record, {"orc_wer": overall["orcwer"]["error_rate"], "cp_wer": overall["cpwer"]["error_rate"],
                                  "turn_counting": overall["turn_counting_accuracy"], "rtf": ev["rtf"]})
    return out


def _shape_batch(config, model) -> dict:
  """A one-mixture batch of the first bucket's shapes (silence, every channel empty)."""
  pcfg = base.pipeline_config(config)
  s, c, n = pcfg.buckets[0], model.channels, pcfg.label_lengths[0]
  return {"audio": np.zeros((1, s), np.int16), "audio_paddings": np.zeros((1, s), np.float32),
          "labels": np.zeros((1, c, n), np.int32), "label_paddings": np.ones((1, c, n), np.float32),
          "turn_boundaries": np.zeros((1, c, n), np.float32), "turn_mask": np.zeros((1, c, n), np.float32)}


__all__ = ["MultitalkerASR", "config_problems", "objective"]
