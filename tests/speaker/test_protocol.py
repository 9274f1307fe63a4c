"""The verification protocol built for corpora without one (TFDS VoxCeleb): speakers, metadata, trials."""

import itertools

import ml_collections
import numpy as np
import pytest

from asrjax.data import catalog, sources
from asrjax.speaker import data, protocol

VOX1_META = ("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
             "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
             "id10002\tA.R._Rahman\tm\tIndia\tdev\n"
             "id10270\tEddie_Izzard\tm\tUK\ttest\n"
             "id10271\tEdie_Falco\tf\tUSA\ttest\n")


def test_tfds_voxceleb_integer_labels_are_named_back_as_voxceleb_speakers():
  # TFDS's builder stores int(name[3:]): id10270 -> 270, id11251 -> 1251
  source = [{"audio": np.zeros(4, np.int16), "label": np.int64(270), "youtube_id": b"x6uYqmx31kE"},
            {"audio": np.zeros(4, np.int16), "label": 1251, "youtube_id": b"a"}]
  std = catalog.standardize("voxceleb", source)
  assert [std[0]["speaker_id"], std[1]["speaker_id"]] == ["id10270", "id11251"]
  assert std[0]["youtube_id"] == b"x6uYqmx31kE"


def test_speaker_ranges_and_lists():
  assert protocol.parse_speakers("id10270-id10273") == ("id10270", "id10271", "id10272", "id10273")
  assert len(protocol.parse_speakers("id10270-id10309")) == 40  # VoxCeleb1-O's test speakers
  assert protocol.parse_speakers(" a, b ,c") == ("a", "b", "c")
  assert protocol.parse_speakers(["s1", 2]) == ("s1", "2")
  for bad in ("id10309-id10270", "id10270-sp10300", "id1027-id10300"):
    with pytest.raises(ValueError, match="same prefix and digit width, low end first"):
      protocol.parse_speakers(bad)
  with pytest.raises(ValueError, match="no speakers"):
    protocol.parse_speakers(" , ")


def test_vox1_meta_and_plain_csv_are_read(tmp_path):
  p = tmp_path / "vox1_meta.csv"
  p.write_text(VOX1_META)
  meta = protocol.read_speaker_metadata(str(p))
  assert meta["id10271"] == {"gender": "female", "accent": "USA"}
  assert meta["id10002"] == {"gender": "male", "accent": "India"} and len(meta) == 4
  q = tmp_path / "speakers.csv"
  q.write_text("speaker_id,gender,accent\nspk1,Female,scottish\nspk2,male,us\n")
  assert protocol.read_speaker_metadata(str(q)) == {"spk1": {"gender": "female", "accent": "scottish"},
                                                    "spk2": {"gender": "male", "accent": "us"}}


@pytest.mark.parametrize("text,match", [
    ("speaker_id,accent\ns,us\n", r"no gender column \(one of \['Gender', 'gender'\]\)"),
    ("speaker_id,gender,accent\ns,x,us\n", r"line 2: gender 'x' is none of m, f, male, female"),
    ("speaker_id,gender,accent\ns,m\n", r"line 2: 2 fields, the header has 3"),
    ("speaker_id,gender,accent\ns,m,us\ns,f,us\n", r"line 3: speaker 's' appears again"),
    ("\n\n", "empty speaker metadata file"),
])
def test_bad_metadata_files_are_refused(tmp_path, text, match):
  p = tmp_path / "m.csv"
  p.write_text(text)
  with pytest.raises(ValueError, match=match):
    protocol.read_speaker_metadata(str(p))
  with pytest.raises(FileNotFoundError, match="vox1_meta.csv"):
    protocol.read_speaker_metadata(str(tmp_path / "absent.csv"))


def _check_trials(rows, speaker, sessions, targets, nontargets):
  pairs = [tuple(sorted((a, b))) for a, b, _ in rows]
  assert len(pairs) == len(set(pairs)), "an unordered pair twice"
  for a, b, t in rows:
    assert a != b and t == int(speaker[a] == speaker[b])
  per_enrol = {i: [r for r in rows if r[0] == i] for i in range(len(speaker))}
  for i, mine in per_enrol.items():
    assert sum(1 for r in mine if r[2] == 0) <= nontargets
    assert sum(1 for r in mine if r[2] == 1) <= targets
    for _, b, t in mine:  # a target from another session whenever the speaker has one
      if t and any(speaker[j] == speaker[i] and sessions[j] != sessions[i] for j in range(len(speaker))):
        assert sessions[b] != sessions[i]


