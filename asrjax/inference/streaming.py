"""Streaming recognition: audio in chunks, as from a microphone, to text that grows as it arrives.

Two levels, as in sherpa's ``OnlineRecognizer`` / ``OnlineStream``:

* `AudioStream` (made by `asrjax.inference.Recognizer.stream`): one utterance's audio
  ``accept_waveform(samples)`` chunk by chunk (any sizes, 0 and 1 sample included),
  ``partial()`` the text so far, ``finalize()`` the `Result`. Each chunk is checked
  (`asrjax.data.audio`'s rules: 1-D, int16 PCM or float in ``[-1, 1]``, finite),
  resampled to 16 kHz if the stream is at another rate (`resample_stream.ResampleStream`,
  bit-for-bit ``scipy.signal.resample_poly``), quantised to int16, turned into globally
  normalised log-mel frames (`asrjax.frontend.log_mel_stream.LogMelStream`) and fed
  to a `StreamingRecognizer` as soon as frames complete, in multiples of the
  encoder's ``chunk_multiple`` (the rest wait for the next chunk). ``finalize`` feeds
  the waiting frames padded to a multiple (paddings 1, as the whole-utterance batch
  pads them) and drops the samples of an incomplete last window, as `log_mel` does.
* `StreamingRecognizer`: frames in, labels out (below).

Equality with whole-file decoding: ``finalize().text`` equals
``Recognizer.recognize(samples, rate).text`` with the greedy decoder, whatever the
chunking. Both paths see the same int16 samples (`recognizer.prepare`'s rules;
resampling bit-exact), the same valid log-mel frames (the streaming log-mel equals
the batch one to ~1 ulp, and padding past the last valid frame never reaches a valid
one), and an encoder that streams exactly up to a few ulp, with the greedy search
resumed where it stopped; the scores agree to float rounding. Frames reach the
recogniser in pieces of ``chunk_multiple * 2^k`` frames (k <= 5), so a stream
compiles a handful of shapes, not one per chunk length.

Only a model with global feature statistics streams (per-utterance CMVN reads the
whole utterance before its first frame is normalised), and only greedily (beam
search re-ranks hypotheses to the end of the utterance and is not streamed here):
`check_streamable`.

``StreamingRecognizer(model, params, batch)`` holds the encoder's streaming state
(``model.encode(feats, paddings, state)``) and the greedy search state
(`asrjax.decoding.greedy.greedy_continue`). ``accept(feats, paddings)`` takes the
next chunk of log-mel frames ``[B, Tc, F]`` and returns the labels emitted on it;
the concatenation over chunks equals `greedy_search` on the whole utterance,
because every encoder streams exactly (up to the few-ulp bounds in their
docstrings) and the decoder resumes where it stopped. Chunk lengths must be
multiples of the encoder's ``chunk_multiple``.

A chunk is all-or-nothing, at both levels. ``accept`` computes the new encoder and
decoder states aside and commits them (and the labels) only after every check passed,
so a chunk it rejects -- wrong shape, paddings that are not trailing 0/1, NaN/inf in
a valid input frame or in the encoder output -- raises `ValueError` and leaves the
recogniser exactly as before: the next good chunk decodes as if the bad one had never
been given (tested against a run without it). Padded frames are zeroed before
encoding, so what they hold (NaN included) does not reach the streaming state. A chunk
of 0 frames returns no labels and changes nothing. `AudioStream.accept_waveform` works
on copies of its parts and commits them together, so a rejected audio chunk (NaN, out
of range, wrong dtype or rank) changes nothing either.

References:
  k2-fsa/sherpa(-onnx) ``OnlineRecognizer`` / ``OnlineStream`` (``AcceptWaveform``,
  ``InputFinished``, ``GetResult``); icefall ``streaming_decode.py`` (chunk-wise
  greedy search carrying encoder and decoder states); Y. He et al., "Streaming
  end-to-end speech recognition for mobile devices", ICASSP 2019.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np

from asrjax.data import audio as audio_lib
from asrjax.decoding import greedy
from asrjax.decoding import transducer as decoding_transducer
from asrjax.frontend import log_mel_stream
from asrjax.frontend.featurize import FrontEnd
from asrjax.inference import batch_decoder, resample_stream
from asrjax.losses import validate_paddings
from asrjax.models import transducer

LARGEST_PIECE = 32  # frames reach the recogniser in pieces of chunk_multiple * 2^k frames, 2^k <= this


class StreamingRecognizer:
  """Chunk-by-chunk greedy recognition of ``batch`` parallel streams.

  A multi-channel model (`asrjax.models.sts.MultiChannelTransducer`, ``channels`` C) decodes
  ``batch * C`` rows: `labels`, `frames`, `scores` and what `accept` returns hold row
  ``b*C + c`` for channel ``c`` of stream ``b`` (``rows``).

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
    self.rows = batch * int(getattr(model, "channels", 1))  # decoded rows: one per stream and channel
    rows = self.rows
    self._fns = transducer.decoder_fns(model)

    def encode(p, f, pad, s):
      bad_rows = decoding_transducer.nonfinite_rows(f, pad)  # checked on the host with the rest, one sync
      f = jnp.where(pad[..., None] > 0, 0.0, f).astype(f.dtype)  # padded frames never reach the state
      enc, enc_pad, s = model.apply(p, f, pad, s, method="encode")  # by name: a subclass's own encode
      finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(s)
                                    if jnp.issubdtype(x.dtype, jnp.inexact)] or [True]))
      return enc, enc_pad, s, bad_rows, finite
    self._encode = jax.jit(encode)
    # Fresh states come out of a jitted function, like the states `accept` returns, so
    # the second chunk of an utterance does not recompile for a different input type.
    self._start = jax.jit(lambda p: (model.init_encode_state(batch), greedy.greedy_start(self._fns, p, rows)))
    self.reset()

  @property
  def chunk_multiple(self) -> int:
    return self._model.encoder.chunk_multiple

  def reset(self) -> None:
    """Starts new utterances."""
    self._enc_state, self._dec_state = self._start(self._params)
    self.labels: list[list[int]] = [[] for _ in range(self.rows)]
    self.frames: list[list[int]] = [[] for _ in range(self.rows)]  # encoder frame of each label, from 0

  @property
  def scores(self) -> np.ndarray:
    """``[rows]`` log-probability of each row's greedy path so far (blanks included)."""
    return np.asarray(jax.device_get(self._dec_state.score), np.float64)

  def __copy__(self) -> StreamingRecognizer:
    """A snapshot: the same compiled programs and states (immutable arrays), its own label lists."""
    other = object.__new__(type(self))
    other.__dict__.update(self.__dict__)
    other.labels = [list(x) for x in self.labels]
    other.frames = [list(x) for x in self.frames]
    return other

  def fork(self) -> StreamingRecognizer:
    """A recogniser for new utterances that shares this one's compiled programs (no compiling again);
    this one is left as it is."""
    other = copy.copy(self)
    other.reset()
    return other

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
      return [[] for _ in range(self.rows)]
    # Encoding and decoding are dispatched together and their checks fetched in one transfer; the
    # encoder output needs no check of its own (its paddings derive from the checked ones, and a
    # non-finite frame shows in the state or the path score).
    enc, enc_pads, enc_state, bad_rows, finite = self._encode(self._params, feats, paddings, self._enc_state)
    labels, label_pads, frames, dec_state = greedy._decode(  # noqa: SLF001 -- greedy_continue minus its checks
        self._fns, self._params, enc, enc_pads, self._dec_state, self._max_symbols, with_frames=True)
    bad_rows, finite, labels, frames, counts, score = jax.device_get(
        (bad_rows, finite, labels, frames, (label_pads == 0).sum(axis=1), dec_state.score))
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
    new = [labels[i, : counts[i]].tolist() for i in range(self.rows)]
    for mine, more in zip(self.labels, new):
      mine.extend(more)
    for mine, i in zip(self.frames, range(self.rows)):
      mine.extend(frames[i, : counts[i]].tolist())
    return new


