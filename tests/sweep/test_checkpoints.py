"""Bad-input sweep of `checkpoint.Checkpointer` and `transducer_asr.restore_params` (`tests/sweep/cases.py`).

Shared checkpoints are saved once per module (steps 1, 2, 3 of small random trees;
a tiny ConvRNN-T workdir with steps 3 and 6); each case damages or reads its own
copy. A case that must be accepted is checked against the values that were saved;
a good checkpoint that disappears is `cases.DataLoss`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.train import checkpoint, sharding
from asrjax.tasks import transducer_asr
from tests.sweep import cases
from tests.train.test_checkpoint import data_files, flip as _flip
from tests.sweep.cases import Case

# tensorstore reports the reads of deliberately damaged files as unraisable exceptions at exit
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CheckpointError = checkpoint.CheckpointError
# An older checkout has no CheckpointMismatch: its cases then count by message there (cases.py).
CheckpointMismatch = getattr(checkpoint, "CheckpointMismatch", CheckpointError)
_CTX: dict = {}  # the module's temporary factory and the running case's tmp_path


@pytest.fixture(scope="module", autouse=True)
def _factory(tmp_path_factory):
  _CTX["factory"] = tmp_path_factory
  yield
  _pristine.cache_clear()
  _pristine_workdir.cache_clear()


@pytest.fixture(autouse=True)
def _case_dir(tmp_path):
  _CTX["tmp"] = tmp_path


# ---------------------------------------------------------------- saved trees


def _state(step):
  """Random values (zstd cannot shrink them, so flipped bytes land in values), one tree per step."""
  rng = np.random.default_rng(step)
  return {"w": jnp.asarray(rng.normal(size=(24, 40)), jnp.float32),
          "opt": {"mu": jnp.asarray(rng.normal(size=(24, 40)), jnp.float32), "count": jnp.asarray(step, jnp.int32)},
          "b": jnp.asarray(rng.normal(size=(40,)), jnp.bfloat16)}


def _abstract(tree=None):
  tree = _state(0) if tree is None else tree
  mesh = sharding.make_mesh(devices=jax.devices()[:1])
  return checkpoint.abstract_like(tree, sharding.tree_shardings(mesh, tree))


def _equal(tree, reference) -> bool:
  a, b = jax.tree.leaves(tree), jax.tree.leaves(reference)
  return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def _checkpointer(directory, **kw):
  return checkpoint.Checkpointer(str(directory), **{"max_to_keep": 3, "save_interval_steps": 1,
                                                    "async_save": False, **kw})


@functools.cache
def _pristine() -> str:
  path = str(_CTX["factory"].mktemp("pristine") / "ckpt")
  ckpt = _checkpointer(path)
  for s in (1, 2, 3):
    ckpt.save(s, _state(s), {"step": s})
  ckpt.close()
  return path


def _dir() -> str:
  """This case's copy of the pristine checkpoints (steps 1, 2, 3)."""
  path = str(_CTX["tmp"] / "ckpt")
  if not os.path.exists(path):
    shutil.copytree(_pristine(), path)
  return path


def _files(step, directory=None) -> list[str]:
  """Files of checkpoint ``step``'s state item, largest first (the first holds the arrays' data)."""
  return data_files(directory or _dir(), step)


# ---------------------------------------------------------------- damage


def _truncate(path, fraction):
  with open(path, "r+b") as f:
    f.truncate(int(os.path.getsize(path) * fraction))


def _damaged(*damage):
  """Applies ``damage`` callables to this case's copy; returns the directory."""
  directory = _dir()
  for d in damage:
    d(directory)
  return directory


def _resume(*damage):
  """What a resumed run does: restore_latest after ``damage``; ``(restored, checkpointer)``."""
  ckpt = _checkpointer(_damaged(*damage))
  return ckpt.restore_latest(_abstract()), ckpt


