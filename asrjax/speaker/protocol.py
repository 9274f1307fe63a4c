"""A verification protocol for a corpus that ships none: held-out speakers, a seeded trial list, speaker metadata.

The embedded corpus carries its own trials (``metadata["sv_trials"]`` of its test split,
balanced per gender and accent) and each speaker's gender and accent in every example.
TFDS VoxCeleb (``voxceleb``: the identification release, utterances of all 1,251
speakers in each of its three splits) carries no trial list and no gender or
nationality. `open_sv_split` builds what is missing, the same way for any such corpus:

- splits may be joined with ``+`` (``"train+validation+test"``: every utterance);
- the **test speakers** (VoxCeleb1-O's: ``id10270-id10309``) are held out: the training
  view has every other speaker, the evaluation view only them, so no test speaker is
  seen in training (the speaker-disjoint protocol of VoxCeleb1-O);
- a **trial list** over the held-out speakers' utterances (`make_trials`): each utterance
  enrols against ``targets`` utterances of its own speaker, from other sessions (YouTube
  videos) where the speaker has any, and ``nontargets`` utterances of other speakers,
  drawn from a seeded generator (``protocol_seed``), unordered pairs counted once;
- **speaker metadata** from a CSV (`read_speaker_metadata`: VoxCeleb's ``vox1_meta.csv``
  as distributed, tab-separated, or ``speaker_id,gender,accent``): gender, and
  nationality as the ``accent`` group, attached to every example of that speaker, so the
  one evaluation path reports EER per gender and per nationality.

A user with TFDS VoxCeleb prepared (array_record) and ``vox1_meta.csv`` runs
``experiments/configs/sv_ecapa.py:voxceleb`` (see there).

References:
  Nagrani et al., "VoxCeleb: a large-scale speaker identification dataset", Interspeech
  2017 (the verification split: 40 test speakers id10270-id10309, target pairs across
  videos); Jin et al., "Adversarial reweighting for speaker verification fairness",
  Interspeech 2022 (EER per gender and nationality on VoxCeleb).
"""

from __future__ import annotations

import csv
import json
import os
import re
from typing import Sequence

import numpy as np

from asrjax import atomic_file
from asrjax.data import catalog

TRIAL_COLUMNS = ["enrol", "test", "target"]
_SPEAKER_COLUMNS = ("VoxCeleb1 ID", "VoxCeleb2 ID", "speaker_id", "speaker")
_GENDER_COLUMNS = ("Gender", "gender")
_ACCENT_COLUMNS = ("Nationality", "nationality", "accent", "region")
_GENDERS = {"m": "male", "male": "male", "f": "female", "female": "female"}


def parse_speakers(spec) -> tuple[str, ...]:
  """Speaker names from ``"id10270-id10309"`` (an inclusive range of names that share a prefix
  and a digit width) or ``"a,b,c"`` (or a sequence of names).

  Raises:
    ValueError: empty, or a range whose ends differ in prefix or width or run backwards.
  """
  if not isinstance(spec, str):
    names = tuple(str(s) for s in spec)
  elif re.fullmatch(r"\s*[^,\s-]+\d+\s*-\s*[^,\s-]+\d+\s*", spec):
    lo, hi = (s.strip() for s in spec.split("-"))
    (p1, d1), (p2, d2) = (re.fullmatch(r"(.*?)(\d+)", s).groups() for s in (lo, hi))
    if p1 != p2 or len(d1) != len(d2) or int(d2) < int(d1):
      raise ValueError(f"speaker range {spec!r}: both ends need the same prefix and digit width, low end first "
                       "(e.g. 'id10270-id10309').")
    names = tuple(f"{p1}{n:0{len(d1)}d}" for n in range(int(d1), int(d2) + 1))
  else:
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
  if not names:
    raise ValueError(f"no speakers in {spec!r}: give a range 'id10270-id10309' or names 'a,b'.")
  return names


def _column(header: list, choices: tuple, path: str, what: str) -> int:
  for c in choices:
    if c in header:
      return header.index(c)
  raise ValueError(f"{path}: no {what} column (one of {list(choices)}); its header is {header}.")


