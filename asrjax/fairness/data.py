"""From an evaluation and a corpus to per-speaker fairness inputs (`asrjax.fairness.cohorts.Speakers`).

An evaluation (`experiments/evaluate.py`'s JSON: ``utterance_errors`` and ``speakers`` in
split order) gives each speaker's errors and reference words; the corpus gives each
speaker's metadata: the embedded corpus keeps one record per speaker in the split's
``metadata["speakers"][split]`` (latitude, longitude, area code, demographic group,
income band), and any corpus may carry them per example instead (the same field names
in every example). Speaker embeddings, for the automatic cohorts, are the mean of
`asrjax.speaker.embed` over a speaker's first utterances.

References:
  Dheram et al., Interspeech 2022 (cohorts from speaker metadata and embeddings).
"""

from __future__ import annotations

import json
import os

from asrjax.data import catalog
from asrjax.fairness.cohorts import Speakers, speakers_from_utterances
from asrjax.metrics.wer import ErrorCounts

GEO_FIELDS = ("latitude", "longitude", "area_code")
ATTRIBUTES = ("demographic_group", "income_band")

def speaker_metadata(split, split_name: str) -> dict:
  """``{speaker: {field: value}}`` for `GEO_FIELDS` and `ATTRIBUTES`: the split's
  ``metadata["speakers"][split_name]`` records when it has them, else the first example
  of each speaker (``{}`` values when a corpus has neither: cohorts that need them are
  then reported as unavailable)."""
  md = getattr(split, "metadata", None) or {}
  records = (md.get("speakers") or {}).get(split_name)
  wanted = GEO_FIELDS + ATTRIBUTES
  if records:
    return {str(r["speaker_id"]): {k: r[k] for k in wanted if k in r} for r in records}
  out = {}
  for i in range(len(split)):
    ex = split[i]
    s = catalog.as_text(ex.get("speaker_id", f"utterance-{i}"))
    if s not in out:
      out[s] = {k: (catalog.as_text(ex[k]) if isinstance(ex[k], bytes) else
                    float(ex[k]) if k in ("latitude", "longitude") else str(ex[k])) for k in wanted if k in ex}
  return out

def speakers_from_eval(record: dict, metadata: dict, *, embeddings: dict | None = None) -> Speakers:
  """`Speakers` of an evaluation record (``utterance_errors`` ``[[sub, del, ins, words]]`` and
  ``speakers``, in split order) with ``metadata`` (`speaker_metadata`).

  Raises:
    ValueError: the record lacks per-utterance errors or speakers (an evaluation written
      before they were kept: evaluate again), or their lengths differ.
  """
  for key in ("utterance_errors", "speakers"):
    if key not in record:
      raise ValueError(f"the evaluation has no {key!r}: run experiments/evaluate.py again (it keeps both).")
  errors = [ErrorCounts(*map(int, e)) for e in record["utterance_errors"]]
  return speakers_from_utterances(errors, record["speakers"], metadata, embeddings=embeddings, attributes=ATTRIBUTES)

def speaker_embeddings(extractor, params, split, speakers=None, *, per_speaker: int = 3,
                       max_samples: int = 48_000) -> dict:
  """``{speaker: [D]}`` for ``speakers`` (None: every speaker with an utterance in ``split``):
  the unit-norm mean embedding of each speaker's first ``per_speaker`` utterances of
  ``split`` (cut to ``max_samples``), by the SV evaluation's own
  `asrjax.speaker.evaluation.cohort_means`.

  Raises:
    ValueError: a speaker has no utterance in the split.
  """
  from asrjax.speaker import data as sv_data, evaluation  # noqa: PLC0415 -- the SV stack only when asked for

  table = sv_data.speaker_table(split)
  present = [s for s, u in zip(table.speakers, table.utterances_of()) if len(u)]
  speakers = present if speakers is None else speakers
  empty = sorted(set(map(str, speakers)) - set(present))
  if empty:
    raise ValueError(f"{len(empty)} speakers have no utterance in the split, e.g. {empty[:3]}.")
  means = evaluation.cohort_means(extractor, params, split, table, per_speaker=per_speaker, max_samples=max_samples)
  wanted = set(map(str, speakers))
  return {s: m for s, m in zip(present, means) if s in wanted}

def load_evaluation(path: str) -> dict:
  """The evaluation record at ``path`` (`experiments/evaluate.py`'s JSON).

  Raises:
    FileNotFoundError: no evaluation there (the message says how to make one).
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"no evaluation at {path}; run experiments/evaluate.py --workdir=... first.")
  with open(path) as f:
    return json.load(f)

def embedder_of_run(sv_workdir: str):
  """``(extractor, params)`` of a speaker-verification run's newest checkpoint."""
  from asrjax.speaker import ecapa  # noqa: PLC0415 -- the SV stack only when asked for
  from asrjax.train import run_config, trainer  # noqa: PLC0415

  config = run_config.load(sv_workdir)
  _, params, _ = trainer.restore(config, sv_workdir)
  return ecapa.ECAPATDNN(**dict(config.model.extractor)), params["model"]["extractor"]

def speakers_of_evaluation(record: dict, data_dir: str, *, embedder=None) -> Speakers:
  """`Speakers` of an evaluation record, with the metadata of its split (opened from
  ``data_dir``) and, given ``embedder`` (`embedder_of_run`), each speaker's mean embedding.

  Raises:
    ValueError / FileNotFoundError: the split is not prepared under ``data_dir``, or a
      speaker has no metadata or no utterance.
  """
  from asrjax.data import sources  # noqa: PLC0415

  split = sources.open_split(record["dataset"], record["split"], data_dir)
  metadata = speaker_metadata(split, record["split"])
  embeddings = (speaker_embeddings(*embedder, split, sorted(set(record["speakers"])))
                if embedder is not None else None)
  return speakers_from_eval(record, metadata, embeddings=embeddings)

__all__ = ["ATTRIBUTES", "GEO_FIELDS", "embedder_of_run", "load_evaluation", "speaker_embeddings",
           "speaker_metadata", "speakers_from_eval", "speakers_of_evaluation"]
