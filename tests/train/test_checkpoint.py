"""Checkpointer: round trip, keep-N, fallback, a given step; integrity (flipped bytes), quarantine, another tree."""

import os
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax.sharding import PartitionSpec as P

from asrjax.train import checkpoint, sharding

# tensorstore reports the reads of deliberately damaged files as unraisable exceptions at exit
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


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


# ---------------------------------------------------------------- integrity, quarantine, another tree


def _random_state(seed):
  """Random values (as trained ones are): zstd cannot shrink them, so flipped bytes land in values."""
  rng = np.random.default_rng(seed)
  return {"w": jnp.asarray(rng.normal(size=(32, 40)), jnp.float32),
          "opt": {"mu": jnp.asarray(rng.normal(size=(32, 40)), jnp.float32),
                  "count": jnp.asarray(seed, jnp.int32)},
          "b": jnp.asarray(rng.normal(size=(40,)), jnp.bfloat16)}


def _equal(tree, reference):
  return all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
             zip(jax.tree.leaves(tree), jax.tree.leaves(reference), strict=True))


def data_files(directory, step):
  """The files of checkpoint ``step``'s state item, largest first."""
  found = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(directory, str(step), "state")) for f in fs]
  return sorted(found, key=lambda p: -os.path.getsize(p))


def flip(path, at, n=64):
  """Inverts ``n`` bytes of ``path`` in place (size unchanged), starting at fraction ``at`` of the way in."""
  size = os.path.getsize(path)
  offset = round(max(0, size - n) * at)
  with open(path, "r+b") as f:
    f.seek(offset)
    block = f.read(n)
    f.seek(offset)
    f.write(bytes(b ^ 0xFF for b in block))
  assert os.path.getsize(path) == size


def _orbax_reads(directory, step, abstract):
  """What plain orbax (no integrity check) restores: ``"error"``, ``"changed"`` or ``"same"`` as saved."""
  import orbax.checkpoint as ocp
  try:
    got = ocp.CheckpointManager(str(directory)).restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract)))["state"]
  except Exception:  # noqa: BLE001 -- any rejection by orbax/tensorstore
    return "error"
  return "same" if _equal(got, _random_state(step)) else "changed"


# (rank of the file by size, fraction of the way in): the largest file holds the arrays'
# data (start, inside each array, its tail); the next ones are orbax's and OCDBT's metadata.
PLACEMENTS = [(0, at) for at in (0.0, 0.25, 0.5, 0.75, 1.0)] + [(rank, 0.5) for rank in (1, 2, 3, 4)]


def test_flipped_bytes_fall_back_quarantine_and_rotation_keeps_the_good(tmp_path, caplog):
  """64 flipped bytes in checkpoint 2 at each placement: no value that changed is ever restored.

  Plain orbax is the reference for what a flip does: it rejects the files, restores
  changed values (the silent case the integrity record exists for), or restores the
  saved values (bytes no value depends on). The first two must fall back to step 1,
  name step 2, move it to quarantine and keep rotation from deleting step 1; the
  third may restore step 2, but only with exactly the saved values.
  """
  pristine = tmp_path / "pristine"
  ckpt = checkpoint.Checkpointer(str(pristine), max_to_keep=2, save_interval_steps=1, async_save=False)
  for s in (1, 2):
    ckpt.save(s, _random_state(s), {"step": s})
  ckpt.close()
  abstract = _abstract(_random_state(0))
  seen = set()
  for rank, where in PLACEMENTS:
    work = tmp_path / f"{rank}-{where:g}"
    shutil.copytree(pristine, work)
    flip(data_files(work, 2)[rank], where)
    kind = _orbax_reads(work, 2, abstract)
    seen.add(kind)
    caplog.clear()
    ckpt = checkpoint.Checkpointer(str(work), max_to_keep=2, save_interval_steps=1, async_save=False)
    state, data, step = ckpt.restore_latest(abstract)
    if kind == "same" and step == 2:
      assert _equal(state, _random_state(2)) and data == {"step": 2}, (rank, where)
      continue
    assert (step, data) == (1, {"step": 1}), (rank, where, kind)
    assert _equal(state, _random_state(1)), (rank, where)
    assert f"{work}/2" in caplog.text and "quarantine" in caplog.text, (rank, where)
    assert os.path.isdir(work / "quarantine" / "2.corrupt") and not os.path.exists(work / "2")
    ckpt.save(3, _random_state(3), {"step": 3})  # max_to_keep=2: keeps 1 and 3
    assert ckpt.all_steps() == [1, 3], (rank, where)
    ckpt.close()
  assert "changed" in seen, f"no placement changed a value silently; the test proves nothing ({seen})"


