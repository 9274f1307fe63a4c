"""Speaker verification with optional adversarial reweighting (`asrjax.train.task.Task`).

The model set trains an ECAPA-TDNN extractor (`asrjax.speaker.ecapa`) with AAM softmax
over the training speakers plus ``pairwise_weight`` times a pairwise verification loss
over the batch's pairs (`asrjax.losses.speaker`). With ``arw.variant``:

* ``"none"`` -- the baseline; one parameter set.
* ``"pw"`` -- the paper's pairwise weight: an adversary (`asrjax.speaker.adversary`)
  gives each sample a weight ``w_i``; a pair's loss is weighed by ``w_i + w_j``.
* ``"sample"`` -- the sample weights multiply the AAM (classification) loss instead.

Both weighted losses are weighted *means* (normalised by the weights' sum), so equal
weights give exactly the baseline's objective. The adversary's inputs
(``arw.adversary_input``): the embedding and the one-hot of the sample's k-means cluster
(the paper), the embedding, or the cluster only (k-means pseudo-labels as the adversary's
sole input). Clusters come from ``arw.clusters_file`` (``experiments/sv_arw.py`` writes
it from the baseline's embeddings with scikit-learn's KMeans): one cluster per training
utterance. The adversary maximises what the extractor minimises (two optimisers, one
jitted alternating step: the trainer's parameter sets).

References:
  Jin et al., "Adversarial reweighting for speaker verification fairness", Interspeech 2022.
  Desplanques et al., "ECAPA-TDNN", Interspeech 2020; Deng et al., "ArcFace", CVPR 2019.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.frontend.featurize import FrontEnd, featurize
from asrjax.losses import speaker as losses
from asrjax.speaker import adversary as adversary_lib, data, ecapa, evaluation, protocol
from asrjax.train import optimizer as optimizer_lib, task as task_lib

VARIANTS = ("none", "pw", "sample")


@dataclasses.dataclass(frozen=True)
class SVOptions:
  """The objective's options (hashable: the step is jitted over them)."""

  front_end: FrontEnd
  margin: float = 0.2
  scale: float = 32.0
  pairwise_weight: float = 1.0
  variant: str = "none"
  aam_weight: float = 1.0


def config_problems(config) -> list[str]:
  """The fields this task reads beyond the trainer's, as ``"field: what is wrong"`` lines."""
  from asrjax.train import config_check as cc  # noqa: PLC0415 -- config_check finds tasks through the registry

  c = cc.Checker(config)
  need = c.need
  need("model.name", lambda x: x == "ecapa_tdnn", "'ecapa_tdnn'")
  for k in ("channels", "scale", "kernel", "aggregate", "se_bottleneck", "attention", "embed_dim"):
    need(f"model.extractor.{k}", cc.pos_int, "a positive integer")
  need("sv.speakers_per_batch", lambda x: cc.pos_int(x) and x >= 2, "an integer >= 2 (pairs of speakers)")
  need("sv.utterances_per_speaker", lambda x: cc.pos_int(x) and x >= 2, "an integer >= 2 (target pairs)")
  need("sv.crop_seconds", lambda x: cc._is_number(x) and 0.5 <= x <= 30, "a number of seconds in [0.5, 30]")
  need("sv.margin", lambda x: cc._is_number(x) and 0 <= x < 1.5, "an angle in radians in [0, 1.5)")
  need("sv.scale", lambda x: cc._is_number(x) and x > 0, "a finite number > 0")
  need("sv.pairwise_weight", cc.nonneg, "a finite number >= 0")
  if "aam_weight" in config.sv:  # absent from the configs of runs made before it existed: 1
    need("sv.aam_weight", cc.nonneg, "a finite number >= 0")
  if dict(config.train.get("loss_weights", {})):
    c.out.append(f"train.loss_weights={dict(config.train.loss_weights)!r}: this task weighs its terms by "
                 "sv.aam_weight and sv.pairwise_weight; leave train.loss_weights empty")
  need("sv.as_norm_top_n", lambda x: cc._is_int(x) and x >= 2, "an integer >= 2")
  if config.sv.get("protocol", "corpus") != "corpus":  # absent from older configs: the corpus' own trials
    _protocol_problems(c)
  need("train.spec_augment", lambda x: isinstance(x, bool), "True or False")
  need("arw.variant", lambda x: x in VARIANTS, f"one of {VARIANTS}")
  need("arw.adversary_input", lambda x: x in adversary_lib.INPUTS, f"one of {adversary_lib.INPUTS}")
  need("arw.num_clusters", cc.pos_int, "a positive integer")
  need("arw.hidden", cc.pos_int, "a positive integer")
  need("arw.learning_rate", lambda x: cc._is_number(x) and x > 0, "a finite number > 0")
  need("arw.clusters_file", lambda x: isinstance(x, str), "a path ('' when arw.variant is 'none')")
  if not c.out:
    if config.data.batch_size != config.sv.speakers_per_batch * config.sv.utterances_per_speaker:
      c.out.append(f"data.batch_size={config.data.batch_size!r}: expected sv.speakers_per_batch * "
                   f"sv.utterances_per_speaker = {config.sv.speakers_per_batch * config.sv.utterances_per_speaker}")
    if config.arw.variant != "none" and config.arw.adversary_input != "embedding" and not config.arw.clusters_file:
      c.out.append(f"arw.clusters_file='': arw.adversary_input={config.arw.adversary_input!r} reads k-means clusters; "
                   "give the file (experiments/sv_arw.py writes it)")
  return c.out


