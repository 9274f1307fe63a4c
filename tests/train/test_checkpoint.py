"""Checkpointer: round trip, keep-N, fallback past a corrupt newest checkpoint, a given step."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.train import checkpoint, sharding


def _state(x):
  return {"w": jnp.full((4, 3), x, jnp.float32), "step": jnp.asarray(int(x), jnp.int32)}


def _abstract(state):
  mesh = sharding.make_mesh(devices=jax.devices()[:1])
  return checkpoint.abstract_like(state, sharding.tree_shardings(mesh, state))


def test_round_trip_keep_n_and_resume(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path), max_to_keep=2, save_interval_steps=1)
  for s in (1, 2, 3):
    ckpt.save(s, _state(s), {"step": s * 10})
  ckpt.wait()
  assert sorted(int(d) for d in os.listdir(tmp_path) if d.isdigit()) == [2, 3]
  state, data, step = ckpt.restore_latest(_abstract(_state(0)))
  assert step == 3 and data == {"step": 30}
  np.testing.assert_array_equal(state["w"], np.full((4, 3), 3.0))
  ckpt.close()


def test_empty_directory_restores_nothing(tmp_path):
  assert checkpoint.Checkpointer(str(tmp_path)).restore_latest(_abstract(_state(0))) is None


def _two_checkpoints(directory):
  ckpt = checkpoint.Checkpointer(str(directory), max_to_keep=3, save_interval_steps=1, async_save=False)
  ckpt.save(1, _state(1), {"step": 1})
  ckpt.save(2, _state(2), {"step": 2})
  ckpt.wait()
  return ckpt


def _damage(directory, step):
  """Truncates every file of checkpoint ``step`` to a third."""
  for root, _, files in os.walk(directory / str(step)):
    for f in files:
      path = os.path.join(root, f)
      with open(path, "r+b") as fh:
        fh.truncate(max(0, os.path.getsize(path) // 3))


def test_corrupt_newest_falls_back_and_all_corrupt_is_an_error(tmp_path):
  ckpt = _two_checkpoints(tmp_path)
  _damage(tmp_path, 2)
  state, data, step = ckpt.restore_latest(_abstract(_state(0)))
  assert step == 1 and data == {"step": 1}
  np.testing.assert_array_equal(state["w"], np.full((4, 3), 1.0))
  _damage(tmp_path, 1)
  with pytest.raises(checkpoint.CheckpointError, match=str(tmp_path)):
    ckpt.restore_latest(_abstract(_state(0)))


def test_restore_a_given_step_never_substitutes_another(tmp_path):
  ckpt = _two_checkpoints(tmp_path)
  state, data = ckpt.restore(_abstract(_state(0)), 1)
  assert data == {"step": 1}
  np.testing.assert_array_equal(state["w"], np.full((4, 3), 1.0))
  with pytest.raises(checkpoint.CheckpointError, match=r"no checkpoint of step 5 .* holds steps \[1, 2\]"):
    ckpt.restore(_abstract(_state(0)), 5)
  _damage(tmp_path, 2)
  with pytest.raises(checkpoint.CheckpointError, match=f"{tmp_path}/2"):
    ckpt.restore(_abstract(_state(0)), 2)
