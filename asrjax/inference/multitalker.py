"""Decode two-talker mixtures channel by channel and score them: ORC / cp / tcpWER, turn timing, overlap bins.

The one decoding path (`asrjax.inference.batch_decoder.BatchDecoder`) decodes every
channel of a batch of mixtures; `hypothesis_turns` cuts each channel's labels into turns at
its ``<sot>`` / ``<eot>`` tokens (`asrjax.data.tokenizer.TurnTokenizer.split_turns`), a
turn's start the emission time of its ``<sot>`` and its end that of its ``<eot>`` (or of its
last token, unclosed). A label emitted at encoder frame ``t`` is given the time ``(t + 1) *
frame_seconds``: the end of that frame, the earliest moment a streaming model could say
it, so a model ending a turn at the frame holding the reference end has an end-of-turn
latency in ``[0, frame_seconds)``. A model without turn tokens (a single-speaker
transducer decoding the mixture: the naive baseline) gives each channel one turn, from
its first to its last label. `evaluate_mixtures` scores them with
`asrjax.metrics.multitalker.evaluate`.

References:
  Sklyar et al., "Separator-transducer-segmenter: streaming recognition and segmentation
  of multi-party speech", Interspeech 2022 (emission-latency metrics).
"""

from __future__ import annotations

import time

import numpy as np

from asrjax.data import audio as audio_lib, catalog, multitalker as mix_data
from asrjax.data.tokenizer import TurnTokenizer
from asrjax.frontend.featurize import FrontEnd
from asrjax.inference import batch_decoder, evaluation
from asrjax.metrics import multitalker as metrics


def hypothesis_turns(tok, labels, frames, frame_seconds: float, channel: str) -> list[metrics.Turn]:
  """One channel's `Turn` s from its labels and their emission frames (module docstring)."""
  t_of = lambda i: (int(frames[i]) + 1) * float(frame_seconds)
  if not labels:
    return []
  if not isinstance(tok, TurnTokenizer):
    return [metrics.Turn(channel, " ".join(tok.decode(labels).split()), t_of(0), t_of(len(labels) - 1), closed=False)]
  out = []
  for text, start, end in tok.split_turns(labels):
    if end is None:  # unclosed: ends at its last token (<sot> + text, or text alone when no <sot> opened it)
      end_index = start + len(text) - (labels[start] != tok.sot_id) if text else start
    else:
      end_index = end
    out.append(metrics.Turn(channel, " ".join(tok.base.decode(text).split()), t_of(start), t_of(end_index),
                            closed=end is not None))
  return out


def reference_turns(example) -> list[metrics.Turn]:
  """A mixture example's reference `Turn` s (`asrjax.data.multitalker.turns_of`)."""
  return [metrics.Turn(t.speaker, " ".join(t.text.split()), t.start, t.end) for t in mix_data.turns_of(example)]


