"""Multi-talker mixtures as transducer targets: turns, their output channel, turn-token labels and boundaries.

A mixture example carries ``turns`` (TFDS: a dict of per-turn lists -- ``speaker_id``,
``text``, ``start``, ``end`` in seconds; a list of such dicts is accepted too). Each turn
goes to an output channel by the **first-free rule** (SURT's heuristic error assignment
training, HEAT; the turn order of Sklyar et al.'s multi-turn RNN-T): turns sorted by
start time, each to the lowest-numbered channel whose previous turn has ended, so
overlapping turns land on different channels and a channel's turns never overlap.
Each channel's target is ``<sot> words <eot>`` per turn (`asrjax.data.tokenizer.TurnTokenizer`;
``<sot> words`` in the start-only ablation), and each turn token keeps its reference
boundary -- the turn's start for ``<sot>``, its end for ``<eot>`` -- for the latency penalty
(`asrjax.losses.turn_latency`) and the turn-timing metrics.

`pad_mixture_batch` pads examples to ``audio [b, S]``, ``labels [b, C, L]`` with
``label_paddings``, ``turn_boundaries [b, C, L]`` (seconds; 0 off turn tokens) and
``turn_mask [b, C, L]`` (1 on turn tokens).

References:
  Raj et al., "Continuous streaming multi-talker ASR with dual-path transducers", ICASSP
  2022, and Lu et al., "Streaming end-to-end multi-talker speech recognition" (SURT),
  IEEE SPL 2021 (heuristic error assignment); Sklyar et al., "Streaming multi-speaker ASR
  with RNN-T", ICASSP 2021, and "Separator-transducer-segmenter", Interspeech 2022.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asrjax.data import audio as audio_lib


@dataclasses.dataclass(frozen=True)
class RefTurn:
  """A reference turn: ``speaker``, ``text``, ``start`` / ``end`` seconds."""

  speaker: str
  text: str
  start: float
  end: float


def _text(x) -> str:
  return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def turns_of(example: dict) -> list[RefTurn]:
  """The reference turns of a mixture example, in start order.

  Raises:
    ValueError: no ``turns`` field, fields of unequal length, no turn, or a turn with
      ``end < start`` or non-finite times.
  """
  if "turns" not in example:
    raise ValueError(f"a mixture example needs a 'turns' field; it has {sorted(example)}.")
  raw = example["turns"]
  if isinstance(raw, dict):
    keys = ("speaker_id", "text", "start", "end")
    missing = [k for k in keys if k not in raw]
    if missing:
      raise ValueError(f"turns lack {missing}; they have {sorted(raw)}.")
    n = {len(raw[k]) for k in keys}
    if len(n) != 1:
      raise ValueError(f"turn fields have unequal lengths {[len(raw[k]) for k in keys]}.")
    raw = [{k: raw[k][i] for k in keys} for i in range(n.pop())]
  turns = [RefTurn(_text(t["speaker_id"]), _text(t["text"]), float(t["start"]), float(t["end"])) for t in raw]
  if not turns:
    raise ValueError("a mixture example has no turns.")
  for t in turns:
    if not (np.isfinite(t.start) and np.isfinite(t.end)) or t.end < t.start:
      raise ValueError(f"turn of {t.speaker!r} has start {t.start} and end {t.end}: needs finite start <= end.")
  return sorted(turns, key=lambda t: (t.start, t.end))


def assign_channels(turns: list[RefTurn], channels: int) -> list[int]:
  """Each turn's channel by the first-free rule (module docstring); ``turns`` in start order.

  Raises:
    ValueError: more than ``channels`` turns active at one time.
  """
  if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
    raise ValueError(f"channels must be an integer >= 1; got {channels!r}.")
  busy_until = [-np.inf] * channels
  out = []
  for t in turns:
    free = [c for c in range(channels) if busy_until[c] <= t.start]
    if not free:
      raise ValueError(f"{channels + 1} turns overlap at {t.start:.2f} s (speaker {t.speaker!r}): more than "
                       f"{channels} channels are needed.")
    out.append(free[0])
    busy_until[free[0]] = t.end
  return out


def channel_targets(turns: list[RefTurn], tok, channels: int, *, end_tokens: bool = True) -> list:
  """``[(ids, boundaries, mask)] * channels``: each channel's turn-token labels, every label's
  boundary in seconds (0 off turn tokens) and 1 on turn tokens; ``tok`` a `TurnTokenizer`."""
  assignment = assign_channels(turns, channels)
  out = []
  for c in range(channels):
    ids, bounds, mask = [], [], []
    for t, a in zip(turns, assignment):
      if a != c:
        continue
      words = tok.encode(t.text)
      ids += [tok.sot_id, *words]
      bounds += [t.start] + [0.0] * len(words)
      mask += [1.0] + [0.0] * len(words)
      if end_tokens:
        ids.append(tok.eot_id)
        bounds.append(t.end)
        mask.append(1.0)
    out.append((ids, bounds, mask))
  return out


def label_count(example: dict, tok, channels: int, *, end_tokens: bool = True) -> int:
  """Labels of the example's longest channel (for `asrjax.data.pipeline.build_index`)."""
  return max(len(ids) for ids, _, _ in channel_targets(turns_of(example), tok, channels, end_tokens=end_tokens))


