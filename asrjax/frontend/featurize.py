"""Waveforms to model input on the accelerator: log-mel, normalisation, VTLP and SpecAugment.

`featurize` runs inside the jitted train step and in every decoding path
(`asrjax.inference.BatchDecoder`), so training and inference see the same features.
`FrontEnd` holds its options; it is hashable (a static argument of jitted functions).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.frontend import features, spec_augment as spec_augment_lib, vtlp


@dataclasses.dataclass(frozen=True)
class FrontEnd:
  """Front-end options; each is checked at construction (`ValueError` naming the field).

  Feature normalisation: fixed training-set statistics ``feature_mean`` / ``feature_std``
  (streamable; tuples, so the options stay hashable), or per-utterance CMVN when they
  are None (looks at the whole utterance). VTLP and SpecAugment apply when training only.
  """

  spec_augment: bool = True
  num_freq_masks: int = 2
  max_freq_mask: int = 27
  num_time_masks: int = 5
  max_time_mask_ratio: float = 0.05
  vtlp_max_warp: float = 0.0  # VTLP warp factor range 1 +- this (0 = off)
  feature_mean: tuple | None = None
  feature_std: tuple | None = None

  def __post_init__(self):
    for name in ("num_freq_masks", "max_freq_mask", "num_time_masks"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"FrontEnd.{name} must be an integer >= 0; got {value!r}.")
    for name, hi, hi_open in (("max_time_mask_ratio", 1.0, False), ("vtlp_max_warp", 1.0, True)):
      value = getattr(self, name)
      ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
            and 0.0 <= value and (value < hi if hi_open else value <= hi))
      if not ok:
        raise ValueError(f"FrontEnd.{name} must be a finite number >= 0.0, {'<' if hi_open else '<='} {hi}; "
                         f"got {value!r}.")
    if not isinstance(self.spec_augment, bool):
      raise ValueError(f"FrontEnd.spec_augment must be a bool; got {self.spec_augment!r}.")
    if (self.feature_mean is None) != (self.feature_std is None):
      raise ValueError("FrontEnd.feature_mean and feature_std must be given together (or neither: per-utterance "
                       "CMVN).")
    if self.feature_mean is not None:
      mean, std = (np.asarray(x, np.float64) for x in (self.feature_mean, self.feature_std))
      if mean.ndim != 1 or mean.shape != std.shape or not mean.size:
        raise ValueError(f"FrontEnd.feature_mean and feature_std must be sequences of one value per feature, of "
                         f"one length; got shapes {mean.shape} and {std.shape}.")
      if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError("FrontEnd.feature_mean must be finite and feature_std finite and > 0.")
      object.__setattr__(self, "feature_mean", tuple(float(x) for x in mean))
      object.__setattr__(self, "feature_std", tuple(float(x) for x in std))


def featurize(batch: dict, key: jax.Array, front_end: FrontEnd, train: bool):
  """int16 audio ``[B, N]`` (``batch["audio"]``, ``batch["audio_paddings"]``) -> normalised
  log-mel ``[B, T, 80]`` and its paddings ``[B, T]`` (+ VTLP and SpecAugment when ``train``).

  References:
    Park et al., "SpecAugment", Interspeech 2019; Jaitly & Hinton, "Vocal tract length
    perturbation (VTLP) improves speech recognition", ICML workshop 2013.
  """
  feats, pads = features.log_mel(batch["audio"].astype(jnp.float32) / 32768.0, batch["audio_paddings"])
  vtlp_key, key = jax.random.split(key)
  if train and front_end.vtlp_max_warp > 0:
    feats = vtlp.warp(vtlp_key, feats, pads, max_warp=front_end.vtlp_max_warp)
  if front_end.feature_mean is not None:
    feats = features.global_normalize(feats, pads, front_end.feature_mean, front_end.feature_std)
  else:
    feats = features.normalize(feats, pads)
  if train and front_end.spec_augment:
    feats = spec_augment_lib.spec_augment(
        key, feats, pads, num_freq_masks=front_end.num_freq_masks, max_freq_mask=front_end.max_freq_mask,
        num_time_masks=front_end.num_time_masks, max_time_mask_ratio=front_end.max_time_mask_ratio)
  return feats, pads
