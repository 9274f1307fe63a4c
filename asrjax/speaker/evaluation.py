"""The speaker-verification evaluation path: embed the trials' utterances, score, normalise, measure.

One path for every SV model and launcher: `embed` turns audio into ``[B, D]`` embeddings
(log-mel, per-utterance CMVN, the extractor); `evaluate_trials` embeds every utterance a
trial list names (whole utterances, padded to length buckets so few shapes compile),
scores each trial by cosine and by AS-norm against a cohort of training speakers' mean
embeddings, and reports EER and minDCF overall, per gender and accent of the enrolment
speaker (the gap and the spread across groups), per acoustic condition, each with a
speaker-bootstrap 95% interval.

References:
  Jin et al., "Adversarial reweighting for speaker verification fairness", Interspeech
  2022 (the metrics reported); see `asrjax.metrics.verification` and
  `asrjax.speaker.scoring`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.frontend.featurize import FrontEnd, featurize
from asrjax.metrics import verification, wer
from asrjax.speaker import data, scoring

FRONT_END = FrontEnd(spec_augment=False)  # log-mel with per-utterance CMVN, no augmentation
BUCKET_SAMPLES = 16_000  # utterances are padded to a multiple of 1 s
BOOTSTRAP_DRAWS, BOOTSTRAP_KEY = 300, 0


@functools.partial(jax.jit, static_argnums=(0, 4))
def _embed(extractor, params, audio, paddings, front_end: FrontEnd):
  feats, pads = featurize({"audio": audio, "audio_paddings": paddings}, jax.random.key(0), front_end, train=False)
  return extractor.apply(params, feats, pads)


def embed(extractor, params, audio, audio_paddings, *, front_end: FrontEnd = FRONT_END) -> np.ndarray:
  """``[B, D]`` embeddings of int16 ``audio [B, N]`` (16 kHz) with ``audio_paddings [B, N]``.

  Raises:
    ValueError: shapes differ, the audio is not int16, or an utterance has under 25 ms of audio.
  """
  audio, audio_paddings = np.asarray(audio), np.asarray(audio_paddings, np.float32)
  if audio.ndim != 2 or audio_paddings.shape != audio.shape:
    raise ValueError(f"audio and audio_paddings must both be [B, N]; got {list(audio.shape)} and "
                     f"{list(audio_paddings.shape)}.")
  if audio.dtype != np.int16:
    raise ValueError(f"audio must be int16 samples (16 kHz PCM); got {audio.dtype} (float audio in [-1, 1]: "
                     "multiply by 32767 and cast).")
  empty = np.flatnonzero((audio_paddings == 0).sum(axis=1) < 400)  # under one 25 ms frame
  if empty.size:
    raise ValueError(f"utterances {empty.tolist()} have no audio (under 25 ms): nothing to embed.")
  return np.asarray(_embed(extractor, params, jnp.asarray(audio), jnp.asarray(audio_paddings), front_end))


def embed_utterances(extractor, params, split, indices, *, batch: int = 16, max_samples: int | None = None) -> np.ndarray:
  """``[len(indices), D]`` embeddings of whole utterances ``indices`` of ``split`` (optionally
  cut to their first ``max_samples``), batched by length bucket."""
  audio = [np.asarray(split[int(i)]["audio"], np.int16) for i in indices]
  if max_samples:
    audio = [a[:max_samples] for a in audio]
  order = np.argsort([a.shape[0] for a in audio], kind="stable")
  rows = {}
  for start in range(0, len(order), batch):
    chunk = order[start:start + batch]
    n = max(audio[i].shape[0] for i in chunk)
    n = -(-n // BUCKET_SAMPLES) * BUCKET_SAMPLES
    a, p = np.zeros((batch, n), np.int16), np.ones((batch, n), np.float32)
    for r, i in enumerate(chunk):
      a[r, :audio[i].shape[0]], p[r, :audio[i].shape[0]] = audio[i], 0.0
    a[len(chunk):], p[len(chunk):, :BUCKET_SAMPLES] = 0, 0.0  # filler rows: 1 s of silence, dropped
    e = embed(extractor, params, a, p)
    rows.update({int(i): e[r] for r, i in enumerate(chunk)})
  if not rows:
    raise ValueError("no utterances to embed.")
  return np.stack([rows[i] for i in range(len(audio))])


def cohort_means(extractor, params, split, table: data.SpeakerTable, *, per_speaker: int = 3,
                 max_samples: int = 48_000) -> np.ndarray:
  """``[S, D]`` length-normalised mean embeddings of each training speaker's first ``per_speaker``
  utterances (the AS-norm cohort)."""
  picks = [u[:per_speaker] for u in table.utterances_of() if len(u)]
  flat = np.concatenate(picks)
  e = embed_utterances(extractor, params, split, flat, max_samples=max_samples)
  e /= np.linalg.norm(e, axis=1, keepdims=True)
  means, at = [], 0
  for p in picks:
    m = e[at:at + len(p)].mean(axis=0)
    means.append(m / np.linalg.norm(m))
    at += len(p)
  return np.stack(means)


def trial_list(split) -> list[dict]:
  """The split's trials (``metadata["sv_trials"]``) as ``[{"enrol", "test", "target", ...}]``.

  Raises:
    ValueError: the split has no trial list.
  """
  md = split.metadata
  if "sv_trials" not in md:
    raise ValueError("this split has no speaker-verification trials (metadata['sv_trials']): build the corpus "
                     "with trials, or give a trial list.")
  columns = md.get("sv_trial_columns", ["enrol", "test", "target"])
  return [dict(zip(columns, t)) for t in md["sv_trials"]]


_CONDITIONS = ("clean", "noisy", "telephone")


def condition(groups: dict, i: int) -> str:
  """``"telephone"`` (band-limited), ``"noisy"`` or ``"clean"``: utterance ``i``'s acoustic condition."""
  if "band_limited" in groups and groups["band_limited"][i] == "True":
    return "telephone"
  return "noisy" if "noise" in groups and groups["noise"][i] != "none" else "clean"


