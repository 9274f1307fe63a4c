r"""Streaming Conformer baseline (causal attention with a 64-frame window), size matched to ConvRNN-T.

``chunk_size=1`` gives zero look-ahead, equal to ConvRNN-T's; larger chunks trade
latency for accuracy (look-ahead ``(chunk_size - 1) * stack * 10`` ms).

  python experiments/train.py --config=experiments/configs/conformer.py --workdir=workdirs/conformer
  python experiments/train.py --config=experiments/configs/conformer.py:tiny --workdir=/tmp/conformer_tiny
"""

from asrjax.train import config_files

common = config_files.sibling(__file__, "common")  # by path: no sys.path edit


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
