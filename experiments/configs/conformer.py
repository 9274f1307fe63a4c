r"""Streaming Conformer baseline (causal attention with a 64-frame window), size matched to ConvRNN-T.

``chunk_size=1`` gives zero look-ahead, equal to ConvRNN-T's; larger chunks trade
latency for accuracy (look-ahead ``(chunk_size - 1) * stack * 10`` ms).

  python experiments/train.py --config=experiments/configs/conformer.py --workdir=workdirs/conformer
  python experiments/train.py --config=experiments/configs/conformer.py:tiny --workdir=/tmp/conformer_tiny
"""

import importlib.util
import os


def _load_sibling(name: str):
  """``<name>.py`` of this directory, loaded by path: no ``sys.path`` edit, any current directory."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
  spec = importlib.util.spec_from_file_location(f"asrjax_experiment_configs_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


common = _load_sibling("common")


def get_config(arg: str | None = None):
  arg = common.variant(arg)  # "tiny" or "variant=tiny"; None or "" = the default variant
  c = common.get_base(arg)
  c.model.name = "conformer"
  c.model.encoder = dict(stack=4, dim=136, heads=4, ff_mult=4, conv_kernel=15, layers=3, chunk_size=1,
                         left_chunks=64, output_dim=256)
  c.model.transducer = dict(common.TRANSDUCER)
  if arg == "tiny":
    c.model.encoder = dict(stack=3, dim=16, heads=2, ff_mult=2, conv_kernel=3, layers=1, chunk_size=1,
                           left_chunks=8, output_dim=32)
    c.model.transducer = dict(common.TINY_TRANSDUCER)
  return c
