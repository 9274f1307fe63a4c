r"""Transcribes audio files with a trained model: one line per file, ``path<TAB>text``.

  python experiments/transcribe.py --workdir=workdirs/demo/convrnnt a.wav b.flac
  python experiments/transcribe.py --workdir=W --json a.wav        # n-best with scores, one JSON object per line

Reads wav / flac / ogg (soundfile) at any sample rate, mono or multi-channel, and
decodes with the run's own config and decoder (`asrjax.inference.Recognizer`;
``--decoder`` / ``--decoder_options`` choose another). A file that cannot be
transcribed (missing, unreadable, empty, NaN samples, shorter than 25 ms) gets an
``ERROR`` line naming why, the others are still transcribed, and the exit status is 1
when any failed.
"""

import json
import sys

from absl import app, flags

from asrjax.inference import Recognizer
from asrjax.train import evaluation

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (its config.json, checkpoints, tokenizer).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest readable one).")
_AVERAGE = flags.DEFINE_integer("average", 1, "Decode with the mean of this many newest checkpoints.")
_DECODER = flags.DEFINE_enum("decoder", None, ["greedy", "beam", "modified_beam"], "Decoder (default: the config's).")
_OPTIONS = flags.DEFINE_string("decoder_options", "{}", "JSON keyword options of the decoder.")
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object per file (text, n-best with scores, error).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError("give one or more audio files after the flags.")
  if _AVERAGE.value < 1:
    raise app.UsageError(f"--average must be >= 1; got {_AVERAGE.value}.")
  try:
    options = evaluation.parse_decoder_options(_OPTIONS.value, "--decoder_options")
    recognizer = Recognizer.from_workdir(_WORKDIR.value, step=_STEP.value, average=_AVERAGE.value,
                                         decoder=_DECODER.value, decoder_options=options)
  except (ValueError, FileNotFoundError) as e:
    raise app.UsageError(str(e)) from None
  failed = 0
  for r in recognizer.recognize_files(paths):
    failed += r.error is not None
    if _JSON.value:
      print(json.dumps({"path": r.path, "text": r.text, "nbest": [list(x) for x in r.nbest], "error": r.error}))
    else:
      print(f"{r.path}\t{r.text}" if r.error is None else f"{r.path}\tERROR {r.error}")
  if failed:
    print(f"{failed} of {len(paths)} files could not be transcribed.", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