def _protocol_problems(c) -> None:
  """The fields of a built verification protocol (`asrjax.speaker.protocol`)."""
  need = c.need
  need("sv.protocol", lambda x: x in ("corpus", "built"), "'corpus' (the corpus' own trials) or 'built'")
  need("sv.train_split", lambda x: isinstance(x, str) and x.strip(), "a split name ('train', 'train+validation')")
  need("sv.test_speakers", _speakers_ok, "speakers held out for testing: 'id10270-id10309' or 'a,b,c'")
  need("sv.speaker_metadata", lambda x: isinstance(x, str), "a metadata CSV path (vox1_meta.csv), or ''")
  need("sv.trials_per_utterance", lambda x: isinstance(x, (tuple, list)) and len(x) == 2 and all(
      isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in x) and sum(x) > 0,
       "(targets, non-targets) per enrolment utterance, integers >= 0, not both 0")
  need("sv.protocol_seed", lambda x: isinstance(x, int) and not isinstance(x, bool), "an integer")
  need("sv.session_field", lambda x: isinstance(x, str), "the example field naming a session ('youtube_id'), or ''")


def _speakers_ok(x) -> bool:
  try:
    return bool(protocol.parse_speakers(x))
  except (ValueError, TypeError, AttributeError):
    return False


def load_clusters(path: str, num_utterances: int, num_clusters: int) -> np.ndarray:
  """``[N]`` int cluster of each training utterance from ``path`` (``{"clusters": [...]}``).

  Raises:
    ValueError: the file's list does not have one cluster in ``[0, num_clusters)`` per utterance.
  """
  with open(path) as f:
    clusters = np.asarray(json.load(f)["clusters"])
  if clusters.shape != (num_utterances,) or clusters.min() < 0 or clusters.max() >= num_clusters:
    raise ValueError(f"{path}: expected one cluster in [0, {num_clusters}) per training utterance "
                     f"({num_utterances}); got {clusters.shape[0]} values in [{clusters.min()}, {clusters.max()}].")
  return clusters.astype(np.int32)


def _weighted_mean(x, w):
  return jnp.sum(w * x) / jnp.maximum(jnp.sum(w), 1e-12)


def objective(params: dict, extractor, adversary, batch: dict, key: jax.Array, options: SVOptions, *,
              trained: str) -> task_lib.Objective:
  """Terms ``aam`` and ``pairwise`` (weighted by the adversary under ARW) for ``trained ==
  "model"``; their negation (``adversary``) for the adversary, which maximises them."""
  feats, pads = featurize(batch, key, options.front_end, train=True)
  emb = extractor.apply(params["model"]["extractor"], feats, pads)
  aam = losses.aam_softmax(emb, params["model"]["classes"], batch["speaker"], margin=options.margin,
                           scale=options.scale)
  pair = params["model"]["pair"]
  pair_scale, pair_offset = jax.nn.softplus(pair["scale"]), pair["offset"]
  metrics = {}
  if options.variant == "none":
    w = jnp.ones_like(aam)
  else:
    # the adversary reads the embedding through a stop-gradient: w moves only the adversary
    w = adversary_lib.normalised_weights(adversary.apply(params["adversary"], emb, batch["cluster"]))
    metrics = {"weight_max": jnp.max(w), "weight_std": jnp.std(w)}
  aam_w = w if options.variant == "sample" else jnp.ones_like(w)
  pair_w = losses.pair_weights(w) if options.variant == "pw" else None
  terms = {"aam": _weighted_mean(aam, aam_w),
           "pairwise": losses.pairwise_loss(emb, batch["speaker"], scale=pair_scale, offset=pair_offset,
                                            weights=pair_w)}
  weights = {"aam": options.aam_weight, "pairwise": options.pairwise_weight}
  if trained == "adversary":
    value = sum(weights[k] * terms[k] for k in terms)
    return task_lib.Objective({"adversary": -value}, {"adversary": 1.0}, metrics)
  return task_lib.Objective(terms, weights, metrics)


