r"""ConvRNN-T (Radfar et al., 2022) on the embedded corpus.

  python experiments/train.py --config=experiments/configs/convrnnt.py --workdir=workdirs/convrnnt
  python experiments/train.py --config=experiments/configs/convrnnt.py:demo --workdir=workdirs/demo
  python experiments/train.py --config=experiments/configs/convrnnt.py:tiny --workdir=/tmp/convrnnt_tiny
"""

from asrjax.train import config_files

common = config_files.sibling(__file__, "common")  # by path: no sys.path edit


def get_config(arg: str | None = None):
  arg = common.variant(arg)  # "tiny" or "variant=tiny"; None or "" = the default variant
  c = common.get_base(arg)
  c.model.name = "convrnnt"  # module in asrjax.models exporting build(config, vocab_size)
  c.model.encoder = dict(stack=4, channels=128, local_layers=2, local_kernel=5, global_blocks=2, global_kernel=5,
                         lstm_hidden=256, lstm_layers=2, output_dim=256, dropout=0.0)
  c.model.transducer = dict(common.TRANSDUCER)
  if arg == "tiny":
    c.model.encoder = dict(stack=3, channels=16, local_layers=1, local_kernel=3, global_blocks=1, global_kernel=3,
                           lstm_hidden=32, lstm_layers=1, output_dim=32)
    c.model.transducer = dict(common.TINY_TRANSDUCER)
  return c
