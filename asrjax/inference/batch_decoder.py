"""Audio batches to n-best lists: the front end, the encoder and one decoder, compiled once.

The one decoding path: `asrjax.inference.evaluation.evaluate` and
`asrjax.inference.Recognizer` both decode through `BatchDecoder`, so a corpus
evaluation and a user's own files give the same hypotheses for the same audio.

Timings: `BatchDecoder.decode_timed` adds each label's emission frame (`NBest.frames`),
`BatchDecoder.frame_seconds` is an encoder frame's duration, and `timings` turns a
hypothesis' labels and frames into token and word start (and end) times in seconds.
"""

from __future__ import annotations

import fractions
import functools
import inspect

import jax
import numpy as np

from asrjax import decoding
from asrjax.data import pipeline
from asrjax.frontend import features
from asrjax.models import transducer
from asrjax.frontend.featurize import FrontEnd, featurize

_WORD_MARK = "\u2581"  # "▁", SentencePiece's word-start marker


# module level, the model and front end static: every BatchDecoder of one model shares the compiled
# programs (one compile per batch shape in a process, however many evaluations it runs)
@functools.partial(jax.jit, static_argnums=1)
def _featurize(batch: dict, front_end: FrontEnd):
  return featurize(batch, jax.random.key(0), front_end, train=False)


@functools.partial(jax.jit, static_argnums=0)
def _encode(model, params, feats, pads):
  return model.apply(params, feats, pads, method="encode")[:2]  # by name: a subclass's (sts) own encode


class BatchDecoder:
  """``[int16 [N_b]] -> [[(label ids, score)]]`` (best first) with a model's own front end;
  `decode_timed` adds each label's encoder frame, `frame_seconds` (a `fractions.Fraction`) a frame's seconds.

  Args:
    model: a `asrjax.models.transducer.Transducer`; params its variables.
    decoder: a name in `asrjax.decoding.DECODERS`; decoder_options its keyword options
      (already checked by the caller, e.g. `evaluation.check_decoder_options`).
    front_end: the feature front end the model was trained with (normalisation).
  """

  def __init__(self, model, params, *, decoder: str, decoder_options: dict, front_end: FrontEnd):
    self._params, self._options = params, dict(decoder_options)
    self._fns = transducer.decoder_fns(model)
    self._decode = decoding.DECODERS[decoder]
    self.decoder = decoder
    self._model = model
    try:  # the shared programs take the model and front end as static (hashed) arguments
      hash((model, front_end))
      self._featurize = lambda b: _featurize(b, front_end)
      self._encode = lambda p, f, pad: _encode(model, p, f, pad)
    except TypeError:  # an unhashable field (a list): compiled per instance instead
      self._featurize = jax.jit(lambda b: _featurize.__wrapped__(b, front_end))
      self._encode = jax.jit(lambda p, f, pad: _encode.__wrapped__(model, p, f, pad))

  @property
  def frame_seconds(self) -> fractions.Fraction:
    """An encoder frame's duration (`encoder_frame_seconds`); asked only for timings."""
    return encoder_frame_seconds(self._model)

  def __call__(self, audio: list[np.ndarray], bucket: int) -> list[list[tuple[list[int], float]]]:
    """Decodes one batch of int16 waveforms padded to ``bucket`` samples (one compile per bucket)."""
    return self._checked(self._nbest(audio, bucket).to_lists(), audio)

  def decode_timed(self, audio: list[np.ndarray], bucket: int) -> list[list[tuple[list[int], float, list[int]]]]:
    """`__call__` with each label's emission frame: ``[[(label ids, score, frames)]]``, ``frames[i]`` the
    encoder frame (0-based) of label ``i``; ``frames[i] * frame_seconds`` is its start in seconds."""
    return self._checked(self._nbest(audio, bucket).to_timed_lists(), audio)

  @property
  def channels(self) -> int:
    """Output channels per input (1, or a multi-channel model's ``channels``: rows ``b*C + c``)."""
    return int(getattr(self._model, "channels", 1))

  def decode_channels_timed(self, audio: list[np.ndarray], bucket: int) -> list[list[tuple[list[int], float, list[int]]]]:
    """`decode_timed`'s best hypothesis of every channel: ``[input][channel] -> (label ids, score, frames)``."""
    nbest = self._nbest(audio, bucket).to_timed_lists()
    c = self.channels
    if len(nbest) != len(audio) * c:
      raise RuntimeError(f"the {self.decoder} decoder returned {len(nbest)} rows for {len(audio)} inputs x {c} "
                         "channels.")
    return [[nbest[b * c + k][0] if nbest[b * c + k] else ([], float("-inf"), []) for k in range(c)]
            for b in range(len(audio))]

  def _nbest(self, audio, bucket) -> decoding.NBest:
    batch = pipeline.pad_batch([{"audio": a, "text": ""} for a in audio], lambda t: [], bucket, 1)
    feats, pads = self._featurize({"audio": batch["audio"], "audio_paddings": batch["audio_paddings"]})
    enc, enc_pads = self._encode(self._params, feats, pads)
    return self._decode(self._fns, self._params, enc, enc_pads, **self._options)

  def _checked(self, out: list, audio: list) -> list:
    if self.channels > 1:
      raise ValueError(f"this model decodes {self.channels} channels per input: use decode_channels_timed "
                       "(asrjax.inference.multitalker.evaluate_mixtures), not the single-channel decode.")
    if len(out) != len(audio):
      raise RuntimeError(f"the {self.decoder} decoder returned {len(out)} rows for a batch of {len(audio)}.")
    return out