def _issue_scenario(directory):
  """Good 9 and 12, 15 with flipped values that plain orbax restores silently."""
  ckpt = checkpoint.Checkpointer(str(directory), max_to_keep=3, save_interval_steps=3, async_save=False)
  for s in (9, 12, 15):
    ckpt.save(s, _random_state(s), {"step": s})
  ckpt.close()
  flip(data_files(directory, 15)[0], 0.5)
  assert _orbax_reads(directory, 15, _abstract(_random_state(0))) == "changed"


def test_rotation_after_a_fallback_keeps_every_good_checkpoint(tmp_path, caplog):
  """The issue's case: good {9, 12}, damaged 15; resume gives 12; saving 18 (keep 3) deletes nothing good."""
  _issue_scenario(tmp_path)
  ckpt = checkpoint.Checkpointer(str(tmp_path), max_to_keep=3, save_interval_steps=3, async_save=False)
  state, data, step = ckpt.restore_latest(_abstract(_random_state(0)))
  assert step == 12 and data == {"step": 12} and _equal(state, _random_state(12))
  assert re.search(rf"step 15: {tmp_path}/15: failed its integrity check: 1 of 5 items differ from what was saved "
                   r"\((w|opt/mu)\)"
                   r".*moved to .*quarantine/15\.corrupt", caplog.text), caplog.text
  ckpt.save(18, _random_state(18), {"step": 18})
  assert ckpt.all_steps() == [9, 12, 18]
  assert sorted(os.listdir(tmp_path / "quarantine")) == ["15.corrupt"]
  ckpt.close()


def test_a_new_save_of_a_quarantined_step_number_works(tmp_path):
  _issue_scenario(tmp_path)
  ckpt = checkpoint.Checkpointer(str(tmp_path), max_to_keep=3, save_interval_steps=3, async_save=False)
  ckpt.restore_latest(_abstract(_random_state(0)))
  ckpt.save(15, _random_state(115), {"step": 15})  # the resumed run reaches 15 again
  state, data, step = ckpt.restore_latest(_abstract(_random_state(0)))
  assert step == 15 and _equal(state, _random_state(115))
  flip(data_files(tmp_path, 15)[0], 0.5)  # damaged again: a second quarantine name
  assert ckpt.restore_latest(_abstract(_random_state(0)))[2] == 12
  assert sorted(os.listdir(tmp_path / "quarantine")) == ["15.corrupt", "15.corrupt.1"]
  ckpt.close()


def test_every_checkpoint_damaged_moves_nothing(tmp_path):
  """With no good checkpoint the cause may be shared; nothing moves, so no run restarts from scratch."""
  ckpt = _two_checkpoints(tmp_path)
  for s in (1, 2):
    flip(data_files(tmp_path, s)[0], 0.5)
  with pytest.raises(checkpoint.CheckpointError, match=r"no checkpoint .* could be restored:\nstep 2: .*\nstep 1: "):
    ckpt.restore_latest(_abstract(_state(0)))
  assert ckpt.all_steps() == [1, 2] and not os.path.exists(tmp_path / "quarantine")


def test_checkpoint_without_a_record_restores_with_a_warning(tmp_path, caplog):
  """Written before records existed (plain orbax): restored unverified, and the warning names it."""
  import orbax.checkpoint as ocp
  manager = ocp.CheckpointManager(str(tmp_path))
  manager.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave(_state(1)), data=ocp.args.JsonSave({"step": 1})))
  manager.close()
  state, data, step = checkpoint.Checkpointer(str(tmp_path)).restore_latest(_abstract(_state(0)))
  assert step == 1 and _equal(state, _state(1))
  assert f"{tmp_path}/1 has no integrity record" in caplog.text


