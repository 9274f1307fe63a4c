"""One training step of a transducer: features, SpecAugment, RNN-T loss, update.

The step is a pure function ``(state, batch, key) -> (state, metrics)`` jitted once
per batch shape over the device mesh (`asrjax.train.sharding`). Log-mel features
and SpecAugment run inside it, on the accelerator. A step whose loss or gradient is
not finite leaves parameters and optimizer state unchanged and increments
``state.skipped``; the loop decides when too many skips mean stopping.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from asrjax.data import features, spec_augment, vtlp
from asrjax.losses import rnnt_loss


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  skipped: jax.Array  # steps skipped for a non-finite loss or gradient


COMPUTE_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))  # StepConfig.compute_dtype


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """Loss and augmentation options of the step; each is checked at construction (`ValueError`
  naming the field), so a bad value fails before data are read or a step is traced."""

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
  spec_augment: bool = True
  num_freq_masks: int = 2
  max_freq_mask: int = 27
  num_time_masks: int = 5
  max_time_mask_ratio: float = 0.05
  vtlp_max_warp: float = 0.0  # VTLP warp factor range 1 +- this (0 = off)
  compute_dtype: Any = jnp.float32  # bf16 for mixed precision (params stay fp32)
  # Feature normalisation: per-utterance CMVN (looks at the whole utterance), or fixed
  # training-set statistics (streamable); the statistics are tuples so that the config
  # stays hashable (a static argument of the jitted step).
  feature_mean: tuple | None = None
  feature_std: tuple | None = None

  def __post_init__(self):
    """Checks every field (a `ValueError` naming it) before any step is traced, and makes
    ``compute_dtype`` a dtype and the statistics tuples of floats (hashable)."""
    for name, minimum in (("blank_id", 0), ("prune_range", 0), ("pruned_warmup_steps", 0), ("num_freq_masks", 0),
                          ("max_freq_mask", 0), ("num_time_masks", 0)):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"StepConfig.{name} must be an integer >= {minimum}; got {value!r}.")
    for name, lo, hi, hi_open in (("fastemit_lambda", 0.0, math.inf, True), ("simple_loss_scale", 0.0, math.inf, True),
                                  ("simple_lm_only_scale", 0.0, 1.0, False), ("simple_am_only_scale", 0.0, 1.0, False),
                                  ("max_time_mask_ratio", 0.0, 1.0, False), ("vtlp_max_warp", 0.0, 1.0, True)):
      value = getattr(self, name)
      ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
            and lo <= value and (value < hi if hi_open else value <= hi))
      if not ok:
        bound = "" if hi == math.inf else (f", < {hi}" if hi_open else f", <= {hi}")
        raise ValueError(f"StepConfig.{name} must be a finite number >= {lo}{bound}; got {value!r}.")
    if self.simple_lm_only_scale + self.simple_am_only_scale > 1.0:
      raise ValueError(f"StepConfig.simple_lm_only_scale + simple_am_only_scale must be <= 1; got "
                       f"{self.simple_lm_only_scale} + {self.simple_am_only_scale}.")
    if not isinstance(self.spec_augment, bool):
      raise ValueError(f"StepConfig.spec_augment must be a bool; got {self.spec_augment!r}.")
    try:
      dtype = jnp.dtype(self.compute_dtype)
    except TypeError:
      dtype = None
    if dtype not in COMPUTE_DTYPES:
      raise ValueError(f"StepConfig.compute_dtype must be one of {[d.name for d in COMPUTE_DTYPES]}; "
                       f"got {self.compute_dtype!r}.")
    object.__setattr__(self, "compute_dtype", dtype)
    if (self.feature_mean is None) != (self.feature_std is None):
      raise ValueError("StepConfig.feature_mean and feature_std must be given together (or neither: per-utterance "
                       "CMVN).")
    if self.feature_mean is not None:
      mean, std = (np.asarray(x, np.float64) for x in (self.feature_mean, self.feature_std))
      if mean.ndim != 1 or mean.shape != std.shape or not mean.size:
        raise ValueError(f"StepConfig.feature_mean and feature_std must be sequences of one value per feature, of "
                         f"one length; got shapes {mean.shape} and {std.shape}.")
      if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError("StepConfig.feature_mean must be finite and feature_std finite and > 0.")
      object.__setattr__(self, "feature_mean", tuple(float(x) for x in mean))
      object.__setattr__(self, "feature_std", tuple(float(x) for x in std))


def init_state(params, tx: optax.GradientTransformation) -> TrainState:
  return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), jnp.zeros((), jnp.int32))


def featurize(batch: dict, key: jax.Array, config: StepConfig, train: bool):
  """int16 audio ``[B, N]`` -> normalised log-mel ``[B, T, 80]`` (+ VTLP and SpecAugment when training).

  Global statistics when ``config.feature_mean`` is set, else per-utterance CMVN.
  """
  feats, pads = features.log_mel(batch["audio"].astype(jnp.float32) / 32768.0, batch["audio_paddings"])
  vtlp_key, key = jax.random.split(key)
  if train and config.vtlp_max_warp > 0:
    feats = vtlp.warp(vtlp_key, feats, pads, max_warp=config.vtlp_max_warp)
  if config.feature_mean is not None:
    feats = features.global_normalize(feats, pads, config.feature_mean, config.feature_std)
  else:
    feats = features.normalize(feats, pads)
  if train and config.spec_augment:
    feats = spec_augment.spec_augment(
        key, feats, pads, num_freq_masks=config.num_freq_masks, max_freq_mask=config.max_freq_mask,
        num_time_masks=config.num_time_masks, max_time_mask_ratio=config.max_time_mask_ratio)
  return feats, pads


def loss_scales(step, simple_loss_scale: float, warmup_steps: int):
  """Weights ``(a, b)`` of the simple and pruned losses at ``step`` (icefall's schedule).

  During the first ``warmup_steps`` the simple loss's weight falls linearly from 1 to
  ``simple_loss_scale`` and the pruned loss's rises from 0.1 to 1 (its windows come
  from the simple lattice, meaningless at initialisation); afterwards
  ``(simple_loss_scale, 1)``.
  """
  frac = jnp.minimum(step / max(warmup_steps, 1), 1.0) if warmup_steps > 0 else 1.0
  return 1.0 - frac * (1.0 - simple_loss_scale), 0.1 + 0.9 * frac


def loss_fn(params, model, batch: dict, key: jax.Array, config: StepConfig, step=0):
  """Mean per-utterance transducer objective, and metrics.

  ``loss`` and ``loss_per_label`` report the full RNN-T loss, or with
  ``config.prune_range`` the pruned loss (an upper bound of the full one), plus
  ``simple_loss``; ``step`` drives the pruned loss's warm-up (`loss_scales`).
  """
  feature_key, dropout_key = jax.random.split(key)
  feats, pads = featurize(batch, feature_key, config, train=True)
  cast = lambda t: jax.tree.map(lambda x: x.astype(config.compute_dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, t)
  args = (cast(params), feats.astype(config.compute_dtype), pads, batch["labels"], batch["label_paddings"])
  num_labels = jnp.maximum(jnp.sum(1.0 - batch["label_paddings"]), 1.0)
  if config.prune_range:
    simple, per_utt = model.apply(*args, prune_range=config.prune_range, fastemit_lambda=config.fastemit_lambda,
                                  lm_only_scale=config.simple_lm_only_scale,
                                  am_only_scale=config.simple_am_only_scale,
                                  method=model.pruned_losses, rngs={"dropout": dropout_key})
    a, b = loss_scales(step, config.simple_loss_scale, config.pruned_warmup_steps)
    objective = a * jnp.mean(simple) + b * jnp.mean(per_utt)
    extra = {"simple_loss": jnp.mean(simple)}
  else:
    logits, enc_pads = model.apply(*args, rngs={"dropout": dropout_key})
    per_utt = rnnt_loss(logits, enc_pads, batch["labels"], batch["label_paddings"],
                        blank_id=config.blank_id, fastemit_lambda=config.fastemit_lambda)
    objective, extra = jnp.mean(per_utt), {}
  return objective, {"loss": jnp.mean(per_utt), "loss_per_label": jnp.sum(per_utt) / num_labels, **extra}


def train_step(state: TrainState, batch: dict, key: jax.Array, *, model, tx, config: StepConfig):
  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, model, batch, key, config, state.step)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  updates, new_opt = tx.update(grads, state.opt_state, state.params)
  new_params = optax.apply_updates(state.params, updates)
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  new_state = TrainState(
      step=state.step + 1,
      params=keep(new_params, state.params),
      opt_state=keep(new_opt, state.opt_state),
      skipped=state.skipped + (~finite).astype(jnp.int32),
  )
  return new_state, {**aux, "grad_norm": grad_norm, "finite": finite}
