"""Streaming greedy recognition equals whole-utterance greedy search, for every encoder."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax import decoding
from asrjax.inference import streaming
from asrjax.models import transducer
from tests.models.test_encoders import ENCODERS


@pytest.mark.parametrize("name,cmvn_frames", [("convrnnt", 0.0),  # suite budget: the others ~10 s each
                                              pytest.param("conformer", 0.0, marks=pytest.mark.slow),
                                              pytest.param("convrnnt", 20.0, marks=pytest.mark.slow)])
def test_chunked_recognition_equals_whole_utterance_greedy(name, cmvn_frames):
  cls, kwargs = ENCODERS[name]
  model = transducer.Transducer(cls(**kwargs), vocab_size=9, embed_dim=8, predictor_hidden=16, joint_hidden=16,
                                causal_cmvn_frames=cmvn_frames, num_features=8)
  rng = np.random.default_rng(0)
  feats = jnp.asarray(rng.normal(0.5, 2.0, size=(2, 72, 8)).astype(np.float32))
  pads = jnp.asarray((np.arange(72)[None] >= np.array([[72], [50]])).astype(np.float32))
  params = model.init(jax.random.key(0), feats, pads, jnp.ones((2, 3), jnp.int32), jnp.zeros((2, 3)))
  # make blank rarer so that many labels are emitted (a random joint rarely emits otherwise)
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: x.at[0].add(-2.0) if "out" in jax.tree_util.keystr(path) and "bias" in
      jax.tree_util.keystr(path) else x, params)
  enc, enc_pads, _ = model.apply(params, feats, pads, method=transducer.Transducer.encode)
  whole = decoding.greedy_search(transducer.decoder_fns(model), params, enc, enc_pads).to_lists()
  rec = streaming.StreamingRecognizer(model, params, batch=2)
  t, m = 0, rec.chunk_multiple
  while t < 72:
    size = m * int(rng.integers(1, 4))
    rec.accept(feats[:, t:t + size], pads[:, t:t + size])
    t += size
  assert [len(x) for x in rec.labels] == [len(whole[0][0][0]), len(whole[1][0][0])]
  assert sum(len(x) for x in rec.labels) > 10  # the check is not vacuous
  assert rec.labels == [whole[0][0][0], whole[1][0][0]]
  with pytest.raises(ValueError, match="multiple"):
    rec.accept(feats[:, : m + 1], pads[:, : m + 1])


def _lstm_recognizer_setup():
  """A small LSTM transducer with rare blanks, its params, and a [2, 36, 8] feature batch (stream 1 ends at 24).

  Causal CMVN is on: its running statistics are the state that NaN in padded frames would reach if the
  recogniser did not zero them."""
  cls, kwargs = ENCODERS["lstm_rnnt"]
  model = transducer.Transducer(cls(**kwargs), vocab_size=9, embed_dim=8, predictor_hidden=16, joint_hidden=16,
                                causal_cmvn_frames=20.0, num_features=8)
  rng = np.random.default_rng(3)
  feats = rng.normal(0.5, 2.0, size=(2, 36, 8)).astype(np.float32)
  pads = (np.arange(36)[None] >= np.array([[36], [24]])).astype(np.float32)
  params = model.init(jax.random.key(1), feats, pads, jnp.ones((2, 3), jnp.int32), jnp.zeros((2, 3)))
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: x.at[0].add(-2.0) if "out" in jax.tree_util.keystr(path) and "bias" in
      jax.tree_util.keystr(path) else x, params)
  return model, params, feats, pads


def test_a_rejected_chunk_leaves_the_state_as_if_it_had_not_been_given():
  """Bad chunks between good ones raise and change nothing: the labels equal the run without them and
  whole-utterance greedy search. Padded frames holding NaN change nothing either."""
  model, params, feats, pads = _lstm_recognizer_setup()
  enc, enc_pads, _ = model.apply(params, feats, pads, method=transducer.Transducer.encode)
  whole = [h[0][0] for h in decoding.greedy_search(transducer.decoder_fns(model), params, enc, enc_pads).to_lists()]
  cuts = [(0, 12), (12, 24), (24, 36)]
  clean = streaming.StreamingRecognizer(model, params, batch=2)
  for a, b in cuts:
    clean.accept(feats[:, a:b], pads[:, a:b])
  assert clean.labels == whole and sum(map(len, whole)) > 10

  nan_frame = feats[:, 12:24].copy()
  nan_frame[1, 4, 3] = np.nan  # a valid frame of stream 1
  blown_up = np.full_like(feats[:, 12:24], 3e38)  # finite input, non-finite encoder state
  gap = pads[:, 12:24].copy()
  gap[0, 3] = 1.0  # a padded frame between valid ones
  rec = streaming.StreamingRecognizer(model, params, batch=2)
  rec.accept(feats[:, 0:12], pads[:, 0:12])
  for bad, bad_pads, match in [(nan_frame, pads[:, 12:24], r"feats rows \[1\] contain NaN/inf"),
                               (blown_up, pads[:, 12:24], "encoder's streaming state became NaN/inf"),
                               (feats[:, 12:24], gap, "paddings row 0")]:
    before = [list(x) for x in rec.labels]
    with pytest.raises(ValueError, match=match + ".*state was not updated"):
      rec.accept(bad, bad_pads)
    assert rec.labels == before
  padded_nan = feats[:, 24:36].copy()
  padded_nan[1] = np.nan  # stream 1 is all padding in this chunk
  rec.accept(feats[:, 12:24], pads[:, 12:24])
  rec.accept(padded_nan, pads[:, 24:36])
  assert rec.labels == clean.labels
