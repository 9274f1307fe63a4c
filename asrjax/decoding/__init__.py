"""Transducer decoders sharing one interface: ``decoder(fns, params, enc, enc_paddings, **opts) -> NBest``."""

import inspect

from asrjax.decoding.beam_search import beam_search
from asrjax.decoding.greedy import greedy_search
from asrjax.decoding.maes import maes_search
from asrjax.decoding.modified_beam_search import modified_beam_search
from asrjax.decoding.transducer import NBest, TransducerFns


class UnknownDecoderError(KeyError, ValueError):
  """An unknown name looked up in `DECODERS`: a `ValueError` (and, for dict semantics, a `KeyError`)."""

  def __str__(self):  # KeyError would show the message quoted
    return str(self.args[0])


class _Registry(dict):
  """A dict whose missing keys raise `UnknownDecoderError` listing the known names."""

  def __missing__(self, name):
    raise UnknownDecoderError(f"unknown decoder {name!r}; expected one of {sorted(self)} "
                              "(eval.decoder / --decoder).")


DECODERS = _Registry(
    greedy=greedy_search,
    beam=beam_search,
    modified_beam=modified_beam_search,
    maes=maes_search,
)



def takes_lm(name: str) -> bool:
  """Whether decoder ``name`` fuses an LM (takes ``lm=``, ``lm_weight=``, ``length_bonus=``): beam and maes."""
  return "lm" in inspect.signature(DECODERS[name]).parameters


__all__ = ["DECODERS", "NBest", "TransducerFns", "UnknownDecoderError", "beam_search", "greedy_search",
           "maes_search", "modified_beam_search", "takes_lm"]
