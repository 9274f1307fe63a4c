"""Multi-talker recognition metrics: cpWER, ORC-WER and tcpWER (meeteval), turn timing and turn counting.

A session (one mixture) has reference `Turn`\\ s -- speaker, words, start and end time --
and hypothesis turns: what a multi-channel model emitted, each turn on an output
*channel* (its ``speaker`` field), opened by ``<sot>`` and closed by ``<eot>`` (``closed``
False when the model never emitted the ``<eot>``; ``end`` is then its last token's time).

Word error rates are meeteval's, not a home-made version (NeMo's own cpWER had to be
corrected to match meeteval, NVIDIA NeMo PR #15573):

* **cpWER** -- concatenated minimum-permutation WER: each reference speaker's words
  against one output channel's, under the best speaker-to-channel permutation;
* **ORC-WER** -- optimal reference combination: each reference *turn* goes to the
  channel that minimises the total errors (the metric of multi-channel models such as
  SURT, whose channels are not speakers);
* **tcpWER** -- cpWER in which a word only matches a word within ``collar`` seconds
  (meeteval's pseudo word timing: character-based inside a turn).

Turn timing: each reference turn is matched to a hypothesis turn through the ORC
assignment -- the k-th reference turn (by start time) that ORC routes to a channel is
matched with the k-th hypothesis turn (by start time) of that channel; reference turns
with no such hypothesis turn are **missed**. For matched turns, the start-of-turn latency
is ``hyp.start - ref.start`` and the end-of-turn latency ``hyp.end - ref.end`` (seconds,
over closed turns only), each summarised by its mean, P50 and P90; the **early-cutoff
rate** is the share of closed matched turns whose ``<eot>`` came before the reference end
(latency < 0). **Turn-counting accuracy** is the share of sessions whose hypothesis has as
many turns as the reference (Sklyar et al.). Sessions are binned by overlap as SURT's
LibriCSS tables (0L / 0S / OVxx, `overlap_bin`).

References:
  von Neumann et al., "MeetEval: A toolkit for computation of word error rates for
  meeting transcription systems", CHiME 2023 workshop (cpWER, ORC-WER, tcpWER);
  Sklyar et al., "Separator-transducer-segmenter: streaming recognition and segmentation
  of multi-party speech", Interspeech 2022; Raj et al., "Continuous streaming multi-talker
  ASR with dual-path transducers" / icefall SURT (LibriCSS overlap bins).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Turn:
  """One turn: ``speaker`` (reference speaker or hypothesis channel), ``words`` (space
  separated), ``start`` / ``end`` in seconds, ``closed`` (an ``<eot>`` ended it)."""

  speaker: str
  words: str
  start: float
  end: float
  closed: bool = True

  def __post_init__(self):
    if not isinstance(self.words, str):
      raise TypeError(f"Turn.words must be a string; got {type(self.words).__name__}.")
    if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end < self.start:
      raise ValueError(f"a turn needs finite start <= end; got start={self.start}, end={self.end}.")


def _seglst(turns, session: str):
  import meeteval  # noqa: PLC0415 -- meeteval only where multi-talker metrics are computed

  return meeteval.io.SegLST([{"session_id": session, "speaker": str(t.speaker), "words": t.words,
                              "start_time": float(t.start), "end_time": float(t.end)} for t in turns])


def _by_start(turns):
  return sorted(turns, key=lambda t: (t.start, t.end))


def _check_sessions(sessions: dict) -> None:
  if not sessions:
    raise ValueError("no sessions to score.")
  for sid, (ref, hyp) in sessions.items():
    if not ref:
      raise ValueError(f"session {sid!r} has no reference turns.")
    for t in (*ref, *hyp):
      if not isinstance(t, Turn):
        raise TypeError(f"session {sid!r}: turns must be asrjax.metrics.multitalker.Turn; got {type(t).__name__}.")


def _rate(r) -> dict:
  return {"error_rate": float(r.error_rate) if r.length else float("nan"), "errors": int(r.errors),
          "length": int(r.length), "substitutions": int(r.substitutions), "deletions": int(r.deletions),
          "insertions": int(r.insertions)}


def session_wers(sessions: dict, *, collar: float = 5.0) -> dict:
  """``{session: {"cpwer", "orcwer", "tcpwer": rate, "orc_assignment": tuple}}`` for
  ``sessions = {id: (reference turns, hypothesis turns)}`` (a rate: ``error_rate``,
  ``errors``, ``length``, substitutions, deletions, insertions); the ORC assignment lists
  each reference turn's channel in start order.

  Raises:
    ValueError: no sessions, a session without reference turns, or ``collar`` < 0.
  """
  from meeteval.wer import api  # noqa: PLC0415

  _check_sessions(sessions)
  if not collar >= 0:
    raise ValueError(f"collar must be >= 0 seconds; got {collar}.")
  out = {}
  for sid, (ref, hyp) in sessions.items():
    r, h = _seglst(_by_start(ref), sid), _seglst(_by_start(hyp), sid)
    orc = api.orcwer(r, h)[sid]
    out[sid] = {"cpwer": _rate(api.cpwer(r, h)[sid]), "orcwer": _rate(orc),
                "tcpwer": _rate(api.tcpwer(r, h, collar=collar)[sid]),
                "orc_assignment": tuple(str(c) for c in orc.assignment)}
  return out


def _combine(rates) -> dict:
  total = {k: sum(r[k] for r in rates) for k in ("errors", "length", "substitutions", "deletions", "insertions")}
  total["error_rate"] = total["errors"] / total["length"] if total["length"] else float("nan")
  return total


def _summary(values) -> dict:
  v = np.asarray(values, np.float64)
  if v.size == 0:
    return {"mean": None, "p50": None, "p90": None, "count": 0}
  return {"mean": float(np.mean(v)), "p50": float(np.percentile(v, 50)), "p90": float(np.percentile(v, 90)),
          "count": int(v.size)}


def match_turns(ref, hyp, assignment) -> list:
  """``[(ref turn, hyp turn or None)]``: reference turns (start order) routed by the ORC
  ``assignment`` (one channel per reference turn, start order) and matched with the
  channel's hypothesis turns in start order (see the module docstring).

  Raises:
    ValueError: the assignment's length is not the number of reference turns.
  """
  ref = _by_start(ref)
  if len(assignment) != len(ref):
    raise ValueError(f"the assignment names {len(assignment)} channels for {len(ref)} reference turns.")
  per_channel = {}
  for t in _by_start(hyp):
    per_channel.setdefault(str(t.speaker), []).append(t)
  taken = {}
  pairs = []
  for t, channel in zip(ref, assignment):
    k = taken.get(channel, 0)
    turns = per_channel.get(channel, [])
    pairs.append((t, turns[k] if k < len(turns) else None))
    taken[channel] = k + 1
  return pairs


def turn_timing(sessions: dict, assignments: dict) -> dict:
  """Start / end-of-turn latency summaries (seconds: mean, P50, P90 over matched turns; the
  end over closed ones), the early-cutoff rate, missed and unclosed turn counts and the
  turn-counting accuracy of ``sessions``, with ``assignments = {session: ORC assignment}``
  (`session_wers`' ``orc_assignment``)."""
  _check_sessions(sessions)
  starts, ends, missed, unclosed, counted = [], [], 0, 0, 0
  for sid, (ref, hyp) in sessions.items():
    for r, h in match_turns(ref, hyp, assignments[sid]):
      if h is None:
        missed += 1
        continue
      starts.append(h.start - r.start)
      if h.closed:
        ends.append(h.end - r.end)
      else:
        unclosed += 1
    counted += len(hyp) == len(ref)
  ref_turns = sum(len(r) for r, _ in sessions.values())
  return {"sot_latency": _summary(starts), "eot_latency": _summary(ends),
          "early_cutoff_rate": float(np.mean(np.asarray(ends) < 0)) if ends else None,
          "missed_turns": missed, "unclosed_turns": unclosed, "reference_turns": ref_turns,
          "turn_counting_accuracy": counted / len(sessions)}


def overlap_bin(overlap: float, *, long_gap: float = 0.5) -> str:
  """SURT-style LibriCSS bin of a two-talker session: ``"0L"`` (no overlap, a gap of at least
  ``long_gap`` s), ``"0S"`` (no overlap, a shorter gap), else ``"OV<percent>"``; the
  corpus' ``overlap`` (`asrjax.corpus.corpus_plan.MixtureSpec`): > 0 a fraction of the
  shorter turn spoken at once, <= 0 minus the gap in seconds."""
  if not math.isfinite(overlap):
    raise ValueError(f"overlap must be finite; got {overlap}.")
  if overlap <= 0:
    return "0L" if -overlap >= long_gap else "0S"
  return f"OV{round(100 * overlap)}"


def evaluate(sessions: dict, *, overlaps: dict | None = None, collar: float = 5.0) -> dict:
  """Every figure of the module docstring, overall and per overlap bin (``overlaps =
  {session: overlap}``, `overlap_bin`): ``{"overall": {...}, "bins": {bin: {...}},
  "sessions": session_wers}``, each with ``cpwer`` / ``orcwer`` / ``tcpwer`` (rates summed
  over the sessions, errors / reference words), `turn_timing` and ``sessions`` (count)."""
  per = session_wers(sessions, collar=collar)
  if overlaps is not None:
    missing = sorted(set(sessions) - set(overlaps))
    if missing:
      raise ValueError(f"no overlap for {len(missing)} sessions, e.g. {missing[:3]}.")

  def figures(ids):
    sub = {s: sessions[s] for s in ids}
    return {**{m: _combine([per[s][m] for s in ids]) for m in ("cpwer", "orcwer", "tcpwer")},
            **turn_timing(sub, {s: per[s]["orc_assignment"] for s in ids}), "sessions": len(ids)}

  bins = {}
  for s in sessions:
    if overlaps is not None:
      bins.setdefault(overlap_bin(float(overlaps[s])), []).append(s)
  order = lambda b: (b != "0L", b != "0S", int(b[2:]) if b.startswith("OV") else 0)
  return {"overall": figures(list(sessions)), "bins": {b: figures(bins[b]) for b in sorted(bins, key=order)},
          "sessions": per}


def session_interval(per_session: dict, metric: str = "orcwer", *, draws: int = 1000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float]:
  """The ``level`` bootstrap interval of ``metric``'s rate (total errors / total reference
  words) over sessions drawn with replacement (`session_wers`' output; seeded)."""
  from asrjax.metrics import wer  # noqa: PLC0415

  if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
    raise ValueError(f"draws must be an integer >= 1; got {draws!r}.")
  errors = np.array([r[metric]["errors"] for r in per_session.values()], np.float64)
  length = np.array([r[metric]["length"] for r in per_session.values()], np.float64)
  if length.sum() == 0:
    raise ValueError("the sessions hold no reference words.")
  rng = np.random.default_rng(seed)
  picks = rng.integers(0, len(errors), size=(draws, len(errors)))
  with np.errstate(invalid="ignore", divide="ignore"):
    rates = errors[picks].sum(axis=1) / length[picks].sum(axis=1)
  return wer.percentile_interval(rates, level)


def channel_wers(sessions: dict) -> dict:
  """``{channel: rate}``: each output channel's words (all sessions) against the words of the
  reference speaker cpWER's permutation gives it in each session (`asrjax.metrics.wer`; a
  channel given no speaker counts its words as insertions)."""
  from meeteval.wer import api  # noqa: PLC0415

  from asrjax.metrics import wer  # noqa: PLC0415

  _check_sessions(sessions)
  words = lambda turns, who: " ".join(t.words for t in _by_start(turns) if str(t.speaker) == who)
  out = {}
  for sid, (ref, hyp) in sessions.items():
    cp = api.cpwer(_seglst(_by_start(ref), sid), _seglst(_by_start(hyp), sid))[sid]
    for ref_speaker, channel in cp.assignment:
      if channel is None:
        continue
      c = wer.word_errors(words(ref, ref_speaker) if ref_speaker is not None else "", words(hyp, channel))
      out.setdefault(str(channel), []).append(
          {"errors": c.substitutions + c.deletions + c.insertions, "length": c.reference_words,
           "substitutions": c.substitutions, "deletions": c.deletions, "insertions": c.insertions})
  return {c: _combine(rates) for c, rates in sorted(out.items())}


__all__ = ["Turn", "channel_wers", "evaluate", "match_turns", "overlap_bin", "session_interval", "session_wers",
           "turn_timing"]
