r"""Evaluates a trained transducer with any decoder: WER overall and per metadata group, RTF.

  python experiments/evaluate.py --config=experiments/configs/convrnnt.py --workdir=workdirs/convrnnt \
      --split=test --decoder=modified_beam --decoder_options='{"beam": 4}'
  python experiments/evaluate.py --config=experiments/configs/convrnnt.py:demo --workdir=workdirs/demo \
      --split=dev --decoder=beam --config.eval.lm.order=8 --config.eval.lm.weight=0.5

``--config`` may be left out: the run's own config, overrides included, is read from
``<workdir>/config.json`` (written by the trainer since issue 15). A ``--config`` whose
model, tokenizer or front end differs from the run's is refused, naming the fields.

``--step=N`` evaluates checkpoint N instead of the newest (the workdir keeps
``train.keep_checkpoints`` of them; the output file name then carries the step);
``--average=K`` decodes with the mean parameters of the K newest checkpoints up to
it (icefall's ``--avg``). ``--out`` names the JSON (for sweeps of decoder settings, which
the default name does not carry); `experiments/error_breakdown.py` reads it. Its WERs are
``null`` where there are no reference words.

The flags are checked before anything is restored or decoded: the config
(`asrjax.train.config_check`), ``--limit`` >= 0 (0 = all), ``--average`` >= 1,
``--decoder_options`` a JSON object of options the decoder takes, the workdir, and the
output file writable; a split with no utterances is refused too. A run that fails
leaves any earlier JSON at the output path as it was, and an empty result is never
written.

With ``config.eval.lm.order > 0`` the beam decoder fuses a token n-gram LM counted on
the training transcripts (`asrjax.decoding.ngram_lm`, cached as
``<workdir>/ngram_lm.npz``), weighted by ``eval.lm.weight`` with a per-label
``eval.lm.length_bonus``.
"""

import json
import os

from absl import app, flags
from ml_collections import config_flags

from asrjax import atomic_file, decoding
from asrjax.data import sources
from asrjax.metrics import wer
from asrjax.inference import evaluation
from asrjax.train import config_check, run_config
from asrjax.tasks import transducer_asr

_CONFIG = config_flags.DEFINE_config_file("config", None, "The training configuration (default: the one the run "
                                          "wrote to <workdir>/config.json).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (checkpoints, tokenizer).")
_SPLIT = flags.DEFINE_string("split", "test", "Split to decode.")
_DECODER = flags.DEFINE_enum("decoder", "greedy", sorted(decoding.DECODERS), "Decoder.")
_OPTIONS = flags.DEFINE_string("decoder_options", "{}", "JSON keyword options of the decoder.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Decode only N utterances (0 = all).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the newest readable one).")
_AVERAGE = flags.DEFINE_integer("average", 1, "Decode with the mean parameters of this many newest checkpoints "
                                "(up to --step).")
_OUT = flags.DEFINE_string("out", None, "Where the JSON of results, references and hypotheses goes (default: "
                           "<workdir>/eval_<split>_<decoder>[_step<N>][_avg<K>][_limit<L>].json).")
flags.mark_flags_as_required(["workdir"])


def _output_path(config) -> str:
  """``--out``, or the default name, known before restoring (`averaging.select_steps` gives exactly
  ``--average`` steps, the newest being ``--step`` when it is set)."""
  name = (f"eval_{_SPLIT.value}_{_DECODER.value}" + ("" if _STEP.value is None else f"_step{_STEP.value}")
          + ("" if _AVERAGE.value == 1 else f"_avg{_AVERAGE.value}")
          + ("" if not _LIMIT.value else f"_limit{_LIMIT.value}"))  # a partial result never replaces a full one
  return _OUT.value or os.path.join(_WORKDIR.value, name + ".json")


