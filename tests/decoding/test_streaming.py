"""Streaming greedy recognition equals whole-utterance greedy search, for every encoder."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax import decoding
from asrjax.decoding import streaming
from asrjax.models import transducer
from tests.models.test_encoders import ENCODERS


@pytest.mark.parametrize("name,cmvn_frames", [("convrnnt", 0.0), ("conformer", 0.0), ("convrnnt", 20.0)])
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
