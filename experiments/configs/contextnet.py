r"""Causal ContextNet baseline (running-mean SE), size matched to ConvRNN-T.

  python experiments/train.py --config=experiments/configs/contextnet.py --workdir=workdirs/contextnet
  python experiments/train.py --config=experiments/configs/contextnet.py:tiny --workdir=/tmp/contextnet_tiny
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
  c.model.name = "contextnet"
  c.model.encoder = dict(stack=4, channels=264, blocks=5, layers_per_block=3, kernel_size=5, output_dim=256)
  c.model.transducer = dict(common.TRANSDUCER)
  if arg == "tiny":
    c.model.encoder = dict(stack=3, channels=16, blocks=1, layers_per_block=2, kernel_size=3, output_dim=32)
    c.model.transducer = dict(common.TINY_TRANSDUCER)
  return c
