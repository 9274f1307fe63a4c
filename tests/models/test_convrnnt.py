"""ConvRNN-T can learn (streaming and causality of every encoder: tests/models/test_encoders.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from asrjax import decoding
from asrjax.losses import rnnt_loss
from asrjax.models import convrnnt, transducer

TINY = dict(stack=3, channels=16, local_layers=2, local_kernel=3, global_blocks=2, global_kernel=3,
            lstm_hidden=24, lstm_layers=2, output_dim=24)


@pytest.mark.slow  # suite budget; `make test-slow`, which CI runs too
def test_tiny_model_memorises_two_utterances_and_greedy_decodes_them():
  vocab = 6
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**TINY), vocab_size=vocab, embed_dim=8,
                                predictor_hidden=24, joint_hidden=24)
  rng = np.random.default_rng(2)
  feats = jnp.asarray(rng.normal(size=(2, 36, 8)).astype(np.float32))
  feat_pads = jnp.zeros((2, 36))
  labels = jnp.asarray([[1, 2, 3, 4], [5, 3, 0, 0]])
  label_pads = jnp.asarray([[0.0, 0, 0, 0], [0, 0, 1, 1]])
  params = model.init(jax.random.key(3), feats, feat_pads, labels, label_pads)
  opt = optax.adam(1e-2)
  opt_state = opt.init(params)

  @jax.jit
  def step(params, opt_state):
    def loss_fn(p):
      logits, enc_pads = model.apply(p, feats, feat_pads, labels, label_pads)
      return rnnt_loss(logits, enc_pads, labels, label_pads).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  first = None
  for _ in range(150):
    params, opt_state, loss = step(params, opt_state)
    first = float(loss) if first is None else first
  assert float(loss) < 0.1 * first
  enc, enc_pads, _ = model.apply(params, feats, feat_pads, method=transducer.Transducer.encode)
  out = decoding.greedy_search(transducer.decoder_fns(model), params, enc, enc_pads).to_lists()
  assert [out[0][0][0], out[1][0][0]] == [[1, 2, 3, 4], [5, 3]]


def test_causal_cmvn_makes_the_encoder_blind_to_a_constant_channel_offset():
  # A per-utterance constant offset (a channel/microphone colouring) is removed by the
  # causal CMVN front end once enough frames are seen; without it the output changes.
  rng = np.random.default_rng(4)
  feats = rng.normal(size=(1, 600, 8)).astype(np.float32)
  pads = jnp.zeros((1, 600))
  shifted = feats + 3.0 * rng.normal(size=(1, 1, 8)).astype(np.float32)
  for frames, should_match in ((2.0, True), (0.0, False)):
    model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**TINY), vocab_size=6, embed_dim=8, predictor_hidden=24,
                                  joint_hidden=24, causal_cmvn_frames=frames, num_features=8)
    params = model.init(jax.random.key(0), feats, pads, jnp.ones((1, 2), jnp.int32), jnp.zeros((1, 2)))
    encode = lambda f: np.asarray(model.apply(params, jnp.asarray(f), pads, method=transducer.Transducer.encode)[0])
    a, b = encode(feats)[0, -50:], encode(shifted)[0, -50:]
    assert np.allclose(a, b, atol=0.05) == should_match
  with pytest.raises(ValueError, match="expects 8 features"):
    model.clone(causal_cmvn_frames=2.0).apply(params, jnp.zeros((1, 12, 5)), jnp.zeros((1, 12)),
                                              method=transducer.Transducer.encode)
