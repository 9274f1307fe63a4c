r"""Streaming Conformer baseline (causal attention with a 64-frame window), size matched to ConvRNN-T.

``chunk_size=1`` gives zero look-ahead, equal to ConvRNN-T's; larger chunks trade
latency for accuracy (look-ahead ``(chunk_size - 1) * stack * 10`` ms).

  python experiments/train.py --config=experiments/configs/conformer.py --workdir=workdirs/conformer
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config(arg: str | None = None):
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