class SpeakerVerification:
  """The speaker-verification task (see the module docstring)."""

  config_problems = staticmethod(config_problems)

  def __init__(self, config, workdir: str, train_split):
    self.config, self.workdir, self.train_split = config, workdir, train_split
    os.makedirs(workdir, exist_ok=True)
    self.extractor = ecapa.ECAPATDNN(**dict(config.model.extractor))
    variant = config.arw.variant
    self.param_sets = ("model",) if variant == "none" else ("model", "adversary")
    self.batch_fields = ("audio", "audio_paddings", "speaker") + (() if variant == "none" else ("cluster",))
    self.adversary = None if variant == "none" else adversary_lib.Adversary(
        config.arw.num_clusters, config.arw.hidden, config.arw.adversary_input)
    sv = config.sv
    self.options = SVOptions(FrontEnd(spec_augment=config.train.spec_augment), sv.margin, sv.scale,
                             sv.pairwise_weight, variant, sv.get("aam_weight", 1.0))
    self.table = data.speaker_table(train_split, os.path.join(workdir, "speaker_table.json")) if train_split \
        is not None else None
    self.clusters = None
    if variant != "none" and config.arw.adversary_input != "embedding":
      self.clusters = load_clusters(config.arw.clusters_file, len(self.table.ids), config.arw.num_clusters)
    elif variant != "none":
      self.clusters = np.zeros(len(self.table.ids), np.int32)

  @classmethod
  def from_config(cls, config, workdir: str, train_split=None) -> "SpeakerVerification":
    if train_split is None:
      train_split = cls.open_train_split(config, workdir)
    return cls(config, workdir, train_split)

  @staticmethod
  def open_train_split(config, workdir: str):
    """The training view of the verification protocol (`asrjax.speaker.protocol.open_sv_split`)."""
    return protocol.open_sv_split(config, config.sv.get("train_split", "train"), role="train", cache_dir=workdir)

  @property
  def num_speakers(self) -> int:
    return len(self.table.speakers)

  def optimizers(self) -> dict:
    txs = {"model": optimizer_lib.make_optimizer(self.config.optimizer, self.config.train.num_steps)}
    if self.adversary is not None:
      import optax  # noqa: PLC0415
      txs["adversary"] = optax.adam(self.config.arw.learning_rate)
    return txs

  def _shape_batch(self) -> dict:
    n = int(self.config.sv.crop_seconds * 16_000)
    return {"audio": jnp.zeros((2, n), jnp.int16), "audio_paddings": jnp.zeros((2, n)),
            "speaker": jnp.zeros((2,), jnp.int32), "cluster": jnp.zeros((2,), jnp.int32)}

  def init(self, key: jax.Array) -> dict:
    k1, k2, k3 = jax.random.split(key, 3)
    b = self._shape_batch()
    feats, pads = featurize(b, k3, self.options.front_end, train=False)
    model = {"extractor": self.extractor.init(k1, feats, pads),
             "classes": 0.01 * jax.random.normal(k2, (self.num_speakers, self.extractor.embed_dim)),
             "pair": {"scale": jnp.asarray(np.log(np.expm1(10.0)), jnp.float32), "offset": jnp.asarray(-5.0)}}
    out = {"model": model}
    if self.adversary is not None:
      out["adversary"] = self.adversary.init(k3, jnp.zeros((2, self.extractor.embed_dim)), b["cluster"])
    return out

  def objective(self, params: dict, batch: dict, key: jax.Array, step, *, trained: str) -> task_lib.Objective:
    del step
    return objective(params, self.extractor, self.adversary, batch, key, self.options, trained=trained)

  def batches(self, step: int):
    sv = self.config.sv
    extra = {} if self.clusters is None else {"cluster": self.clusters}
    return data.CropBatches(self.train_split, self.table, speakers_per_batch=sv.speakers_per_batch,
                            utterances_per_speaker=sv.utterances_per_speaker,
                            crop_samples=int(sv.crop_seconds * 16_000), seed=self.config.train.seed, step=step,
                            host_index=jax.process_index(), host_count=jax.process_count(), fields=extra)

  def describe(self) -> str:
    return f"{len(self.table.ids)} training utterances of {self.num_speakers} speakers; ARW {self.config.arw.variant}"

  def evaluate(self, params: dict, step: int) -> dict:
    """``{split: (record, scalars)}`` for ``config.eval.splits``: cosine and AS-norm metrics."""
    del step
    out = {}
    for split_name in self.config.eval.splits:
      split = protocol.open_sv_split(self.config, split_name, role="eval", cache_dir=self.workdir)
      test_table = data.speaker_table(split, os.path.join(self.workdir, f"speaker_table_{split_name}.json"))
      record = evaluation.evaluate_trials(self.extractor, params["model"]["extractor"], split, self.train_split,
                                          self.table, test_table=test_table,
                                          as_norm_top_n=self.config.sv.as_norm_top_n)
      out[split_name] = (record, {"eer": record["cosine"]["eer"], "eer_as_norm": record["as_norm"]["eer"],
                                  "min_dcf": record["cosine"]["min_dcf"]})
    return out


__all__ = ["SVOptions", "SpeakerVerification", "VARIANTS", "config_problems", "load_clusters", "objective"]
