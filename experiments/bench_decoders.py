r"""Decoding speed and WER of a trained transducer, decoder by decoder: one table.

  python experiments/bench_decoders.py --config=experiments/configs/convrnnt.py:cpu_long \
      --workdir=workdirs/cpu_long --split=dev --utterances=64

Restores ``--workdir`` and decodes the first ``--utterances`` of ``--split`` with greedy
search, modified beam search (beam 4), the Graves beam search (beam 16), and, where the
config has an n-gram LM (``eval.lm.order > 0``), the Graves search with shallow fusion
as the config sets it. Each row goes through `asrjax.inference.evaluation.evaluate` (the path
`experiments/evaluate.py` takes): the real-time factor is wall time over audio time for
featurising, encoding and decoding, batch 16, on this host with its default threads.
Every decoder first decodes ``--warmup`` utterances untimed, so most compilation is
excluded; later batch shapes may still compile once and are included.
"""

import json

from absl import app, flags
from ml_collections import config_flags

from asrjax.data import sources
from asrjax.inference import evaluation
from asrjax.train import config_check, run_config
from asrjax.tasks import transducer_asr

_CONFIG = config_flags.DEFINE_config_file("config", None, "The training configuration (default: the one the run "
                                          "wrote to <workdir>/config.json).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (checkpoints, tokenizer).")
_SPLIT = flags.DEFINE_string("split", "dev", "Split to decode.")
_UTTERANCES = flags.DEFINE_integer("utterances", 64, "Utterances decoded per decoder.")
_WARMUP = flags.DEFINE_integer("warmup", 16, "Utterances decoded untimed first, per decoder.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest readable one).")
flags.mark_flags_as_required(["workdir"])


def settings(config, lm) -> list[tuple[str, str, dict]]:
  """``(row name, decoder, options)`` for every decoder the bench times."""
  rows = [("greedy", "greedy", {}), ("modified beam 4", "modified_beam", {"beam": 4}),
          ("beam 16", "beam", {"beam": 16})]
  if lm is not None:
    rows.append(("beam 16 + LM", "beam", dict(transducer_asr.lm_decoder_options(config, "beam", lm), beam=16)))
  return rows


def main(argv):
  del argv
  try:
    config = run_config.resolve(_CONFIG.value, _WORKDIR.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if _UTTERANCES.value < 1 or _WARMUP.value < 0:
    raise app.UsageError("--utterances must be >= 1 and --warmup >= 0.")
  model, params, tok, front_end, steps = transducer_asr.restore_params(config, _WORKDIR.value, _STEP.value)
  split = sources.open_split(config.data.name, _SPLIT.value, config.data.data_dir)
  lm = transducer_asr.make_lm(config, None, tok, _WORKDIR.value) if config.eval.lm.order else None
  print(f"{config.data.name} {_SPLIT.value}, first {min(_UTTERANCES.value, len(split))} utterances, step {steps[0]}")
  print("| decoder | WER % | RTF |\n| --- | --- | --- |")
  results = {}
  for name, decoder, options in settings(config, lm):
    run = dict(decoder=decoder, decoder_options=options, front_end=front_end)
    if _WARMUP.value:
      evaluation.evaluate(model, params, split, tok, limit=_WARMUP.value, **run)
    ev = evaluation.evaluate(model, params, split, tok, limit=_UTTERANCES.value, **run)
    results[name] = {"wer": ev["wer"], "rtf": ev["rtf"]}
    print(f"| {name} | {100 * ev['wer']:.2f} | {ev['rtf']:.3f} |", flush=True)
  print(json.dumps(results))


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
