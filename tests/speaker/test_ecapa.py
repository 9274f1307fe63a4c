"""ECAPA-TDNN lite: padding exactness, shapes, size, and that it can separate speakers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from asrjax.losses import speaker as losses
from asrjax.speaker import ecapa

TINY = dict(channels=16, scale=4, aggregate=24, se_bottleneck=8, attention=8, embed_dim=12)


def test_an_utterance_in_a_padded_batch_gets_its_embedding_alone():
  rng = np.random.default_rng(0)
  model = ecapa.ECAPATDNN(**TINY)
  lengths = [50, 17]
  feats = rng.normal(size=(2, 50, 10)).astype(np.float32)
  pads = (np.arange(50)[None] >= np.array(lengths)[:, None]).astype(np.float32)
  feats_dirty = np.where(pads[..., None] > 0, np.nan, feats)  # padding must not be read at all
  params = jax.jit(model.init)(jax.random.key(0), jnp.asarray(feats), jnp.asarray(pads))
  apply = jax.jit(model.apply)
  batched = np.asarray(apply(params, jnp.asarray(feats_dirty), jnp.asarray(pads)))
  assert batched.shape == (2, 12) and np.isfinite(batched).all()
  for i, n in enumerate(lengths):
    alone = np.asarray(apply(params, jnp.asarray(feats[i:i + 1, :n]), jnp.zeros((1, n))))
    np.testing.assert_allclose(batched[i], alone[0], rtol=2e-5, atol=2e-5)


def test_the_lite_configuration_size():
  model = ecapa.ECAPATDNN()  # the defaults: the lite configuration
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, 40, 80)), jnp.zeros((1, 40)))
  n = sum(x.size for x in jax.tree.leaves(params))
  assert 300_000 < n < 1_000_000, n  # the paper's C = 512 model: 6.2 M


def test_bad_shapes_are_refused():
  model = ecapa.ECAPATDNN(**TINY)
  with pytest.raises(ValueError, match=r"feats must be \[B, T, F\] and paddings \[B, T\]"):
    model.init(jax.random.key(0), jnp.ones((1, 40)), jnp.zeros((1, 40)))
  with pytest.raises(ValueError, match="multiple of scale"):
    ecapa.ECAPATDNN(**{**TINY, "channels": 18}).init(jax.random.key(0), jnp.ones((1, 9, 4)), jnp.zeros((1, 9)))


@pytest.mark.slow  # 11 s: the suite budget
def test_a_few_aam_steps_separate_two_synthetic_speakers():
  """Speaker = a fixed spectral tilt + noise: AAM training makes same-speaker cosines exceed others."""
  rng = np.random.default_rng(1)
  tilt = rng.normal(size=(4, 10)).astype(np.float32)
  spk = np.repeat(np.arange(4), 4)
  feats = tilt[spk][:, None, :] + 0.5 * rng.normal(size=(16, 30, 10)).astype(np.float32)
  pads = np.zeros((16, 30), np.float32)
  model = ecapa.ECAPATDNN(**TINY)
  params = {"model": jax.jit(model.init)(jax.random.key(0), jnp.asarray(feats), jnp.asarray(pads)),
            "classes": jnp.asarray(rng.normal(size=(4, 12)).astype(np.float32))}
  opt = optax.adam(1e-2)
  state = opt.init(params)

  def loss(p):
    e = model.apply(p["model"], jnp.asarray(feats), jnp.asarray(pads))
    return jnp.mean(losses.aam_softmax(e, p["classes"], jnp.asarray(spk), margin=0.2, scale=16.0))

  @jax.jit
  def step(p, s):
    updates, s = opt.update(jax.grad(loss)(p), s, p)
    return optax.apply_updates(p, updates), s

  first = float(jax.jit(loss)(params))
  for _ in range(30):
    params, state = step(params, state)
  assert float(jax.jit(loss)(params)) < 0.5 * first
  e = np.array(jax.jit(model.apply)(params["model"], jnp.asarray(feats), jnp.asarray(pads)))
  e /= np.linalg.norm(e, axis=1, keepdims=True)
  cos = e @ e.T
  same = spk[:, None] == spk[None]
  off = ~np.eye(16, dtype=bool)
  assert cos[same & off].mean() > cos[~same].mean() + 0.3