def read_speaker_metadata(path: str) -> dict[str, dict[str, str]]:
  """``{speaker: {"gender": "female"|"male", "accent": str}}`` from a metadata file.

  Reads VoxCeleb's ``vox1_meta.csv`` as distributed (tab-separated: ``VoxCeleb1 ID``,
  ``VGGFace1 ID``, ``Gender`` m/f, ``Nationality``, ``Set``; nationality becomes the
  ``accent`` group) or any comma- or tab-separated file with ``speaker_id``, ``gender``
  and an ``accent`` (or ``nationality`` / ``region``) column.

  Raises:
    FileNotFoundError: no such file.
    ValueError: a column is missing, a gender is neither m/f nor male/female, a row is
      short, or a speaker appears twice with different values.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"speaker metadata {path!r} does not exist (VoxCeleb: vox1_meta.csv from the "
                            "VoxCeleb1 site).")
  with open(path, newline="", encoding="utf-8") as f:
    text = f.read()
  lines = [ln for ln in text.splitlines() if ln.strip()]
  if not lines:
    raise ValueError(f"{path}: empty speaker metadata file.")
  delimiter = "\t" if "\t" in lines[0] else ","
  rows = [[c.strip() for c in r] for r in csv.reader(lines, delimiter=delimiter)]
  header = rows[0]
  s, g, a = (_column(header, c, path, w) for c, w in ((_SPEAKER_COLUMNS, "speaker"), (_GENDER_COLUMNS, "gender"),
                                                     (_ACCENT_COLUMNS, "accent / nationality")))
  out: dict[str, dict[str, str]] = {}
  for line, r in enumerate(rows[1:], start=2):
    if len(r) <= max(s, g, a):
      raise ValueError(f"{path} line {line}: {len(r)} fields, the header has {len(header)}.")
    gender = _GENDERS.get(r[g].lower())
    if gender is None:
      raise ValueError(f"{path} line {line}: gender {r[g]!r} is none of m, f, male, female.")
    entry = {"gender": gender, "accent": r[a]}
    if r[s] in out and out[r[s]] != entry:
      raise ValueError(f"{path} line {line}: speaker {r[s]!r} appears again with {entry}, first with {out[r[s]]}.")
    out[r[s]] = entry
  return out


def make_trials(speaker: np.ndarray, *, seed: int, targets: int, nontargets: int,
                sessions: np.ndarray | None = None) -> np.ndarray:
  """``[M, 3]`` int trials ``(enrol, test, target)`` over utterances with speakers ``speaker [N]``.

  Every utterance enrols against up to ``targets`` other utterances of its speaker (from
  another session, ``sessions [N]``, where the speaker has one; the same session only
  when it has no other) and ``nontargets`` utterances of other speakers, drawn without
  replacement from ``np.random.default_rng(seed)``. An unordered pair is kept once (its
  first draw), so M is at most ``N * (targets + nontargets)``.

  Raises:
    ValueError: fewer than two speakers, or negative counts.
  """
  speaker = np.asarray(speaker)
  if targets < 0 or nontargets < 0 or targets + nontargets == 0:
    raise ValueError(f"targets and nontargets must be >= 0, not both 0; got {targets}, {nontargets}.")
  names, spk = np.unique(speaker, return_inverse=True)
  if len(names) < 2:
    raise ValueError(f"trials need at least two speakers; got {len(names)}.")
  sess = np.zeros(len(spk), np.int64) if sessions is None else np.unique(np.asarray(sessions), return_inverse=True)[1]
  by_speaker = [np.flatnonzero(spk == k) for k in range(len(names))]
  rng = np.random.default_rng(seed)
  seen, out = set(), []

  def keep(a, b, target):
    key = (min(a, b), max(a, b))
    if key not in seen:
      seen.add(key)
      out.append((a, b, target))

  n = len(spk)
  for i in range(n):
    own = by_speaker[spk[i]]
    others = own[own != i]
    cross = others[sess[others] != sess[i]]
    pool = cross if len(cross) else others
    for j in rng.choice(pool, size=min(targets, len(pool)), replace=False) if len(pool) else ():
      keep(i, int(j), 1)
    if nontargets:
      draws = rng.choice(n - len(own), size=min(nontargets, n - len(own)), replace=False)
      not_own = np.setdiff1d(np.arange(n), own, assume_unique=True)
      for j in not_own[draws]:
        keep(i, int(j), 0)
  return np.asarray(out, np.int64).reshape(-1, 3)


class ProtocolSplit(Sequence):
  """Examples ``indices`` of ``source`` (standard fields), with per-example ``groups``
  (``{field: [len(indices)] str}``) added and, optionally, a trial list in ``metadata``."""

  def __init__(self, source, indices, *, groups: dict | None = None, trials: list | None = None,
               sample_rate: int | None = None):
    self._source, self._indices = source, np.asarray(indices, np.int64)
    self._groups = {k: list(v) for k, v in (groups or {}).items()}
    for k, v in self._groups.items():
      if len(v) != len(self._indices):
        raise ValueError(f"groups[{k!r}] has {len(v)} values for {len(self._indices)} examples.")
    self._trials, self.sample_rate = trials, sample_rate

  @property
  def metadata(self) -> dict:
    return {} if self._trials is None else {"sv_trials": self._trials, "sv_trial_columns": TRIAL_COLUMNS}

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, i: int) -> dict:
    ex = dict(self._source[int(self._indices[int(i)])])
    ex.update({k: v[int(i)] for k, v in self._groups.items()})
    return ex


class _Joined(Sequence):
  """Several random-access sources end to end; example ids become ``<split>/<id>``."""

  def __init__(self, parts: list, names: list):
    self._parts, self._names = parts, names
    self._starts = np.cumsum([0] + [len(p) for p in parts])

  def __len__(self) -> int:
    return int(self._starts[-1])

  def __getitem__(self, i: int) -> dict:
    k = int(np.searchsorted(self._starts, int(i), side="right") - 1)
    ex = dict(self._parts[k][int(i) - int(self._starts[k])])
    ex["id"] = f"{self._names[k]}/{ex['id']}" if len(self._parts) > 1 else ex["id"]
    return ex


def _index(source, cache: str | None, session_field: str) -> dict:
  """Every example's speaker name, id and session (read once; ``cache`` keeps them)."""
  if cache and os.path.exists(cache):
    with open(cache) as f:
      return json.load(f)
  speakers, ids, sessions = [], [], []
  for i in range(len(source)):
    ex = source[i]
    if "speaker_id" not in ex:
      raise ValueError(f"example {i} has no speaker label: speaker verification needs one.")
    speakers.append(catalog.as_text(ex["speaker_id"]))
    ids.append(catalog.as_text(ex["id"]))
    sessions.append(catalog.as_text(ex[session_field]) if session_field in ex else "")
  out = {"speakers": speakers, "ids": ids, "sessions": sessions}
  if cache:
    with atomic_file.open(cache) as f:
      json.dump(out, f)
  return out


