"""Whole-or-nothing writes: an interrupted write leaves the previous file and no litter."""

import json
import os

import numpy as np
import pytest

from asrjax import atomic_file


def test_writes_text_and_bytes(tmp_path):
  with atomic_file.open(tmp_path / "a.json") as f:
    json.dump({"x": 1}, f)
  assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
  with atomic_file.open(tmp_path / "b.npz", "wb") as f:
    np.savez(f, y=np.arange(3))
  assert np.load(tmp_path / "b.npz")["y"].tolist() == [0, 1, 2]


def test_interrupted_write_keeps_the_previous_file(tmp_path):
  path = tmp_path / "results.json"
  path.write_text('{"old": true}')
  with pytest.raises(KeyboardInterrupt):
    with atomic_file.open(path) as f:
      f.write('{"new": ')  # half a document, then the run is interrupted
      f.flush()
      raise KeyboardInterrupt
  assert json.loads(path.read_text()) == {"old": True}
  assert os.listdir(tmp_path) == ["results.json"]


def test_read_modes_are_refused(tmp_path):
  with pytest.raises(ValueError, match="mode"):
    with atomic_file.open(tmp_path / "x", "a"):
      pass
