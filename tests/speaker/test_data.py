"""Speaker table and P x K crop batches on a hand-built split."""

import numpy as np
import pytest

from asrjax.speaker import data


def _split():
  """12 utterances of 4 speakers; audio = a ramp starting at 1000 * index, so a crop shows where it came from."""
  out = []
  for i in range(12):
    n = 300 + 50 * i if i != 5 else 40  # utterance 5 is shorter than the crop
    out.append({"audio": (1000 * i + np.arange(n)).astype(np.int16), "speaker_id": f"s{i % 4}".encode(),
                "id": f"u{i}".encode(), "gender": b"female" if i % 2 else b"male", "band_limited": np.bool_(i > 8)})
  return out


def test_speaker_table_and_its_cache(tmp_path):
  split = _split()
  table = data.speaker_table(split, cache=str(tmp_path / "t.json"))
  assert table.speakers == ("s0", "s1", "s2", "s3")
  assert table.speaker.tolist() == [i % 4 for i in range(12)]
  assert table.num_samples[5] == 40 and table.ids[3] == "u3"
  assert table.groups["gender"][1] == "female" and table.groups["band_limited"][10] == "True"
  assert [u.tolist() for u in table.utterances_of()] == [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
  again = data.speaker_table([], cache=str(tmp_path / "t.json"))  # from the cache: the split is not read
  assert again.speakers == table.speakers and (again.speaker == table.speaker).all()


def test_crop_windows_and_padding():
  audio = np.arange(100, dtype=np.int16)
  out, pads = data.crop(audio, 30, 0.999)
  assert out.tolist() == list(range(70, 100)) and not pads.any()
  out, pads = data.crop(audio, 30, 0.0)
  assert out.tolist() == list(range(30))
  out, pads = data.crop(audio[:10], 30, 0.5)
  assert out[:10].tolist() == list(range(10)) and (out[10:] == 0).all() and pads.tolist() == [0] * 10 + [1] * 20


def test_batches_are_p_by_k_deterministic_and_split_across_hosts():
  split = _split()
  table = data.speaker_table(split)
  make = lambda **kw: data.CropBatches(split, table, speakers_per_batch=2, utterances_per_speaker=2, crop_samples=64,
                                       seed=3, **kw)
  b = make().batch_at(7)
  assert b["audio"].shape == (4, 64) and b["speaker"].tolist()[0] == b["speaker"].tolist()[1]
  assert len(set(b["speaker"].tolist())) == 2
  for row, pads, u, s in zip(b["audio"], b["audio_paddings"], b["utterance"], b["speaker"]):
    valid = row[pads == 0]  # a contiguous window of its own utterance, of the speaker named
    assert int(valid[0]) // 1000 == u and (np.diff(valid) == 1).all() and len(valid) == min(64, table.num_samples[u])
    assert table.speaker[u] == s
  np.testing.assert_array_equal(make().batch_at(7)["audio"], b["audio"])  # a pure function of (seed, step)
  it = make(step=7)
  assert it.state() == {"step": 7}
  np.testing.assert_array_equal(next(it)["audio"], b["audio"])
  assert it.state() == {"step": 8}
  halves = [make(host_index=h, host_count=2).batch_at(7) for h in (0, 1)]
  np.testing.assert_array_equal(np.concatenate([h["audio"] for h in halves]), b["audio"])
  np.testing.assert_array_equal(np.concatenate([h["speaker"] for h in halves]), b["speaker"])


@pytest.mark.parametrize("kw,match", [
    (dict(speakers_per_batch=5), "speakers_per_batch=5 but the split has 4 speakers"),
    (dict(speakers_per_batch=0), "speakers_per_batch must be an integer >= 1"),
    (dict(crop_samples=2.5), "crop_samples must be an integer"),
    (dict(speakers_per_batch=3, utterances_per_speaker=1, host_count=2), "must divide among 2 hosts"),
])
def test_bad_settings_are_refused(kw, match):
  split = _split()
  args = dict(speakers_per_batch=2, utterances_per_speaker=2, crop_samples=64, seed=0) | kw
  with pytest.raises(ValueError, match=match):
    data.CropBatches(split, data.speaker_table(split), **args)


def test_a_split_without_speakers_is_refused():
  with pytest.raises(ValueError, match="no speaker_id"):
    data.speaker_table([{"audio": np.zeros(10, np.int16)}])
