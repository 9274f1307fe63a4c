"""The tiny embedded corpus, built for real: content, metadata, trials, mixtures, determinism."""

import collections
import hashlib
import os
import shutil

import numpy as np
import pytest

from asrjax.corpus import corpus_plan, espeak_corpus
from asrjax.data import sources
from asrjax.corpus import speakers as S
from asrjax.data import tokenizer as tok

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng/sox not installed (make system-deps)")

# sha256 of every example of espeak_speech/tiny and espeak_multitalker/tiny (see `_digest`),
# valid for the tool versions below (Debian bookworm espeak-ng 1.51 and sox 14.4.2).
GOLDEN = {
    "espeak_ng": "eSpeak NG text-to-speech: 1.51",
    "sox": "SoX v14.4.2",
    "digest": "14e2edf7541677d677fc81d94927c3d3ddca23e70e7bee8987b11206ead77cbb",
}


def _digest(data_dir):
  h = hashlib.sha256()
  for name, splits in (("espeak_speech/tiny", corpus_plan.ASR_SPLITS), ("espeak_multitalker/tiny", corpus_plan.MIX_SPLITS)):
    for split in splits:
      src = sources.open_split(name, split, data_dir).source
      for ex in sorted((src[i] for i in range(len(src))), key=lambda e: e["id"]):
        for key in sorted(ex):
          h.update(key.encode())
          h.update(repr(ex[key]).encode() if key != "audio" else np.asarray(ex[key]).tobytes())
  return h.hexdigest()


def _build(data_dir, workers):
  for cls in (espeak_corpus.EspeakSpeech, espeak_corpus.EspeakMultitalker):
    cls(config="tiny", data_dir=str(data_dir), num_workers=workers).download_and_prepare(file_format="array_record")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  _build(data_dir, workers=2)
  return str(data_dir)


def _all(data_dir, name, split):
  src = sources.open_split(name, split, data_dir).source
  return [src[i] for i in range(len(src))]


def _s(x):
  return x.decode() if isinstance(x, bytes) else x


def test_splits_speakers_and_metadata(tiny):
  cfg = corpus_plan.CONFIGS["tiny"]
  splits = {s: _all(tiny, "espeak_speech/tiny", s) for s in corpus_plan.ASR_SPLITS}
  assert {s: len(v) for s, v in splits.items()} == cfg.utterances
  speakers = {s: {_s(e["speaker_id"]) for e in v} for s, v in splits.items()}
  assert not (speakers["train"] & speakers["test"]) and not (speakers["train"] & speakers["dev"])
  assert len(set().union(*speakers.values())) == cfg.num_speakers
  accents = {a.voice for a in S.ACCENTS}
  for split, examples in splits.items():
    assert {_s(e["accent"]) for e in examples} == accents, split
    for e in examples:
      seconds = len(e["audio"]) / 16_000
      assert 0.5 < seconds < 20 and e["audio"].dtype == np.int16
      assert np.abs(e["audio"].astype(np.int32)).max() > 1000  # not silent
      assert -90 <= e["latitude"] <= 90 and -180 <= e["longitude"] <= 180
      assert _s(e["gender"]) in ("female", "male") and _s(e["age_band"]) in S.AGE_BANDS
      assert np.isclose(float(e["speed"]), (0.9, 1.0, 1.1)).any() and 0 <= int(e["reverb"]) <= 100
      assert float(e["snr_db"]) in (np.inf, 20.0, 15.0, 10.0, 5.0, 0.0)
      text = _s(e["text"])
      assert text and text == text.lower() and all(c.isalpha() or c in " '" for c in text)


def test_transcripts_round_trip_through_a_tokenizer_trained_on_train_text(tiny, tmp_path):
  train = [_s(e["text"]) for e in _all(tiny, "espeak_speech/tiny", "train")]
  test = [_s(e["text"]) for e in _all(tiny, "espeak_speech/tiny", "test")]
  chars = tok.CharTokenizer.build(train + test)
  sp = tok.SentencePieceTokenizer.train(train, str(tmp_path / "sp.model"), vocab_size=64, strict=False)
  for t in train + test:
    assert chars.decode(chars.encode(t)) == t
  for t in train:
    assert sp.decode(sp.encode(t)) == t


def test_speaker_verification_trials(tiny):
  builder = sources.open_split("espeak_speech/tiny", "test", tiny).builder
  trials = builder.info.metadata["sv_trials"]
  by_id = {_s(e["id"]): e for e in _all(tiny, "espeak_speech/tiny", "test")}
  per_group = collections.Counter()
  for enrol, test, target in trials:
    a, b = by_id[enrol], by_id[test]
    assert enrol != test
    assert (_s(a["speaker_id"]) == _s(b["speaker_id"])) == bool(target)
    per_group[(_s(a["gender"]), _s(a["accent"]), bool(target))] += 1
  assert any(t for *_, t in trials) and any(not t for *_, t in trials)
  non_target_counts = {v for (g, a, t), v in per_group.items() if not t}
  assert non_target_counts == {corpus_plan.CONFIGS["tiny"].trials_per_group}  # balanced


def test_multitalker_turns(tiny):
  for split in corpus_plan.MIX_SPLITS:
    mixes = _all(tiny, "espeak_multitalker/tiny", split)
    assert len(mixes) == corpus_plan.CONFIGS["tiny"].mixtures[split]
    for m in mixes:
      turns = m["turns"]
      starts, ends = np.asarray(turns["start"]), np.asarray(turns["end"])
      assert len(set(map(_s, turns["speaker_id"]))) == 2 == int(m["num_speakers"])
      assert np.all(np.diff(starts) >= 0) and np.all(ends > starts)
      assert ends.max() <= len(m["audio"]) / 16_000 + 1e-3
      first_end = ends[0]
      if float(m["overlap"]) > 0:
        assert starts[1] < first_end  # the second talker barges in
      elif float(m["overlap"]) < 0:
        assert starts[1] >= first_end


def test_build_is_deterministic_whatever_the_worker_count(tiny, tmp_path):
  other = tmp_path / "tfds1"
  _build(other, workers=1)
  digest = _digest(tiny)
  assert _digest(str(other)) == digest
  tools = espeak_corpus.tool_versions()
  if tools["espeak_ng"] == GOLDEN["espeak_ng"] and tools["sox"] == GOLDEN["sox"]:
    assert digest == GOLDEN["digest"]
  else:
    pytest.skip(f"golden digest is for {GOLDEN}, tools here are {tools}; worker-count determinism passed")


def test_missing_and_corrupt_data_give_clear_errors(tiny, tmp_path):
  with pytest.raises(sources.DatasetMissingError, match="build_corpus.py --corpus=espeak --config=small"):
    sources.open_split("espeak_speech/small", "train", str(tmp_path / "empty"))
  copy = tmp_path / "copy"
  shutil.copytree(tiny, copy)
  split = sources.open_split("espeak_speech/tiny", "dev", str(copy))
  path = split.files[0]
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  from asrjax.data.pipeline import DataError
  with pytest.raises(DataError, match=os.path.basename(path)):
    s = sources.open_split("espeak_speech/tiny", "dev", str(copy))  # may already fail here ...
    for i in range(len(s)):
      s[i]  # ... or when the missing records are read
