"""Input pipeline: determinism, resumption, fixed shapes, host sharding, and dropped examples."""

import numpy as np
import pytest

from asrjax.data import pipeline as P


def encode(text):  # a toy tokenizer: letters -> 1..26, space -> 27
  return [27 if c == " " else ord(c) - 96 for c in text]


def make_source(n=200, seed=0):
  rng = np.random.default_rng(seed)
  source = []
  for i in range(n):
    length = int(rng.integers(8_000, 60_000))
    words = " ".join("ab"[: 1 + i % 2] * int(rng.integers(1, 4)) for _ in range(int(rng.integers(1, 6))))
    source.append({"id": f"u{i}", "audio": rng.integers(-1000, 1000, size=length).astype(np.int16), "text": words})
  source[3]["audio"] = np.zeros(0, np.int16)  # empty
  source[5]["audio"] = np.ones(70_000, np.int16)  # longer than the largest bucket
  source[7]["text"] = "a" * 50  # more labels than max_labels
  return source


CONFIG = P.PipelineConfig(batch_size=8, buckets=(16_000, 32_000, 64_000), max_labels=40, sort_window=4, seed=3)


def test_batches_are_padded_to_fixed_buckets_and_match_the_examples():
  source = make_source()
  it = P.BatchIterator(source, P.build_index(source, encode), encode, CONFIG, prefetch=0)
  by_id = {ex["id"]: ex for ex in source}
  for _ in range(30):
    batch = next(it)
    assert batch["audio"].shape[1] in CONFIG.buckets and batch["labels"].shape == (8, 40)
    assert batch["audio"].shape[1] == min(b for b in CONFIG.buckets if b >= max(len(by_id[i]["audio"]) for i in batch["ids"]))
    for row, uid in enumerate(batch["ids"]):
      ex = by_id[uid]
      n = len(ex["audio"])
      assert np.array_equal(batch["audio"][row, :n], ex["audio"]) and not batch["audio"][row, n:].any()
      assert batch["audio_paddings"][row].sum() == batch["audio"].shape[1] - n
      k = int((batch["label_paddings"][row] == 0).sum())
      assert batch["labels"][row, :k].tolist() == encode(ex["text"])


def test_per_bucket_label_lengths_pick_the_first_bucket_holding_audio_and_text():
  source = make_source()
  source[11]["audio"] = source[11]["audio"][:9_000]  # short audio, long transcript: needs the largest labels
  source[11]["text"] = "ab " * 10 + "a"
  config = P.PipelineConfig(batch_size=8, buckets=(16_000, 32_000, 64_000), max_labels=(16, 24, 40), sort_window=4,
                            seed=3)
  it = P.BatchIterator(source, P.build_index(source, encode), encode, config, prefetch=0)
  by_id = {ex["id"]: ex for ex in source}
  seen_shapes = set()
  for _ in range(50):
    batch = next(it)
    longest_audio = max(len(by_id[i]["audio"]) for i in batch["ids"])
    longest_text = max(len(encode(by_id[i]["text"])) for i in batch["ids"])
    # hand-derived: first k with buckets[k] >= audio and max_labels[k] >= text
    k = min(k for k in range(3) if config.buckets[k] >= longest_audio and config.max_labels[k] >= longest_text)
    assert batch["audio"].shape[1] == config.buckets[k] and batch["labels"].shape == (8, config.max_labels[k])
    if "u11" in batch["ids"]:
      assert batch["labels"].shape[1] == 40
    seen_shapes.add(batch["labels"].shape[1])
  assert len(seen_shapes) >= 2, seen_shapes  # the per-bucket lengths are exercised


@pytest.mark.parametrize("buckets,max_labels", [((16_000, 32_000), (10, 20, 30)), ((16_000, 32_000), (20, 10))])
def test_label_lengths_must_match_the_buckets(buckets, max_labels):
  with pytest.raises(ValueError, match="max_labels"):
    P.PipelineConfig(batch_size=8, buckets=buckets, max_labels=max_labels)