def trial_condition(groups: dict, a: int, b: int) -> str:
  """The harder of the two sides' conditions (clean < noisy < telephone)."""
  return max(condition(groups, a), condition(groups, b), key=_CONDITIONS.index)


def _interval(draws) -> list:
  low, high = wer.percentile_interval(draws)
  return [None if np.isnan(low) else low, None if np.isnan(high) else high]


def metrics_of(scores: np.ndarray, labels: np.ndarray, groups: dict, spk_a: np.ndarray, spk_b: np.ndarray,
               conditions: np.ndarray) -> dict:
  """EER / minDCF overall, per group (gap, std) and per condition, with speaker-bootstrap intervals."""
  out = verification.summary(scores, labels, groups)
  stats = {"eer": lambda w: verification.eer(scores, labels, w),
           "min_dcf": lambda w: verification.min_dcf(scores, labels, w)}
  for name in groups:
    stats[f"{name}_gap"] = lambda w, g=groups[name]: verification.summary(scores, labels, {"g": g}, w)["g"]["gap"]
    stats[f"{name}_std"] = lambda w, g=groups[name]: verification.summary(scores, labels, {"g": g}, w)["g"]["std"]
  out["intervals"] = {k: _interval(verification.speaker_bootstrap(f, spk_a, spk_b, key=BOOTSTRAP_KEY,
                                                                   draws=BOOTSTRAP_DRAWS)) for k, f in stats.items()}
  out["per_condition"] = verification.group_eers(scores, labels, conditions)
  out["trials"] = int(len(scores))
  return out


def evaluate_trials(extractor, params, test_split, train_split, train_table: data.SpeakerTable, *,
                    test_table: data.SpeakerTable | None = None, as_norm_top_n: int = 100) -> dict:
  """Scores ``test_split``'s trial list; ``{"cosine": metrics, "as_norm": metrics}`` (see `metrics_of`).

  Raises:
    ValueError: a trial names an utterance the split does not have.
  """
  trials = trial_list(test_split)
  table = test_table or data.speaker_table(test_split)
  index = {u: i for i, u in enumerate(table.ids)}
  missing = sorted({t[k] for t in trials for k in ("enrol", "test")} - set(index))
  if missing:
    raise ValueError(f"{len(missing)} trial utterances are not in the split, e.g. {missing[:3]}.")
  needed = sorted({index[t[k]] for t in trials for k in ("enrol", "test")})
  emb = dict(zip(needed, embed_utterances(extractor, params, test_split, needed)))
  ea = np.stack([emb[index[t["enrol"]]] for t in trials])
  eb = np.stack([emb[index[t["test"]]] for t in trials])
  labels = np.array([bool(t["target"]) for t in trials], np.int32)
  ia = np.array([index[t["enrol"]] for t in trials])
  ib = np.array([index[t["test"]] for t in trials])
  spk_a, spk_b = table.speaker[ia], table.speaker[ib]
  groups = {k: table.groups[k][ia] for k in ("gender", "accent") if k in table.groups}
  conditions = np.array([trial_condition(table.groups, int(a), int(b)) for a, b in zip(ia, ib)])
  raw = scoring.cosine_scores(ea, eb)
  cohort = cohort_means(extractor, params, train_split, train_table)
  normed = scoring.as_norm(raw, ea, eb, cohort, top_n=min(as_norm_top_n, cohort.shape[0]))
  return {"cosine": metrics_of(raw, labels, groups, spk_a, spk_b, conditions),
          "as_norm": metrics_of(normed, labels, groups, spk_a, spk_b, conditions)}


__all__ = ["FRONT_END", "cohort_means", "condition", "embed", "embed_utterances", "evaluate_trials", "metrics_of",
           "trial_condition", "trial_list"]