def _intact_or_fallback(result) -> bool:
  """Step 3 with exactly its saved values (the damage touched no value), or a proper fallback:
  step 2's values, 3 in quarantine, and a following save rotates out only the oldest good one."""
  (state, data, step), ckpt = result
  if step == 3:
    return data == {"step": 3} and _equal(state, _state(3))
  if step != 2 or data != {"step": 2} or not _equal(state, _state(2)):
    return False
  quarantined = os.path.isdir(os.path.join(ckpt.directory, "quarantine", "3.corrupt"))
  ckpt.save(4, _state(4), {"step": 4})
  ckpt.save(5, _state(5), {"step": 5})  # keep 3: drops 1, the oldest good one
  if ckpt.all_steps() != [2, 4, 5]:
    raise cases.DataLoss(f"after the fallback and two saves the steps are {ckpt.all_steps()}, not [2, 4, 5]")
  return quarantined


def _flip_data(at):
  return lambda d: _flip(_files(3, d)[0], at)


def _flip_file(rel, at=0.5):
  """Flips bytes in the file ``rel`` of checkpoint 3."""
  return lambda d: _flip(os.path.join(d, "3", rel), at)


class _ReadOnly:
  """``directory`` made read-only, for root too (``chattr +i``: root ignores the mode bits)."""

  def __init__(self, directory):
    self.directory = directory

  def __enter__(self):
    os.chmod(self.directory, 0o555)
    if os.geteuid() == 0 and subprocess.run(["chattr", "+i", self.directory], capture_output=True).returncode:
      os.chmod(self.directory, 0o755)
      pytest.skip("running as root without chattr: cannot make a directory read-only")
    return self

  def __exit__(self, *exc):
    if os.geteuid() == 0:
      subprocess.run(["chattr", "-i", self.directory], check=True)
    os.chmod(self.directory, 0o755)


def _save_read_only():
  """Saving step 4 into a read-only directory: the error, and what the directory still restores."""
  directory = _dir()
  with _ReadOnly(directory):
    try:
      _checkpointer(directory).save(4, _state(4), {"step": 4})
      error = None
    except Exception as e:  # noqa: BLE001 -- classified by the check
      error = e
  return error, _checkpointer(directory).restore_latest(_abstract())


def _read_only_check(result) -> bool:
  error, (state, data, step) = result
  if step != 3 or not _equal(state, _state(3)):
    raise cases.DataLoss(f"a failed save into a read-only directory left step {step} as the newest good one")
  return isinstance(error, OSError) and _dir() in str(error)


def _issue_rotation():
  """Issue 14's case: good 9 and 12, 15 damaged in place; resume; save 18 with keep 3."""
  directory = str(_CTX["tmp"] / "issue")
  ckpt = _checkpointer(directory, save_interval_steps=3)
  for s in (9, 12, 15):
    ckpt.save(s, _state(s), {"step": s})
  _flip(_files(15, directory)[0], 0.5)
  ckpt = _checkpointer(directory, save_interval_steps=3)
  restored = ckpt.restore_latest(_abstract())
  ckpt.save(18, _state(18), {"step": 18})
  return restored, ckpt


def _issue_check(result) -> bool:
  (state, _, step), ckpt = result
  if not {9, 12} <= set(ckpt.all_steps()):
    raise cases.DataLoss(f"good checkpoints deleted: the steps held are {ckpt.all_steps()}")
  return (step == 12 and _equal(state, _state(12)) and ckpt.all_steps() == [9, 12, 18]
          and os.path.isdir(os.path.join(ckpt.directory, "quarantine", "15.corrupt")))


def _resave_quarantined_step():
  """After 3 is quarantined, the resumed run saves a new step 3; it must restore as written."""
  (_, _, step), ckpt = _resume(_flip_data(0.5))
  ckpt.save(3, _state(33), {"step": 3})
  return step, ckpt.restore_latest(_abstract()), ckpt


def _legacy(*damage):
  """Checkpoints 6 and 7 written by plain orbax (before integrity records), then ``damage`` to 7."""
  import orbax.checkpoint as ocp
  directory = str(_CTX["tmp"] / "legacy")
  manager = ocp.CheckpointManager(directory)
  for s in (6, 7):
    manager.save(s, args=ocp.args.Composite(state=ocp.args.StandardSave(_state(s)),
                                            data=ocp.args.JsonSave({"step": s})))
  manager.close()
  for d in damage:
    d(os.path.join(directory, "7"))
  return _checkpointer(directory).restore_latest(_abstract())


