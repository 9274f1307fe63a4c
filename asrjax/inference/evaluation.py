"""The one evaluation path: decode a split, score WER overall and per metadata group, time it.

`evaluate` produces every reported WER. Its inputs are checked before any decoding
(a `ValueError` naming the argument), and it refuses a request that would score
nothing (an empty split), so an empty result can never stand in for a WER. The
helpers below let the launchers (`experiments/evaluate.py`,
`experiments/error_breakdown.py`) check their flags and the JSON they exchange
before restoring a model or decoding anything.
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import os
import tempfile
import time


from asrjax import decoding
from asrjax.data import audio as audio_lib, catalog, conditions
from asrjax.frontend.featurize import FrontEnd
from asrjax.inference import batch_decoder
from asrjax.metrics import wer

# metadata fields WER is broken down by, where a corpus has them: speaker attributes
# (with the synthesizer family, the base voice and the espeak voice variant), then recording conditions (the espeak corpus' noise
# type and SNR, telephone-band limiting) and the sentence kind (read / assistant)
GROUP_FIELDS = ("family", "base_voice", "accent", "gender", "region", "age_band", "difficulty", "variant", "noise",
                "snr_db",
                "band_limited", "kind")
MISSING = "n/a"  # the group label of an example without a field that other examples of the split have


def example_groups(example) -> dict:
  """``{field: label}`` of an example for the `GROUP_FIELDS` it has, plus ``"condition"``
  (`asrjax.data.conditions.recording_condition`) when it has the fields that needs."""
  groups = {f: catalog.as_text(example[f]) for f in GROUP_FIELDS if f in example}
  if all(f in example for f in conditions.FIELDS):
    groups["condition"] = conditions.recording_condition(example)
  return groups


# ------------------------------------------------------------------------------------------ checks


def check_limit(limit, name: str = "limit") -> int:
  """``limit`` as an int: the number of utterances to decode, 0 = all of them.

  Raises:
    ValueError: ``limit`` is not an integer >= 0 (a negative limit used to decode nothing).
  """
  if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 0:
    raise ValueError(f"{name} must be an integer >= 0 (the number of utterances to decode; 0 = all); "
                     f"got {limit!r}.")
  return int(limit)


def check_decoder_options(decoder: str, options) -> dict:
  """``options`` as a dict, after checking them against ``decoding.DECODERS[decoder]``'s keywords.

  Raises:
    ValueError: ``decoder`` is not a decoder's name, ``options`` is not a dict, or it
      names an option that decoder does not take.
  """
  if decoder not in decoding.DECODERS:
    raise ValueError(f"decoder must be one of {sorted(decoding.DECODERS)}; got {decoder!r}.")
  options = {} if options is None else options
  if not isinstance(options, dict):
    raise ValueError(f"decoder_options must be a dict of keyword options of the {decoder} decoder; "
                     f"got {type(options).__name__} {options!r:.80}.")
  params = inspect.signature(decoding.DECODERS[decoder]).parameters
  if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
    accepted = sorted(k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
      raise ValueError(f"decoder_options {unknown} are not options of the {decoder} decoder; it takes {accepted}.")
  return dict(options)


def parse_decoder_options(text: str, name: str = "--decoder_options") -> dict:
  """The JSON object ``text`` (decoder keyword options) as a dict.

  Raises:
    ValueError: ``text`` is not valid JSON, or not a JSON object.
  """
  try:
    options = json.loads(text)
  except (TypeError, json.JSONDecodeError) as e:
    raise ValueError(f"{name} must be a JSON object of decoder options, e.g. '{{\"beam\": 4}}'; "
                     f"{text!r} is not valid JSON ({e}).") from None
  if not isinstance(options, dict):
    kind = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(options), "null")
    raise ValueError(f"{name} must be a JSON object of decoder options, e.g. '{{\"beam\": 4}}'; "
                     f"got a JSON {kind}: {text!r}.")
  return options


def check_writable(path: str, name: str = "--out") -> None:
  """Raises unless a file can be written at ``path`` (by a temporary file in its folder,
  the way `asrjax.atomic_file` writes), so a run fails before its work, not after.

  Raises:
    ValueError: ``path`` is a folder, its folder does not exist, or cannot be written to.
  """
  path = os.path.abspath(os.fspath(path))
  folder = os.path.dirname(path)
  if os.path.isdir(path):
    raise ValueError(f"{name}: {path} is a folder; expected the path of a JSON file.")
  if not os.path.isdir(folder):
    raise ValueError(f"{name}: the folder of {path} does not exist; expected an existing, writable folder.")
  try:
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".write_probe_")
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise ValueError(f"{name}: cannot write to {folder} ({e.strerror or e}); expected a writable folder for "
                     f"{os.path.basename(path)} (checked before any decoding).") from None


def _record(split, i: int):
  """Example ``i`` of ``split``, checked for what `evaluate` reads."""
  example = split[i]
  fields = sorted(example) if hasattr(example, "keys") else type(example).__name__
  for key in ("audio", "text"):
    if not hasattr(example, "keys") or key not in example:
      raise ValueError(f"split[{i}] has no {key!r} field (evaluate reads 'audio' and 'text'); it has {fields}.")
  if not isinstance(example["text"], (str, bytes)):
    raise ValueError(f"split[{i}]['text'] must be the transcript (str or bytes); got "
                     f"{type(example['text']).__name__} {example['text']!r:.80}.")
  return example


# --------------------------------------------------------------------------------------- evaluation


def check_batch_size(batch_size) -> int:
  """``batch_size`` if it is an integer >= 1, else `ValueError`."""
  if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
    raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
  return int(batch_size)


def batch_plan(lengths, batch_size: int, buckets=batch_decoder.BUCKETS) -> list[tuple[list[int], int]]:
  """`evaluate`'s batches of examples with audio ``lengths`` (samples): ``[(example ids, bucket)]``, the
  ids sorted by length in runs of ``batch_size``, each batch padded to the first bucket that holds it.

  Raises:
    ValueError: ``batch_size`` is not an integer >= 1.
  """
  batch_size = check_batch_size(batch_size)
  order = sorted(range(len(lengths)), key=lambda i: lengths[i])
  runs = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
  return [(ids, batch_decoder.bucket_for(max(lengths[i] for i in ids), buckets)) for ids in runs]


def evaluate(model, params, split, tok, *, batch_size: int = 16, buckets=batch_decoder.BUCKETS,
             decoder: str = "greedy", decoder_options=None, limit: int = 0,
             front_end: FrontEnd | None = None) -> dict:
  """Decodes ``split`` (examples with ``audio``/``text``) and scores it.

  Examples are decoded in batches of similar length (`batch_plan`: sorted by audio length,
  each batch padded to the first of ``buckets`` that holds it), and every result is
  returned in split order. ``front_end`` carries the feature normalisation the model
  was trained with (default: per-utterance CMVN).

  Args:
    model: a `asrjax.models.transducer.Transducer`.
    params: its parameters.
    split: random-access examples (``len`` and ``split[i]``), each a dict with
      ``audio`` (``[N]`` samples at 16 kHz), ``text`` (the reference, str or bytes)
      and any `GROUP_FIELDS`.
    tok: tokenizer with ``decode(ids) -> str``.
    batch_size: utterances per decoded batch, >= 1.
    buckets: audio lengths (samples) batches are padded to (fewer compilations).
    decoder: a name in `asrjax.decoding.DECODERS`.
    decoder_options: keyword options of that decoder.
    limit: decode only the first ``limit`` examples of the split; 0 = all.
    front_end: the model's `asrjax.frontend.featurize.FrontEnd`.

  Returns:
    ``{"wer", "total": ErrorCounts, "errors": {group_field: {value: ErrorCounts}}, "rtf",
    "hypotheses", "references", "utterance_errors": [ErrorCounts], "speakers"}``, the last four in
    split order (each utterance is aligned once; every total is summed from them;
    ``speakers``: each example's ``speaker_id``, or its own label without one). ``wer`` is NaN when
    the references hold no words (`ErrorCounts.wer`); an example without a group
    field that others have is labelled `MISSING` in that field. ``rtf`` is decode
    wall time / audio duration on this host.

  Raises:
    ValueError: naming the argument: ``limit`` < 0, ``batch_size`` < 1, an unknown
      decoder or option, an empty split (nothing to score), a split that declares
      another sample rate than 16 kHz, or an example without ``audio`` or ``text``.
  """
  limit = check_limit(limit)
  check_batch_size(batch_size)
  options = check_decoder_options(decoder, decoder_options)
  audio_lib.check_sample_rate(catalog.sample_rate_of(split), name="evaluate: split")
  n = len(split) if not limit else min(limit, len(split))
  if n == 0:
    raise ValueError("split holds no utterances: there is nothing to evaluate (an empty result has no WER).")
  lengths = [len(_record(split, i)["audio"]) for i in range(n)]
  decode = batch_decoder.BatchDecoder(model, params, decoder=decoder, decoder_options=options,
                                      front_end=front_end or FrontEnd())
  refs, hyps, meta, speakers, audio_seconds, start = [None] * n, [None] * n, [None] * n, [None] * n, 0.0, time.time()
  for ids, bucket in batch_plan(lengths, batch_size, buckets):
    exs = [_record(split, i) for i in ids]
    out = decode([e["audio"] for e in exs], bucket)
    for i, e, o in zip(ids, exs, out):
      refs[i] = catalog.as_text(e["text"])
      hyps[i] = tok.decode(o[0][0]) if o else ""
      meta[i] = example_groups(e)
      speakers[i] = catalog.as_text(e["speaker_id"]) if "speaker_id" in e else f"utterance-{i}"
      audio_seconds += lengths[i] / 16_000
  elapsed = time.time() - start
  fields = list(dict.fromkeys(f for m in meta for f in m))  # every field any example has, first-seen order
  per_utterance = wer.utterance_errors(refs, hyps)  # each utterance aligned once, every grouping summed from it
  errors = {f: wer.group_counts(per_utterance, [m.get(f, MISSING) for m in meta]) for f in fields}
  total = sum(per_utterance, wer.ErrorCounts())
  return {"wer": total.wer, "total": total, "errors": errors, "rtf": elapsed / max(audio_seconds, 1e-9),
          "hypotheses": hyps, "references": refs, "utterance_errors": per_utterance, "speakers": speakers}


def rate(counts: wer.ErrorCounts) -> float | None:
  """``counts.wer`` for JSON: None (``null``) instead of NaN when there are no reference words."""
  return None if math.isnan(counts.wer) else counts.wer


BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_KEY = 0  # fixed: an interval is a function of the hypotheses alone


def speaker_interval(ev: dict, level: float = 0.95) -> list:
  """``[low, high]`` (None for NaN): the speaker-bootstrap interval of `evaluate`'s corpus WER."""
  draws = wer.bootstrap_wers(ev["utterance_errors"], ev["speakers"], BOOTSTRAP_KEY, BOOTSTRAP_DRAWS)
  return [None if math.isnan(x) else x for x in wer.percentile_interval(draws, level)]


def per_group_rates(errors: dict) -> dict:
  """``{field: {value: WER or None}}`` of `evaluate`'s ``errors``, for JSON (see `rate`)."""
  return {field: {k: rate(v) for k, v in counts.items()} for field, counts in errors.items()}


# --------------------------------------------------------------------------- evaluation JSON files


def read_eval_json(path: str, *, dataset: str, split: str | None = None) -> tuple[dict, str]:
  """An evaluation JSON written by `experiments/evaluate.py`, checked, and the split it was decoded from.

  Args:
    path: the JSON file.
    dataset: the dataset the caller's config names; the JSON must record the same.
    split: the split the caller expects (None: the one the JSON records).

  Returns:
    ``(record, split_name)``.

  Raises:
    ValueError: naming ``path``: unreadable or not JSON, without references and
      hypotheses (lists of str of one length), with no utterances, or decoded from
      another dataset or split (or recording no split when ``split`` is None).
  """
  try:
    with open(path) as f:
      ev = json.load(f)
  except OSError as e:
    raise ValueError(f"eval_json {path} cannot be read: {e.strerror or e}.") from None
  except json.JSONDecodeError as e:
    raise ValueError(f"eval_json {path} is not valid JSON ({e}); expected a file written by "
                     "experiments/evaluate.py.") from None
  if not isinstance(ev, dict) or not all(isinstance(ev.get(k), list) for k in ("references", "hypotheses")):
    raise ValueError(f"eval_json {path} has no 'references' and 'hypotheses' lists; expected a file written by "
                     "experiments/evaluate.py.")
  refs, hyps = ev["references"], ev["hypotheses"]
  if not all(isinstance(x, str) for x in refs + hyps):
    raise ValueError(f"eval_json {path}: 'references' and 'hypotheses' must hold strings.")
  if len(refs) != len(hyps):
    raise ValueError(f"eval_json {path} has {len(refs)} references but {len(hyps)} hypotheses.")
  for key, expected in (("dataset", dataset), ("split", split)):
    if expected is not None and ev.get(key, expected) != expected:
      raise ValueError(f"eval_json {path} was decoded from {key} {ev[key]!r}, not {expected!r}.")
  split_name = split or ev.get("split")
  if split_name is None:
    raise ValueError(f"eval_json {path} does not record its split (written before evaluate.py did): pass --split.")
  if not refs:
    raise ValueError(f"eval_json {path} holds no decoded utterances.")
  return ev, split_name


def check_references(references, split, path: str, split_name: str) -> None:
  """Raises `ValueError` unless ``references`` are the transcripts of the first examples of ``split``
  (so metadata read from ``split`` belongs to them)."""
  if len(references) > len(split):
    raise ValueError(f"eval_json {path} has {len(references)} utterances; {split_name} has {len(split)}.")
  for i, ref in enumerate(references):
    text = catalog.as_text(_record(split, i)["text"])
    if text != ref:
      raise ValueError(f"eval_json {path} was not decoded from {split_name}: reference {i} is {ref!r}, the "
                       f"split's transcript {text!r}.")
