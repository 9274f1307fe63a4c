r"""Transcribes audio files with a trained model: one line per file, ``path<TAB>text``.

  python experiments/transcribe.py --workdir=workdirs/demo/convrnnt a.wav b.flac
  python experiments/transcribe.py --workdir=W --json a.wav        # n-best with scores, token and word times (s)
  python experiments/transcribe.py --workdir=W --stream a.wav      # path<TAB>PARTIAL text as it grows, then path<TAB>text

Reads wav / flac / ogg (soundfile) at any sample rate, mono or multi-channel, and
decodes with the run's own config and decoder (`asrjax.inference.Recognizer`;
``--decoder`` / ``--decoder_options`` choose another). A file that cannot be
transcribed (missing, unreadable, empty, NaN samples, shorter than 25 ms) gets an
``ERROR`` line naming why, the others are still transcribed, and the exit status is 1
when any failed. Without ``--stream`` a last line on stderr gives the real-time factor:
the wall time of reading and decoding every file over their audio duration.

``--stream`` feeds each file to `Recognizer.stream` in chunks of ``--chunk_ms`` (160 ms
by default, real-time-sized; without waiting between them), printing
``path<TAB>PARTIAL text`` each time the partial text changes (with ``--json``:
``{"path", "partial"}``) and then the file's line as without ``--stream``; its final
text is the one the whole file gives. Streaming decodes greedily (the default with
``--stream``; another ``--decoder`` is refused) and needs a model trained with global
feature statistics.

A multi-channel model (separator-transducer-segmenter) prints its channels' texts joined by
" | " (turn tokens shown); ``--json`` adds every channel's ``turns`` (channel, text, start and
end seconds, closed).
"""

import dataclasses
import json
import sys
import time

from absl import app, flags

from asrjax import decoding
from asrjax.inference import Recognizer
from asrjax.inference import recognizer as recognizer_lib
from asrjax.inference import evaluation

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (its config.json, checkpoints, tokenizer).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest readable one).")
_AVERAGE = flags.DEFINE_integer("average", 1, "Decode with the mean of this many newest checkpoints.")
_DECODER = flags.DEFINE_enum("decoder", None, sorted(decoding.DECODERS), "Decoder (default: the config's).")
_OPTIONS = flags.DEFINE_string("decoder_options", "{}", "JSON keyword options of the decoder.")
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object per file (text, n-best with scores, error).")
_STREAM = flags.DEFINE_bool("stream", False, "Stream each file in --chunk_ms chunks (greedy decoding), printing "
                            "path<TAB>PARTIAL text whenever it changes, then the final line.")
_CHUNK_MS = flags.DEFINE_integer("chunk_ms", 160, "With --stream: the duration of each chunk (ms).")
flags.mark_flags_as_required(["workdir"])


def _stream_files(recognizer, paths, chunk_ms: int):
  """Yields one `Result` per path, as `Recognizer.recognize_files`, from `Recognizer.stream` fed in chunks of
  ``chunk_ms``; prints each partial text when it changes."""
  import soundfile  # noqa: PLC0415 -- as recognize_files

  for path in paths:
    try:
      samples, rate = soundfile.read(path, dtype="float32", always_2d=True)  # [N, C]
      mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1)  # as `prepare` mixes down
      if -(-mono.size * 16_000 // rate) < recognizer_lib.MIN_SAMPLES:
        raise ValueError(f"{path}: {mono.size} samples at {rate} Hz is shorter than one 25 ms analysis window: "
                         "nothing to recognise.")
      stream, shown, step = recognizer.stream(sample_rate=rate), "", max(1, rate * chunk_ms // 1000)
      for start in range(0, mono.size, step):
        partial = stream.accept_waveform(mono[start : start + step])
        if partial != shown:
          shown = partial
          print(json.dumps({"path": path, "partial": partial}) if _JSON.value else f"{path}\tPARTIAL {partial}",
                flush=True)
      result = stream.finalize()
    except (OSError, RuntimeError, ValueError, soundfile.LibsndfileError) as e:
      result = recognizer_lib.Result(text="", error=f"{type(e).__name__}: {e}")
    yield dataclasses.replace(result, path=str(path))


def _duration(path: str) -> float:
  import soundfile  # noqa: PLC0415

  return soundfile.info(path).duration


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError("give one or more audio files after the flags.")
  if _AVERAGE.value < 1:
    raise app.UsageError(f"--average must be >= 1; got {_AVERAGE.value}.")
  try:
    options = evaluation.parse_decoder_options(_OPTIONS.value, "--decoder_options")
    decoder = _DECODER.value
    if _STREAM.value:
      if decoder not in (None, "greedy"):
        raise ValueError(f"--stream decodes greedily; --decoder={decoder} is not streamed (leave it out).")
      if _CHUNK_MS.value < 1:
        raise ValueError(f"--chunk_ms must be >= 1 (milliseconds); got {_CHUNK_MS.value}.")
      decoder = "greedy"
    recognizer = Recognizer.from_workdir(_WORKDIR.value, step=_STEP.value, average=_AVERAGE.value,
                                         decoder=decoder, decoder_options=options)
    if _STREAM.value:
      recognizer.stream()  # refuses a model that cannot stream (per-utterance CMVN), before any file
  except (ValueError, FileNotFoundError) as e:
    raise app.UsageError(str(e)) from None
  failed, start = 0, time.perf_counter()
  results = _stream_files(recognizer, paths, _CHUNK_MS.value) if _STREAM.value else recognizer.recognize_files(paths)
  results = list(results) if not _STREAM.value else results
  elapsed = time.perf_counter() - start  # reading, resampling and decoding every file (not the model's loading)
  for r in results:
    failed += r.error is not None
    if _JSON.value:
      print(json.dumps({"path": r.path, "text": r.text, "nbest": [list(x) for x in r.nbest], "error": r.error,
                        "tokens": [{"token": t, "start": s} for t, s in r.tokens],
                        "words": [{"word": w, "start": s, "end": e} for w, s, e in r.words],
                        "turns": [{"channel": t.speaker, "text": t.words, "start": t.start, "end": t.end,
                                   "closed": t.closed} for t in r.turns]}))
    else:
      print(f"{r.path}\t{r.text}" if r.error is None else f"{r.path}\tERROR {r.error}")
  if not _STREAM.value:
    seconds = sum(_duration(r.path) for r in results if r.error is None)
    print(f"transcribed {len(results) - failed} files, {seconds:.1f} s of audio in {elapsed:.1f} s: RTF "
          f"{elapsed / max(seconds, 1e-9):.4f}", file=sys.stderr)
  if failed:
    print(f"{failed} of {len(paths)} files could not be transcribed.", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