def evaluate_mixtures(model, params, split, tok, *, batch_size: int = 16, buckets=batch_decoder.BUCKETS,
                      decoder: str = "greedy", decoder_options=None, limit: int = 0,
                      front_end: FrontEnd | None = None, collar: float = 5.0) -> dict:
  """Decodes the mixtures of ``split`` (``audio``, ``turns``, ``overlap``) with ``model`` (a
  multi-channel transducer, or a single-channel one) and scores them.

  Returns:
    ``{"metrics": asrjax.metrics.multitalker.evaluate(...), "channel_wer", "rtf",
    "sessions": {id: {"reference": [turn dicts], "hypothesis": [turn dicts]}}}``.

  Raises:
    ValueError: naming the argument: a bad ``limit`` / ``batch_size`` / decoder option, an
      empty split, another sample rate than 16 kHz, or an example without ``audio`` or
      ``turns``.
  """
  limit = evaluation.check_limit(limit)
  evaluation.check_batch_size(batch_size)
  options = evaluation.check_decoder_options(decoder, decoder_options)
  audio_lib.check_sample_rate(catalog.sample_rate_of(split), name="evaluate_mixtures: split")
  n = len(split) if not limit else min(limit, len(split))
  if n == 0:
    raise ValueError("split holds no mixtures: there is nothing to evaluate.")
  decode = batch_decoder.BatchDecoder(model, params, decoder=decoder, decoder_options=options,
                                      front_end=front_end or FrontEnd())
  seconds = float(decode.frame_seconds)
  examples = {}
  for i in range(n):
    ex = split[i]
    if "audio" not in ex or "turns" not in ex:
      raise ValueError(f"split[{i}] is not a mixture: it needs 'audio' and 'turns'; it has {sorted(ex)}.")
    examples[i] = ex
  lengths = [len(examples[i]["audio"]) for i in range(n)]
  sessions, overlaps, kept, audio_seconds, start = {}, {}, {}, 0.0, time.time()
  for ids, bucket in evaluation.batch_plan(lengths, batch_size, buckets):
    out = decode.decode_channels_timed([examples[i]["audio"] for i in ids], bucket)
    for i, channels in zip(ids, out):
      ex = examples[i]
      sid = catalog.as_text(ex.get("id", f"mixture-{i}"))
      hyp = [t for c, (labels, _, frames) in enumerate(channels)
             for t in hypothesis_turns(tok, labels, frames, seconds, str(c))]
      ref = reference_turns(ex)
      sessions[sid] = (ref, hyp)
      overlaps[sid] = float(ex.get("overlap", np.nan))
      audio_seconds += lengths[i] / 16_000
  elapsed = time.time() - start
  has_overlap = all(np.isfinite(v) for v in overlaps.values())
  scores = metrics.evaluate(sessions, overlaps=overlaps if has_overlap else None, collar=collar)
  as_dicts = lambda turns: [dict(speaker=t.speaker, words=t.words, start=t.start, end=t.end, closed=t.closed)
                            for t in turns]
  kept = {sid: {"reference": as_dicts(r), "hypothesis": as_dicts(h)} for sid, (r, h) in sessions.items()}
  return {"metrics": {k: v for k, v in scores.items() if k != "sessions"}, "channel_wer": metrics.channel_wers(sessions),
          "rtf": elapsed / max(audio_seconds, 1e-9), "sessions": kept}


def draw_session(path: str, session: dict, *, title: str = "") -> None:
  """A PNG of one decoded mixture: the reference turns (one row per speaker) and each
  channel's hypothesis turns (one row per channel) on a time axis, each bar labelled with
  its words; ``<sot>`` / ``<eot>`` emissions as ticks (``session``: ``{"reference",
  "hypothesis"}`` turn dicts, as `evaluate_mixtures` keeps them)."""
  import matplotlib  # noqa: PLC0415 -- plotting only when asked for

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  rows = [("ref " + t["speaker"], t, "tab:blue") for t in session["reference"]]
  rows += [("channel " + t["speaker"], t, "tab:orange") for t in session["hypothesis"]]
  names = list(dict.fromkeys(name for name, _, _ in rows))
  fig, ax = plt.subplots(figsize=(11, 1.0 + 0.7 * len(names)), dpi=120)
  for name, t, colour in rows:
    y = names.index(name)
    ax.barh(y, max(t["end"] - t["start"], 0.02), left=t["start"], height=0.5, color=colour, alpha=0.35)
    ax.text(t["start"], y, " " + t["words"][:60], va="center", fontsize=7)
    if name.startswith("channel"):
      ax.plot([t["start"]], [y + 0.3], marker="v", color="green", ms=5)  # <sot>
      if t.get("closed", True):
        ax.plot([t["end"]], [y + 0.3], marker="v", color="red", ms=5)  # <eot>
  ax.set_yticks(range(len(names)), names)
  ax.invert_yaxis()
  ax.set_xlabel("seconds (hypothesis: emission times; green <sot>, red <eot>)")
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


__all__ = ["draw_session", "evaluate_mixtures", "hypothesis_turns", "reference_turns"]