def check_streamable(front_end: FrontEnd, decoder: str = "greedy") -> None:
  """Raises `ValueError` naming why a model with ``front_end``, decoded by ``decoder``, cannot stream."""
  if decoder != "greedy":
    raise ValueError(f"streaming decodes greedily, but this recognizer's decoder is {decoder!r}: beam search "
                     "re-ranks its hypotheses up to the end of the utterance and is not streamed. Make the "
                     "recognizer with decoder='greedy' (transcribe.py --stream does).")
  if front_end.feature_mean is None:
    raise ValueError("streaming needs global feature statistics (data.normalization='global'), but this model "
                     "was trained with per-utterance CMVN (data.normalization='utterance'), which reads the whole "
                     "utterance before its first frame can be normalised.")


def pieces(frames: int, multiple: int, largest: int = LARGEST_PIECE) -> list[int]:
  """``frames`` (a multiple of ``multiple``) as piece lengths ``multiple * 2^k``, ``2^k <= largest``
  (a power of two), longest first: ``pieces(44, 4) == [32, 8, 4]``."""
  units = frames // multiple
  sizes = [largest] * (units // largest)
  rest = units % largest
  sizes += [1 << k for k in reversed(range(rest.bit_length())) if rest >> k & 1]
  return [multiple * n for n in sizes]


class AudioStream:
  """One utterance's audio, chunk by chunk, to its transcript (see the module docstring).

  Usually made by `asrjax.inference.Recognizer.stream` (which shares one set of
  compiled programs between its streams, `fork`)::

    stream = recognizer.stream()
    for chunk in chunks:                 # int16 or float in [-1, 1], [n] samples, any n
      stream.accept_waveform(chunk)      # the partial text
    result = stream.finalize()           # a `Result`: text, nbest ((text, score),)

  Args:
    model: a `asrjax.models.transducer.Transducer`; params its variables.
    front_end: its `FrontEnd` (global statistics needed: `check_streamable`).
    tokenizer: labels to text (``decode``).
    sample_rate: of the audio ``accept_waveform`` takes (Hz); other rates than 16 kHz
      are resampled as `asrjax.inference.recognizer.prepare` resamples whole files.
    max_symbols_per_frame: as in `greedy_search`.

  Raises:
    ValueError: per-utterance CMVN, or a bad ``sample_rate`` / ``max_symbols_per_frame``.
  """

  def __init__(self, model: transducer.Transducer, params, front_end: FrontEnd, tokenizer, *,
               sample_rate: int = audio_lib.SAMPLE_RATE, max_symbols_per_frame: int = 4):
    check_streamable(front_end)
    self._rec = StreamingRecognizer(model, params, batch=1, max_symbols_per_frame=max_symbols_per_frame)
    self._front = log_mel_stream.LogMelStream(1, front_end.feature_mean, front_end.feature_std)
    self._num_features = len(front_end.feature_mean)
    self._tokenizer = tokenizer
    self._frame_seconds = batch_decoder.encoder_frame_seconds(model)
    self._open(sample_rate)

  def fork(self, sample_rate: int | None = None) -> AudioStream:
    """A new, empty stream (at ``sample_rate``, default this one's) sharing this one's compiled programs."""
    other = copy.copy(self)
    other._rec, other._front = self._rec.fork(), copy.copy(self._front)
    other._open(self.sample_rate if sample_rate is None else sample_rate)
    return other

  @property
  def chunk_multiple(self) -> int:
    """Frames reach the encoder in multiples of this many (the encoder's ``chunk_multiple``)."""
    return self._rec.chunk_multiple

  def reset(self) -> None:
    """Starts a new utterance at the same sample rate (also after `finalize`)."""
    self._open(self.sample_rate)

  def _open(self, sample_rate) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
      raise ValueError(f"stream: sample_rate must be a positive integer (Hz); got {sample_rate!r}.")
    self.sample_rate = int(sample_rate)
    self._resampler = (None if self.sample_rate == audio_lib.SAMPLE_RATE else
                       resample_stream.ResampleStream(self.sample_rate, audio_lib.SAMPLE_RATE))
    self._rec.reset()
    self._front.reset()
    self._waiting = np.zeros((1, 0, self._num_features), np.float32)  # [1, T_w, F], T_w < chunk_multiple
    self._result = None

  def accept_waveform(self, samples, sample_rate: int | None = None) -> str:
    """Consumes the next chunk ``samples [n]`` (int16 PCM, int32/int64 in the int16 range, or float in
    ``[-1, 1]``; ``n >= 0``) and returns the text so far (`partial`).

    Args:
      samples: the chunk, at the stream's sample rate.
      sample_rate: if given, must be the stream's (``Recognizer.stream(sample_rate=...)``).

    Raises:
      ValueError: naming what is wrong with the chunk (rank, dtype, NaN/inf, range) or its rate; the
        stream is unchanged, as if the chunk had not been given.
      RuntimeError: after `finalize` (`reset` starts the next utterance).
    """
    if self._result is not None:
      raise RuntimeError("accept_waveform after finalize(): call reset() (or Recognizer.stream()) for the next "
                         "utterance.")
    if sample_rate is not None and sample_rate != self.sample_rate:
      raise ValueError(f"accept_waveform: this stream takes {self.sample_rate} Hz audio; got a chunk at "
                       f"sample_rate={sample_rate!r} (open the stream with Recognizer.stream(sample_rate=...)). "
                       "The chunk was dropped: the stream's state was not updated.")
    chunk = _check_chunk(samples)
    self._commit(lambda parts: _resample(parts, chunk, flush=False))
    return self.partial()

  @property
  def channels(self) -> int:
    """Output channels of the model (1, or a multi-channel model's: `turns`)."""
    return self._rec.rows

  def partial(self) -> str:
    """The best hypothesis so far (grows as chunks arrive; the final text after `finalize`); a
    multi-channel model's channels joined by " | " (turn tokens shown)."""
    return " | ".join(self._tokenizer.decode(row) for row in self._rec.labels)

  def turns(self) -> list:
    """Every channel's turns so far (`asrjax.inference.multitalker.hypothesis_turns`: speaker = channel,
    times the ends of the emitting frames), as the whole-mixture evaluation cuts them."""
    from asrjax.inference import multitalker  # noqa: PLC0415 -- the multi-channel path only

    return [t for c, (labels, frames) in enumerate(zip(self._rec.labels, self._rec.frames))
            for t in multitalker.hypothesis_turns(self._tokenizer, labels, frames, float(self._frame_seconds), str(c))]

  def finalize(self):
    """Feeds what is left -- the resampler's tail, the waiting frames padded to a multiple of the
    encoder's chunk (paddings 1) -- and returns the `Result` (``text``, ``nbest=((text, score),)``, the
    score the greedy path's log-probability, and the token and word times of `batch_decoder.timings`). Audio shorter than one 25 ms window gives ``""``.
    Calling it again returns the same `Result`."""
    if self._result is None:
      from asrjax.inference.recognizer import Result, channels_result  # noqa: PLC0415 -- recognizer imports this

      self._commit(lambda parts: _resample(parts, np.zeros(0, np.float32), flush=True), final=True)
      text = self.partial()
      if self.channels > 1:
        self._result = channels_result(self._tokenizer, zip(self._rec.labels, self._rec.scores, self._rec.frames),
                                       self._frame_seconds)
      else:
        tokens, words = batch_decoder.timings(self._tokenizer, self._rec.labels[0], self._rec.frames[0],
                                              self._frame_seconds)
        self._result = Result(text=text, nbest=((text, float(self._rec.scores[0])),), tokens=tokens, words=words)
    return self._result

  def _commit(self, samples_of, final: bool = False) -> None:
    """Runs one step on copies of the resampler, front end and recogniser, and keeps them only if
    nothing raised. ``samples_of(resampler) -> 16 kHz float samples [n]``."""
    resampler, front, rec = copy.copy(self._resampler), copy.copy(self._front), copy.copy(self._rec)
    pcm = audio_lib.to_int16(samples_of(resampler), name="accept_waveform: samples")  # as `prepare` quantises
    waiting = np.concatenate([self._waiting, front.accept(pcm[None])], axis=1)
    m = rec.chunk_multiple
    ready = waiting.shape[1] // m * m
    start = 0
    for n in pieces(ready, m):
      rec.accept(waiting[:, start : start + n], np.zeros((1, n), np.float32))
      start += n
    waiting = waiting[:, ready:]
    if final and waiting.shape[1]:
      pad = m - waiting.shape[1]
      paddings = np.concatenate([np.zeros((1, waiting.shape[1])), np.ones((1, pad))], axis=1).astype(np.float32)
      rec.accept(np.pad(waiting, ((0, 0), (0, pad), (0, 0))), paddings)
      waiting = waiting[:, :0]
    self._resampler, self._front, self._rec, self._waiting = resampler, front, rec, waiting


def _check_chunk(samples) -> np.ndarray:
  """``samples [n]`` as float32 in ``[-1, 1]`` by `asrjax.data.audio`'s rules, else `ValueError`."""
  name = "accept_waveform: samples"
  try:
    chunk = audio_lib.to_unit_float(samples, name=name)
    if chunk.ndim != 1:
      raise ValueError(f"{name} must be one mono chunk [n]; got shape {chunk.shape} (mix channels down, e.g. "
                       "x.mean(axis=1) for [n, channels]).")
  except ValueError as e:
    raise ValueError(f"{e} The chunk was dropped: the stream's state was not updated.") from None
  return chunk


def _resample(resampler, chunk: np.ndarray, *, flush: bool) -> np.ndarray:
  """``chunk [n]`` (float32 at the stream's rate) -> 16 kHz samples clipped to ``[-1, 1]``, as `prepare`."""
  if resampler is None:
    return chunk
  return np.clip(resampler.flush() if flush else resampler.accept(chunk), -1.0, 1.0)
