"""Mixture targets: the first-free channel rule by hand, turn-token labels and boundaries, padding, and the
pipeline's hooks for examples that are not one transcript."""

import numpy as np
import pytest

from asrjax.data import multitalker as M
from asrjax.data import pipeline
from asrjax.data.tokenizer import CharTokenizer, TurnTokenizer

TOK = TurnTokenizer(CharTokenizer.build(["ab c", "ba"]))  # " " 2, a 3, b 4, c 5; <sot> 6, <eot> 7


def _ex(turns, n=16_000, uid="m0", overlap=0.25):
  cols = {k: [t[i] for t in turns] for i, k in enumerate(("speaker_id", "text", "start", "end"))}
  cols["speaker_id"] = [s.encode() for s in cols["speaker_id"]]
  cols["text"] = [s.encode() for s in cols["text"]]
  return {"id": uid.encode(), "audio": np.ones(n, np.int16), "turns": cols, "overlap": overlap}


def test_first_free_rule_by_hand():
  t = lambda s, e, who="x": M.RefTurn(who, "a", s, e)
  assert M.assign_channels([t(0, 1), t(1.5, 2)], 2) == [0, 0]  # no overlap: one channel
  assert M.assign_channels([t(0, 1), t(0.5, 2)], 2) == [0, 1]  # overlap: the second channel
  assert M.assign_channels([t(0, 1), t(0.5, 2), t(1.2, 3)], 2) == [0, 1, 0]  # channel 0 is free again at 1.2
  with pytest.raises(ValueError, match="3 turns overlap at 0.60 s .*more than 2 channels"):
    M.assign_channels([t(0, 1), t(0.5, 2), t(0.6, 3, "z")], 2)


def test_turns_come_in_start_order_from_the_tfds_layout():
  turns = M.turns_of(_ex([("B", "c", 1.0, 2.0), ("A", "ab", 0.0, 1.5)]))
  assert [(t.speaker, t.text, t.start) for t in turns] == [("A", "ab", 0.0), ("B", "c", 1.0)]
  with pytest.raises(ValueError, match="needs finite start <= end"):
    M.turns_of(_ex([("A", "a", 2.0, 1.0)]))
  with pytest.raises(ValueError, match="needs a 'turns' field"):
    M.turns_of({"audio": np.zeros(3)})


def test_channel_labels_and_boundaries_by_hand():
  ex = _ex([("A", "ab", 0.0, 1.5), ("B", "c", 1.0, 2.0)])
  batch = M.pad_mixture_batch([ex], TOK, 20_000, 5)
  np.testing.assert_array_equal(batch["labels"][0], [[6, 3, 4, 7, 0], [6, 5, 7, 0, 0]])
  np.testing.assert_array_equal(batch["label_paddings"][0], [[0, 0, 0, 0, 1], [0, 0, 0, 1, 1]])
  np.testing.assert_array_equal(batch["turn_boundaries"][0], [[0.0, 0, 0, 1.5, 0], [1.0, 0, 2.0, 0, 0]])
  np.testing.assert_array_equal(batch["turn_mask"][0], [[1, 0, 0, 1, 0], [1, 0, 1, 0, 0]])
  assert batch["audio_paddings"][0].sum() == 4_000 and batch["ids"] == ["m0"] and batch["overlap"][0] == 0.25
  start_only = M.pad_mixture_batch([ex], TOK, 20_000, 5, end_tokens=False)
  np.testing.assert_array_equal(start_only["labels"][0], [[6, 3, 4, 0, 0], [6, 5, 0, 0, 0]])
  sequential = M.pad_mixture_batch([_ex([("A", "ab", 0.0, 1.0), ("B", "c", 1.2, 2.0)])], TOK, 20_000, 8)
  np.testing.assert_array_equal(sequential["labels"][0], [[6, 3, 4, 7, 6, 5, 7, 0], [0] * 8])  # one channel
  assert sequential["label_paddings"][0, 1].all()
  with pytest.raises(ValueError, match="has 4 labels on channel 0; they do not fit max_labels=3"):
    M.pad_mixture_batch([ex], TOK, 20_000, 3)
  with pytest.raises(ValueError, match="do not fit bucket"):
    M.pad_mixture_batch([ex], TOK, 100, 5)


def test_the_pipeline_indexes_and_batches_mixtures_through_its_hooks():
  source = [_ex([("A", "ab", 0.0, 0.5), ("B", "c" * k, 0.2, 0.9)], n=8_000 + 100 * k, uid=f"m{k}") for k in range(6)]
  count = lambda ex: M.label_count(ex, TOK, 2)
  index = pipeline.build_index(source, TOK.encode, label_count=count)
  np.testing.assert_array_equal(index.num_labels, [4, 4, 4, 5, 6, 7])  # max(<sot>ab<eot>, <sot>c..c<eot>)
  config = pipeline.PipelineConfig(batch_size=2, buckets=(10_000,), max_labels=8, subsampling=1)
  pad = lambda exs, bucket, max_labels: M.pad_mixture_batch(exs, TOK, bucket, max_labels)
  it = pipeline.BatchIterator(source, index, TOK.encode, config, pad=pad, prefetch=0)
  batch = next(it)
  assert batch["labels"].shape == (2, 2, 8) and batch["turn_mask"].shape == (2, 2, 8) and batch["step"] == 0
  with pytest.raises(ValueError, match=r"example 0 \(id 'bad'\): cannot label it: .*start <= end"):
    pipeline.build_index([_ex([("A", "a", 1.0, 0.0)], uid="bad")], TOK.encode, label_count=count)
