r"""Decoding speed and WER of a trained transducer, decoder by decoder: one table.

  python experiments/bench_decoders.py --workdir=workdirs/demo/convrnnt --split=test --utterances=800

Restores ``--workdir`` and decodes the first ``--utterances`` of ``--split`` with greedy
search, modified beam search (beam 4), the host Graves beam search (beam 16; ``--host``) and
the on-device mAES search (`asrjax.decoding.maes`) at each of ``--beams``, and, where the
config has an n-gram LM (``eval.lm.order > 0``), the Graves and mAES searches again with
shallow fusion as the config sets it (the same λ and β, so the two searches are compared
on one scoring rule). Each row goes through `asrjax.inference.evaluation.evaluate` (the path
`experiments/evaluate.py` takes): the real-time factor is wall time over audio time for
featurising, encoding and decoding, batch 16, on this host with its default threads.
With ``--warmup`` (default) every decoder first decodes, untimed, one batch of silence of
each batch shape the timed pass will use (`evaluation.batch_plan`), so no compilation is
timed (the programs are shared by every evaluation of the model in the process).

Where the time goes: greedy's RTF is the front end and encoder plus a search that costs
almost nothing, so each row's ``search RTF`` is its RTF minus greedy's; the device LM's
size (`device_lm.nbytes`) and the one-off time to lay it out are printed under the table.
"""

import json
import time

from absl import app, flags
from ml_collections import config_flags
import numpy as np

from asrjax.data import sources
from asrjax.decoding import device_lm
from asrjax.inference import batch_decoder, evaluation
from asrjax.train import config_check, run_config
from asrjax.tasks import transducer_asr

_CONFIG = config_flags.DEFINE_config_file("config", None, "The training configuration (default: the one the run "
                                          "wrote to <workdir>/config.json).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (checkpoints, tokenizer).")
_SPLIT = flags.DEFINE_string("split", "dev", "Split to decode.")
_UTTERANCES = flags.DEFINE_integer("utterances", 64, "Utterances decoded per decoder.")
_WARMUP = flags.DEFINE_boolean("warmup", True, "Compile every batch shape untimed first, per decoder.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest readable one).")
_BEAMS = flags.DEFINE_list("beams", ["1", "4", "8", "16"], "Beam widths of the mAES rows.")
_HOST = flags.DEFINE_boolean("host", True, "Include the host Graves beam search rows (beam 16).")
_MAES = flags.DEFINE_string("maes_options", "{}", "JSON keyword options of every mAES row (e.g. "
                            '\'{"max_symbols_per_frame": 3, "expansion_gamma": 2.3}\').')
flags.mark_flags_as_required(["workdir"])


def settings(config, lm, beams=(1, 4, 8, 16), host=True, maes_options=None) -> list[tuple[str, str, dict]]:
  """``(row name, decoder, options)`` for every decoder the bench times."""
  rows = [("greedy", "greedy", {}), ("modified beam 4", "modified_beam", {"beam": 4})]
  fusions = [("", {})] + ([(" + LM", None)] if lm is not None else [])
  for suffix, fusion in fusions:
    if host:
      opts = transducer_asr.lm_decoder_options(config, "beam", lm) if fusion is None else {}
      rows.append((f"host beam 16{suffix}", "beam", dict(opts, beam=16)))
    for beam in beams:
      opts = transducer_asr.lm_decoder_options(config, "maes", lm) if fusion is None else {}
      rows.append((f"maes {beam}{suffix}", "maes", dict(opts, **(maes_options or {}), beam=beam)))
  return rows


def main(argv):
  del argv
  try:
    config = run_config.resolve(_CONFIG.value, _WORKDIR.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if _UTTERANCES.value < 1:
    raise app.UsageError("--utterances must be >= 1.")
  model, params, tok, front_end, steps = transducer_asr.restore_params(config, _WORKDIR.value, _STEP.value)
  split = sources.open_split(config.data.name, _SPLIT.value, config.data.data_dir)
  try:
    beams = [int(b) for b in _BEAMS.value]
    maes_options = evaluation.parse_decoder_options(_MAES.value, "--maes_options")
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  lm = transducer_asr.make_lm(config, None, tok, _WORKDIR.value) if config.eval.lm.order else None
  lm_facts = {}
  if lm is not None:
    start = time.perf_counter()
    lm_facts = {"device_lm_bytes": device_lm.nbytes(device_lm.to_device(lm)),
                "device_lm_layout_seconds": time.perf_counter() - start}
  print(f"{config.data.name} {_SPLIT.value}, first {min(_UTTERANCES.value, len(split))} utterances, step {steps[0]}")
  print("| decoder | WER % | RTF | search RTF |\n| --- | --- | --- | --- |")
  results = {}
  lengths = [len(split[i]["audio"]) for i in range(min(_UTTERANCES.value, len(split)))]
  shapes = sorted({(len(ids), bucket) for ids, bucket in evaluation.batch_plan(lengths, 16)})
  for name, decoder, options in settings(config, lm, beams, _HOST.value, maes_options):
    run = dict(decoder=decoder, decoder_options=options, front_end=front_end)
    if _WARMUP.value:
      decode = batch_decoder.BatchDecoder(model, params, **run)
      for size, bucket in shapes:
        decode([np.zeros(1600, np.int16)] * size, bucket)
    ev = evaluation.evaluate(model, params, split, tok, batch_size=16, limit=_UTTERANCES.value, **run)
    results[name] = {"wer": ev["wer"], "rtf": ev["rtf"]}
    search = ev["rtf"] - results["greedy"]["rtf"]
    print(f"| {name} | {100 * ev['wer']:.2f} | {ev['rtf']:.4f} | {search:.4f} |", flush=True)
  if lm_facts:
    print(f"device LM: {lm_facts['device_lm_bytes'] / 2 ** 20:.1f} MiB, laid out in "
          f"{lm_facts['device_lm_layout_seconds']:.1f} s")
  print(json.dumps(dict(results, **lm_facts)))


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
