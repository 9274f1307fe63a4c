"""Streaming recognition: encoder and greedy decoder both carry state from chunk to chunk.

``StreamingRecognizer(model, params, batch)`` holds the encoder's streaming state
(``model.encode(feats, paddings, state)``) and the greedy search state
(`asrjax.decoding.greedy.greedy_continue`). ``accept(feats, paddings)`` takes the
next chunk of log-mel frames ``[B, Tc, F]`` and returns the labels emitted on it;
the concatenation over chunks equals `greedy_search` on the whole utterance,
because every encoder streams exactly (up to the few-ulp bounds in their
docstrings) and the decoder resumes where it stopped. Chunk lengths must be
multiples of the encoder's ``chunk_multiple``.
"""

from __future__ import annotations

import jax
import numpy as np

from asrjax.decoding import greedy
from asrjax.models import transducer


class StreamingRecognizer:
  """Chunk-by-chunk greedy recognition of ``batch`` parallel streams.

  Args:
    model: a `asrjax.models.transducer.Transducer`.
    params: its variables.
    batch: number of streams.
    max_symbols_per_frame: as in `greedy_search`.
  """

  def __init__(self, model: transducer.Transducer, params, batch: int = 1, max_symbols_per_frame: int = 4):
    self._model, self._params, self._batch = model, params, batch
    self._fns = transducer.decoder_fns(model)
    self._max_symbols = max_symbols_per_frame
    self._encode = jax.jit(lambda p, f, pad, s: model.apply(p, f, pad, s, method=transducer.Transducer.encode))
    # Fresh states come out of a jitted function, like the states `accept` returns, so
    # the second chunk of an utterance does not recompile for a different input type.
    self._start = jax.jit(lambda p: (model.init_encode_state(batch), greedy.greedy_start(self._fns, p, batch)))
    self.reset()

  @property
  def chunk_multiple(self) -> int:
    return self._model.encoder.chunk_multiple

  def reset(self) -> None:
    """Starts new utterances."""
    self._enc_state, self._dec_state = self._start(self._params)
    self.labels: list[list[int]] = [[] for _ in range(self._batch)]

  def accept(self, feats: jax.Array, paddings: jax.Array) -> list[list[int]]:
    """Consumes ``feats [B, Tc, F]`` (``paddings [B, Tc]``); returns each stream's new labels."""
    if feats.shape[0] != self._batch or feats.ndim != 3:
      raise ValueError(f"expected chunk [{self._batch}, Tc, F]; got {feats.shape}.")
    if feats.shape[1] % self.chunk_multiple:
      raise ValueError(f"chunk length {feats.shape[1]} is not a multiple of {self.chunk_multiple} frames.")
    enc, enc_pads, self._enc_state = self._encode(self._params, feats, paddings, self._enc_state)
    labels, label_pads, self._dec_state = greedy.greedy_continue(
        self._fns, self._params, enc, enc_pads, self._dec_state, max_symbols_per_frame=self._max_symbols)
    labels, counts = np.asarray(labels), np.asarray((label_pads == 0).sum(axis=1))
    new = [labels[i, : counts[i]].tolist() for i in range(self._batch)]
    for mine, more in zip(self.labels, new):
      mine.extend(more)
    return new
