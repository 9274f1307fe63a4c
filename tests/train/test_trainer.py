"""The training loop end to end on the tiny corpus: SIGKILL + restart == uninterrupted run, bitwise."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("espeak-ng", "sox", "flite", "festival", "mbrola", "pico2wave")),
        reason="the tiny config trains on synth_speech/tiny: needs espeak-ng/flite/festival/mbrola/pico/sox (make system-deps)"),
]


def _train_cmd(workdir, data_dir, steps):
  return [sys.executable, os.path.join(ROOT, "experiments/train.py"),
          "--config=" + os.path.join(ROOT, "experiments/configs/convrnnt.py") + ":tiny",
          f"--workdir={workdir}", f"--config.data.data_dir={data_dir}", f"--config.train.num_steps={steps}",
          "--config.data.buckets=(160000,)", "--config.data.max_labels=(128,)", "--config.train.checkpoint_every=2", "--config.eval.splits=()"]


def _final_params(workdir):
  import jax
  import orbax.checkpoint as ocp
  mngr = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
  step = mngr.latest_step()
  restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(), data=ocp.args.JsonRestore()))
  return step, jax.tree.leaves(restored["state"]), restored["data"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  from asrjax.corpus import espeak_corpus
  path = str(tmp_path_factory.mktemp("tfds"))
  espeak_corpus.SynthSpeech(config="tiny", data_dir=path, num_workers=2).download_and_prepare(
      file_format="array_record")
  return path


def test_two_processes_train_together_and_agree(tmp_path, data_dir):
  """Two local processes joined by jax.distributed.initialize, each feeding half of every batch."""
  import socket
  with socket.socket() as sock:
    sock.bind(("localhost", 0))
    port = sock.getsockname()[1]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  cmd = _train_cmd(str(tmp_path / "wd"), data_dir, 6) + [f"--coordinator=localhost:{port}", "--num_processes=2"]
  procs = [subprocess.Popen(cmd + [f"--process_id={i}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True) for i in range(2)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), outs[0][-3000:] + outs[1][-3000:]
  digests = [next(line.split()[-1] for line in out.splitlines() if "params_digest" in line and line.startswith("process"))
             for out in outs]
  assert digests[0] == digests[1]
  assert "'steps': 6" in outs[0]


def test_killed_and_resumed_run_ends_bitwise_equal(tmp_path, data_dir):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  steps = 16
  straight = str(tmp_path / "straight")
  subprocess.run(_train_cmd(straight, data_dir, steps), check=True, env=env, capture_output=True)

  killed = str(tmp_path / "killed")
  proc = subprocess.Popen(_train_cmd(killed, data_dir, steps), env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 600
  while time.time() < deadline and not os.path.isdir(os.path.join(killed, "checkpoints", "4")):
    time.sleep(0.01)
  assert proc.poll() is None, "the run finished before it could be killed; the test would prove nothing"
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  assert os.path.isdir(os.path.join(killed, "checkpoints", "4")), "run never reached step 4"
  assert not os.path.isdir(os.path.join(killed, "checkpoints", str(steps))), "killed run had already finished"
  subprocess.run(_train_cmd(killed, data_dir, steps), check=True, env=env, capture_output=True)

  step_a, leaves_a, data_a = _final_params(straight)
  step_b, leaves_b, data_b = _final_params(killed)
  assert step_a == step_b == steps and data_a["step"] == data_b["step"]
  for a, b in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  events = [f for f in os.listdir(os.path.join(straight, "tensorboard")) if f.startswith("events.out.tfevents")]
  assert events and os.path.getsize(os.path.join(straight, "tensorboard", events[0])) > 100  # scalars were written
  _check_restore_params(straight, data_dir, steps)


def _check_restore_params(workdir, data_dir, last):
  """`transducer_asr.restore_params` against orbax read directly: a given step, the newest, a mean of two."""
  import jax
  from asrjax.tasks import transducer_asr
  from tests.experiments.test_configs import load
  config = load("convrnnt", "tiny")
  config.data.data_dir = data_dir
  newest = transducer_asr.restore_params(config, workdir)
  assert newest.steps == (last,)
  for a, b in zip(jax.tree.leaves(newest.params), _orbax_params(workdir, last)):
    np.testing.assert_array_equal(np.asarray(a), b)
  earlier = transducer_asr.restore_params(config, workdir, step=last - 2)
  assert earlier.steps == (last - 2,)
  for a, b in zip(jax.tree.leaves(earlier.params), _orbax_params(workdir, last - 2)):
    np.testing.assert_array_equal(np.asarray(a), b)
  mean = transducer_asr.restore_params(config, workdir, average=2)
  assert mean.steps == (last - 2, last)
  for a, b, c in zip(jax.tree.leaves(mean.params), _orbax_params(workdir, last - 2), _orbax_params(workdir, last)):
    np.testing.assert_allclose(np.asarray(a), (b.astype(np.float64) + c) / 2, rtol=1e-6)
  with pytest.raises(ValueError, match=rf"no checkpoint of step {last - 1}"):
    transducer_asr.restore_params(config, workdir, step=last - 1)


def _orbax_params(workdir, step):
  import jax
  import orbax.checkpoint as ocp
  mngr = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
  restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(), data=ocp.args.JsonRestore()))
  return [np.asarray(x) for x in jax.tree.leaves(restored["state"]["params"])]