def _untouched_mismatch(target):
  """A mismatching target after damaging step 1: raises at once; the directory must not change
  (a change fails the case: DataLoss replaces the expected error).
  """
  directory = _damaged(lambda d: _flip(_files(1, d)[0], 0.5))
  before = sorted(os.listdir(directory))
  try:
    _checkpointer(directory).restore_latest(_abstract(target))
  finally:
    if sorted(os.listdir(directory)) != before:
      raise cases.DataLoss(f"a mismatching target moved checkpoints: {before} -> {sorted(os.listdir(directory))}")


def _save_more(ckpt, *steps):
  """Saves ``steps``; the steps held after."""
  for s in steps:
    ckpt.save(s, _state(s), {"step": s})
  return ckpt.all_steps()


def _forced_save(ckpt):
  assert ckpt.save(4, _state(4), {"step": 4}, force=True)
  return ckpt.restore_latest(_abstract())


def _empty_step_dir():
  """An empty directory ``4`` (orbax lists it as a step): skipped and quarantined."""
  ckpt = _checkpointer(_damaged(lambda d: os.makedirs(os.path.join(d, "4"))))
  quarantined = os.path.join(_dir(), "quarantine", "4.corrupt")
  return ckpt.restore_latest(_abstract()), ckpt.all_steps(), os.path.isdir(quarantined)


def _no_quarantine():
  ckpt = _checkpointer(_damaged(_flip_data(0.5)))
  return ckpt.restore_latest(_abstract(), quarantine=False), ckpt.all_steps()


def _a_file():
  path = str(_CTX["tmp"] / "plain_file")
  with open(path, "w") as f:
    f.write("not a directory")
  return path


def _restored_is(step):
  def check(result):
    state, data, got = result
    return got == step and data == {"step": step} and _equal(state, _state(step))
  return check


def _given_step_check(step):
  def check(result):
    state, data = result
    return data == {"step": step} and _equal(state, _state(step))
  return check


# ---------------------------------------------------------------- restore_params on a tiny model


@functools.cache
def _pristine_workdir():
  """A tiny ConvRNN-T workdir: tokenizer, feature statistics and checkpoints 3 and 6 of random states."""
  from asrjax.data import tokenizer as tokenizer_lib
  from asrjax.train import trainer
  workdir = str(_CTX["factory"].mktemp("workdir") / "wd")
  os.makedirs(workdir)
  config = _config()
  tok = tokenizer_lib.CharTokenizer.build(["the quick brown fox", "jumps over the lazy dog"])
  tok.save(os.path.join(workdir, "tokenizer.json"))
  with open(os.path.join(workdir, "feature_stats.json"), "w") as f:
    json.dump({"mean": [0.0] * 80, "std": [1.0] * 80, "utterances": 1}, f)
  abstract = trainer.abstract_state(transducer_asr.TransducerASR.from_config(config, workdir))
  states = {}
  ckpt = _checkpointer(os.path.join(workdir, "checkpoints"))
  for s in (3, 6):
    rng = np.random.default_rng(s)
    states[s] = jax.tree.map(lambda a: rng.normal(size=a.shape).astype(a.dtype), abstract)
    ckpt.save(s, states[s], {"step": s})
  ckpt.close()
  return workdir, states


def _config(**encoder):
  from tests.experiments.test_configs import load
  config = load("convrnnt", "tiny")
  config.model.encoder.update(encoder)
  return config


def _workdir(*damage):
  workdir = str(_CTX["tmp"] / "wd")
  if not os.path.exists(workdir):
    shutil.copytree(_pristine_workdir()[0], workdir)
  for d in damage:
    d(os.path.join(workdir, "checkpoints"))
  return workdir


def _restore_params(*damage, config=None, **kw):
  return transducer_asr.restore_params(config or _config(), _workdir(*damage), **kw)


def _params_of(step):
  """Checks a `transducer_asr.Restored`: checkpoint ``step``'s parameters, and the workdir still holds 6."""
  def check(restored):
    if not os.path.isdir(os.path.join(_workdir(), "checkpoints", "6")):
      raise cases.DataLoss("restore_params moved or deleted checkpoint 6 of the training workdir")
    return restored.steps == (step,) and _equal(restored.params, _pristine_workdir()[1][step].params)
  return check