def test_checksums_see_every_value_and_not_the_sharding():
  """One changed bit in any element changes the checksum; resharding does not."""
  x = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
  base = checkpoint.state_checksums({"x": x})["x"]
  for i in range(x.size):
    y = x.copy().reshape(-1)
    y[i:i + 1] = (y[i:i + 1].view(np.uint32) ^ np.uint32(1 << (i % 32))).view(np.float32)
    assert checkpoint.state_checksums({"x": y.reshape(x.shape)})["x"] != base, i
  swapped = x.copy()
  swapped[0, [0, 1]] = swapped[0, [1, 0]]  # same values, other places
  assert checkpoint.state_checksums({"x": swapped})["x"] != base
  n = len(jax.devices())
  if n % 2 == 0 and 16 % n == 0:  # tests/conftest.py gives 8 CPU devices
    mesh = sharding.make_mesh(fsdp=n // 2)
    for spec in (P("data", "fsdp"), P(None, ("data", "fsdp")), P()):
      sharded = jax.device_put(x, jax.sharding.NamedSharding(mesh, spec))
      assert checkpoint.state_checksums({"x": sharded})["x"] == base, spec


def _mismatch_setup(tmp_path):
  ckpt = _two_checkpoints(tmp_path)
  before = sorted(os.listdir(tmp_path))
  return ckpt, before


@pytest.mark.parametrize("target, named", [
    ({**_state(0), "extra": jnp.zeros((2,))}, r"extra: in the target only"),
    ({"w": _state(0)["w"]}, r"step: in the checkpoint only"),
    ({**_state(0), "w": jnp.zeros((5, 3))}, r"w: checkpoint \(4, 3\) float32, target \(5, 3\) float32"),
    ({**_state(0), "w": jnp.zeros((4, 3), jnp.bfloat16)}, r"w: checkpoint \(4, 3\) float32, target \(4, 3\) bfloat16"),
])
def test_another_tree_is_a_short_mismatch_with_no_fallback(tmp_path, target, named):
  ckpt, before = _mismatch_setup(tmp_path)
  with pytest.raises(checkpoint.CheckpointMismatch, match=named) as info:
    ckpt.restore_latest(_abstract(target))
  message = str(info.value)
  assert f"{tmp_path}/2 holds another tree" in message and "another config" in message
  assert len(message.splitlines()) < 30 and "strict" not in message and "partial_restore" not in message
  assert sorted(os.listdir(tmp_path)) == before and ckpt.all_steps() == [1, 2]  # no fallback, no quarantine


def test_a_mismatch_names_ten_leaves_then_a_count(tmp_path):
  ckpt, _ = _mismatch_setup(tmp_path)
  target = {**_state(0), **{f"layer_{i:02d}": jnp.zeros((3,)) for i in range(25)}}
  with pytest.raises(checkpoint.CheckpointMismatch, match=r"\(25 leaves differ\)") as info:
    ckpt.restore(_abstract(target), 1)
  assert "layer_09: in the target only" in str(info.value) and "layer_10" not in str(info.value)
  assert str(info.value).endswith("... and 15 more")


@pytest.mark.parametrize("failure", [PermissionError(13, "Permission denied"),
                                     ValueError("UNAVAILABLE: Error reading local file: I/O error"),
                                     TimeoutError("read timed out")])
def test_a_read_failing_outside_the_checkpoint_moves_nothing_and_does_not_fall_back(tmp_path, failure):
  """A flaky filesystem is not damage: the good newest step must stay where it is, in the rotation."""
  ckpt = _two_checkpoints(tmp_path)
  real = ckpt._manager.restore

  def flaky(step, *args, **kwargs):
    if step == 2:
      raise failure
    return real(step, *args, **kwargs)

  ckpt._manager.restore = flaky
  with pytest.raises(checkpoint.CheckpointUnavailable, match=f"{tmp_path}/2: could not be read .*not damage"):
    ckpt.restore_latest(_abstract(_state(0)))
  assert ckpt.all_steps() == [1, 2] and not os.path.exists(tmp_path / "quarantine")
  ckpt._manager.restore = real
  state, _, step = ckpt.restore_latest(_abstract(_state(0)))  # the filesystem is back: the newest restores
  assert step == 2
  np.testing.assert_array_equal(state["w"], np.full((4, 3), 2.0))
