"""Frame gates: the estimators' forward values and gradients by hand, compaction against a dense
numpy reference for every capacity bucket."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.nn import frame_gates as fg


def test_capacity_buckets_by_hand():
  assert fg.capacity_buckets(10, 8) == (0, 2, 3, 4, 5, 7, 8, 9, 10)
  assert fg.capacity_buckets(3, 8) == (0, 1, 2, 3)
  assert fg.capacity_buckets(16, 4) == (0, 4, 8, 12, 16)


def test_hard_gates_without_a_key_are_the_mode():
  a = jnp.array([-2.0, -1e-3, 0.0, 1e-3, 5.0])
  for estimator in fg.ESTIMATORS:
    np.testing.assert_array_equal(fg.gate(a, None, estimator), [0, 0, 0, 1, 1])


def test_gumbel_st_is_on_with_probability_sigmoid_and_has_the_soft_gradient():
  a = jnp.full((40_000,), 0.7)
  g = fg.gate(a, jax.random.key(0), "gumbel_st", temperature=0.5)
  assert set(np.unique(np.asarray(g))) <= {0.0, 1.0}
  assert abs(float(jnp.mean(g)) - 1 / (1 + np.exp(-0.7))) < 0.01  # sigmoid(0.7) = 0.668
  # backward: d/da sigmoid((a + L) / tau), L = log u - log(1 - u) with the same draw (by hand)
  a = jnp.array([0.3, -1.2, 2.0])
  key = jax.random.key(3)
  u = np.asarray(jax.random.uniform(key, a.shape, jnp.float32, minval=1e-6, maxval=1 - 1e-6), np.float64)
  z = (np.asarray(a, np.float64) + np.log(u) - np.log1p(-u)) / 0.5
  expected = np.exp(-z) / (1 + np.exp(-z)) ** 2 / 0.5
  grad = jax.grad(lambda a: jnp.sum(fg.gate(a, key, "gumbel_st", 0.5)))(a)
  np.testing.assert_allclose(grad, expected, rtol=1e-4)


def test_relaxed_gate_is_soft_and_sigmoid_st_is_deterministic():
  a = jnp.linspace(-3, 3, 101)
  soft = fg.gate(a, jax.random.key(1), "relaxed")
  assert jnp.all((soft > 0) & (soft < 1)) and len(np.unique(np.asarray(soft))) > 50
  st = fg.gate(a, jax.random.key(1), "sigmoid_st", temperature=2.0)
  np.testing.assert_array_equal(st, (a > 0).astype(jnp.float32))
  grad = jax.grad(lambda a: jnp.sum(fg.gate(a, jax.random.key(1), "sigmoid_st", 2.0)))(a)
  s = 1 / (1 + np.exp(-np.asarray(a, np.float64) / 2))
  np.testing.assert_allclose(grad, s * (1 - s) / 2, rtol=1e-4, atol=1e-7)


def test_unknown_estimator_and_bad_temperature_are_refused():
  with pytest.raises(ValueError, match="one of"):
    fg.gate(jnp.zeros(3), None, "reinforce")
  with pytest.raises(ValueError, match="temperature"):
    fg.gate(jnp.zeros(3), None, "gumbel_st", 0.0)


class _RowFn(nn.Module):
  """A frame-wise function that uses its parameter, its input frame and the frame's index."""

  @nn.compact
  def __call__(self, x, active, capacities):
    w = self.param("w", nn.initializers.normal(1.0), (x.shape[-1], x.shape[-1]))
    return fg.compact_rows(self, lambda mdl, rows, xq: jnp.tanh(xq @ w) + rows[..., None], x, active, capacities)


@pytest.mark.parametrize("t,count", [(10, c) for c in range(0, 11)] + [(80, c) for c in (0, 5, 37, 70, 80)])
def test_compaction_equals_the_dense_reference_in_every_bucket(t, count):
  """10 frames: the one-hot gather; 80 (over `ONE_HOT_FRAMES`): the sort and scatter."""
  rng = np.random.default_rng(count)
  b, d = 3, 4
  x = rng.normal(size=(b, t, d)).astype(np.float32)
  active = np.zeros((b, t), bool)
  for r in range(b):  # the busiest row has `count` active frames, the others fewer
    active[r, rng.choice(t, size=max(count - r, 0), replace=False)] = True
  module = _RowFn()
  caps = fg.capacity_buckets(t, 8)
  assert (t <= fg.ONE_HOT_FRAMES) == (t == 10)
  params = module.init(jax.random.key(0), x, active, caps)
  y = np.asarray(jax.jit(lambda p, x, a: module.apply(p, x, a, caps))(params, x, active))
  w = np.asarray(params["params"]["w"])
  ref = np.where(active[..., None], np.tanh(x @ w) + np.arange(t)[None, :, None], 0.0)
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
  assert np.all(y[~active] == 0.0)


def test_a_capacity_that_cannot_hold_a_row_is_refused():
  with pytest.raises(ValueError, match="cannot hold"):
    _RowFn().init(jax.random.key(0), jnp.zeros((1, 5, 2)), jnp.ones((1, 5), bool), (0, 2, 4))
