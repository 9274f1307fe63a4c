"""Transducer ASR: the task the trainer runs for every RNN-T model (``config.task = "transducer_asr"``).

What is specific to RNN-T speech recognition lives here: the tokenizer and front-end
statistics a run keeps in its workdir, the LM for shallow fusion, the batch fields
(audio and labels), the parameters of the `asrjax.models` transducer, the objective
(full RNN-T loss with FastEmit, or the pruned loss of k2 with its simple loss and
warm-up; any auxiliary term the model sows into ``"losses"``), and the evaluators
(WER per split through `asrjax.inference.evaluation`). The trainer
(`asrjax.train.trainer`) knows none of it (`asrjax.train.task`).

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012; Kuang et al.,
  "Pruned RNN-T for fast, memory-efficient ASR training", Interspeech 2022; Yu et al.,
  "FastEmit", ICASSP 2021.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import shutil
from typing import Any, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from asrjax import atomic_file, decoding, models
from asrjax.data import catalog, pipeline, sources, tokenizer as tokenizer_lib
from asrjax.decoding import ngram_lm, word_lm
from asrjax.frontend import features
from asrjax.frontend.featurize import FrontEnd, featurize
from asrjax.inference import evaluation
from asrjax.losses import rnnt as rnnt_lib, rnnt_loss
from asrjax.train import optimizer as optimizer_lib, task as task_lib

COMPUTE_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))  # LossConfig.compute_dtype



def _transcripts(split) -> list[str]:
  """Every transcript of ``split``, in order (a mixture's: each of its turns' texts)."""
  out = []
  for i in range(len(split)):
    ex = split[i]
    if "text" not in ex and "turns" in ex:
      from asrjax.data import multitalker  # noqa: PLC0415

      out += [t.text for t in multitalker.turns_of(ex)]
    else:
      out.append(catalog.as_text(ex["text"]))
  return out


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
  (``eval.lm``, decoders that fuse an LM only -- beam, maes: `make_lm`), then the config's ``eval.decoder_options`` when
  ``decoder`` is the config's own, then ``overrides`` (a caller's, e.g. ``--decoder_options``).

  An LM with a decoder that takes none is left out (evaluation and inference
  print or document it), or refused with ``strict`` (the trainer: its config asks for it).
  """
  options = {}
  if config.eval.lm.order and (decoding.takes_lm(decoder) or strict):
    options.update(lm_decoder_options(config, decoder, make_lm(config, train_split, tok, workdir)))
  if decoder == config.eval.decoder:  # the config's options belong to its own decoder
    options.update(config.eval.decoder_options.to_dict())
  options.update(overrides or {})
  return options