def encoder_frame_seconds(model) -> fractions.Fraction:
  """Seconds per encoder frame, exact: ``model.encoder.stack`` log-mel hops of `features.log_mel`'s default
  ``frame_step_ms`` at its default ``sample_rate`` (what `featurize` computes): 3 x 10 ms = 3/100 s for
  ``stack = 3``. Encoder frame ``t`` starts at ``t * encoder_frame_seconds(model)`` s."""
  defaults = {name: p.default for name, p in inspect.signature(features.log_mel).parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY}
  rate = defaults["sample_rate"]
  hop = features.samples_per_frame(rate, defaults["frame_step_ms"])  # 160 samples at 16 kHz
  return fractions.Fraction(int(model.encoder.stack) * hop, rate)


def token_surfaces(tokenizer, labels) -> list[str]:
  """The text each label adds to ``tokenizer.decode(labels)``: ``"".join(token_surfaces(...))`` is that text.

  Label ``i``'s surface is ``decode(labels[:i + 1])`` past ``decode(labels[:i])`` (decoding is prefix-stable
  for both tokenizers). A character label gives its character (" " for the space); a SentencePiece piece
  gives its text with "▁" as a space, except that decoding drops the space of the first piece ("▁the" first
  is "the", later " the"; a lone first "▁" gives "").

  Raises:
    ValueError: the tokenizer's decoding of a prefix does not extend the previous prefix's.
  """
  out, done = [], ""
  for n in range(1, len(labels) + 1):
    text = tokenizer.decode(labels[:n])
    if not text.startswith(done):
      raise ValueError(f"decoding labels[:{n}] gives {text!r}, which does not extend the decoding of "
                       f"labels[:{n - 1}] ({done!r}): cannot map labels to characters.")
    out.append(text[len(done):])
    done = text
  return out


def word_spans(tokenizer, labels, surfaces=None) -> list[tuple[str, int, int]]:
  """The words of ``tokenizer.decode(labels)`` with the label positions that make them: ``[(word, first, last)]``.

  A word is a maximal run of non-space characters of the text; ``last`` is the label of its last character;
  ``first`` the label of its first character, or the one before it when that is a SentencePiece piece
  that only marks the word's start (a lone "▁" followed by pieces without one: "▁", "t", "h", "e" is one
  word from label 0). A character tokenizer's space belongs to no word.

  Args:
    tokenizer: a `asrjax.data.tokenizer` tokenizer (SentencePiece is recognised by ``id_to_piece``).
    labels: label ids ``[L]`` (no blank).
    surfaces: `token_surfaces` of ``labels``, when already computed.
  """
  surfaces = token_surfaces(tokenizer, labels) if surfaces is None else surfaces
  owner = [i for i, s in enumerate(surfaces) for _ in s]  # the label of each character of the text
  text = "".join(surfaces)
  piece = getattr(tokenizer, "id_to_piece", None)
  marks = [piece is not None and piece(int(y)).startswith(_WORD_MARK) for y in labels]
  spans, c = [], 0
  while c < len(text):
    if text[c].isspace():
      c += 1
      continue
    end = c
    while end + 1 < len(text) and not text[end + 1].isspace():
      end += 1
    first = owner[c]
    if first > 0 and not marks[first] and marks[first - 1] and not surfaces[first - 1].strip():
      first -= 1
    spans.append((text[c : end + 1], first, owner[end]))
    c = end + 1
  return spans


def timings(tokenizer, labels, frames, frame_seconds) -> tuple[tuple, tuple]:
  """Token and word times of one hypothesis, in seconds.

  Args:
    tokenizer: the model's tokenizer; labels ``[L]`` a hypothesis' label ids; frames ``[L]`` the encoder
      frame of each (`NBest.frames`); frame_seconds an encoder frame's duration (`encoder_frame_seconds`).

  Returns:
    ``(tokens, words)``: ``tokens = ((surface, start), ...)`` one per label (`token_surfaces`; they join to
    the decoded text), ``start = frame * frame_seconds``; ``words = ((word, start, end), ...)`` (`word_spans`),
    ``start`` the start of its first token's frame and ``end`` the end of its last token's frame, i.e.
    ``(frame of last token + 1) * frame_seconds``. An empty hypothesis gives ``((), ())``.
  """
  if len(labels) != len(frames):
    raise ValueError(f"labels and frames must have one entry per label; got {len(labels)} and {len(frames)}.")
  seconds = lambda f: float(int(f) * fractions.Fraction(frame_seconds))
  surfaces = token_surfaces(tokenizer, labels)
  tokens = tuple((s, seconds(f)) for s, f in zip(surfaces, frames))
  words = tuple((w, seconds(frames[a]), seconds(int(frames[b]) + 1))
                for w, a, b in word_spans(tokenizer, labels, surfaces))
  return tokens, words


BUCKETS = (32_000, 64_000, 96_000, 160_000, 320_000)  # samples: the default padded batch lengths


def bucket_for(longest: int, buckets) -> int:
  """The first of ``buckets`` (samples) that holds ``longest``; ``longest`` itself past the last."""
  return next((b for b in sorted(buckets) if b >= longest), longest)