def test_trials_are_target_exactly_for_same_speaker_pairs_and_prefer_other_sessions():
  speaker = np.array(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"])
  sessions = np.array(["v1", "v1", "v2", "v2", "v3", "w", "w", "w", "w", "x1", "x2", "x1", "y"])
  rows = protocol.make_trials(speaker, seed=3, targets=2, nontargets=3, sessions=sessions)
  _check_trials(rows.tolist(), speaker, sessions, 2, 3)
  assert {r[0] for r in rows.tolist() if r[2]} >= {0, 5, 9}  # every multi-utterance speaker has targets
  assert not any(r[2] and 12 in r[:2] for r in rows.tolist())  # d has one utterance: no target pair
  # brute force over the counts: every first draw of an unordered pair is kept, so an enrolment's own
  # draws are at most targets + nontargets and the whole list at most N (targets + nontargets)
  assert len(rows) <= len(speaker) * 5
  again = protocol.make_trials(speaker, seed=3, targets=2, nontargets=3, sessions=sessions)
  other = protocol.make_trials(speaker, seed=4, targets=2, nontargets=3, sessions=sessions)
  assert np.array_equal(rows, again) and not np.array_equal(rows, other)


def test_all_target_pairs_when_targets_cover_every_other_utterance():
  speaker = np.array(["a"] * 3 + ["b"] * 3)
  rows = protocol.make_trials(speaker, seed=0, targets=5, nontargets=0)
  expected = {(i, j) for i, j in itertools.combinations(range(6), 2) if speaker[i] == speaker[j]}
  assert {tuple(sorted(r[:2])) for r in rows.tolist()} == expected and all(r[2] == 1 for r in rows.tolist())
  with pytest.raises(ValueError, match="at least two speakers"):
    protocol.make_trials(np.array(["a", "a"]), seed=0, targets=1, nontargets=1)
  with pytest.raises(ValueError, match="not both 0"):
    protocol.make_trials(speaker, seed=0, targets=0, nontargets=0)


class _FakeSplit(list):
  sample_rate = 16_000


def _vox_split(rows):
  """TFDS VoxCeleb's raw layout: integer ``label``, ``youtube_id``, ``audio``."""
  return _FakeSplit({"audio": np.full(800, k + 1, np.int16), "label": n, "youtube_id": v.encode()}
                    for k, (n, v) in enumerate(rows))


def _config(meta_path, **sv):
  c = ml_collections.ConfigDict({"data": {"name": "voxceleb", "data_dir": "unused"},
                                 "sv": dict(protocol="built", train_split="train+test", test_speakers="id10270-id10271",
                                            speaker_metadata=meta_path, trials_per_utterance=(2, 2), protocol_seed=0,
                                            session_field="youtube_id")})
  c.sv.update(sv)
  return c


@pytest.fixture
def vox(tmp_path, monkeypatch):
  splits = {"train": _vox_split([(1, "a"), (1, "b"), (2, "c"), (270, "d"), (271, "e")]),
            "test": _vox_split([(270, "f"), (271, "g"), (271, "g"), (2, "h")])}
  monkeypatch.setattr(sources, "open_split", lambda name, split, data_dir: splits[split])
  meta = tmp_path / "vox1_meta.csv"
  meta.write_text(VOX1_META)
  return str(meta)


def test_built_protocol_holds_the_test_speakers_out_of_training_and_trials_only_them(vox, tmp_path):
  config = _config(vox)
  train = protocol.open_sv_split(config, "train+test", role="train", cache_dir=str(tmp_path))
  test = protocol.open_sv_split(config, "train+test", role="eval", cache_dir=str(tmp_path))
  train_table, test_table = data.speaker_table(train), data.speaker_table(test)
  assert train_table.speakers == ("id10001", "id10002") and len(train_table.ids) == 4
  assert test_table.speakers == ("id10270", "id10271") and len(test_table.ids) == 5
  assert list(test_table.ids) == ["train/3", "train/4", "test/0", "test/1", "test/2"]
  assert test_table.groups["gender"].tolist() == ["male", "female", "male", "female", "female"]
  assert train_table.groups["accent"].tolist() == ["Ireland", "Ireland", "India", "India"]
  assert [int(test[i]["audio"][0]) for i in range(5)] == [4, 5, 1, 2, 3]  # the audio of the right examples
  trials = test.metadata["sv_trials"]
  speaker_of = dict(zip(test_table.ids, (test_table.speakers[s] for s in test_table.speaker)))
  assert trials and all(t[2] == int(speaker_of[t[0]] == speaker_of[t[1]]) for t in trials)
  assert {t[0] for t in trials} <= set(test_table.ids) and {t[1] for t in trials} <= set(test_table.ids)
  # the speaker pass is cached: a second open reads the cache, not the data
  assert (tmp_path / "protocol_train_test.json").exists()


def test_built_protocol_refuses_what_it_cannot_honour(vox, tmp_path):
  with pytest.raises(ValueError, match=r"1 test speakers are not in voxceleb train\+test, e.g. \['id10399'\]"):
    protocol.open_sv_split(_config(vox, test_speakers="id10270,id10399"), "train+test", role="eval")
  short = tmp_path / "short.csv"
  short.write_text("speaker_id,gender,accent\nid10270,m,UK\n")
  with pytest.raises(ValueError, match=r"1 speakers have no row in .*short.csv, e.g. \['id10271'\]"):
    protocol.open_sv_split(_config(str(short)), "train+test", role="eval")
  with pytest.raises(ValueError, match="sv.protocol must be 'corpus' or 'built'"):
    protocol.open_sv_split(_config(vox, protocol="voxceleb"), "train", role="eval")
  with pytest.raises(ValueError, match="role must be"):
    protocol.open_sv_split(_config(vox), "train", role="test")
  # no metadata: no groups, trials still built
  plain = protocol.open_sv_split(_config(""), "train+test", role="eval")
  assert "gender" not in plain[0] and plain.metadata["sv_trials"]


@pytest.mark.slow
def test_the_trainer_runs_the_tiny_sv_config_on_a_built_voxceleb_protocol(tmp_path, monkeypatch):
  """End to end: TFDS VoxCeleb's raw layout (integer labels, youtube ids) through the one trainer and
  the one SV evaluation path; EER reported per gender and nationality of the held-out speakers."""
  import importlib.util  # noqa: PLC0415
  import json  # noqa: PLC0415
  import os  # noqa: PLC0415

  from asrjax.train import config_check, trainer  # noqa: PLC0415

  rng = np.random.default_rng(0)
  t = np.arange(16_000) / 16_000

  def utterance(n, k):
    wave = 0.3 * np.sin(2 * np.pi * (150 + 3 * (n % 100)) * t) + 0.05 * rng.normal(size=t.shape)
    return {"audio": (wave * 32767).astype(np.int16), "label": n, "youtube_id": f"v{n}_{k % 2}".encode()}

  train_ids, test_ids = [1, 2, 3, 4, 5, 6], [270, 271, 272, 273]
  splits = {"train": _FakeSplit(utterance(n, k) for n in train_ids + test_ids for k in range(3)),
            "test": _FakeSplit(utterance(n, k) for n in test_ids for k in range(2))}
  monkeypatch.setattr(sources, "open_split", lambda name, split, data_dir: splits[split])
  meta = tmp_path / "vox1_meta.csv"
  meta.write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n" + "".join(
      f"id1{n:04d}\tx\t{'mf'[n % 2]}\t{['UK', 'USA'][n // 2 % 2]}\tdev\n" for n in train_ids + test_ids))
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  spec = importlib.util.spec_from_file_location("sv_ecapa", os.path.join(root, "experiments/configs/sv_ecapa.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config("tiny")
  config.data.name = "voxceleb"
  config.sv.update(dict(protocol="built", train_split="train+test", test_speakers="id10270-id10273",
                        speaker_metadata=str(meta), trials_per_utterance=(3, 3)))
  config.eval.splits = ("train+test",)
  config.train.num_steps = 2
  assert config_check.problems(config) == []
  workdir = tmp_path / "run"
  trainer.train_and_evaluate(config, str(workdir))
  with open(workdir / "results.json") as f:
    record = json.load(f)["train+test"]["cosine"]
  assert record["trials"] > 0 and 0.0 <= record["eer"] <= 1.0
  assert set(record["gender"]["per_group"]) == {"female", "male"}
  assert set(record["accent"]["per_group"]) == {"UK", "USA"}
  with open(workdir / "speaker_table.json") as f:  # the training speakers: the held-out four are not among them
    assert json.load(f)["speakers"] == [f"id1{n:04d}" for n in train_ids]
