"""Transducer decoders sharing one interface: ``decoder(fns, params, enc, enc_paddings, **opts) -> NBest``."""

from asrjax.decoding.beam_search import beam_search
from asrjax.decoding.greedy import greedy_search
from asrjax.decoding.modified_beam_search import modified_beam_search
from asrjax.decoding.transducer import NBest, TransducerFns

DECODERS = {
    "greedy": greedy_search,
    "beam": beam_search,
    "modified_beam": modified_beam_search,
}

__all__ = ["DECODERS", "NBest", "TransducerFns", "beam_search", "greedy_search", "modified_beam_search"]
