"""Mitigation by fine-tuning on the cohorts a model fails: targets, the Fisher, and the before / after report.

The recipe (Trinh et al.): find regions on development speakers (`asrjax.fairness.cohorts`),
target the worst ones, fine-tune the trained model on the targeted regions' *training*
speakers with the EWC penalty (the diagonal Fisher estimated on the original training
data), and compare at equal steps with plain fine-tuning on the same data (which should
forget the rest) and fine-tuning on all data. `report` measures a model on test speakers:
overall WER, per-region mean / max / variance, and the targeted and untargeted regions'
WER separately (forgetting shows in the untargeted ones), with speaker-bootstrap intervals.

References:
  Trinh et al., "Reducing geographic disparities in automatic speech recognition via
  elastic weight consolidation", Interspeech 2022; Kirkpatrick et al., PNAS 2017.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.fairness import disparity as disparity_lib
from asrjax.fairness import ewc as ewc_lib
from asrjax.fairness.cohorts import Cohorts, Speakers
from asrjax.metrics import wer


def evaluate_run(workdir: str, split_name: str, *, limit: int = 0, decoder: str = "greedy") -> dict:
  """The evaluation record of ``workdir``'s newest checkpoint on ``split_name`` (the fields of
  `experiments/evaluate.py`'s JSON that the fairness code reads)."""
  from asrjax.data import sources  # noqa: PLC0415
  from asrjax.inference import evaluation  # noqa: PLC0415
  from asrjax.tasks import transducer_asr  # noqa: PLC0415
  from asrjax.train import run_config  # noqa: PLC0415

  config = run_config.load(workdir)
  split = sources.open_split(config.data.name, split_name, config.data.data_dir)
  model, params, tok, front_end, steps = transducer_asr.restore_params(config, workdir)
  options = transducer_asr.decoding_options(config, decoder, tok, workdir)
  ev = evaluation.evaluate(model, params, split, tok, decoder=decoder, decoder_options=options, limit=limit,
                           front_end=front_end)
  return {"dataset": config.data.name, "split": split_name, "steps": list(steps), "wer": evaluation.rate(ev["total"]),
          "speakers": ev["speakers"], "utterance_errors": [[c.substitutions, c.deletions, c.insertions,
                                                            c.reference_words] for c in ev["utterance_errors"]]}


def transducer_fisher(workdir: str, *, num_batches: int, chunk: int = 4):
  """The empirical diagonal Fisher of ``workdir``'s model parameters on its training data:
  ``num_batches`` batches of its own training pipeline, per-example gradients of
  `asrjax.tasks.transducer_asr.utterance_nll`. Returns a tree like ``params["model"]``.

  Raises:
    ValueError: ``num_batches`` < 1.
  """
  from asrjax import tasks  # noqa: PLC0415
  from asrjax.tasks import transducer_asr  # noqa: PLC0415
  from asrjax.train import run_config  # noqa: PLC0415

  if num_batches < 1:
    raise ValueError(f"num_batches must be >= 1; got {num_batches}.")
  config = run_config.load(workdir)
  config.data.train_speakers = ""  # the original training data, whatever the run trained on last
  config.train.init_from = ""
  _, params, _, _, _ = transducer_asr.restore_params(config, workdir)
  task = tasks.build(config, workdir, tasks.open_train_split(config, workdir))
  it = task.batches(0)
  fields = task.batch_fields
  batches = [{k: jnp.asarray(b[k]) for k in fields} for b in itertools.islice(it, num_batches)]
  it.close()

  def example_loss(p, ex):
    one = jax.tree.map(lambda x: x[None], ex)
    return transducer_asr.utterance_nll(p, task.model, one, task.loss)[0]

  # padded rows of a batch (no audio) carry no labels: their loss is 0 and so is their gradient,
  # but they would count as examples; keep only rows with audio
  real = [jax.tree.map(lambda x, m=np.asarray(b["audio_paddings"]).min(axis=1) < 1: x[m], b) for b in batches]
  return ewc_lib.diagonal_fisher(example_loss, params, real, chunk=chunk)


def targeted_regions(cohorts: Cohorts, dev: Speakers, count: int) -> list[int]:
  """The ``count`` cohorts with the highest WER on the ``dev`` speakers (worst first).

  Raises:
    ValueError: ``count`` not in ``[1, number of cohorts - 1]``.
  """
  if not 1 <= count < len(cohorts):
    raise ValueError(f"count must be in [1, {len(cohorts) - 1}] (some cohort must stay untargeted); got {count}.")
  per = disparity_lib.cohort_wers(dev.errors, dev.words, cohorts.assign(dev), len(cohorts))
  order = np.argsort(-np.nan_to_num(per, nan=-1.0), kind="stable")
  return [int(k) for k in order[:count]]