def test_unusable_examples_are_dropped_and_counted():
  source = make_source()
  it = P.BatchIterator(source, P.build_index(source, encode), encode, CONFIG, prefetch=0)
  assert it.dropped == 3
  seen = {uid for _ in range(60) for uid in next(it)["ids"]}
  assert not seen & {"u3", "u5", "u7"}


@pytest.mark.parametrize("labels_per_frame", [1, 2, 3])
def test_transcripts_are_dropped_only_past_labels_per_encoder_frame(labels_per_frame):
  # 16_000 samples = 100 input frames = 12 encoder frames at subsampling 8 (12.5, floored)
  source = [{"id": f"n{n}", "audio": np.ones(16_000, np.int16), "text": "a" * n} for n in range(1, 41)]
  config = P.PipelineConfig(batch_size=1, buckets=(16_000,), max_labels=40, subsampling=8,
                            labels_per_frame=labels_per_frame)
  keep = P.usable(P.build_index(source, encode), config)
  assert keep.tolist() == [n <= 12 * labels_per_frame for n in range(1, 41)]


def test_each_epoch_uses_every_usable_example_once():
  source = make_source()
  index = P.build_index(source, encode)
  batches = P.batch_schedule(index, CONFIG, epoch=0)
  ids = np.concatenate([b for b, _ in batches])
  assert len(ids) == len(set(ids.tolist()))
  assert len(ids) == (197 // 8) * 8  # 3 dropped, remainder < one batch
  other = np.concatenate([b for b, _ in P.batch_schedule(index, CONFIG, epoch=1)])
  assert not np.array_equal(ids, other)  # reshuffled per epoch


def test_resuming_from_a_step_reproduces_the_uninterrupted_stream():
  source = make_source()
  index = P.build_index(source, encode)
  straight = P.BatchIterator(source, index, encode, CONFIG, prefetch=2)
  expected = [next(straight)["ids"] for _ in range(40)]  # crosses an epoch boundary (24 batches/epoch)
  straight.close()
  first = P.BatchIterator(source, index, encode, CONFIG, prefetch=2)
  for _ in range(17):
    next(first)
  state = first.state()
  first.close()
  resumed = P.BatchIterator(source, index, encode, CONFIG, prefetch=2)
  resumed.restore(state)
  assert [next(resumed)["ids"] for _ in range(23)] == expected[17:]
  resumed.close()


def test_hosts_split_each_global_batch():
  source = make_source()
  index = P.build_index(source, encode)
  whole = P.BatchIterator(source, index, encode, CONFIG, prefetch=0)
  hosts = [P.BatchIterator(source, index, encode, CONFIG, host_index=h, host_count=4, prefetch=0) for h in range(4)]
  for _ in range(5):
    parts = [next(h) for h in hosts]
    glob = next(whole)
    assert sum((p["ids"] for p in parts), []) == glob["ids"]
    assert len({p["audio"].shape for p in parts}) == 1  # same bucket on every host
  with pytest.raises(ValueError, match="divisible"):
    P.BatchIterator(source, index, encode, CONFIG, host_index=0, host_count=3)


def test_read_failure_names_the_files():
  source = make_source(40)

  class Corrupt(list):
    def __getitem__(self, i):
      if i == 11:
        raise OSError("checksum mismatch")
      return super().__getitem__(i)

  index = P.build_index(source, encode)
  it = P.BatchIterator(Corrupt(source), index, encode, P.PipelineConfig(batch_size=32, buckets=(80_000,)),
                       prefetch=1, files=["/data/x-train.array_record-00000-of-00001"])
  with pytest.raises(P.DataError, match="x-train.array_record-00000-of-00001"):
    next(it)


# ----------------------------------------------------------------------------
# The audio contract (asrjax.data.audio) and bad configurations
# ----------------------------------------------------------------------------


def test_float_audio_is_scaled_to_int16_not_cast():
  # hand-derived: round(32768 x), clipped to [-32768, 32767]; 1.0 is one step short of 32768
  x = np.array([0.5, -0.5, 1.0, -1.0, 1 / 32768, 0.0, 0.25 + 0.4 / 32768, 1.0005], np.float32)
  expected = [16384, -16384, 32767, -32768, 1, 0, 8192, 32767]
  for dtype in (np.float32, np.float64, np.float16):
    batch = P.pad_batch([{"id": "f", "audio": x.astype(dtype), "text": "ab"}], encode, 10, 4)
    want = expected if dtype != np.float16 else np.clip(np.round(x.astype(np.float16).astype(np.float64) * 32768),
                                                          -32768, 32767)
    assert batch["audio"][0, :8].tolist() == list(want), dtype
    assert batch["audio_paddings"][0].tolist() == [0.0] * 8 + [1.0] * 2
  # int16 -> float (the soundfile / torchaudio reading convention) -> back is exact
  rng = np.random.default_rng(0)
  pcm = rng.integers(-32768, 32768, size=5_000).astype(np.int16)
  back = P.pad_batch([{"audio": pcm.astype(np.float32) / 32768.0, "text": "a"}], encode, 5_000, 1)["audio"][0]
  np.testing.assert_array_equal(back, pcm)
  # wider integer types keep their values
  wide = P.pad_batch([{"audio": np.array([-32768, 7, 32767], np.int64), "text": "a"}], encode, 3, 1)["audio"][0]
  assert wide.tolist() == [-32768, 7, 32767]


@pytest.mark.parametrize("audio, match", [
    (np.array([0, 40_000], np.int32), r"u9.*int16 range \[-32768, 32767\].*40000"),
    (np.array([0, -32769], np.int64), r"u9.*int16 range"),
    (np.array([0.0, 300.0], np.float32), r"u9.*\[-1, 1\].*peak \|x\| = 300.*cast to int16"),
    (np.array([0.0, 1.01], np.float32), r"u9.*\[-1, 1\].*1\.01"),
    (np.array([0.0, np.nan], np.float32), r"u9.*non-finite sample \(nan\) at index 1"),
    (np.array([np.inf, 0.0], np.float64), r"u9.*non-finite sample \(inf\) at index 0"),
    (np.zeros((2, 100), np.int16), r"u9.*mono \[N\].*\(2, 100\)"),
    (np.zeros((100, 1), np.float32), r"u9.*mono \[N\].*\(100, 1\)"),
    (np.zeros(10, np.uint8), r"u9.*uint8 is ambiguous"),
    (np.zeros(10, np.int8), r"u9.*int8 is ambiguous"),
    (np.zeros(10, np.bool_), r"u9.*dtype bool"),
    (np.zeros(10, np.complex64), r"u9.*dtype complex64"),
])
def test_bad_audio_is_refused_naming_the_example(audio, match):
  ex = {"id": "u9", "audio": audio, "text": "ab"}
  with pytest.raises(ValueError, match=match):
    P.pad_batch([ex], encode, 200, 4)
  with pytest.raises(ValueError, match=match):  # before training starts, too
    P.build_index([{"id": "u0", "audio": np.zeros(5, np.int16), "text": "a"}, ex], encode)


def test_empty_audio_gives_an_all_padded_row_and_is_dropped_by_the_batcher():
  batch = P.pad_batch([{"audio": np.zeros(0, np.float32), "text": "a"}], encode, 4, 2)
  assert batch["audio"].tolist() == [[0, 0, 0, 0]] and batch["audio_paddings"].tolist() == [[1.0] * 4]
  # an empty transcript too, so that only the audio length decides
  index = P.build_index([{"audio": np.zeros(0, np.int16), "text": ""}, {"audio": np.ones(1, np.int16), "text": ""}],
                        encode)
  assert index.num_samples.tolist() == [0, 1] and P.usable(index, CONFIG).tolist() == [False, True]


def test_transcript_and_length_problems_name_the_example():
  with pytest.raises(ValueError, match=r"example 1 \(id 'u1'\): cannot encode its transcript: .*position 2"):
    P.build_index([{"id": "u0", "audio": np.zeros(5, np.int16), "text": "ab"},
                   {"id": "u1", "audio": np.zeros(5, np.int16), "text": "ab!"}],
                  lambda t: [1 if c == "a" else 2 if c == "b" else _raise_unknown(t, c) for c in t])
  with pytest.raises(ValueError, match=r"example 0 \(id 'x'\) has no 'text' field; it has \['audio', 'id'\]"):
    P.build_index([{"id": "x", "audio": np.zeros(5, np.int16)}], encode)
  with pytest.raises(ValueError, match=r"labels must be >= 1 \(0 is the blank\)"):
    P.build_index([{"audio": np.zeros(5, np.int16), "text": "a"}], lambda t: [0])
  with pytest.raises(ValueError, match=r"example 0 \(id 'l'\) has 70 samples; they do not fit bucket=64"):
    P.pad_batch([{"id": "l", "audio": np.zeros(70, np.int16), "text": "a"}], encode, 64, 4)
  with pytest.raises(ValueError, match=r"has 5 labels; they do not fit max_labels=4"):
    P.pad_batch([{"id": "l", "audio": np.zeros(7, np.int16), "text": "aaaaa"}], encode, 64, 4)


def _raise_unknown(text, c):
  raise ValueError(f"unknown character {c!r} at position {text.index(c)}")


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), r"batch_size must be >= 1; got 0"),
    (dict(batch_size=-4), r"batch_size must be >= 1"),
    (dict(batch_size=8.0), r"batch_size must be an integer"),
    (dict(batch_size=True), r"batch_size must be an integer"),
    (dict(buckets=()), r"buckets must be a non-empty sequence"),
    (dict(buckets=16_000), r"buckets must be a non-empty sequence"),
    (dict(buckets=(32_000, 16_000)), r"buckets \(32000, 16000\) must be non-decreasing"),
    (dict(buckets=(0, 16_000)), r"buckets must be >= 1; got 0"),
    (dict(buckets=(16_000.5,)), r"buckets must be an integer"),
    (dict(buckets=(16_000,), max_labels=0), r"max_labels must be >= 1; got 0"),
    (dict(buckets=(16_000, 32_000), max_labels=(10,)), r"max_labels \(10,\) needs one length per bucket"),
    (dict(subsampling=0), r"subsampling must be >= 1; got 0"),
    (dict(labels_per_frame=0), r"labels_per_frame must be >= 1; got 0"),
    (dict(labels_per_frame=-1), r"labels_per_frame must be >= 1"),
    (dict(frame_step=0), r"frame_step must be >= 1"),
    (dict(sort_window=0), r"sort_window must be >= 1"),
    (dict(seed=-1), r"seed must be >= 0"),
])
def test_bad_pipeline_config_names_the_field(kwargs, match):
  with pytest.raises(ValueError, match=match):
    P.PipelineConfig(**{"batch_size": 8, **kwargs})


def test_bad_iterator_arguments_name_the_argument():
  source = make_source(40)
  index = P.build_index(source, encode)
  config = P.PipelineConfig(batch_size=4, buckets=(64_000,), max_labels=64)
  with pytest.raises(ValueError, match=r"host_count must be an integer >= 1; got 0"):
    P.BatchIterator(source, index, encode, config, host_count=0)
  with pytest.raises(ValueError, match=r"step must be an integer >= 0 .*; got -1"):
    P.BatchIterator(source, index, encode, config, step=-1)
  it = P.BatchIterator(source, index, encode, config, prefetch=0)
  with pytest.raises(ValueError, match=r"restore: state must be"):
    it.restore({"step": -3})
  assert P.PipelineConfig(batch_size=4, buckets=[16_000, 32_000], max_labels=[8, 8]).buckets == (16_000, 32_000)
