"""A trained model on any audio: arrays and files, any sample rate, mono or multi-channel.

  recognizer = Recognizer.from_workdir("workdirs/demo/convrnnt")
  recognizer.recognize(samples, sample_rate=44_100).text
  for r in recognizer.recognize_files(["a.wav", "b.flac"]):
    print(r.path, r.error or r.text)
  stream = recognizer.stream()            # streaming, greedy: chunks in, partial text out
  for chunk in chunks:
    print(stream.accept_waveform(chunk))
  stream.finalize().text                  # == recognizer.recognize(whole, 16_000).text

`from_workdir` loads what a run left: its config (`asrjax.train.run_config`), the
parameters (newest readable checkpoint, a given ``step``, or the mean of ``average``
checkpoints), the tokenizer, the front-end statistics and, for the beam decoder, the
LM the config names. Decoding goes through `BatchDecoder`, the path evaluation uses,
so a file gives the hypothesis its array gives in `evaluate`.

Audio in: a NumPy array ``[N]`` or ``[N, C]`` (C channels, the layout soundfile
returns; mixed down by their mean), int16 PCM or float in ``[-1, 1]``
(`asrjax.data.audio`'s rules: NaN, out-of-range and 8-bit audio are refused), at
any sample rate: other rates are resampled to 16 kHz with
`scipy.signal.resample_poly` (polyphase, Kaiser window) and clipped to ``[-1, 1]``.
Files are read with soundfile (wav, flac, ogg and what libsndfile reads). Audio with
fewer samples than one 25 ms analysis window is refused.

A multi-channel model (separator-transducer-segmenter, `asrjax.models.sts`) gives one
`Result` per mixture: every channel decoded, ``text`` the channels joined by " | ",
``turns`` each channel's turns with their times (`channels_result`), as a stream of the
same audio gives.

References:
  icefall ``pretrained.py``, ESPnet ``Speech2Text``, NeMo ``transcribe()``: the
  interface users of those toolkits expect.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from asrjax.data import audio as audio_lib
from asrjax.inference import batch_decoder
from asrjax.inference import evaluation
from asrjax.inference import streaming
from asrjax.train import run_config
from asrjax.tasks import transducer_asr

MIN_SAMPLES = 400  # one 25 ms window at 16 kHz: shorter audio has no feature frame


@dataclasses.dataclass(frozen=True)
class Result:
  """One utterance's transcript.

  Attributes:
    text: the best hypothesis ("" when ``error`` is set).
    nbest: ``[(text, score)]``, best first; the score is the decoder's log-probability.
    path: the file it came from (`Recognizer.recognize_files`), else None.
    error: why the file could not be transcribed (unreadable, empty, NaN, ...), else None.
    tokens: ``((token text, start seconds), ...)`` of the best hypothesis, one per label: the text
      the label adds to ``text`` (they join to ``text``) and the start of the encoder frame that
      emitted it (`batch_decoder.timings`).
    words: ``((word, start seconds, end seconds), ...)``: the words of ``text`` (runs of non-space
      characters), from the start of their first token's frame to the end of their last token's
      frame (that frame's start plus one encoder frame). Both empty for an empty hypothesis.
  """

  text: str
  nbest: tuple = ()
  path: str | None = None
  error: str | None = None
  tokens: tuple = ()
  words: tuple = ()
  turns: tuple = ()  # a multi-channel model's `asrjax.metrics.multitalker.Turn` s, every channel's, else ()
  # (a multi-channel model's ``text`` joins its channels' texts with " | ", turn tokens shown; `channels_result`)


def channels_result(tokenizer, channels, frame_seconds) -> Result:
  """A multi-channel model's `Result` from each channel's best ``(labels, score, frames)`` (channel
  order): ``text`` the channels' texts joined by " | " (turn tokens shown), ``nbest`` that text with
  the summed score, ``turns`` every channel's `asrjax.inference.multitalker.hypothesis_turns`
  (speaker = channel index). Whole files (`Recognizer`) and streams (`streaming.AudioStream`) both
  build their multi-channel results here."""
  from asrjax.inference import multitalker  # noqa: PLC0415 -- the multi-talker stack only for such models

  channels = list(channels)
  text = " | ".join(tokenizer.decode(labels) for labels, _, _ in channels)
  turns = tuple(t for c, (labels, _, frames) in enumerate(channels)
                for t in multitalker.hypothesis_turns(tokenizer, labels, frames, float(frame_seconds), str(c)))
  return Result(text=text, nbest=((text, float(sum(score for _, score, _ in channels))),), turns=turns)


def prepare(audio, sample_rate, *, name: str = "audio") -> np.ndarray:
  """``audio [N]`` or ``[N, C]`` at ``sample_rate`` Hz -> mono int16 ``[M]`` at 16 kHz (module docstring).

  Raises:
    ValueError: naming ``name``: a bad rate, rank, dtype or value (NaN, out of range),
      or fewer than `MIN_SAMPLES` samples after resampling.
  """
  if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
    raise ValueError(f"{name}: sample_rate must be a positive integer (Hz); got {sample_rate!r}.")
  array = np.asarray(audio)
  if array.ndim == 2:
    if array.shape[1] > array.shape[0]:
      raise ValueError(f"{name}: multi-channel audio must be [samples, channels] (soundfile's layout); got "
                       f"shape {array.shape}: transpose it.")
    array = audio_lib.to_unit_float(array, name=name).mean(axis=1)
  elif array.ndim != 1:
    raise ValueError(f"{name}: audio must be [samples] or [samples, channels]; got shape {array.shape}.")
  mono = audio_lib.to_unit_float(array, name=name)
  if sample_rate != audio_lib.SAMPLE_RATE:
    from scipy import signal  # noqa: PLC0415 -- only needed off 16 kHz
    g = math.gcd(int(sample_rate), audio_lib.SAMPLE_RATE)
    mono = np.clip(signal.resample_poly(mono, audio_lib.SAMPLE_RATE // g, int(sample_rate) // g), -1.0, 1.0)
  if mono.size < MIN_SAMPLES:
    raise ValueError(f"{name}: {mono.size} samples at 16 kHz is shorter than one 25 ms analysis window "
                     f"({MIN_SAMPLES} samples): nothing to recognise.")
  return audio_lib.to_int16(mono.astype(np.float32), name=name)


class Recognizer:
  """Transcribes audio with a trained transducer (see the module docstring).

  Args:
    restored: `transducer_asr.restore_params`'s result.
    decoder: a name in `asrjax.decoding.DECODERS`; decoder_options its options.
    batch_size: utterances decoded together (sorted by length, padded to ``buckets``).
  """

  def __init__(self, restored: transducer_asr.Restored, *, decoder: str = "greedy", decoder_options=None,
               batch_size: int = 16, buckets=batch_decoder.BUCKETS):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
      raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    options = evaluation.check_decoder_options(decoder, decoder_options)
    self.tokenizer, self.steps, self.decoder = restored.tokenizer, restored.steps, decoder
    self._batch_size, self._buckets = batch_size, tuple(buckets)
    self._decode = batch_decoder.BatchDecoder(restored.model, restored.params, decoder=decoder,
                                              decoder_options=options, front_end=restored.front_end)
    self._restored, self._options, self._stream = restored, options, None  # for `stream`

  @classmethod
  def from_workdir(cls, workdir: str, *, step: int | None = None, average: int = 1, config=None,
                   decoder: str | None = None, decoder_options=None, **kwargs) -> "Recognizer":
    """The model a training run left in ``workdir``, with its config's decoder unless told otherwise.

    ``config`` defaults to the run's own (``<workdir>/config.json``); one that would
    build another model is refused (`run_config.check_compatible`).

    Raises:
      FileNotFoundError: ``workdir`` holds no run config and none is given, or no
        tokenizer or checkpoint.
      ValueError / `asrjax.train.checkpoint.CheckpointError`: as `transducer_asr.restore_params`.
    """
    if config is None:
      config = run_config.load(workdir)
      if config is None:
        raise FileNotFoundError(f"{run_config.path(workdir)} does not exist: pass config= (the run's training "
                                "config), or train with a current asrjax, which writes it.")
    restored = transducer_asr.restore_params(config, workdir, step, average)
    decoder = decoder or config.eval.decoder
    options = transducer_asr.decoding_options(config, decoder, restored.tokenizer, workdir, decoder_options)
    return cls(restored, decoder=decoder, decoder_options=options, **kwargs)

  def recognize(self, audio, sample_rate: int) -> Result:
    """One utterance (see `prepare` for what ``audio`` may be); raises `ValueError` for bad audio."""
    return self._recognize_prepared([prepare(audio, sample_rate)])[0]

  def stream(self, sample_rate: int = audio_lib.SAMPLE_RATE) -> streaming.AudioStream:
    """A new `streaming.AudioStream` for one utterance of ``sample_rate`` Hz audio: ``accept_waveform(chunk)``,
    ``partial()``, ``finalize() -> Result``. Its final text equals `recognize` of the whole audio. The
    streams of one recognizer share their compiled programs.

    Raises:
      ValueError: the decoder is not greedy, or the model normalises features per utterance
        (`streaming.check_streamable` says why), or ``sample_rate`` is not a positive integer.
    """
    if self._stream is None:
      streaming.check_streamable(self._restored.front_end, self.decoder)
      r = self._restored
      self._stream = streaming.AudioStream(r.model, r.params, r.front_end, r.tokenizer, **self._options)
    return self._stream.fork(sample_rate)

  def recognize_files(self, paths) -> list[Result]:
    """One `Result` per path, in order; a file that cannot be read or used gets ``error`` set
    (the others are still transcribed)."""
    import soundfile  # noqa: PLC0415 -- only the file path needs it

    paths = [paths] if isinstance(paths, str) else list(paths)
    results: list[Result | None] = [None] * len(paths)
    ready, where = [], []
    for i, path in enumerate(paths):
      try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=False)
        ready.append(prepare(samples, rate, name=str(path)))
        where.append(i)
      except (OSError, RuntimeError, ValueError, soundfile.LibsndfileError) as e:
        results[i] = Result("", path=str(path), error=f"{type(e).__name__}: {e}")
    for i, r in zip(where, self._recognize_prepared(ready) if ready else []):
      results[i] = dataclasses.replace(r, path=str(paths[i]))
    return results

  def _recognize_prepared(self, audio: list[np.ndarray]) -> list[Result]:
    order = sorted(range(len(audio)), key=lambda i: audio[i].size)
    out: list[Result | None] = [None] * len(audio)
    for s in range(0, len(order), self._batch_size):
      ids = order[s : s + self._batch_size]
      bucket = batch_decoder.bucket_for(max(audio[i].size for i in ids), self._buckets)
      if self._decode.channels > 1:  # a multi-channel model (STS): every channel's best path, and its turns
        for i, channels in zip(ids, self._decode.decode_channels_timed([audio[i] for i in ids], bucket)):
          out[i] = channels_result(self.tokenizer, channels, self._decode.frame_seconds)
        continue
      for i, nbest in zip(ids, self._decode.decode_timed([audio[i] for i in ids], bucket)):
        texts = tuple((self.tokenizer.decode(labels), float(score)) for labels, score, _ in nbest)
        labels, _, frames = nbest[0] if nbest else ([], 0.0, [])
        tokens, words = batch_decoder.timings(self.tokenizer, labels, frames, self._decode.frame_seconds)
        out[i] = Result(texts[0][0] if texts else "", texts, tokens=tokens, words=words)
    return out
