"""The one evaluation path: decode a split, score WER overall and per metadata group, time it."""

from __future__ import annotations

import time

import jax

from asrjax import decoding
from asrjax.data import catalog, conditions, pipeline
from asrjax.metrics import wer
from asrjax.models import transducer
from asrjax.train import step as step_lib

# metadata fields WER is broken down by, where a corpus has them: speaker attributes
# (with the espeak voice variant), then recording conditions (the espeak corpus' noise
# type and SNR, telephone-band limiting) and the sentence kind (read / assistant)
GROUP_FIELDS = ("accent", "gender", "region", "age_band", "difficulty", "variant", "noise", "snr_db",
                "band_limited", "kind")


def example_groups(example) -> dict:
  """``{field: label}`` of an example for the `GROUP_FIELDS` it has, plus ``"condition"``
  (`asrjax.data.conditions.recording_condition`) when it has the fields that needs."""
  groups = {f: catalog.as_text(example[f]) for f in GROUP_FIELDS if f in example}
  if all(f in example for f in conditions.FIELDS):
    groups["condition"] = conditions.recording_condition(example)
  return groups


def evaluate(model, params, split, tok, *, batch_size: int = 16, buckets=(32_000, 64_000, 96_000, 160_000, 320_000),
             decoder: str = "greedy", decoder_options=None, limit: int = 0,
             step_config: step_lib.StepConfig | None = None) -> dict:
  """Decodes ``split`` (examples with ``audio``/``text``) and scores it.

  ``step_config`` carries the feature normalisation the model was trained with
  (default: per-utterance CMVN).

  Returns:
    ``{"wer", "errors": {group_field: {value: ErrorCounts}}, "rtf", "hypotheses", "references"}``;
    ``rtf`` is decode wall time / audio duration on this host.
  """
  fns = transducer.decoder_fns(model)
  decode = decoding.DECODERS[decoder]
  encode_fn = jax.jit(lambda p, f, pad: model.apply(p, f, pad, method=transducer.Transducer.encode)[:2])
  step_config = step_config or step_lib.StepConfig()
  featurize = jax.jit(lambda b: step_lib.featurize(b, jax.random.key(0), step_config, train=False))
  n = len(split) if not limit else min(limit, len(split))
  order = sorted(range(n), key=lambda i: len(split[i]["audio"]))
  refs, hyps, meta, audio_seconds, start = {}, {}, {}, 0.0, time.time()
  for s in range(0, n, batch_size):
    ids = order[s : s + batch_size]
    exs = [split[i] for i in ids]
    longest = max(len(e["audio"]) for e in exs)
    bucket = next((b for b in buckets if b >= longest), longest)
    batch = pipeline.pad_batch(exs, lambda t: [], bucket, 1)
    feats, pads = featurize({"audio": batch["audio"], "audio_paddings": batch["audio_paddings"]})
    enc, enc_pads = encode_fn(params, feats, pads)
    out = decode(fns, params, enc, enc_pads, **(decoder_options or {})).to_lists()
    for i, e, o in zip(ids, exs, out):
      refs[i] = catalog.as_text(e["text"])
      hyps[i] = tok.decode(o[0][0]) if o else ""
      meta[i] = example_groups(e)
      audio_seconds += len(e["audio"]) / 16_000
  elapsed = time.time() - start
  keys = sorted(refs)
  r, h = [refs[k] for k in keys], [hyps[k] for k in keys]
  errors = {}
  for field in meta[keys[0]] if keys else ():
    errors[field] = wer.grouped_errors(r, h, [meta[k][field] for k in keys])
  total = wer.corpus_errors(r, h)
  return {"wer": total.wer, "total": total, "errors": errors, "rtf": elapsed / max(audio_seconds, 1e-9),
          "hypotheses": h, "references": r}
