"""Every streaming encoder: chunked == whole utterance for random chunk sizes, no look-ahead
beyond what it declares, and a registry ``build`` that trains through the shared transducer."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from asrjax import models
from asrjax.losses import rnnt_loss
from asrjax.models import cca_transformer, conformer, contextnet, convrnnt, lstm_rnnt, transducer

ENCODERS = {
    "convrnnt": (convrnnt.ConvRNNTEncoder, dict(stack=3, channels=16, local_layers=2, local_kernel=3, global_blocks=2,
                                                global_kernel=3, lstm_hidden=24, lstm_layers=2, output_dim=24)),
    "lstm_rnnt": (lstm_rnnt.LSTMEncoder, dict(stack=3, lstm_hidden=24, lstm_layers=2, output_dim=24)),
    "conformer": (conformer.ConformerEncoder, dict(stack=3, dim=16, heads=2, ff_mult=2, conv_kernel=3, layers=2,
                                                   chunk_size=2, left_chunks=2, output_dim=24)),
    "conformer_causal": (conformer.ConformerEncoder, dict(stack=3, dim=16, heads=2, ff_mult=2, conv_kernel=3, layers=2,
                                                          chunk_size=1, left_chunks=3, output_dim=24)),
    "contextnet": (contextnet.ContextNetEncoder, dict(stack=3, channels=16, blocks=2, layers_per_block=2,
                                                      kernel_size=3, output_dim=24)),
    # gates start near 50% on (bias 0), so the arbitrated encoder streams with real skipping
    "cca_transformer": (cca_transformer.CCATransformerEncoder, dict(
        stack=3, dim=16, heads=2, ff_mult=2, layers=2, chunk_size=2, left_chunks=2, max_relative=6, output_dim=24,
        gate_bias_init=0.0, num_features=8, capacity_steps=4)),  # 5 buckets: faster compiles than 9
}


def _setup(name, t=60, seed=0):
  cls, kwargs = ENCODERS[name]
  enc = cls(**kwargs)
  rng = np.random.default_rng(seed)
  feats = jnp.asarray(rng.normal(size=(2, t, 8)).astype(np.float32))
  pads = jnp.asarray((np.arange(t)[None] >= np.array([[t], [t * 2 // 3]])).astype(np.float32))
  params = enc.init(jax.random.key(seed), feats, pads, enc.init_state(2))
  return enc, feats, pads, params


# a second chunking, and the two slowest encoders' first (each has its own streaming test in the default
# suite: test_cca_transformer, tests/inference/test_streaming), run in `make test-slow`: suite budget
_SLOW_STREAMING = ("cca_transformer", "conformer_causal")


@pytest.mark.parametrize("name,seed", [pytest.param(n, s, marks=pytest.mark.slow) if s or n in _SLOW_STREAMING
                                       else (n, s) for n in sorted(ENCODERS) for s in (0, 1)])
def test_streaming_random_chunks_match_whole_utterance(name, seed):
  enc, feats, pads, params = _setup(name, seed=seed)
  apply = jax.jit(enc.apply)
  whole, whole_pad, _ = apply(params, feats, pads, enc.init_state(2))
  rng = np.random.default_rng(100 + seed)
  m, t, state, outs = enc.chunk_multiple, 0, enc.init_state(2), []
  while t < feats.shape[1]:
    size = m * int(rng.integers(1, 5))
    y, _, state = apply(params, feats[:, t:t + size], pads[:, t:t + size], state)
    outs.append(y)
    t += size
  chunked = np.concatenate(outs, axis=1)[:, :whole.shape[1]]
  assert chunked.shape == whole.shape == (2, 60 // enc.stack, 24)
  valid = np.asarray(whole_pad) == 0
  assert valid.sum() > 20
  np.testing.assert_allclose(chunked[valid], np.asarray(whole)[valid], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_no_look_ahead_beyond_the_declared_frames(name):
  enc, feats, pads, params = _setup(name)
  pads = jnp.zeros_like(pads)
  apply = jax.jit(enc.apply)  # one compile for both calls
  y1, _, _ = apply(params, feats, pads, enc.init_state(2))
  cut = 11 * enc.stack  # perturb encoder frames 11.. (the second frame of a 2-frame attention chunk)
  y2, _, _ = apply(params, feats.at[:, cut:].add(3.0), pads, enc.init_state(2))
  y1, y2 = np.asarray(y1), np.asarray(y2)
  unaffected = 11 - enc.lookahead_frames
  np.testing.assert_array_equal(y1[:, :unaffected], y2[:, :unaffected])
  # the declared look-ahead is real: the earliest frame allowed to change does change
  assert not np.allclose(y1[:, unaffected], y2[:, unaffected])
  if name == "conformer":
    assert enc.lookahead_frames == 1  # chunk_size 2: frame 10 sees frame 11


def test_the_registry_names_every_encoder_and_refuses_others():
  assert {k: v for k, v in models.ENCODERS.items()} == {n: ENCODERS[n][0] for n in (
      "convrnnt", "lstm_rnnt", "conformer", "contextnet", "cca_transformer")}
  with pytest.raises(ValueError, match=r"model.name must be one of \['cca_transformer', 'conformer', 'contextnet', "
                                       r"'convrnnt', 'lstm_rnnt', 'sts'\]; got 'convrnn'"):
    models.build(ml_collections.ConfigDict({"name": "convrnn"}), vocab_size=7)


@pytest.mark.parametrize("name", [pytest.param("convrnnt", marks=pytest.mark.slow), "lstm_rnnt",  # 22 s, 11 s:
                                  pytest.param("conformer", marks=pytest.mark.slow),  # suite budget
                                  pytest.param("contextnet", marks=pytest.mark.slow)])
def test_registry_build_gives_a_trainable_transducer(name):
  config = ml_collections.ConfigDict({"name": name, "encoder": ENCODERS[name][1],
                                      "transducer": dict(embed_dim=8, predictor_hidden=16, joint_hidden=16)})
  model = models.build(config, vocab_size=7)
  assert isinstance(model, transducer.Transducer) and type(model.encoder) is ENCODERS[name][0]
  feats, pads = jnp.ones((2, 30, 8)), jnp.zeros((2, 30))
  labels, label_pads = jnp.asarray([[1, 2, 3], [4, 5, 0]]), jnp.asarray([[0.0, 0, 0], [0, 0, 1]])
  params = model.init(jax.random.key(0), feats, pads, labels, label_pads)

  def loss(p):
    logits, enc_pads = model.apply(p, feats, pads, labels, label_pads)
    assert logits.shape == (2, 10, 4, 7)
    return rnnt_loss(logits, enc_pads, labels, label_pads).mean()

  value, grads = jax.value_and_grad(loss)(params)
  assert np.isfinite(float(value))
  enc_grads = grads["params"]["encoder"]
  assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(enc_grads))  # every encoder weight is used