def pad_mixture_batch(examples: list, tok, bucket: int, max_labels: int, *, channels: int = 2,
                      end_tokens: bool = True) -> dict:
  """Pads mixtures to ``audio [b, bucket]`` and per-channel labels ``[b, C, max_labels]`` (see
  the module docstring), with ``ids`` and ``overlap`` (the corpus' overlap, NaN if absent).

  Raises:
    ValueError: naming the example, for audio the contract refuses or longer than
      ``bucket``, a channel with more than ``max_labels`` labels, or bad turns.
  """
  b = len(examples)
  audio = np.zeros((b, bucket), np.int16)
  audio_pad = np.ones((b, bucket), np.float32)
  labels = np.zeros((b, channels, max_labels), np.int32)
  label_pad = np.ones((b, channels, max_labels), np.float32)
  bounds = np.zeros((b, channels, max_labels), np.float32)
  mask = np.zeros((b, channels, max_labels), np.float32)
  for i, ex in enumerate(examples):
    name = f"example {i} (id {_text(ex.get('id', ''))!r})"
    a = audio_lib.to_int16(ex["audio"], name=name)
    if a.size > bucket:
      raise ValueError(f"pad_mixture_batch: {name} has {a.size} samples; they do not fit bucket={bucket}.")
    audio[i, : a.size] = a
    audio_pad[i, : a.size] = 0.0
    try:
      targets = channel_targets(turns_of(ex), tok, channels, end_tokens=end_tokens)
    except ValueError as e:
      raise ValueError(f"pad_mixture_batch: {name}: {e}") from None
    for c, (ids, bnd, msk) in enumerate(targets):
      if len(ids) > max_labels:
        raise ValueError(f"pad_mixture_batch: {name} has {len(ids)} labels on channel {c}; they do not fit "
                         f"max_labels={max_labels}.")
      labels[i, c, : len(ids)] = ids
      label_pad[i, c, : len(ids)] = 0.0
      bounds[i, c, : len(ids)] = bnd
      mask[i, c, : len(ids)] = msk
  return {"audio": audio, "audio_paddings": audio_pad, "labels": labels, "label_paddings": label_pad,
          "turn_boundaries": bounds, "turn_mask": mask, "ids": [_text(ex.get("id", "")) for ex in examples],
          "overlap": np.array([float(ex.get("overlap", np.nan)) for ex in examples], np.float32)}


__all__ = ["RefTurn", "assign_channels", "channel_targets", "label_count", "pad_mixture_batch", "turns_of"]
