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


def _pct(x, digits=1):
  return "-" if x is None else f"{100 * x:.{digits}f}"


def _ms(summary, key):
  v = summary.get(key) if summary else None
  return "-" if v is None else f"{1000 * v:.0f}"


def _s(summary, key):
  v = summary.get(key) if summary else None
  return "-" if v is None else f"{v:+.2f}"


def report_table(records: dict) -> str:
  """The markdown table of ``records`` ``{run: evaluate_mixtures record with "orcwer_interval"}``: overall
  figures, then ORC-WER per overlap bin (SURT's tables)."""
  lines = ["| model | ORC-WER % [95% CI] | cpWER % | tcpWER % | turn counting % | EOT P50 / P90 ms | early cutoff % "
           "| missed turns | RTF |", "| --- " * 9 + "|"]
  for run, r in records.items():
    o, (lo, hi) = r["metrics"]["overall"], r["orcwer_interval"]
    lines.append(f"| {run} | {_pct(o['orcwer']['error_rate'])} [{_pct(lo)}, {_pct(hi)}] | "
                 f"{_pct(o['cpwer']['error_rate'])} | {_pct(o['tcpwer']['error_rate'])} | "
                 f"{_pct(o['turn_counting_accuracy'])} | {_ms(o['eot_latency'], 'p50')} / {_ms(o['eot_latency'], 'p90')} | "
                 f"{_pct(o['early_cutoff_rate'])} | {o['missed_turns']} of {o['reference_turns']} | {r['rtf']:.3f} |")
  bins = list(dict.fromkeys(b for r in records.values() for b in r["metrics"]["bins"]))
  lines += ["", "ORC-WER % per overlap bin (mixtures):", "",
            "| model | " + " | ".join(bins) + " |", "| --- " * (len(bins) + 1) + "|"]
  for run, r in records.items():
    cells = [f"{_pct(r['metrics']['bins'][b]['orcwer']['error_rate'])} ({r['metrics']['bins'][b]['sessions']})"
             if b in r["metrics"]["bins"] else "-" for b in bins]
    lines.append(f"| {run} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _paper_claims(full, start, nopen, full_name: str, start_name: str) -> list[str]:
  """The paper's two claims from one family of runs (any of them None: its lines are left out)."""
  out = []
  if full and start:
    d = 100 * (full["turn_counting_accuracy"] - start["turn_counting_accuracy"])
    rel = 100 * (full["orcwer"]["error_rate"] / start["orcwer"]["error_rate"] - 1)
    out.append(f"turn counting, {full_name} - {start_name}: {d:+.1f} points (paper +4.6, goal >= +4.6); ORC-WER "
               f"{rel:+.1f}% relative (paper -17%)")
  if full and nopen and full["eot_latency"]["p90"] is not None and nopen["eot_latency"]["p90"] is not None:
    p_full, p_nopen = full["eot_latency"]["p90"], nopen["eot_latency"]["p90"]
    cost = 100 * (full["orcwer"]["error_rate"] / nopen["orcwer"]["error_rate"] - 1)
    if p_full > 0 and p_nopen > 0:
      out.append(f"EOT P90 of {full_name}, with the penalty vs without: {100 * (p_full / p_nopen - 1):+.1f}% (goal "
                 f"<= -30%) at {cost:+.1f}% relative ORC-WER (goal <= +3%)")
    else:  # a ratio of latencies is meaningless once one of them is early: report both
      out.append(f"EOT P90 of {full_name} with the penalty {p_full:+.2f} s vs without {p_nopen:+.2f} s: not "
                 f"comparable as a ratio (a P90 <= 0 means 90% of turns closed early; early cutoffs "
                 f"{_pct(full['early_cutoff_rate'], 0)}% vs {_pct(nopen['early_cutoff_rate'], 0)}%), at {cost:+.1f}% "
                 "relative ORC-WER")
  return out


def claims(records: dict) -> list[str]:
  """Sklyar et al.'s claims and issue 21's goals, one line each, from ``records`` ``{run: evaluate_mixtures
  record}`` of `experiments/sts_multitalker.py`'s runs (``full``, ``start_only``, ``no_penalty``,
  ``no_fastemit``, ``two_sided``, their ``pre_`` versions, ``single-speaker``); a line whose
  runs are absent is left out."""
  out = []
  get = lambda run: records[run]["metrics"]["overall"] if run in records else None
  for pre in ("", "pre_"):  # from scratch, and started from the single-speaker model
    full, start, nopen = get(pre + "full"), get(pre + "start_only"), get(pre + "no_penalty")
    out += _paper_claims(full, start, nopen, f"{pre}full", f"{pre}start_only")
  full = get("full")
  two = get("two_sided")
  if full and two and full["eot_latency"]["p50"] is not None and two["eot_latency"]["p50"] is not None:
    cost = 100 * (two["orcwer"]["error_rate"] / full["orcwer"]["error_rate"] - 1)
    out.append(f"two-sided penalty vs late-only: early cutoffs {_pct(two['early_cutoff_rate'])}% vs "
               f"{_pct(full['early_cutoff_rate'])}%, EOT P50 {two['eot_latency']['p50']:+.2f} s vs "
               f"{full['eot_latency']['p50']:+.2f} s, ORC-WER {cost:+.1f}% relative")
  nofe = get("no_fastemit")
  if full and nofe:
    cost = 100 * (full["orcwer"]["error_rate"] / nofe["orcwer"]["error_rate"] - 1)
    out.append(f"FastEmit, full vs no_fastemit: EOT P50 {_s(full['eot_latency'], 'p50')} vs "
               f"{_s(nofe['eot_latency'], 'p50')} s, early cutoffs {_pct(full['early_cutoff_rate'])}% vs "
               f"{_pct(nofe['early_cutoff_rate'])}%, ORC-WER {cost:+.1f}% relative")
  pre, single = get("pre_two_sided"), get("single-speaker")
  if pre and (two or single):
    parts = [f"{name} {_pct(r['orcwer']['error_rate'])}%" for name, r in (("two_sided", two), ("single-speaker", single))
             if r]
    out.append(f"two_sided started from the single-speaker ConvRNN-T (pre_two_sided): ORC-WER "
               f"{_pct(pre['orcwer']['error_rate'])}% vs {', '.join(parts)}; early cutoffs {_pct(pre['early_cutoff_rate'])}%, EOT P50 / P90 "
               f"{_s(pre['eot_latency'], 'p50')} / {_s(pre['eot_latency'], 'p90')} s, {pre['missed_turns']} of "
               f"{pre['reference_turns']} turns missed")
  if full and full["early_cutoff_rate"] is not None:
    out.append(f"early cutoffs of the full model: {100 * full['early_cutoff_rate']:.1f}% (goal <= 2%)")
  if "full" in records:
    out.append(f"RTF of the full model (greedy, batched, this host): {records['full']['rtf']:.3f} (goal < 0.1 on one "
               "core, streaming)")
  return out


__all__ = ["claims", "draw_session", "evaluate_mixtures", "hypothesis_turns", "reference_turns", "report_table"]