def speakers_in(cohorts: Cohorts, regions, metadata: dict, *, embeddings: dict | None = None) -> list[str]:
  """The speakers of ``metadata`` (``{speaker: {"latitude", "longitude", ...}}``, e.g. the
  training split's) that ``cohorts`` places in ``regions``; ``embeddings`` (``{speaker: [D]}``,
  every speaker of ``metadata``) place them for embedding cohorts.

  Raises:
    ValueError: ``embeddings`` lacks a speaker of ``metadata``.
  """
  ids = sorted(metadata)
  if embeddings is not None and (missing := sorted(set(ids) - set(embeddings))):
    raise ValueError(f"{len(missing)} speakers have no embedding, e.g. {missing[:3]}.")
  field = lambda k: np.asarray([metadata[s].get(k) for s in ids], dtype=object)
  attrs = {k: field(k).astype(str) for k in ("demographic_group", "income_band") if all(k in metadata[s] for s in ids)}
  has_geo = all("latitude" in metadata[s] and "longitude" in metadata[s] for s in ids)
  spk = Speakers(np.asarray(ids), np.zeros(len(ids), np.int64), np.zeros(len(ids), np.int64),
                 field("latitude").astype(np.float64) if has_geo else None,
                 field("longitude").astype(np.float64) if has_geo else None,
                 field("area_code").astype(str) if all("area_code" in metadata[s] for s in ids) else None, attrs,
                 np.stack([np.asarray(embeddings[s], np.float64) for s in ids]) if embeddings is not None else None)
  labels = cohorts.assign(spk)
  return [s for s, k in zip(ids, labels) if k in set(regions)]


def _interval(speakers: Speakers, mask, draws: int, key: int) -> list:
  counts = [wer.ErrorCounts(int(e), 0, 0, int(w)) for e, w in zip(speakers.errors[mask], speakers.words[mask])]
  if not counts:
    return [None, None]
  return list(wer.percentile_interval(wer.bootstrap_wers(counts, speakers.ids[mask].tolist(), key, draws)))


def report(speakers: Speakers, cohorts: Cohorts, targeted, *, draws: int = 1000, key: int = 0) -> dict:
  """One model on test speakers: ``{"wer", "targeted_wer", "untargeted_wer"}`` (each with an
  ``_interval``), ``"gap"`` (the targeted cohorts' relative WER gap to the rest:
  targeted / untargeted - 1) and ``"regions"`` (`asrjax.fairness.disparity.disparity`: per-region WER and
  their mean / max / variance)."""
  labels = cohorts.assign(speakers)
  hit = np.isin(labels, list(targeted))
  errors, words = np.asarray(speakers.errors), np.asarray(speakers.words)
  rate = lambda m: float(errors[m].sum() / words[m].sum()) if words[m].sum() else None
  every = np.ones(len(labels), bool)
  targeted_wer, untargeted_wer = rate(hit), rate(~hit)
  return {"wer": rate(every), "wer_interval": _interval(speakers, every, draws, key),
          "gap": targeted_wer / untargeted_wer - 1 if targeted_wer is not None and untargeted_wer else None,
          "targeted_wer": targeted_wer, "targeted_wer_interval": _interval(speakers, hit, draws, key),
          "untargeted_wer": untargeted_wer, "untargeted_wer_interval": _interval(speakers, ~hit, draws, key),
          "regions": disparity_lib.disparity(speakers, cohorts, draws=draws, key=key)}


def choose_weight(dev_reports: dict, base: dict) -> float:
  """The EWC weight chosen on development speakers: of ``dev_reports`` (``{weight: report}``,
  each fine-tune's `report` on dev) whose overall WER is no worse than ``base``'s (the base
  model's dev report), the one with the lowest targeted-cohort WER; when none is, the one
  with the lowest overall WER. Ties go to the smaller weight.

  Raises:
    ValueError: no report.
  """
  if not dev_reports:
    raise ValueError("choose_weight needs at least one weight's dev report.")
  weights = sorted(dev_reports)
  kept = [w for w in weights if dev_reports[w]["wer"] <= base["wer"]]
  if kept:
    return min(kept, key=lambda w: (dev_reports[w]["targeted_wer"], w))
  return min(weights, key=lambda w: (dev_reports[w]["wer"], w))


__all__ = ["choose_weight", "evaluate_run", "report", "speakers_in", "targeted_regions", "transducer_fisher"]
