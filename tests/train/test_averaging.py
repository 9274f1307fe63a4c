"""Checkpoint averaging: hand-computed means, dtypes kept, step selection and its errors."""

import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.train import averaging


def test_mean_of_three_trees_by_hand():
  trees = [{"w": np.array([1.0, 2.0], np.float32), "b": {"c": jnp.asarray(3.0, jnp.bfloat16)}},
           {"w": np.array([3.0, 6.0], np.float32), "b": {"c": jnp.asarray(5.0, jnp.bfloat16)}},
           {"w": np.array([2.0, -2.0], np.float32), "b": {"c": jnp.asarray(1.0, jnp.bfloat16)}}]
  out = averaging.average_trees(trees)
  np.testing.assert_array_equal(out["w"], np.array([2.0, 2.0], np.float32))
  assert out["w"].dtype == np.float32 and out["b"]["c"].dtype == jnp.bfloat16
  assert float(out["b"]["c"]) == 3.0


def test_mean_is_taken_in_float64():
  # in float32, 2^24 + 1 + 1 sums to 2^24 (each 1 is rounded away): mean 5592405.5, not 5592406
  trees = [{"x": np.array([v], np.float32)} for v in (2.0**24, 1.0, 1.0)]
  assert averaging.average_trees(trees)["x"][0] == np.float32(5592406.0)


def test_mismatched_trees_are_errors():
  with pytest.raises(ValueError, match="nothing to average"):
    averaging.average_trees([])
  with pytest.raises(ValueError, match="another structure"):
    averaging.average_trees([{"a": np.zeros(2)}, {"b": np.zeros(2)}])
  with pytest.raises(ValueError, match=r"\(3,\)"):
    averaging.average_trees([{"a": np.zeros(2)}, {"a": np.zeros(3)}])
  with pytest.raises(ValueError, match="float32"):
    averaging.average_trees([{"a": np.zeros(2)}, {"a": np.zeros(2, np.float32)}])


def test_select_steps():
  held = [1500, 500, 1000, 2000]
  assert averaging.select_steps(held, None, 1) == (2000,)
  assert averaging.select_steps(held, None, 3) == (1000, 1500, 2000)
  assert averaging.select_steps(held, 1500, 2) == (1000, 1500)
  assert averaging.select_steps(held, 500, 1) == (500,)
  with pytest.raises(ValueError, match=r"needs 2 up to step 500; the steps held are \[500, 1000, 1500, 2000\]"):
    averaging.select_steps(held, 500, 2)
  with pytest.raises(ValueError, match="no checkpoint of step 700"):
    averaging.select_steps(held, 700, 1)
  with pytest.raises(ValueError, match=">= 1"):
    averaging.select_steps(held, None, 0)