def _flip_ckpt6(d):
  _flip(_files(6, d)[0], 0.5)


# ---------------------------------------------------------------- the table

_BAD_STEP = r"step must be an int >= 0"
_NOT_AFTER = r"step \d+ is not after the newest checkpoint \(step 3\)"

CASES = [
    # constructor arguments
    Case("ckpt/init/max_to_keep=0", lambda: _checkpointer(_dir(), max_to_keep=0),
         raises=ValueError, match=r"max_to_keep must be an int >= 1.*got 0"),
    Case("ckpt/init/max_to_keep=-1", lambda: _checkpointer(_dir(), max_to_keep=-1),
         raises=ValueError, match=r"max_to_keep must be an int >= 1.*got -1"),
    Case("ckpt/init/max_to_keep=2.5", lambda: _checkpointer(_dir(), max_to_keep=2.5),
         raises=ValueError, match=r"max_to_keep must be an int"),
    Case("ckpt/init/max_to_keep=None keeps all", lambda: _save_more(_checkpointer(_dir(), max_to_keep=None), 4, 5, 6),
         check=lambda steps: steps == [1, 2, 3, 4, 5, 6]),
    Case("ckpt/init/save_interval_steps=0", lambda: _checkpointer(_dir(), save_interval_steps=0),
         raises=ValueError, match=r"save_interval_steps must be an int >= 1.*got 0"),
    Case("ckpt/init/save_interval_steps=-2", lambda: _checkpointer(_dir(), save_interval_steps=-2),
         raises=ValueError, match=r"save_interval_steps must be an int >= 1.*got -2"),
    Case("ckpt/init/directory is a file", lambda: _checkpointer(_a_file()),
         raises=NotADirectoryError, match=r"checkpoint directory .*plain_file exists and is not a directory"),
    # save arguments
    Case("ckpt/save/step=-1", lambda: _checkpointer(_dir()).save(-1, _state(0), {}), raises=ValueError,
         match=_BAD_STEP + r"; got -1"),
    Case("ckpt/save/step=4.5", lambda: _checkpointer(_dir()).save(4.5, _state(0), {}), raises=ValueError,
         match=_BAD_STEP + r"; got 4.5"),
    Case("ckpt/save/step already held", lambda: _checkpointer(_dir()).save(3, _state(0), {}), raises=ValueError,
         match=_NOT_AFTER),
    Case("ckpt/save/step before the newest", lambda: _checkpointer(_dir()).save(2, _state(0), {}, force=True),
         raises=ValueError, match=_NOT_AFTER),
    Case("ckpt/save/data_state not JSON", lambda: _checkpointer(_dir()).save(4, _state(4), {"step": object()}),
         raises=TypeError, match=r"data_state must be a JSON-serializable dict.*object"),
    Case("ckpt/save/data_state a list", lambda: _checkpointer(_dir()).save(4, _state(4), [4]),
         raises=TypeError, match=r"data_state must be a JSON-serializable dict: got a list"),
    Case("ckpt/save/off the interval is skipped", lambda: _save_more(_checkpointer(_dir(), save_interval_steps=3), 4),
         check=lambda steps: steps == [1, 2, 3]),
    Case("ckpt/save/force off the interval", lambda: _forced_save(_checkpointer(_dir(), save_interval_steps=3)),
         check=_restored_is(4)),
    Case("ckpt/save/read-only directory", _save_read_only, check=_read_only_check),
    # restore arguments
    Case("ckpt/restore/step=-1", lambda: _checkpointer(_dir()).restore(_abstract(), -1),
         raises=CheckpointError, match=r"no checkpoint of step -1 under .*; it holds steps \[1, 2, 3\]"),
    Case("ckpt/restore/step not held", lambda: _checkpointer(_dir()).restore(_abstract(), 7),
         raises=CheckpointError, match=r"no checkpoint of step 7 under .*; it holds steps \[1, 2, 3\]"),
    Case("ckpt/restore/an earlier step", lambda: _checkpointer(_dir()).restore(_abstract(), 2),
         check=_given_step_check(2)),
    Case("ckpt/restore/a damaged given step never substitutes",
         lambda: _checkpointer(_damaged(_flip_data(0.5))).restore(_abstract(), 3),
         raises=CheckpointError, match=r"/3: failed its integrity check: 1 of 5 items differ"),
    Case("ckpt/restore_latest/empty directory",
         lambda: _checkpointer(str(_CTX["tmp"] / "empty")).restore_latest(_abstract()), check=lambda r: r is None),
    Case("ckpt/restore_latest/legacy checkpoint without a record", _legacy, check=_restored_is(7)),
    Case("ckpt/restore_latest/legacy newest without state/_METADATA",
         lambda: _legacy(lambda d: os.remove(os.path.join(d, "state", "_METADATA"))),
         check=lambda r: _restored_is(6)(r) or _restored_is(7)(r)),  # 7's values are intact, but unverifiable
    Case("ckpt/restore_latest/legacy newest with its data file's head flipped (orbax rejects it)",
         lambda: _legacy(lambda d: _flip(_files(7, os.path.dirname(d))[0], 0.0)), check=_restored_is(6)),
    # wrong targets: another config, never a fallback
    Case("ckpt/restore/target with an extra leaf",
         lambda: _untouched_mismatch({**_state(0), "extra": jnp.zeros(3)}),
         raises=CheckpointMismatch, match=r"1 leaf differs.*another config.*extra: in the target only"),
    Case("ckpt/restore/target missing a leaf",
         lambda: _untouched_mismatch({"w": _state(0)["w"], "b": _state(0)["b"]}),
         raises=CheckpointMismatch, match=r"2 leaves differ.*opt/count: in the checkpoint only"),
    Case("ckpt/restore/target of another shape",
         lambda: _untouched_mismatch({**_state(0), "w": jnp.zeros((24, 41))}),
         raises=CheckpointMismatch, match=r"w: checkpoint \(24, 40\) float32, target \(24, 41\) float32"),
    Case("ckpt/restore/target of another dtype",
         lambda: _untouched_mismatch({**_state(0), "b": jnp.zeros(40, jnp.float32)}),
         raises=CheckpointMismatch, match=r"b: checkpoint \(40,\) bfloat16, target \(40,\) float32"),
    Case("ckpt/restore/target None", lambda: _checkpointer(_dir()).restore(None, 3),
         raises=TypeError, match=r"abstract_state must be the restore target.*got None"),
    # damaged newest checkpoint: never a changed value; fallback keeps the good ones
    *[Case(f"ckpt/restore_latest/flip 64 B at {at:.0%} of the data file", functools.partial(_resume, _flip_data(at)),
           check=_intact_or_fallback) for at in (0.0, 0.25, 0.5, 0.75, 1.0)],
    *[Case(f"ckpt/restore_latest/flip 64 B mid-file, file {rank + 1} by size",
           functools.partial(_resume, lambda d, r=rank: _flip(_files(3, d)[r], 0.5)), check=_intact_or_fallback)
      for rank in (1, 2, 3)],
    Case("ckpt/restore_latest/flip the integrity record",
         functools.partial(_resume, _flip_file("integrity/metadata", 0.3)), check=_intact_or_fallback),
    Case("ckpt/restore_latest/flip the data state", functools.partial(_resume, _flip_file("data/metadata", 0.0)),
         check=_intact_or_fallback),
    Case("ckpt/restore_latest/edit the data state's step",
         functools.partial(_resume, lambda d: open(os.path.join(d, "3", "data", "metadata"), "w").write('{"step": 9}')),
         check=_intact_or_fallback),
    Case("ckpt/restore_latest/truncated data file",
         functools.partial(_resume, lambda d: _truncate(_files(3, d)[0], 0.5)), check=_intact_or_fallback),
    Case("ckpt/restore_latest/every file truncated to 0", functools.partial(
        _resume, lambda d: [_truncate(f, 0) for f in _files(3, d)]), check=_intact_or_fallback),
    Case("ckpt/restore_latest/deleted data file", functools.partial(_resume, lambda d: os.remove(_files(3, d)[0])),
         check=_intact_or_fallback),
    Case("ckpt/restore_latest/deleted state/_METADATA", functools.partial(
        _resume, lambda d: os.remove(os.path.join(d, "3", "state", "_METADATA"))), check=_intact_or_fallback),
    Case("ckpt/restore_latest/deleted integrity record", functools.partial(
        _resume, lambda d: shutil.rmtree(os.path.join(d, "3", "integrity"))), check=_intact_or_fallback),
    Case("ckpt/restore_latest/deleted state item", functools.partial(
        _resume, lambda d: shutil.rmtree(os.path.join(d, "3", "state"))), check=_intact_or_fallback),
    Case("ckpt/restore_latest/missing _CHECKPOINT_METADATA", functools.partial(
        _resume, lambda d: os.remove(os.path.join(d, "3", "_CHECKPOINT_METADATA"))), check=_intact_or_fallback),
    Case("ckpt/restore_latest/empty step directory", _empty_step_dir,
         check=lambda r: _restored_is(3)(r[0]) and r[1] == [1, 2, 3] and r[2]),
    Case("ckpt/restore_latest/middle checkpoint damaged, newest good",
         functools.partial(_resume, lambda d: _flip(_files(2, d)[0], 0.5)), check=lambda r: _restored_is(3)(r[0])),
    Case("ckpt/restore_latest/every checkpoint damaged", lambda: _checkpointer(_damaged(
        *[lambda d, s=s: _flip(_files(s, d)[0], 0.5) for s in (1, 2, 3)])).restore_latest(_abstract()),
         raises=CheckpointError, match=r"no checkpoint under .* could be restored:\nstep 3: .*\nstep 2: .*\nstep 1: "),
    Case("ckpt/restore_latest/quarantine=False leaves the directory", _no_quarantine,
         check=lambda r: _restored_is(2)(r[0]) and r[1] == [1, 2, 3]),
    Case("ckpt/rotation/issue 14: good 9, 12; damaged 15; save 18", _issue_rotation, check=_issue_check),
    Case("ckpt/rotation/new save of a quarantined step number", _resave_quarantined_step,
         check=lambda r: r[0] == 2 and r[1][2] == 3 and _equal(r[1][0], _state(33))),
    # transducer_asr.restore_params
    Case("trainer/restore_params/step=-1", lambda: _restore_params(step=-1),
         raises=ValueError, match=r"no checkpoint of step -1; the steps held are \[3, 6\]"),
    Case("trainer/restore_params/step not held", lambda: _restore_params(step=5),
         raises=ValueError, match=r"no checkpoint of step 5; the steps held are \[3, 6\]"),
    Case("trainer/restore_params/average=0", lambda: _restore_params(average=0),
         raises=ValueError, match=r"average must be >= 1 checkpoints; got 0"),
    Case("trainer/restore_params/average larger than held", lambda: _restore_params(average=3),
         raises=ValueError, match=r"averaging 3 checkpoints needs 3 .* the steps held are \[3, 6\]"),
    Case("trainer/restore_params/another config", lambda: _restore_params(config=_config(channels=24)),
         raises=CheckpointMismatch,
         match=r"checkpoints/6 holds another tree .*params/params/encoder/.* target .*\.\.\. and \d+ more\n.* was "
               r"trained with another config than this one: evaluate with the config"),
    Case("trainer/restore_params/damaged newest", lambda: _restore_params(_flip_ckpt6), check=_params_of(3)),
    Case("trainer/restore_params/average=2 over a damaged one", lambda: _restore_params(_flip_ckpt6, average=2),
         raises=CheckpointError,
         # which one depends on whether the flipped bytes still decode; both name the step and say it is bad
         match=r"checkpoints/6: (failed its integrity check|unreadable: \w+: [^<]*$)"),
    Case("trainer/restore_params/a given step", lambda: _restore_params(step=3), check=_params_of(3)),
]


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_checkpoint_sweep(case):
  cases.assert_case(case)


def test_mismatch_messages_are_short():
  """The other-config message is under 30 lines (no orbax advice walls)."""
  with pytest.raises(CheckpointMismatch) as info:
    _restore_params(config=_config(channels=24, lstm_hidden=48))
  assert len(str(info.value).splitlines()) < 30 and "strict" not in str(info.value)
