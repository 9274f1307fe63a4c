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
