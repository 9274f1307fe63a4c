r"""Vanilla LSTM RNN-T baseline, encoder size matched to ConvRNN-T.

  python experiments/train.py --config=experiments/configs/lstm_rnnt.py --workdir=workdirs/lstm_rnnt
  python experiments/train.py --config=experiments/configs/lstm_rnnt.py:tiny --workdir=/tmp/lstm_rnnt_tiny
"""

from asrjax.train import config_files

common = config_files.sibling(__file__, "common")  # by path: no sys.path edit


def get_config(arg: str | None = None):
  arg = common.variant(arg)  # "tiny" or "variant=tiny"; None or "" = the default variant
  c = common.get_base(arg)
  c.model.name = "lstm_rnnt"
  c.model.encoder = dict(stack=4, lstm_hidden=280, lstm_layers=2, output_dim=256, dropout=0.0)
  c.model.transducer = dict(common.TRANSDUCER)
  if arg == "tiny":
    c.model.encoder = dict(stack=3, lstm_hidden=32, lstm_layers=1, output_dim=32)
    c.model.transducer = dict(common.TINY_TRANSDUCER)
  return c
