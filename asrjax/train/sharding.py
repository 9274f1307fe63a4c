"""Device mesh and shardings: batch over ``("data", "fsdp")``, parameters over ``"fsdp"``.

Modern jit-based SPMD (the successor of pjit): one `jax.sharding.Mesh` with a data
axis and an FSDP axis. The batch is split over both axes; each parameter (and its
optimizer state) is split along ``"fsdp"`` on its largest dimension divisible by the
axis size, else replicated. With ``fsdp=1`` this is plain data parallelism. XLA
inserts the all-gathers and reduce-scatters.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA, FSDP = "data", "fsdp"
BATCH_AXES = (DATA, FSDP)


def make_mesh(fsdp: int = 1, devices=None) -> Mesh:
  """A ``(data, fsdp)`` mesh over ``devices`` (default: all), ``data = n // fsdp``."""
  devices = list(jax.devices() if devices is None else devices)
  if len(devices) % fsdp:
    raise ValueError(f"{len(devices)} devices cannot form an fsdp axis of {fsdp}.")
  return Mesh(np.array(devices).reshape(len(devices) // fsdp, fsdp), (DATA, FSDP))


def param_spec(shape: tuple, fsdp: int) -> P:
  """Shard the largest dimension divisible by ``fsdp``; replicate if none is."""
  if fsdp > 1:
    for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
      if shape[axis] % fsdp == 0 and shape[axis] >= fsdp:
        spec = [None] * len(shape)
        spec[axis] = FSDP
        return P(*spec)
  return P()


def tree_shardings(mesh: Mesh, tree):
  """`NamedSharding` for every leaf of a parameter / optimizer-state pytree."""
  fsdp = mesh.shape[FSDP]
  return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(np.shape(x), fsdp)), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over every device."""
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())