def _check_flags(config) -> tuple[dict, str]:
  """``(decoder options of --decoder_options, output path)``, or `app.UsageError` naming the flag.

  Everything that can be checked without the model is checked here, before minutes of
  restoring and decoding: a run that cannot score anything or cannot write its result
  fails first and leaves any previous result where it is.
  """
  try:
    config_check.validate(config)
    run_config.check_compatible(config, _WORKDIR.value)
    evaluation.check_limit(_LIMIT.value, "--limit")
    if _AVERAGE.value < 1:
      raise ValueError(f"--average must be >= 1 (checkpoints to average); got {_AVERAGE.value}.")
    if _STEP.value is not None and _STEP.value < 0:
      raise ValueError(f"--step must be a checkpoint step >= 0; got {_STEP.value}.")
    flag_options = evaluation.parse_decoder_options(_OPTIONS.value, "--decoder_options")
    config_options = config.eval.decoder_options.to_dict() if _DECODER.value == config.eval.decoder else {}
    evaluation.check_decoder_options(_DECODER.value, {**config_options, **flag_options})
    if not os.path.isdir(_WORKDIR.value):
      raise ValueError(f"--workdir: no tokenizer at {_WORKDIR.value} (no such folder): is it a training workdir?")
    out = _output_path(config)
    evaluation.check_writable(out, "--out" if _OUT.value else "--workdir (where the result goes; --out to put it "
                              "elsewhere)")
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  return flag_options, out


def _config():
  """``--config`` (with its overrides), else the config the run wrote to its workdir."""
  try:
    return run_config.resolve(_CONFIG.value, _WORKDIR.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None


def main(argv):
  del argv
  config = _config()
  flag_options, out = _check_flags(config)
  split = sources.open_split(config.data.name, _SPLIT.value, config.data.data_dir)
  if not len(split):
    raise app.UsageError(f"{config.data.name} {_SPLIT.value} holds no utterances: nothing to evaluate "
                         f"({out} is left as it is).")
  model, params, tok, front_end, steps = transducer_asr.restore_params(config, _WORKDIR.value, _STEP.value,
                                                                  _AVERAGE.value)
  step = steps[-1]
  if config.eval.lm.order and not decoding.takes_lm(_DECODER.value):
    print(f"note: the config's n-gram LM (eval.lm.order={config.eval.lm.order}) is for the beam and maes decoders; "
          f"decoding with {_DECODER.value} without it.")
  options = transducer_asr.decoding_options(config, _DECODER.value, tok, _WORKDIR.value, flag_options)
  ev = evaluation.evaluate(model, params, split, tok, decoder=_DECODER.value, decoder_options=options,
                           limit=_LIMIT.value, front_end=front_end)
  interval = evaluation.speaker_interval(ev)
  shown = "-" if None in interval else f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
  print(f"{config.data.name} {_SPLIT.value}, {_DECODER.value}, step {step}"
        + (f" (mean of steps {list(steps)})" if len(steps) > 1 else "") + f": WER {wer.format_wer(ev['total'])}%"
        f" (95% speaker bootstrap {shown}) of {ev['total'].reference_words} reference words, RTF {ev['rtf']:.3f}")
  for field, counts in ev["errors"].items():
    print(wer.wer_table(counts, field))
  with atomic_file.open(out) as f:
    json.dump({"dataset": config.data.name, "split": _SPLIT.value, "steps": list(steps),
               "wer": evaluation.rate(ev["total"]), "wer_interval": interval, "rtf": ev["rtf"],
               "utterances": len(ev["references"]),
               "decoder_options": {k: v for k, v in options.items() if k != "lm"},
               "lm": config.eval.lm.to_dict() if "lm" in options else None,
               "per_group": evaluation.per_group_rates(ev["errors"]),
               "references": ev["references"], "hypotheses": ev["hypotheses"], "speakers": ev["speakers"],
               # per utterance [substitutions, deletions, insertions, reference words], in split order
               "utterance_errors": [[c.substitutions, c.deletions, c.insertions, c.reference_words]
                                    for c in ev["utterance_errors"]]}, f, indent=1, allow_nan=False)
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
