"""ConvRNN-T: streaming equals whole-utterance processing, causality, and it can learn."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from asrjax import decoding
from asrjax.losses import rnnt_loss
from asrjax.models import convrnnt, transducer

TINY = dict(stack=3, channels=16, local_layers=2, local_kernel=3, global_blocks=2, global_kernel=3,
            lstm_hidden=24, lstm_layers=2, output_dim=24)


def _init(enc, feats, pads):
  return enc.init(jax.random.key(0), feats, pads, enc.init_state(feats.shape[0]))


def test_streaming_chunks_match_whole_utterance():
  enc = convrnnt.ConvRNNTEncoder(**TINY)
  rng = np.random.default_rng(0)
  feats = jnp.asarray(rng.normal(size=(2, 45, 8)).astype(np.float32))
  pads = jnp.asarray((np.arange(45)[None] >= np.array([[45], [30]])).astype(np.float32))
  params = _init(enc, feats, pads)
  apply = jax.jit(enc.apply)
  whole, whole_pad, _ = apply(params, feats, pads, enc.init_state(2))
  state, outs, t = enc.init_state(2), [], 0
  for size in (3, 9, 6, 3, 12, 12):
    y, _, state = apply(params, feats[:, t : t + size], pads[:, t : t + size], state)
    outs.append(y)
    t += size
  chunked = jnp.concatenate(outs, axis=1)
  assert chunked.shape == whole.shape == (2, 15, 24)
  valid = np.asarray(whole_pad == 0)
  np.testing.assert_allclose(np.asarray(chunked)[valid], np.asarray(whole)[valid], rtol=1e-5, atol=1e-5)


def test_encoder_never_looks_ahead():
  enc = convrnnt.ConvRNNTEncoder(**TINY)
  rng = np.random.default_rng(1)
  feats = rng.normal(size=(1, 30, 8)).astype(np.float32)
  pads = np.zeros((1, 30), np.float32)
  params = _init(enc, feats, pads)
  y1, _, _ = enc.apply(params, feats, pads, enc.init_state(1))
  later = feats.copy()
  later[:, 15:] += 3.0
  y2, _, _ = enc.apply(params, later, pads, enc.init_state(1))
  np.testing.assert_array_equal(np.asarray(y1)[:, :5], np.asarray(y2)[:, :5])  # frames 0..14 -> 0..4


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
