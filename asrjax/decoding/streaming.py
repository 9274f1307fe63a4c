"""Streaming recognition: encoder and greedy decoder both carry state from chunk to chunk.

``StreamingRecognizer(model, params, batch)`` holds the encoder's streaming state
(``model.encode(feats, paddings, state)``) and the greedy search state
(`asrjax.decoding.greedy.greedy_continue`). ``accept(feats, paddings)`` takes the
next chunk of log-mel frames ``[B, Tc, F]`` and returns the labels emitted on it;
the concatenation over chunks equals `greedy_search` on the whole utterance,
because every encoder streams exactly (up to the few-ulp bounds in their
docstrings) and the decoder resumes where it stopped. Chunk lengths must be
multiples of the encoder's ``chunk_multiple``.

A chunk is all-or-nothing. ``accept`` computes the new encoder and decoder states
aside and commits them (and the labels) only after every check passed, so a chunk it
rejects -- wrong shape, paddings that are not trailing 0/1, NaN/inf in a valid input
frame or in the encoder output -- raises `ValueError` and leaves the recogniser
exactly as before: the next good chunk decodes as if the bad one had never been
given (tested against a run without it). Padded frames are zeroed before encoding,
so what they hold (NaN included) does not reach the streaming state. A chunk of 0
frames returns no labels and changes nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.decoding import greedy
from asrjax.decoding import transducer as decoding_transducer
from asrjax.losses import validate_paddings
from asrjax.models import transducer


class StreamingRecognizer:
  """Chunk-by-chunk greedy recognition of ``batch`` parallel streams.

  Args:
    model: a `asrjax.models.transducer.Transducer`.
    params: its variables.
    batch: number of streams.
    max_symbols_per_frame: as in `greedy_search`.

  Raises:
    ValueError: ``batch`` or ``max_symbols_per_frame`` is not an integer >= 1.
  """

  def __init__(self, model: transducer.Transducer, params, batch: int = 1, max_symbols_per_frame: int = 4):
    batch = decoding_transducer.positive_int(batch, "batch")
    self._max_symbols = decoding_transducer.positive_int(max_symbols_per_frame, "max_symbols_per_frame")
    self._model, self._params, self._batch = model, params, batch
    self._fns = transducer.decoder_fns(model)

    def encode(p, f, pad, s):
      bad_rows = decoding_transducer.nonfinite_rows(f, pad)  # checked on the host with the rest, one sync
      f = jnp.where(pad[..., None] > 0, 0.0, f).astype(f.dtype)  # padded frames never reach the state
      enc, enc_pad, s = model.apply(p, f, pad, s, method=transducer.Transducer.encode)
      finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(s)
                                    if jnp.issubdtype(x.dtype, jnp.inexact)] or [True]))
      return enc, enc_pad, s, bad_rows, finite
    self._encode = jax.jit(encode)
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
    """Consumes the next chunk; returns each stream's new labels (and appends them to `labels`).

    Args:
      feats: ``[B, Tc, F]`` floating log-mel frames, finite in valid frames; ``Tc`` a
        multiple of `chunk_multiple` (0 is allowed: nothing happens).
      paddings: ``[B, Tc]``, 1 = padded frame (trailing 0/1 within the chunk).

    Raises:
      ValueError: naming ``feats`` / ``paddings`` and what was expected; the state was
        not updated, so the recogniser continues as if this chunk had not been given.
    """
    try:
      return self._accept(feats, paddings)
    except ValueError as e:
      raise ValueError(f"{e} The chunk was dropped: the recogniser's state was not updated.") from e

  def _accept(self, feats, paddings) -> list[list[int]]:
    """`accept` without the note on the state; every check comes before the commit at the end."""
    shape = np.shape(feats)
    if len(shape) != 3 or shape[0] != self._batch:
      raise ValueError(f"feats must be a chunk [B={self._batch}, Tc, F]; got shape {shape}.")
    if not jnp.issubdtype(getattr(feats, "dtype", np.dtype(object)), jnp.floating):
      raise ValueError(f"feats must be floating-point log-mel frames; got dtype {getattr(feats, 'dtype', None)}.")
    if shape[1] % self.chunk_multiple:
      raise ValueError(f"feats chunk length {shape[1]} is not a multiple of {self.chunk_multiple} frames.")
    if np.shape(paddings) != shape[:2]:
      raise ValueError(f"paddings must be [B, Tc] = {shape[:2]} like feats; got shape {np.shape(paddings)}.")
    validate_paddings(paddings, "paddings")
    if shape[1] == 0:
      return [[] for _ in range(self._batch)]
    # Encoding and decoding are dispatched together and their checks fetched in one transfer; the
    # encoder output needs no check of its own (its paddings derive from the checked ones, and a
    # non-finite frame shows in the state or the path score).
    enc, enc_pads, enc_state, bad_rows, finite = self._encode(self._params, feats, paddings, self._enc_state)
    labels, label_pads, dec_state = greedy._decode(  # noqa: SLF001 -- greedy_continue minus its input checks
        self._fns, self._params, enc, enc_pads, self._dec_state, self._max_symbols)
    bad_rows, finite, labels, counts, score = jax.device_get(
        (bad_rows, finite, labels, (label_pads == 0).sum(axis=1), dec_state.score))
    bad = np.flatnonzero(bad_rows).tolist()
    if bad:
      raise ValueError(f"feats rows {bad} contain NaN/inf in valid frames (paddings == 0); expected finite "
                       "log-mel values.")
    if not bool(finite):
      raise ValueError("the encoder's streaming state became NaN/inf on this chunk.")
    if not np.all(np.isfinite(score)):
      raise ValueError("the greedy path score became NaN/inf on this chunk.")
    # every check passed: commit
    self._enc_state, self._dec_state = enc_state, dec_state
    new = [labels[i, : counts[i]].tolist() for i in range(self._batch)]
    for mine, more in zip(self.labels, new):
      mine.extend(more)
    return new
