"""EWC: the penalty and its gradient by hand, the per-example Fisher against a loop, lambda = 0 is plain fine-tuning."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from asrjax.fairness import ewc

PARAMS = {"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
ANCHOR = {"a": jnp.array([0.0, 0.0]), "b": jnp.array(1.0)}
FISHER = {"a": jnp.array([1.0, 2.0]), "b": jnp.array(0.5)}


def test_penalty_and_its_gradient_by_hand():
  # 2/2 * (1*1^2 + 2*2^2 + 0.5*2^2) = 11; gradient 2 * F * (theta - anchor) = [2, 8], 2
  assert float(ewc.penalty(PARAMS, ANCHOR, FISHER, 2.0)) == pytest.approx(11.0)
  g = jax.grad(lambda p: ewc.penalty(p, ANCHOR, FISHER, 2.0))(PARAMS)
  assert np.allclose(g["a"], [2.0, 8.0]) and float(g["b"]) == pytest.approx(2.0)


def test_the_transformation_adds_the_penalty_gradient_around_its_initial_parameters():
  tx = ewc.ewc(FISHER, 2.0)
  state = tx.init(ANCHOR)  # the anchor is what init sees: the init_from parameters
  grads = {"a": jnp.array([0.5, -0.5]), "b": jnp.array(0.0)}
  updates, _ = tx.update(grads, state, PARAMS)
  assert np.allclose(updates["a"], [0.5 + 2.0, -0.5 + 8.0]) and float(updates["b"]) == pytest.approx(2.0)
  with pytest.raises(ValueError, match="ewc needs the parameters"):
    tx.update(grads, state)
  with pytest.raises(ValueError, match="Fisher tree does not match"):
    ewc.ewc({"a": FISHER["a"]}, 1.0).init(PARAMS)
  with pytest.raises(ValueError, match="finite number >= 0"):
    ewc.ewc(FISHER, -1.0)


def _model_and_data():
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), "c": jnp.asarray(rng.normal(size=2), jnp.float32)}
  batch = {"x": jnp.asarray(rng.normal(size=(7, 3)), jnp.float32), "y": jnp.asarray(rng.normal(size=(7, 2)),
                                                                                    jnp.float32)}

  def example_loss(p, ex):
    pred = jnp.tanh(ex["x"] @ p["w"] + p["c"])
    return jnp.sum(jnp.square(pred - ex["y"]))

  return params, batch, example_loss


def test_the_per_example_fisher_equals_a_loop_over_single_examples():
  params, batch, example_loss = _model_and_data()
  got = ewc.diagonal_fisher(example_loss, params, [batch], chunk=3)  # 3 + 3 + 1: chunking must not matter
  loop = jax.tree.map(jnp.zeros_like, params)
  for n in range(7):
    g = jax.grad(example_loss)(params, {k: v[n] for k, v in batch.items()})
    loop = jax.tree.map(lambda t, gi: t + gi ** 2 / 7, loop, g)
  for k in params:
    assert np.allclose(got[k], loop[k], rtol=1e-5, atol=1e-7)
  # the known bug: squaring the gradient of the batch's mean loss gives something else entirely
  batch_grad = jax.grad(lambda p: jnp.mean(jax.vmap(example_loss, in_axes=(None, 0))(p, batch)))(params)
  assert not np.allclose(jnp.square(batch_grad["w"]), loop["w"], rtol=0.1)
  with pytest.raises(ValueError, match="no examples"):
    ewc.diagonal_fisher(example_loss, params, [])


def test_weight_zero_is_exactly_plain_fine_tuning():
  params, batch, example_loss = _model_and_data()
  fisher = ewc.diagonal_fisher(example_loss, params, [batch])
  loss = lambda p: jnp.mean(jax.vmap(example_loss, in_axes=(None, 0))(p, batch))

  def run(tx, steps=4):
    p, s = params, tx.init(params)
    for _ in range(steps):
      u, s = tx.update(jax.grad(loss)(p), s, p)
      p = optax.apply_updates(p, u)
    return p

  plain = run(optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-2)))
  zero = run(optax.chain(ewc.ewc(fisher, 0.0), optax.clip_by_global_norm(1.0), optax.adamw(1e-2)))
  strong = run(optax.chain(ewc.ewc(fisher, 1e3), optax.clip_by_global_norm(1.0), optax.adamw(1e-2)))
  for k in params:
    assert np.array_equal(np.asarray(plain[k]), np.asarray(zero[k]))
  # and a large weight does change the path (the penalty is live once the parameters move)
  assert not np.allclose(np.asarray(plain["w"]), np.asarray(strong["w"]))
