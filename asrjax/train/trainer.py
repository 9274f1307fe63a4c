"""`train_and_evaluate(config, workdir)`: the one training loop for every transducer model.

Sections: data (split, tokenizer, pipeline), mesh & model & optimizer, checkpoint
restore, the loop (jitted sharded step, logging, periodic checkpoints), evaluation.
The model is found by name: ``asrjax.models.<config.model.name>.build(config.model,
vocab_size)``, so a new model is one new file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import time
from typing import Any, NamedTuple

from absl import logging
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import optax

from asrjax import atomic_file
from asrjax.data import catalog, features, pipeline, sources, tokenizer as tokenizer_lib
from asrjax.decoding import ngram_lm, word_lm
from asrjax.train import (averaging, checkpoint as checkpoint_lib, config_check, evaluation, run_config,
                          sharding, step as step_lib, summary)


class TrainingDiverged(RuntimeError):
  """Too many consecutive non-finite steps."""


def _transcripts(split) -> list[str]:
  """Every transcript of ``split``, in order."""
  return [catalog.as_text(split[i]["text"]) for i in range(len(split))]


def train_transcripts(config, train_split, workdir: str) -> list[str]:
  """The training transcripts, from ``workdir/train_transcripts.json`` when it was written
  for the same dataset and number of examples; otherwise read from the split (every record,
  audio included: ~40 s on ``full``) and written there. ``train_split=None`` opens it."""
  if train_split is None:
    train_split = sources.open_split(config.data.name, "train", config.data.data_dir)
  path = os.path.join(workdir, "train_transcripts.json")
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    if cached.get("dataset") == config.data.name and len(cached.get("transcripts", ())) == len(train_split):
      return cached["transcripts"]
    logging.info("%s was written for another training split; reading the transcripts again", path)
  transcripts = _transcripts(train_split)
  with atomic_file.open(path) as f:
    json.dump({"dataset": config.data.name, "transcripts": transcripts}, f)
  return transcripts


def make_tokenizer(config, train_split, workdir: str):
  """Loads ``workdir/tokenizer.*`` or trains it on the training transcripts."""
  if config.data.tokenizer == "char":
    path = os.path.join(workdir, "tokenizer.json")
    if os.path.exists(path):
      return tokenizer_lib.CharTokenizer.load(path)
    tok = tokenizer_lib.CharTokenizer.build(_transcripts(train_split))
    tok.save(path)
    return tok
  path = os.path.join(workdir, "tokenizer.model")
  if os.path.exists(path):
    return tokenizer_lib.SentencePieceTokenizer.load(path)
  return tokenizer_lib.SentencePieceTokenizer.train(_transcripts(train_split), path,
                                                    vocab_size=config.data.vocab_size)


def make_lm(config, train_split, tok, workdir: str):
  """The LM for shallow fusion (``config.eval.lm``), or ``None`` when its order is 0.

  The token n-gram is loaded from ``workdir/ngram_lm.npz`` when that was built with
  the same order, discount and vocabulary; otherwise counted over the training
  transcripts (encoded with the model's tokenizer) and saved there. With
  ``eval.lm.word_order > 0`` (character tokenizer only) it becomes the character part
  of a `word_lm.LexiconWordLM`: a word n-gram of that order over the training
  vocabulary, counted afresh (seconds), interpolated with weight ``eval.lm.char_weight``.
  The transcripts are read once and cached in ``workdir/train_transcripts.json``.
  ``train_split=None`` opens the split when it is needed.
  """
  lm_cfg = config.eval.lm
  word_order = lm_cfg.get("word_order", 0)
  if not lm_cfg.order:
    if word_order:
      raise ValueError("eval.lm.word_order needs the token n-gram as well (eval.lm.order > 0): it scores the "
                       "spellings the word vocabulary does not hold.")
    return None
  if word_order and not isinstance(tok, tokenizer_lib.CharTokenizer):
    raise ValueError("the lexicon word LM (eval.lm.word_order > 0) spells words in characters: it needs "
                     "data.tokenizer='char'.")
  path = os.path.join(workdir, "ngram_lm.npz")
  lm = None
  if os.path.exists(path):
    lm = ngram_lm.NgramLM.load(path)
    if (lm.order, lm.discount, lm.vocab_size) != (lm_cfg.order, lm_cfg.discount, tok.vocab_size):
      logging.info("%s was built with other settings; counting it again", path)
      lm = None
  if lm is not None and not word_order:
    return lm
  transcripts = train_transcripts(config, train_split, workdir)
  if lm is None:
    lm = ngram_lm.NgramLM.fit([tok.encode(t) for t in transcripts], tok.vocab_size, lm_cfg.order, lm_cfg.discount)
    lm.save(path)
  if not word_order:
    return lm
  id_to_char = {i: tok.decode([i]) for i in range(2, tok.vocab_size)}
  return word_lm.LexiconWordLM.fit(transcripts, id_to_char, lm, order=word_order, discount=lm_cfg.discount,
                                   char_weight=lm_cfg.char_weight)


def decoding_options(config, decoder: str, tok, workdir: str, overrides=None, *, train_split=None,
                     strict: bool = False) -> dict:
  """The keyword options ``decoder`` runs with, merged in one order everywhere: the config's LM
  (``eval.lm``, beam decoder only: `make_lm`), then the config's ``eval.decoder_options`` when
  ``decoder`` is the config's own, then ``overrides`` (a caller's, e.g. ``--decoder_options``).

  An LM with another decoder than the beam one is left out (evaluation and inference
  print or document it), or refused with ``strict`` (the trainer: its config asks for it).
  """
  options = {}
  if config.eval.lm.order and (decoder == "beam" or strict):
    options.update(lm_decoder_options(config, decoder, make_lm(config, train_split, tok, workdir)))
  if decoder == config.eval.decoder:  # the config's options belong to its own decoder
    options.update(config.eval.decoder_options.to_dict())
  options.update(overrides or {})
  return options


def lm_decoder_options(config, decoder: str, lm) -> dict:
  """Keyword options that put ``lm`` (from `make_lm`) into ``decoder``; ``{}`` without an LM."""
  if lm is None:
    return {}
  if decoder != "beam":
    raise ValueError(f"shallow fusion with the n-gram LM (eval.lm.order={config.eval.lm.order}) is implemented "
                     f"for the 'beam' decoder only, not {decoder!r}; set eval.lm.order=0 or use the beam decoder.")
  return {"lm": lm, "lm_weight": config.eval.lm.weight, "length_bonus": config.eval.lm.length_bonus}


def make_feature_stats(config, train_split, workdir: str):
  """``(mean, std)`` tuples of log-mel features, loaded from ``workdir/feature_stats.json`` or
  computed over the first ``config.data.stats_utterances`` training utterances; ``None``
  when ``config.data.normalization == "utterance"`` (per-utterance CMVN, not streamable)."""
  if config.data.normalization == "utterance":
    return None
  if config.data.normalization != "global":
    raise ValueError(f"data.normalization must be 'global' or 'utterance'; got {config.data.normalization!r}.")
  path = os.path.join(workdir, "feature_stats.json")
  if os.path.exists(path):
    with open(path) as f:
      stats = json.load(f)
    return tuple(stats["mean"]), tuple(stats["std"])
  if train_split is None:
    raise FileNotFoundError(f"no feature statistics at {path}: is {workdir} a training workdir?")
  log_mel = jax.jit(lambda a, p: features.log_mel(a.astype(jnp.float32) / 32768.0, p))
  n = min(config.data.stats_utterances, len(train_split))
  count, total, squares = 0.0, 0.0, 0.0
  for start in range(0, n, 16):
    exs = [train_split[i] for i in range(start, min(start + 16, n))]
    longest = max(len(e["audio"]) for e in exs)
    batch = pipeline.pad_batch(exs, lambda t: [], -(-longest // 16_000) * 16_000, 1)  # pad to whole seconds
    c, s1, s2 = features.moments(*log_mel(batch["audio"], batch["audio_paddings"]))
    count, total, squares = count + float(c), total + np.asarray(s1, np.float64), squares + np.asarray(s2, np.float64)
  mean = total / count
  std = np.sqrt(np.maximum(squares / count - mean**2, 1e-10))
  if jax.process_index() == 0:
    with atomic_file.open(path) as f:
      json.dump({"mean": mean.tolist(), "std": std.tolist(), "utterances": n}, f)
  return tuple(float(x) for x in mean), tuple(float(x) for x in std)


def make_step_config(config, stats) -> step_lib.StepConfig:
  mean, std = stats if stats is not None else (None, None)
  sa = config.train.spec_augment_options
  t = config.train
  if t.prune_range and t.prune_range <= config.data.labels_per_frame:
    raise ValueError(
        f"train.prune_range={t.prune_range} keeps too few label positions: the data allows "
        f"data.labels_per_frame={config.data.labels_per_frame} labels per frame, and a window of S positions "
        f"fits S - 1; use prune_range > {config.data.labels_per_frame} (or 0 for the full loss).")
  return step_lib.StepConfig(fastemit_lambda=t.fastemit_lambda, spec_augment=t.spec_augment,
                             prune_range=t.prune_range, simple_loss_scale=t.simple_loss_scale,
                             pruned_warmup_steps=t.pruned_warmup_steps,
                             simple_lm_only_scale=t.simple_lm_only_scale,
                             simple_am_only_scale=t.simple_am_only_scale,
                             num_freq_masks=sa.num_freq_masks, max_freq_mask=sa.max_freq_mask,
                             num_time_masks=sa.num_time_masks, max_time_mask_ratio=sa.max_time_mask_ratio,
                             vtlp_max_warp=config.train.vtlp_max_warp,
                             compute_dtype=jnp.dtype(config.train.compute_dtype), feature_mean=mean, feature_std=std)


def make_schedule(config) -> optax.Schedule:
  """Linear warm-up to ``learning_rate``, cosine decay to ``end_learning_rate`` at ``num_steps``."""
  o = config.optimizer
  return optax.warmup_cosine_decay_schedule(
      0.0, o.learning_rate, o.warmup_steps, max(config.train.num_steps, o.warmup_steps + 1), o.end_learning_rate)


def make_optimizer(config) -> optax.GradientTransformation:
  o = config.optimizer
  schedule = make_schedule(config)
  tx = optax.chain(optax.clip_by_global_norm(o.clip_norm), optax.adamw(schedule, weight_decay=o.weight_decay))
  if o.grad_accum_steps > 1:
    tx = optax.MultiSteps(tx, o.grad_accum_steps)
  return tx


def build_model(config, vocab_size: int):
  return importlib.import_module(f"asrjax.models.{config.model.name}").build(config.model, vocab_size)


def pipeline_config(config) -> pipeline.PipelineConfig:
  max_labels = config.data.max_labels
  return pipeline.PipelineConfig(
      batch_size=config.data.batch_size, buckets=tuple(config.data.buckets),
      max_labels=max_labels if isinstance(max_labels, int) else tuple(max_labels), seed=config.train.seed,
      subsampling=config.model.encoder.stack, labels_per_frame=config.data.labels_per_frame)


def init_fn(model, tx, config, tok):
  """``key -> TrainState`` initialiser, shapes from a dummy batch of the first bucket."""
  pcfg = pipeline_config(config)
  dummy = pipeline.pad_batch([{"audio": np.zeros(pcfg.buckets[0], np.int16), "text": ""}], tok.encode,
                             pcfg.buckets[0], pcfg.label_lengths[0])  # shapes only
  feats, pads = step_lib.featurize(dummy, jax.random.key(0), step_lib.StepConfig(), train=False)
  args = (feats, pads, jnp.asarray(dummy["labels"]), jnp.asarray(dummy["label_paddings"]))
  if config.train.prune_range:  # creates the pruned loss's extra projections too
    return lambda key: step_lib.init_state(
        model.init(key, *args, prune_range=config.train.prune_range, method=model.pruned_losses), tx)
  return lambda key: step_lib.init_state(model.init(key, *args), tx)


class Restored(NamedTuple):
  model: Any
  params: Any
  tokenizer: Any
  step_config: step_lib.StepConfig  # the feature front end the model was trained with
  steps: tuple[int, ...]  # the checkpoints the parameters come from (several: their mean)


def restore_params(config, workdir: str, step: int | None = None, average: int = 1) -> Restored:
  """Model, parameters, tokenizer and front end from the checkpoints of ``workdir``.

  The parameters are those of checkpoint ``step``, or of the newest readable one when
  ``step`` is None; with ``average = N > 1``, the element-wise mean of the N newest
  checkpoints up to ``step`` (icefall's ``--avg``; `averaging.average_trees`).

  Raises:
    FileNotFoundError: no tokenizer or no checkpoint in ``workdir``.
    ValueError: ``step`` is not there, or fewer than ``average`` checkpoints are
      held up to it (`averaging.select_steps`, which lists the steps held).
    checkpoint_lib.CheckpointMismatch: the checkpoints hold another parameter tree
      than ``config`` builds (the message names the leaves that differ).
    checkpoint_lib.CheckpointError: a checkpoint asked for is unreadable or fails its
      integrity check (or, with ``step`` None and ``average`` 1, every one does).

  Reading never changes ``workdir``: damaged checkpoints are skipped, not quarantined
  (the training run that resumes there moves them out of its rotation).
  """
  config_check.validate(config)
  run_config.check_compatible(config, workdir)
  tok_path = os.path.join(workdir, "tokenizer.json" if config.data.tokenizer == "char" else "tokenizer.model")
  if not os.path.exists(tok_path):
    raise FileNotFoundError(f"no tokenizer at {tok_path}: is {workdir} a training workdir?")
  tok = (tokenizer_lib.CharTokenizer.load(tok_path) if config.data.tokenizer == "char"
         else tokenizer_lib.SentencePieceTokenizer.load(tok_path))
  model = build_model(config, tok.vocab_size)
  abstract = jax.eval_shape(init_fn(model, make_optimizer(config), config, tok), jax.random.key(0))
  mesh = sharding.make_mesh(devices=jax.local_devices()[:1])
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"))
  target = checkpoint_lib.abstract_like(abstract, sharding.tree_shardings(mesh, abstract))
  try:
    if step is None and average == 1:  # the newest readable checkpoint, past damaged ones
      restored = ckpt.restore_latest(target, quarantine=False)
      if restored is None:
        raise FileNotFoundError(f"no checkpoint under {ckpt.directory}.")
      trees, steps = [restored[0].params], (restored[2],)
    else:  # exactly the steps asked for, never substitutes
      steps = averaging.select_steps(ckpt.all_steps(), step, average)
      trees = [ckpt.restore(target, s)[0].params for s in steps]
    params = trees[0] if len(trees) == 1 else averaging.average_trees(trees)
  except checkpoint_lib.CheckpointMismatch as e:
    raise _another_config(e, workdir, "evaluate") from None
  return Restored(model, params, tok, make_step_config(config, make_feature_stats(config, None, workdir)), steps)


def _another_config(e: checkpoint_lib.CheckpointMismatch, workdir: str, verb: str, alternative: str = ""):
  """``e`` with the hint a user can act on: the workdir was trained with another config."""
  return checkpoint_lib.CheckpointMismatch(
      f"{e}\n{workdir} was trained with another config than this one: {verb} with the config and overrides "
      f"the run was trained with (model sizes, train.prune_range, ...){alternative}.")


def params_digest(params) -> str:
  """sha256 over every parameter's bytes, in tree order (compare runs and hosts exactly)."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(params):
    h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return h.hexdigest()


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains ``config`` in ``workdir`` (resuming from its checkpoints), then evaluates."""
  config_check.validate(config)  # every field, before the split is opened or anything is written
  run_config.check_compatible(config, workdir)  # resuming with another model or front end fails here
  os.makedirs(workdir, exist_ok=True)
  run_config.save(config, workdir)  # the workdir remembers its run (evaluation reads it)
  # ---------------------------------------------------------------- data
  train_split = sources.open_split(config.data.name, "train", config.data.data_dir)
  tok = make_tokenizer(config, train_split, workdir)
  stats = make_feature_stats(config, train_split, workdir)
  index = pipeline.build_index(train_split, tok.encode)
  pcfg = pipeline_config(config)
  # ---------------------------------------------------------------- mesh, model, optimizer
  mesh = sharding.make_mesh(fsdp=config.train.fsdp)
  model = build_model(config, tok.vocab_size)
  tx = make_optimizer(config)
  step_cfg = make_step_config(config, stats)
  init = init_fn(model, tx, config, tok)
  abstract = jax.eval_shape(init, jax.random.key(config.train.seed))
  state_sh = sharding.tree_shardings(mesh, abstract)
  # ---------------------------------------------------------------- checkpoint restore
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=config.train.keep_checkpoints,
                                     save_interval_steps=config.train.checkpoint_every)
  try:  # damaged newer checkpoints are moved to checkpoints/quarantine, out of the rotation
    restored = ckpt.restore_latest(checkpoint_lib.abstract_like(abstract, state_sh))
  except checkpoint_lib.CheckpointMismatch as e:
    raise _another_config(e, workdir, "resume", ", or train in a new workdir") from None
  if restored is None:
    state = jax.jit(init, out_shardings=state_sh)(jax.random.key(config.train.seed))
    data_state = {"step": 0}
  else:
    state, data_state, _ = restored
    logging.info("resumed from step %d", int(state.step))
  it = pipeline.BatchIterator(train_split, index, tok.encode, pcfg, host_index=jax.process_index(),
                              host_count=jax.process_count(), step=int(data_state["step"]), files=train_split.files)
  logging.info("%d training examples, %d dropped; vocab %d; params %d", len(index.num_samples), it.dropped,
               tok.vocab_size, sum(x.size for x in jax.tree.leaves(abstract.params)))
  # ---------------------------------------------------------------- loop
  batch_sh = sharding.batch_sharding(mesh)
  train_fn = jax.jit(functools.partial(step_lib.train_step, model=model, tx=tx, config=step_cfg),
                     in_shardings=(state_sh, batch_sh, sharding.replicated(mesh)),
                     out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=(0,))
  key = jax.random.key(config.train.seed + 1)
  writer = summary.SummaryWriter(os.path.join(workdir, "tensorboard"), enabled=jax.process_index() == 0)
  schedule = make_schedule(config)
  start, utts, consecutive_bad = time.time(), 0, 0
  prior_seconds = float(data_state.get("train_seconds", 0.0))  # the time budget spans restarts
  train_seconds = lambda: prior_seconds + time.time() - start
  history = []
  while int(state.step) < config.train.num_steps:
    if config.train.max_train_seconds:
      over = train_seconds() > config.train.max_train_seconds
      if jax.process_count() > 1:  # every host must stop at the same step
        over = bool(multihost_utils.broadcast_one_to_all(np.asarray(over)))
      if over:
        logging.info("time budget reached at step %d", int(state.step))
        break
    host_batch = next(it)
    arrays = {k: host_batch[k] for k in ("audio", "audio_paddings", "labels", "label_paddings")}
    batch = jax.tree.map(lambda x: jax.make_array_from_process_local_data(batch_sh, x), arrays)
    step_no = int(state.step)
    state, metrics = train_fn(state, batch, jax.random.fold_in(key, step_no))
    utts += config.data.batch_size
    consecutive_bad = 0 if bool(metrics["finite"]) else consecutive_bad + 1
    if consecutive_bad >= config.train.max_consecutive_nonfinite:
      raise TrainingDiverged(f"{consecutive_bad} consecutive non-finite steps at step {step_no}; stopping.")
    if step_no % config.train.log_every == 0:
      m = {k: float(v) for k, v in metrics.items()}
      history.append({"step": step_no, **m})
      elapsed = time.time() - start
      simple = {"simple_loss": m["simple_loss"]} if "simple_loss" in m else {}
      writer.scalars(step_no, {"loss": m["loss"], "loss_per_label": m["loss_per_label"], **simple,
                               "grad_norm": m["grad_norm"], "learning_rate": float(schedule(step_no)),
                               "skipped": int(state.skipped), "utt_per_s": utts / elapsed, "elapsed_s": elapsed},
                     prefix="train/")
    ckpt.save(int(state.step), state, {**it.state(), "train_seconds": train_seconds()})
  if ckpt.latest_step() != int(state.step):
    ckpt.save(int(state.step), state, {**it.state(), "train_seconds": train_seconds()}, force=True)
  ckpt.close()
  it.close()
  # ---------------------------------------------------------------- evaluation
  params = jax.device_get(state.params)
  results = {"train_seconds": train_seconds(), "steps": int(state.step), "skipped": int(state.skipped),
             "history": history, "params_digest": params_digest(params)}
  decoder_options = {}
  if config.eval.splits:  # counting the LM is wasted work when nothing is decoded
    decoder_options = decoding_options(config, config.eval.decoder, tok, workdir, train_split=train_split,
                                       strict=True)
  for split_name in config.eval.splits:
    split = sources.open_split(config.data.name, split_name, config.data.data_dir)
    ev = evaluation.evaluate(model, params, split, tok, decoder=config.eval.decoder, limit=config.eval.limit,
                             step_config=step_cfg, decoder_options=decoder_options)
    results[split_name] = {"wer": evaluation.rate(ev["total"]), "rtf": ev["rtf"], "utterances": len(ev["references"]),
                           "decoder": config.eval.decoder,
                           "decoder_options": config.eval.decoder_options.to_dict(), "lm": config.eval.lm.to_dict(),
                           "per_group": evaluation.per_group_rates(ev["errors"])}
    writer.scalars(int(state.step), {f"{split_name}_wer": ev["wer"], f"{split_name}_rtf": ev["rtf"]}, prefix="eval/")
  writer.close()
  if jax.process_index() == 0:
    with atomic_file.open(os.path.join(workdir, "results.json")) as f:
      json.dump(results, f, indent=1)  # the loss history may hold NaN (skipped steps)
  return results