def lm_decoder_options(config, decoder: str, lm) -> dict:
  """Keyword options that put ``lm`` (from `make_lm`) into ``decoder``; ``{}`` without an LM."""
  if lm is None:
    return {}
  if not decoding.takes_lm(decoder):
    fusing = sorted(name for name in decoding.DECODERS if decoding.takes_lm(name))
    raise ValueError(f"shallow fusion with the n-gram LM (eval.lm.order={config.eval.lm.order}) is implemented "
                     f"for the {fusing} decoders, not {decoder!r}; set eval.lm.order=0 or use one of them.")
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
    batch = pipeline.pad_batch([{"audio": e["audio"], "text": ""} for e in exs], lambda t: [],
                               -(-longest // 16_000) * 16_000, 1)  # pad to whole seconds
    c, s1, s2 = features.moments(*log_mel(batch["audio"], batch["audio_paddings"]))
    count, total, squares = count + float(c), total + np.asarray(s1, np.float64), squares + np.asarray(s2, np.float64)
  mean = total / count
  std = np.sqrt(np.maximum(squares / count - mean**2, 1e-10))
  if jax.process_index() == 0:
    with atomic_file.open(path) as f:
      json.dump({"mean": mean.tolist(), "std": std.tolist(), "utterances": n}, f)
  return tuple(float(x) for x in mean), tuple(float(x) for x in std)


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """The objective's options; each is checked at construction (`ValueError` naming the field),
  so a bad value fails before data are read or a step is traced."""

  blank_id: int = 0
  fastemit_lambda: float = 0.0
  # Pruned RNN-T (k2): 0 = the full loss; S > 0 = `Transducer.pruned_losses` with S label
  # positions per frame, objective ``a * simple + b * pruned`` (see `loss_scales`).
  prune_range: int = 0
  simple_loss_scale: float = 0.5
  pruned_warmup_steps: int = 0
  # k2's smoothing of the simple loss (`pruned_rnnt.simple_log_probs`); icefall uses 0.25 / 0
  simple_lm_only_scale: float = 0.0
  simple_am_only_scale: float = 0.0
  compute_dtype: Any = jnp.float32  # bf16 for mixed precision (params stay fp32)
  front_end: FrontEnd = FrontEnd()  # features, VTLP and SpecAugment
  loss_weights: tuple = ()  # ((term, weight), ...): config.train.loss_weights (`task.with_weights`)
  rnnt_kernel: str = "auto"  # the full loss's vocabulary passes: "auto" | "xla" | "pallas" (`rnnt_loss`)

  def __post_init__(self):
    """Checks every field (a `ValueError` naming it) and makes ``compute_dtype`` a dtype."""
    for name, minimum in (("blank_id", 0), ("prune_range", 0), ("pruned_warmup_steps", 0)):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"LossConfig.{name} must be an integer >= {minimum}; got {value!r}.")
    for name, hi, hi_open in (("fastemit_lambda", math.inf, True), ("simple_loss_scale", math.inf, True),
                              ("simple_lm_only_scale", 1.0, False), ("simple_am_only_scale", 1.0, False)):
      value = getattr(self, name)
      ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
            and 0.0 <= value and (value < hi if hi_open else value <= hi))
      if not ok:
        bound = "" if hi == math.inf else f", <= {hi}"
        raise ValueError(f"LossConfig.{name} must be a finite number >= 0.0{bound}; got {value!r}.")
    if self.simple_lm_only_scale + self.simple_am_only_scale > 1.0:
      raise ValueError(f"LossConfig.simple_lm_only_scale + simple_am_only_scale must be <= 1; got "
                       f"{self.simple_lm_only_scale} + {self.simple_am_only_scale}.")
    try:
      dtype = jnp.dtype(self.compute_dtype)
    except TypeError:
      dtype = None
    if dtype not in COMPUTE_DTYPES:
      raise ValueError(f"LossConfig.compute_dtype must be one of {[d.name for d in COMPUTE_DTYPES]}; "
                       f"got {self.compute_dtype!r}.")
    object.__setattr__(self, "compute_dtype", dtype)
    if not isinstance(self.front_end, FrontEnd):
      raise ValueError(f"LossConfig.front_end must be a FrontEnd; got {type(self.front_end).__name__}.")
    weights = dict(self.loss_weights)
    for term, w in weights.items():
      if not isinstance(term, str) or isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
        raise ValueError(f"LossConfig.loss_weights must map term names to finite numbers; got {term!r}: {w!r}.")
    object.__setattr__(self, "loss_weights", tuple(sorted(weights.items())))
    if self.rnnt_kernel not in rnnt_lib.KERNELS:
      raise ValueError(f"LossConfig.rnnt_kernel must be one of {rnnt_lib.KERNELS}; got {self.rnnt_kernel!r}.")


def loss_scales(step, simple_loss_scale: float, warmup_steps: int):
  """Weights ``(a, b)`` of the simple and pruned losses at ``step`` (icefall's schedule).

  During the first ``warmup_steps`` the simple loss's weight falls linearly from 1 to
  ``simple_loss_scale`` and the pruned loss's rises from 0.1 to 1 (its windows come
  from the simple lattice, meaningless at initialisation); afterwards
  ``(simple_loss_scale, 1)``.
  """
  frac = jnp.minimum(step / max(warmup_steps, 1), 1.0) if warmup_steps > 0 else 1.0
  return 1.0 - frac * (1.0 - simple_loss_scale), 0.1 + 0.9 * frac


