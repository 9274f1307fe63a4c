"""The padding contract (`asrjax.losses.validate_paddings`, `paddings_valid`) against hand-made rows and a brute-force rule."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.losses import paddings_valid, validate_paddings


def _row_ok(row) -> bool:
  """The rule written out: every value is 0 or 1, and no 0 comes after a 1."""
  seen_pad = False
  for x in row:
    if x not in (0, 1):
      return False
    if x == 1:
      seen_pad = True
    elif seen_pad:
      return False
  return True


def test_every_row_of_three_over_a_small_alphabet_agrees_with_the_rule():
  rows = np.array(list(itertools.product([0.0, 1.0, 0.5, np.nan, -1.0, 2.0], repeat=3)))  # 216 rows
  expected = np.array([_row_ok(r) for r in rows])
  np.testing.assert_array_equal(paddings_valid(rows), expected)
  np.testing.assert_array_equal(jax.jit(paddings_valid)(rows), expected)
  for row, ok in zip(rows, expected):
    if ok:
      validate_paddings(row[None], "p")
    else:
      with pytest.raises(ValueError, match=r"^p.*(only 0 \(valid\) and 1 \(padded\)|trailing)"):
        validate_paddings(row[None], "p")


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.bool_, jnp.bfloat16])
def test_dtypes(dtype):
  good = np.array([[0, 0, 1], [0, 1, 1], [0, 0, 0], [1, 1, 1]]).astype(dtype)
  validate_paddings(good, "logit_paddings")
  assert np.all(paddings_valid(jnp.asarray(good)))
  bad = np.array([[0, 0, 1], [1, 0, 1]]).astype(dtype)
  with pytest.raises(ValueError, match=r"logit_paddings row 1 has a valid position \(1\) after a padded one \(0\)"):
    validate_paddings(bad, "logit_paddings")
  np.testing.assert_array_equal(paddings_valid(jnp.asarray(bad)), [True, False])


def test_messages_name_the_argument_the_row_and_the_rule():
  with pytest.raises(ValueError, match=r"label_paddings\[1, 2\] = 0.5: paddings must hold only 0"):
    validate_paddings(np.array([[0, 0, 0], [0, 0, 0.5]]), "label_paddings")
  with pytest.raises(ValueError, match=r"label_paddings must be a \[B, N\] array.*got shape \(3,\)"):
    validate_paddings(np.zeros(3), "label_paddings")
  with pytest.raises(ValueError, match=r"x must hold real numbers"):
    validate_paddings(np.array([["0", "1"]]), "x")
  with pytest.raises(ValueError, match=r"paddings must be a \[B, N\] array"):
    paddings_valid(jnp.zeros((2, 3, 1)))


def test_empty_shapes_are_valid():
  for shape in [(0, 4), (3, 0), (0, 0)]:
    validate_paddings(np.zeros(shape), "p")
    assert paddings_valid(jnp.zeros(shape)).shape == (shape[0],)


def test_a_tracer_is_refused_with_the_in_graph_alternative_named():
  with pytest.raises(TypeError, match="paddings_valid"):
    jax.jit(lambda p: validate_paddings(p, "logit_paddings"))(jnp.zeros((1, 2)))
