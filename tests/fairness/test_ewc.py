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


def test_a_fisher_file_round_trips_and_a_damaged_one_is_refused(tmp_path):
  path = str(tmp_path / "fisher.msgpack")
  fisher = {"enc": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": np.array([0.5], np.float32)}
  ewc.save_fisher(path, fisher)
  back = ewc.load_fisher(path)
  assert np.array_equal(back["enc"]["w"], fisher["enc"]["w"]) and np.array_equal(back["b"], fisher["b"])
  with open(path, "r+b") as f:  # damaged in place
    f.seek(3)
    f.write(b"\xff\xff\xff")
  with pytest.raises(ValueError, match="not a readable Fisher file|not a Fisher file"):
    ewc.load_fisher(path)
  ewc.save_fisher(path, {"w": np.array([-1.0], np.float32)})
  with pytest.raises(ValueError, match="finite and >= 0"):
    ewc.load_fisher(path)
  with pytest.raises(FileNotFoundError, match="fairness_ewc.py"):
    ewc.load_fisher(str(tmp_path / "absent.msgpack"))


def test_the_transducer_optimizer_adds_the_ewc_gradient_when_weighted(tmp_path):
  from asrjax.tasks import transducer_asr
  from asrjax.train import config_check, optimizer as optimizer_lib
  from tests.experiments.test_configs import load

  config = load("convrnnt", "tiny")
  fisher = {"w": np.array([1.0, 2.0, 3.0], np.float32)}
  path = str(tmp_path / "fisher.msgpack")
  ewc.save_fisher(path, fisher)
  config.train.ewc.update(dict(weight=0.5, fisher_file=path))
  anchor = {"w": jnp.zeros(3)}
  params = {"w": jnp.array([1.0, -1.0, 2.0])}
  grads = {"w": jnp.array([0.1, 0.2, -0.3])}
  tx = transducer_asr.model_optimizer(config)
  got, _ = tx.update(grads, tx.init(anchor), params)
  # reference: the plain optimizer on the hand-added penalty gradient 0.5 * F * (theta - anchor)
  plain = optimizer_lib.make_optimizer(config.optimizer, config.train.num_steps)
  hand = {"w": grads["w"] + 0.5 * jnp.asarray(fisher["w"]) * params["w"]}
  want, _ = plain.update(hand, plain.init(anchor), params)
  assert np.allclose(got["w"], want["w"], rtol=1e-6, atol=1e-9)
  config.train.ewc.weight = 0.0  # off: exactly the plain optimizer, no Fisher read
  config.train.ewc.fisher_file = "/nonexistent"
  off, _ = transducer_asr.model_optimizer(config).update(grads, plain.init(anchor), params)
  ref, _ = plain.update(grads, plain.init(anchor), params)
  assert np.array_equal(off["w"], ref["w"])
  config.train.ewc.update(dict(weight=1.0, fisher_file=""))
  found = config_check.problems(config)
  assert any(p.startswith("train.ewc.fisher_file='': train.ewc.weight=1.0 needs the Fisher") for p in found)
  assert any(p.startswith("train.init_from='': train.ewc.weight=1.0 pulls towards") for p in found)


@pytest.mark.slow  # suite budget; `make test-slow`, which CI runs too
def test_utterance_nll_is_the_objectives_loss_without_augmentation():
  from asrjax.frontend.featurize import FrontEnd
  from asrjax.models import convrnnt, transducer
  from asrjax.tasks import transducer_asr

  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(stack=3, channels=8, local_layers=1, local_kernel=3,
                                                         global_blocks=1, global_kernel=3, lstm_hidden=8,
                                                         lstm_layers=1, output_dim=8),
                                vocab_size=5, embed_dim=4, predictor_hidden=8, joint_hidden=8)
  rng = np.random.default_rng(0)
  audio = (rng.normal(size=(3, 4000)) * 3000).astype(np.int16)
  pads = np.zeros((3, 4000), np.float32)
  pads[1, 3000:] = 1.0
  audio[pads > 0] = 0
  batch = {"audio": audio, "audio_paddings": pads, "labels": rng.integers(1, 5, size=(3, 3)).astype(np.int32),
           "label_paddings": np.array([[0, 0, 0], [0, 0, 1], [0, 1, 1]], np.float32)}
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  params = transducer_asr.init_params(model, batch, jax.random.key(0))
  config = transducer_asr.LossConfig(front_end=FrontEnd(spec_augment=True), fastemit_lambda=0.01)
  nll = transducer_asr.utterance_nll(params, model, batch, config)
  plain = transducer_asr.LossConfig(front_end=FrontEnd(spec_augment=False))  # the objective without augmentation
  loss = transducer_asr.objective(params, model, batch, jax.random.key(1), plain).terms["loss"]
  assert nll.shape == (3,) and float(jnp.mean(nll)) == pytest.approx(float(loss), rel=1e-5)