def _sown_terms(variables: dict) -> dict:
  """``{name: scalar}`` of what modules sowed into ``"losses"`` (each sow's values summed)."""
  flat = jax.tree_util.tree_flatten_with_path(variables.get("losses", {}), is_leaf=lambda x: isinstance(x, tuple))[0]
  return {"/".join(str(getattr(k, "key", k)) for k in path): sum(jnp.sum(v) for v in values)
          for path, values in flat}


def objective(params, model, batch: dict, key: jax.Array, config: LossConfig, step=0) -> task_lib.Objective:
  """The transducer objective on ``batch`` (mean over utterances), with named terms.

  Terms: ``loss`` -- the full RNN-T loss (with FastEmit), or with ``config.prune_range``
  the pruned loss (an upper bound of the full one) -- and, pruned, ``simple_loss``,
  weighted by `loss_scales` at ``step``; the model's sown ``"losses"`` (logged, and in
  the objective when ``config.loss_weights`` weighs them). Metric: ``loss_per_label``.
  """
  feature_key, dropout_key = jax.random.split(key)
  feats, pads = featurize(batch, feature_key, config.front_end, train=True)
  cast = lambda t: jax.tree.map(lambda x: x.astype(config.compute_dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, t)
  args = (cast(params), feats.astype(config.compute_dtype), pads, batch["labels"], batch["label_paddings"])
  num_labels = jnp.maximum(jnp.sum(1.0 - batch["label_paddings"]), 1.0)
  if config.prune_range:
    (simple, per_utt), sown = model.apply(*args, prune_range=config.prune_range,
                                          fastemit_lambda=config.fastemit_lambda,
                                          lm_only_scale=config.simple_lm_only_scale,
                                          am_only_scale=config.simple_am_only_scale,
                                          method=model.pruned_losses, rngs={"dropout": dropout_key},
                                          mutable=["losses"])
    a, b = loss_scales(step, config.simple_loss_scale, config.pruned_warmup_steps)
    terms = {"simple_loss": jnp.mean(simple), "loss": jnp.mean(per_utt)}
    weights = {"simple_loss": a, "loss": b}
  else:
    (logits, enc_pads), sown = model.apply(*args, rngs={"dropout": dropout_key}, mutable=["losses"])
    per_utt = rnnt_loss(logits, enc_pads, batch["labels"], batch["label_paddings"],
                        blank_id=config.blank_id, fastemit_lambda=config.fastemit_lambda, kernel=config.rnnt_kernel)
    terms, weights = {"loss": jnp.mean(per_utt)}, {"loss": 1.0}
  extra = _sown_terms(sown)
  clash = sorted(set(extra) & set(terms))
  if clash:
    raise ValueError(f"the model sows terms named {clash}, which the transducer objective already has.")
  out = task_lib.Objective({**terms, **extra}, weights, {"loss_per_label": jnp.sum(per_utt) / num_labels})
  return task_lib.with_weights(out, dict(config.loss_weights))


def utterance_nll(params, model, batch: dict, config: LossConfig) -> jax.Array:
  """``[B]`` negative log-likelihood of each reference under the model in evaluation mode: the
  full RNN-T loss without FastEmit, features without SpecAugment or VTLP, no dropout (what
  the EWC Fisher differentiates, `asrjax.fairness.ewc`)."""
  front_end = dataclasses.replace(config.front_end, spec_augment=False, vtlp_max_warp=0.0)
  feats, pads = featurize(batch, jax.random.key(0), front_end, train=False)
  logits, enc_pads = model.apply(params, feats, pads, batch["labels"], batch["label_paddings"])
  return rnnt_loss(logits, enc_pads, batch["labels"], batch["label_paddings"], blank_id=config.blank_id)


def read_speaker_list(path: str) -> list[str]:
  """The ``"speakers"`` of a JSON file ``{"speakers": [...]}`` (``data.train_speakers``).

  Raises:
    FileNotFoundError: no such file. ValueError: not such a JSON object, or an empty list.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"data.train_speakers={path!r}: no such file.")
  try:
    with open(path) as f:
      speakers = json.load(f)["speakers"]
  except (json.JSONDecodeError, KeyError, TypeError) as e:
    raise ValueError(f"data.train_speakers={path!r} is not a JSON object {{\"speakers\": [...]}} ({e}).") from None
  if not isinstance(speakers, list) or not speakers:
    raise ValueError(f"data.train_speakers={path!r}: 'speakers' must be a non-empty list.")
  return [str(s) for s in speakers]


def model_optimizer(config):
  """The model's optimizer: `asrjax.train.optimizer.make_optimizer`, preceded by the EWC
  penalty's gradient when ``config.train.ewc.weight > 0`` (its Fisher read from
  ``train.ewc.fisher_file``; the anchor is the parameters the optimizer is initialised with,
  the ``train.init_from`` run's)."""
  tx = optimizer_lib.make_optimizer(config.optimizer, config.train.num_steps)
  e = config.train.get("ewc", {})
  if e and e.get("weight", 0.0) > 0:
    import optax  # noqa: PLC0415

    from asrjax.fairness import ewc as ewc_lib  # noqa: PLC0415

    tx = optax.chain(ewc_lib.ewc(ewc_lib.load_fisher(e["fisher_file"]), float(e["weight"])), tx)
  return tx


def make_front_end(config, stats) -> FrontEnd:
  """The `FrontEnd` of ``config`` with the global statistics ``stats`` (`make_feature_stats`)."""
  mean, std = stats if stats is not None else (None, None)
  sa = config.train.spec_augment_options
  return FrontEnd(spec_augment=config.train.spec_augment, num_freq_masks=sa.num_freq_masks,
                  max_freq_mask=sa.max_freq_mask, num_time_masks=sa.num_time_masks,
                  max_time_mask_ratio=sa.max_time_mask_ratio, vtlp_max_warp=config.train.vtlp_max_warp,
                  feature_mean=mean, feature_std=std)


def make_loss_config(config, stats) -> LossConfig:
  """`LossConfig` of ``config.train`` around `make_front_end`."""
  t = config.train
  if t.prune_range and t.prune_range <= config.data.labels_per_frame:
    raise ValueError(
        f"train.prune_range={t.prune_range} keeps too few label positions: the data allows "
        f"data.labels_per_frame={config.data.labels_per_frame} labels per frame, and a window of S positions "
        f"fits S - 1; use prune_range > {config.data.labels_per_frame} (or 0 for the full loss).")
  return LossConfig(fastemit_lambda=t.fastemit_lambda, prune_range=t.prune_range,
                    simple_loss_scale=t.simple_loss_scale, pruned_warmup_steps=t.pruned_warmup_steps,
                    simple_lm_only_scale=t.simple_lm_only_scale, simple_am_only_scale=t.simple_am_only_scale,
                    compute_dtype=jnp.dtype(t.compute_dtype), front_end=make_front_end(config, stats),
                    loss_weights=tuple(dict(t.get("loss_weights", {})).items()),
                    rnnt_kernel=t.get("rnnt_kernel", "auto"))


def pipeline_config(config) -> pipeline.PipelineConfig:
  max_labels = config.data.max_labels
  return pipeline.PipelineConfig(
      batch_size=config.data.batch_size, buckets=tuple(config.data.buckets),
      max_labels=max_labels if isinstance(max_labels, int) else tuple(max_labels), seed=config.train.seed,
      subsampling=config.model.encoder.stack, labels_per_frame=config.data.labels_per_frame)


def shape_batch(config, tok) -> dict:
  """A one-utterance batch of the first bucket's shapes (silence, no labels): what parameters
  are initialised from."""
  pcfg = pipeline_config(config)
  return pipeline.pad_batch([{"audio": np.zeros(pcfg.buckets[0], np.int16), "text": ""}], tok.encode,
                            pcfg.buckets[0], pcfg.label_lengths[0])


def init_params(model, batch: dict, key: jax.Array, prune_range: int = 0) -> Any:
  """The transducer's variables from ``batch``'s shapes (with the pruned loss's extra projections
  when ``prune_range``); what modules sow into ``"losses"`` at initialisation is dropped (it
  is the objective's, recomputed each step, not a parameter)."""
  feats, pads = featurize(batch, jax.random.key(0), FrontEnd(), train=False)
  args = (feats, pads, jnp.asarray(batch["labels"]), jnp.asarray(batch["label_paddings"]))
  if prune_range:
    variables = model.init(key, *args, prune_range=prune_range, method=model.pruned_losses)
  else:
    variables = model.init(key, *args)
  return {k: v for k, v in variables.items() if k != "losses"}


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")  # char | sentencepiece


def tokenizer_path(config, workdir: str) -> str:
  return os.path.join(workdir, TOKENIZER_FILES[config.data.tokenizer != "char"])


def inherit_files(config, source_workdir: str, workdir: str) -> None:
  """Copies the tokenizer and feature statistics of ``source_workdir`` into ``workdir`` where it
  has none, so a run initialised from another (``train.init_from``) keeps the labels and
  features its parameters were trained with.

  Raises:
    FileNotFoundError: ``source_workdir`` has no tokenizer of ``config.data.tokenizer``'s kind.
  """
  source_tok = tokenizer_path(config, source_workdir)
  if not os.path.exists(source_tok):
    raise FileNotFoundError(f"train.init_from: {source_workdir} has no {os.path.basename(source_tok)} (the "
                            f"data.tokenizer={config.data.tokenizer!r} this config uses).")
  os.makedirs(workdir, exist_ok=True)
  for name in (os.path.basename(source_tok), "feature_stats.json"):
    src, dst = os.path.join(source_workdir, name), os.path.join(workdir, name)
    if os.path.exists(src) and not os.path.exists(dst):
      shutil.copyfile(src, dst)


def config_problems(config) -> list[str]:
  """The fields this task reads beyond the trainer's (`asrjax.train.config_check.problems`), as
  ``"field: what is wrong"`` lines; then what the batcher and the train step make of them."""
  from asrjax.train import config_check as cc  # noqa: PLC0415 -- config_check finds tasks through the registry

  c = cc.Checker(config)
  need, pos_int, nonneg_int, nonneg, number = c.need, cc.pos_int, cc.nonneg_int, cc.nonneg, cc._is_number
  need("data.tokenizer", lambda x: x in ("char", "sentencepiece"), "'char' or 'sentencepiece'")
  need("data.vocab_size", lambda x: cc._is_int(x) and x >= 3, "an integer >= 3 (blank, unknown, one symbol)")
  need("data.normalization", lambda x: x in ("global", "utterance"), "'global' or 'utterance'")
  need("data.stats_utterances", pos_int, "a positive integer")
  need("data.buckets", lambda x: len(x) > 0 and all(pos_int(b) for b in x) and list(x) == sorted(x),
       "a non-empty, non-decreasing tuple of positive sample counts")
  need("data.max_labels",
       lambda x: pos_int(x) or (len(x) == len(cc._get(config, "data.buckets")) and all(pos_int(m) for m in x)),
       "a positive integer, or one positive integer per bucket")
  need("data.labels_per_frame", pos_int, "a positive integer")
  if "train_speakers" in config.get("data", {}):  # absent from the configs of runs made before it existed: every speaker
    need("data.train_speakers", lambda x: isinstance(x, str), "a JSON file {\"speakers\": [...]}, or ''")
  need("model.name", lambda x: x in cc.model_names(), f"one of {cc.model_names()}")
  need("train.compute_dtype", lambda x: x in cc._DTYPES, f"one of {cc._DTYPES}")
  need("train.fastemit_lambda", nonneg, "a finite number >= 0")
  if "rnnt_kernel" in config.get("train", {}):  # absent from the configs of runs made before it existed: auto
    need("train.rnnt_kernel", lambda x: x in rnnt_lib.KERNELS, f"one of {rnnt_lib.KERNELS}")
  need("train.prune_range", nonneg_int, "an integer >= 0 (0 = the full loss)")
  need("train.simple_loss_scale", nonneg, "a finite number >= 0")
  need("train.pruned_warmup_steps", nonneg_int, "an integer >= 0")
  need("train.simple_lm_only_scale", lambda x: number(x) and 0 <= x <= 1, "a number in [0, 1]")
  need("train.simple_am_only_scale", lambda x: number(x) and 0 <= x <= 1, "a number in [0, 1]")
  need("train.spec_augment", lambda x: isinstance(x, bool), "True or False")
  for k in ("num_freq_masks", "max_freq_mask", "num_time_masks"):
    need(f"train.spec_augment_options.{k}", nonneg_int, "an integer >= 0")
  need("train.spec_augment_options.max_time_mask_ratio", lambda x: number(x) and 0 <= x <= 1, "a number in [0, 1]")
  need("train.vtlp_max_warp", lambda x: number(x) and 0 <= x < 1, "a number in [0, 1)")
  if "ewc" in config.get("train", {}):  # absent from the configs of runs made before it existed: off
    need("train.ewc.weight", nonneg, "a finite number >= 0 (0 = no EWC)")
    need("train.ewc.fisher_file", lambda x: isinstance(x, str), "a path")
    e = config.train.ewc
    if not c.out and nonneg(e.get("weight", 0.0)) and e.weight > 0:
      if not e.fisher_file:
        c.out.append(f"train.ewc.fisher_file='': train.ewc.weight={e.weight} needs the Fisher of the original "
                     "training data (experiments/fairness_ewc.py writes it)")
      if not config.train.get("init_from", ""):
        c.out.append(f"train.init_from='': train.ewc.weight={e.weight} pulls towards the parameters the run "
                     "starts from; give the trained run to fine-tune")
  need("eval.splits", lambda x: isinstance(x, (tuple, list)) and all(isinstance(s, str) and s for s in x),
       "a tuple of split names")
  need("eval.decoder", lambda x: x in cc._decoders(), f"one of {cc._decoders()}")
  need("eval.limit", nonneg_int, "an integer >= 0 (0 = all)")
  need("eval.lm.order", nonneg_int, "an integer >= 0 (0 = no LM)")
  need("eval.lm.discount", lambda x: number(x) and 0 < x < 1, "a number in (0, 1)")
  need("eval.lm.weight", nonneg, "a finite number >= 0")
  need("eval.lm.length_bonus", number, "a finite number")
  if not c.out:  # what the batcher and the train step make of the fields, as the trainer builds them
    for what, build in (("data.* (batching)", pipeline_config), ("train.* (train step)",
                                                                 lambda c: make_loss_config(c, None))):
      try:
        build(config)
      except ValueError as e:
        c.out.append(f"{what}: {e}")
  return c.out


class TransducerASR:
  """The RNN-T ASR task (`asrjax.train.task.Task`).

  Built by `from_config` for a run (the registry's entry point), or from its parts for a
  step on given batches (tests, benchmarks): then `batches` and `evaluate` are unavailable.

  Args:
    model: a `asrjax.models.transducer.Transducer`.
    loss: the objective's options (with the front end).
    optimizer: the model's optimizer.
    init_batch: a batch whose shapes the parameters are initialised from (`shape_batch`).
    tokenizer: labels <-> text.
    config, workdir, train_split: the run (`from_config`).
  """

  param_sets = ("model",)
  batch_fields = ("audio", "audio_paddings", "labels", "label_paddings")
  config_problems = staticmethod(config_problems)

  def __init__(self, model, loss: LossConfig, optimizer, init_batch: dict, tokenizer=None, *, config=None,
               workdir: str | None = None, train_split=None):
    self.model, self.loss, self.front_end, self.tokenizer = model, loss, loss.front_end, tokenizer
    self._optimizer, self._init_batch = optimizer, init_batch
    self.config, self.workdir, self.train_split = config, workdir, train_split
    self._index = None

  @classmethod
  def from_config(cls, config, workdir: str, train_split=None) -> "TransducerASR":
    """The task of a run: tokenizer, statistics and LM kept in ``workdir`` (made from
    ``train_split`` when absent, loaded when present). ``train_split=None`` loads everything
    from ``workdir`` (inference, evaluation).

    Raises:
      FileNotFoundError: ``train_split`` is None and ``workdir`` holds no tokenizer.
    """
    if train_split is None and not os.path.exists(tokenizer_path(config, workdir)):
      raise FileNotFoundError(f"no tokenizer at {tokenizer_path(config, workdir)}: is {workdir} a training workdir?")
    tok = make_tokenizer(config, train_split, workdir)
    loss = make_loss_config(config, make_feature_stats(config, train_split, workdir))
    return cls(models.build(config.model, tok.vocab_size), loss,
               model_optimizer(config), shape_batch(config, tok), tok,
               config=config, workdir=workdir, train_split=train_split)

  @staticmethod
  def open_train_split(config, workdir: str):
    """The dataset's ``"train"`` split, or its ``data.train_speakers`` speakers' examples only."""
    del workdir
    split = sources.open_split(config.data.name, "train", config.data.data_dir)
    path = config.data.get("train_speakers", "")
    if not path:
      return split
    return sources.speaker_subset(split, read_speaker_list(path))

  def optimizers(self) -> dict:
    return {"model": self._optimizer}

  def init(self, key: jax.Array) -> dict:
    return {"model": init_params(self.model, self._init_batch, key, self.loss.prune_range)}

  def objective(self, params: dict, batch: dict, key: jax.Array, step, *, trained: str) -> task_lib.Objective:
    del trained  # one parameter set
    return objective(params["model"], self.model, batch, key, self.loss, step)

  def _run(self, what: str):
    if self.config is None or self.train_split is None and what == "batches":
      raise ValueError(f"TransducerASR.{what} needs the run's config and training split: build the task with "
                       "TransducerASR.from_config(config, workdir, train_split).")

  def batches(self, step: int) -> pipeline.BatchIterator:
    self._run("batches")
    if self._index is None:
      self._index = pipeline.build_index(self.train_split, self.tokenizer.encode)
    return pipeline.BatchIterator(self.train_split, self._index, self.tokenizer.encode, pipeline_config(self.config),
                                  host_index=jax.process_index(), host_count=jax.process_count(), step=step,
                                  files=self.train_split.files)

  def describe(self) -> str:
    n = len(self._index.num_samples) if self._index is not None else len(self.train_split)
    return f"{n} training examples; vocab {self.tokenizer.vocab_size}"

  def evaluate(self, params: dict, step: int) -> dict:
    """``{split: (record, scalars)}`` for ``config.eval.splits``: WER overall and per group, RTF."""
    self._run("evaluate")
    config, out = self.config, {}
    if not config.eval.splits:  # counting the LM is wasted work when nothing is decoded
      return out
    options = decoding_options(config, config.eval.decoder, self.tokenizer, self.workdir, train_split=self.train_split,
                               strict=True)
    for split_name in config.eval.splits:
      split = sources.open_split(config.data.name, split_name, config.data.data_dir)
      ev = evaluation.evaluate(self.model, params["model"], split, self.tokenizer, decoder=config.eval.decoder,
                               limit=config.eval.limit, front_end=self.front_end, decoder_options=options)
      record = {"wer": evaluation.rate(ev["total"]), "rtf": ev["rtf"], "utterances": len(ev["references"]),
                "decoder": config.eval.decoder, "decoder_options": config.eval.decoder_options.to_dict(),
                "lm": config.eval.lm.to_dict(), "per_group": evaluation.per_group_rates(ev["errors"]),
                # 95% speaker-bootstrap interval (utterances of a speaker are not independent)
                "wer_interval": evaluation.speaker_interval(ev)}
      out[split_name] = (record, {"wer": ev["wer"], "rtf": ev["rtf"]})
    return out


class Restored(NamedTuple):
  model: Any
  params: Any
  tokenizer: Any
  front_end: FrontEnd  # the feature front end the model was trained with
  steps: tuple[int, ...]  # the checkpoints the parameters come from (several: their mean)


def restore_params(config, workdir: str, step: int | None = None, average: int = 1) -> Restored:
  """Model, parameters, tokenizer and front end of a transducer run in ``workdir``
  (`asrjax.train.trainer.restore`, which documents ``step``, ``average`` and the errors).

  Raises:
    FileNotFoundError: no tokenizer or no checkpoint in ``workdir``.
  """
  from asrjax.train import trainer  # noqa: PLC0415 -- the trainer imports the task registry

  task, params, steps = trainer.restore(config, workdir, step, average)
  return Restored(task.model, params["model"], task.tokenizer, task.front_end, steps)
