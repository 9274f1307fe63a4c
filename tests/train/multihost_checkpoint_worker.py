"""One process of `test_checkpoint_multihost.py`: two processes share a sharded state and a directory.

  python multihost_checkpoint_worker.py <port> <process_id> <directory> <scenario>

Saves steps 1 and 2 of an array sharded over both processes' devices; process 0 then
damages step 2 (64 flipped bytes in the middle of its largest data file), and for the
``blocked`` scenario also puts a file where ``quarantine/`` must go. Both restore
with `restore_latest` and print ``RESULT <json>``: the step restored and the array's
value, or the error type and its first line.
"""

import json
import os
import sys

import jax

port, pid, directory, scenario = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(f"localhost:{port}", 2, pid)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

from asrjax.train import checkpoint, sharding  # noqa: E402

mesh = sharding.make_mesh()  # one device per process: the array spans processes
spec = NamedSharding(mesh, P(sharding.DATA))


def state(x):
  return {"w": jax.make_array_from_callback((4, 3), spec, lambda idx: np.full((4, 3), x, np.float32)[idx])}


ckpt = checkpoint.Checkpointer(directory, max_to_keep=3, save_interval_steps=1, async_save=False)
for s in (1, 2):
  ckpt.save(s, state(float(s)), {"step": s})
ckpt.wait()
multihost_utils.sync_global_devices("saved")
if pid == 0:
  root = os.path.join(directory, "2", "state")
  largest = max((os.path.join(r, f) for r, _, fs in os.walk(root) for f in fs), key=os.path.getsize)
  size = os.path.getsize(largest)
  with open(largest, "r+b") as f:
    f.seek(size // 2)
    block = f.read(64)
    f.seek(size // 2)
    f.write(bytes(b ^ 0xFF for b in block))
  if scenario == "blocked":
    with open(os.path.join(directory, "quarantine"), "w") as f:
      f.write("a file where the quarantine folder must go")
multihost_utils.sync_global_devices("damaged")
abstract = {"w": jax.ShapeDtypeStruct((4, 3), jnp.float32, sharding=spec)}
try:
  restored, data, step = ckpt.restore_latest(abstract)
  local = [np.asarray(s.data) for s in restored["w"].addressable_shards]
  result = {"step": step, "data": data, "values": sorted({float(v) for a in local for v in a.ravel()})}
except checkpoint.CheckpointError as e:
  result = {"error": type(e).__name__, "message": str(e).splitlines()[0]}
print("RESULT " + json.dumps(result), flush=True)
