"""Checkpointer: round trip, keep-N, and fallback past a corrupt newest checkpoint."""

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


def test_corrupt_newest_falls_back_and_all_corrupt_is_an_error(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path), max_to_keep=3, save_interval_steps=1, async_save=False)
  ckpt.save(1, _state(1), {"step": 1})
  ckpt.save(2, _state(2), {"step": 2})
  ckpt.wait()

  def damage(step):
    for root, _, files in os.walk(tmp_path / str(step)):
      for f in files:
        path = os.path.join(root, f)
        with open(path, "r+b") as fh:
          fh.truncate(max(0, os.path.getsize(path) // 3))

  damage(2)
  state, data, step = ckpt.restore_latest(_abstract(_state(0)))
  assert step == 1 and data == {"step": 1}
  np.testing.assert_array_equal(state["w"], np.full((4, 3), 1.0))
  damage(1)
  with pytest.raises(checkpoint.CheckpointError, match=str(tmp_path)):
    ckpt.restore_latest(_abstract(_state(0)))
