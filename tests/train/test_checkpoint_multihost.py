"""Damaged-checkpoint fallback and quarantine across two processes joined by jax.distributed."""

import json
import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multihost_checkpoint_worker.py")


def _run(directory, scenario):
  with socket.socket() as sock:
    sock.bind(("localhost", 0))
    port = sock.getsockname()[1]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="", PYTHONPATH=ROOT)
  procs = [subprocess.Popen([sys.executable, WORKER, str(port), str(i), str(directory), scenario], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outs = [p.communicate(timeout=300)[0] for p in procs]  # a process left at a barrier would time out here
  results = []
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
    results.append(json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[len("RESULT "):]))
  return results


def test_both_processes_fall_back_and_the_damaged_step_is_quarantined_once(tmp_path):
  results = _run(tmp_path, "plain")
  assert [r["step"] for r in results] == [1, 1] and all(r["values"] == [1.0] for r in results), results
  assert sorted(os.listdir(tmp_path / "quarantine")) == ["2.corrupt"]
  assert not os.path.exists(tmp_path / "2")


def test_a_quarantine_that_cannot_be_made_stops_both_processes_with_the_same_error(tmp_path):
  results = _run(tmp_path, "blocked")
  assert all(r.get("error") == "CheckpointError" for r in results), results
  assert all("could not be moved out of the rotation" in r["message"] for r in results), results
  assert os.path.isdir(tmp_path / "2")  # nothing was lost
