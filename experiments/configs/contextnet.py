r"""Causal ContextNet baseline (running-mean SE), size matched to ConvRNN-T.

  python experiments/train.py --config=experiments/configs/contextnet.py --workdir=workdirs/contextnet
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config(arg: str | None = None):
  c = common.get_base(arg)
  c.model.name = "contextnet"
  c.model.encoder = dict(stack=4, channels=264, blocks=5, layers_per_block=3, kernel_size=5, output_dim=256)
  c.model.transducer = dict(common.TRANSDUCER)
  if arg == "tiny":
    c.model.encoder = dict(stack=3, channels=16, blocks=1, layers_per_block=2, kernel_size=3, output_dim=32)
    c.model.transducer = dict(common.TINY_TRANSDUCER)
  return c
