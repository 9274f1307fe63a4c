r"""Causal ContextNet baseline (running-mean SE), size matched to ConvRNN-T.

  python experiments/train.py --config=experiments/configs/contextnet.py --workdir=workdirs/contextnet
  python experiments/train.py --config=experiments/configs/contextnet.py:tiny --workdir=/tmp/contextnet_tiny
"""

from asrjax.train import config_files

common = config_files.sibling(__file__, "common")  # by path: no sys.path edit


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