def open_sv_split(config, split: str, *, role: str, cache_dir: str | None = None):
  """The split ``split`` of ``config.data`` as the SV task reads it, for ``role`` "train" or "eval".

  ``config.sv.protocol == "corpus"`` (the default): the split as built, trials from its
  metadata (the embedded corpus). ``"built"``: the corpus' standard fields, splits joined
  with ``+``, the test speakers ``config.sv.test_speakers`` held out of "train" and alone
  in "eval", the eval view's trials built by `make_trials` (``config.sv.trials_per_utterance``
  = (targets, non-targets), ``config.sv.protocol_seed``), and gender / accent from
  ``config.sv.speaker_metadata`` (empty: no groups). ``cache_dir`` keeps the one pass over
  the data that reads speakers and sessions.

  Raises:
    ValueError: unknown protocol or role, a test speaker absent from the data or from the
      metadata, or too few speakers for trials.
  """
  from asrjax.data import sources  # noqa: PLC0415 -- tensorflow_datasets only when a split is opened

  sv = config.sv
  protocol = sv.get("protocol", "corpus")
  if role not in ("train", "eval"):
    raise ValueError(f"role must be 'train' or 'eval'; got {role!r}.")
  if protocol == "corpus":
    return sources.open_split(config.data.name, split, config.data.data_dir)
  if protocol != "built":
    raise ValueError(f"sv.protocol must be 'corpus' or 'built'; got {protocol!r}.")
  names = [s.strip() for s in split.split("+")]
  opened = [sources.open_split(config.data.name, s, config.data.data_dir) for s in names]
  joined = _Joined([catalog.standardize(config.data.name, s, sample_rate=s.sample_rate) for s in opened], names)
  cache = os.path.join(cache_dir, f"protocol_{split.replace('+', '_')}.json") if cache_dir else None
  index = _index(joined, cache, sv.get("session_field", "youtube_id"))
  speakers = np.asarray(index["speakers"])
  held_out = parse_speakers(sv.test_speakers)
  absent = sorted(set(held_out) - set(speakers.tolist()))
  if role == "eval" and absent:
    raise ValueError(f"{len(absent)} test speakers are not in {config.data.name} {split}, e.g. {absent[:3]} "
                     f"(its speakers look like {sorted(set(speakers.tolist()))[:3]}).")
  is_test = np.isin(speakers, held_out)
  keep = np.flatnonzero(is_test if role == "eval" else ~is_test)
  if not len(keep):
    raise ValueError(f"no {role} utterances in {config.data.name} {split} with test speakers {sv.test_speakers!r}.")
  groups = {}
  if sv.get("speaker_metadata", ""):
    meta = read_speaker_metadata(sv.speaker_metadata)
    unknown = sorted(set(speakers[keep].tolist()) - set(meta))
    if unknown:
      raise ValueError(f"{len(unknown)} speakers have no row in {sv.speaker_metadata}, e.g. {unknown[:3]}.")
    groups = {k: [meta[s][k] for s in speakers[keep]] for k in ("gender", "accent")}
  trials = None
  if role == "eval":
    targets, nontargets = (int(x) for x in sv.get("trials_per_utterance", (4, 4)))
    rows = make_trials(speakers[keep], seed=int(sv.get("protocol_seed", 0)), targets=targets, nontargets=nontargets,
                       sessions=np.asarray(index["sessions"])[keep])
    ids = [index["ids"][k] for k in keep]
    trials = [[ids[a], ids[b], int(t)] for a, b, t in rows]
  return ProtocolSplit(joined, keep, groups=groups, trials=trials, sample_rate=opened[0].sample_rate)


__all__ = ["ProtocolSplit", "TRIAL_COLUMNS", "make_trials", "open_sv_split", "parse_speakers",
           "read_speaker_metadata"]
