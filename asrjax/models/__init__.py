"""Model assemblies: encoders and the transducer around them.

`ENCODERS` is the registry of ``config.model.name``: the encoder class each name builds;
`build` puts the prediction and joint networks (`transducer.Transducer`) around it. A new
encoder is one new module and one entry here. ``name = "sts"`` builds the multi-channel
separator-transducer-segmenter (`sts.MultiChannelTransducer`) from two registered encoders.
"""

from asrjax.models import cca_transformer, conformer, contextnet, convrnnt, lstm_rnnt, sts, transducer

ENCODERS = {
    "cca_transformer": cca_transformer.CCATransformerEncoder,
    "conformer": conformer.ConformerEncoder,
    "contextnet": contextnet.ContextNetEncoder,
    "convrnnt": convrnnt.ConvRNNTEncoder,
    "lstm_rnnt": lstm_rnnt.LSTMEncoder,
}


def build(model_config, vocab_size: int) -> transducer.Transducer:
  """``Transducer(ENCODERS[name](**model_config.encoder), vocab_size, **model_config.transducer)``.

  Raises:
    ValueError: ``model_config.name`` is not in `ENCODERS` (naming those that are).
  """
  name = model_config.name
  if name == "sts":
    return sts.build(ENCODERS, model_config, vocab_size)
  if name not in ENCODERS:
    raise ValueError(f"model.name must be one of {sorted(ENCODERS) + ['sts']}; got {name!r}.")
  return transducer.from_config(ENCODERS[name], model_config, vocab_size)
