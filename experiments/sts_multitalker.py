r"""Separator-transducer-segmenter vs its ablations and a single-speaker model, on two-talker mixtures.

  python experiments/build_corpus.py --config=full --data_dir=data/tfds    # synth_multitalker/full with it
  python experiments/sts_multitalker.py --workdir_root=workdirs/sts --baseline_workdir=workdirs/demo/convrnnt
  python experiments/sts_multitalker.py --variant=tiny --data_dir=/tmp/tfds_tiny --workdir_root=/tmp/sts \
      --limit=2 --results_dir=/tmp/sts/results   # a smoke run on synth_multitalker/tiny

Trains (`experiments/configs/sts_multitalker.py`, one workdir per run under
``--workdir_root``; a trained run resumes or is skipped) the full model and each of the
paper's ablations (``--runs``: ``full``, ``start_only``, ``no_penalty``, ``no_fastemit``; and,
ours, ``two_sided``: the full model with an early penalty too; ``pre_<run>``: that run started
from ``--baseline_workdir``'s parameters, which must then be a ConvRNN-T demo run),
decodes the first ``--limit`` test mixtures with each, and decodes them with a
single-speaker transducer (``--baseline_workdir``, e.g. the demo ConvRNN-T: the naive
baseline, one channel, no turns). Prints one table -- ORC-WER with its 95% session-bootstrap
interval, cpWER, tcpWER, turn-counting accuracy, end-of-turn latency P50 / P90, early-cutoff
rate, RTF -- overall and ORC-WER per overlap bin (SURT's 0L / 0S / OVxx), with the paper's
claims checked: turn counting >= 4.6 points above start-only, EOT P90 >= 30% lower with the
penalty than without at <= 3% relative ORC-WER cost, early cutoffs <= 2%. Each run's record
is kept as ``<results_dir>/<run>.json`` (a run found there is not decoded again); the table
goes to ``sts_multitalker.md`` and one decoded mixture to ``sts_mixture.png``.
"""

import importlib.util
import json
import os

from absl import app, flags

from asrjax import atomic_file
from asrjax.data import sources
from asrjax.inference import multitalker as mt_eval
from asrjax.metrics import multitalker as metrics
from asrjax.train import run_config, trainer

_HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = {"full": "", "start_only": "ablation=start_only", "no_penalty": "ablation=no_penalty",
        "no_fastemit": "ablation=no_fastemit", "two_sided": "ablation=two_sided",
        # started from --baseline_workdir's single-speaker ConvRNN-T (the config's `pretrained` option)
        "pre_full": "pretrained", "pre_start_only": "ablation=start_only,pretrained",
        "pre_no_penalty": "ablation=no_penalty,pretrained", "pre_two_sided": "ablation=two_sided,pretrained"}
_ROOT = flags.DEFINE_string("workdir_root", "workdirs/sts", "One workdir per run under here.")
_RUNS = flags.DEFINE_list("runs", list(RUNS), f"Runs to train and compare, of {list(RUNS)}.")
_BASELINE = flags.DEFINE_string("baseline_workdir", "", "A trained single-speaker transducer run (the naive "
                                "baseline; its kept record in --results_dir is used when there is one); '' leaves "
                                "it out.")
_VARIANT = flags.DEFINE_string("variant", "", "Config variant ('' or 'tiny').")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_LIMIT = flags.DEFINE_integer("limit", 400, "Test mixtures decoded per model (0 = all).")
_DRAWS = flags.DEFINE_integer("draws", 1000, "Session-bootstrap draws.")
_PICTURE = flags.DEFINE_string("picture_run", "full", "The run whose decoding of the first mixture is drawn "
                                "(sts_mixture.png); the first run when it is not among --runs.")
_RESULTS = flags.DEFINE_string("results_dir", os.path.join(_HERE, "results", "sts_multitalker"),
                               "Each run's record is kept here as <run>.json; a run found here is not decoded again.")


def load_config(run: str):
  spec = importlib.util.spec_from_file_location("config_sts", os.path.join(_HERE, "configs", "sts_multitalker.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(",".join(x for x in (f"variant={_VARIANT.value}" if _VARIANT.value else "", RUNS[run])
                                      if x))
  config.data.data_dir = _DATA_DIR.value
  config.eval.splits = ()  # decoded below, on the same mixtures for every model
  if config.train.init_transfer == "overlap":  # starts from the single-speaker baseline's parameters
    if not os.path.exists(os.path.join(_BASELINE.value, "config.json")):
      raise app.UsageError(f"--runs={run} starts from --baseline_workdir's parameters: {_BASELINE.value!r} holds "
                           "no trained run (no config.json).")
    config.train.init_from = _BASELINE.value
  return config


def _record(name: str, make) -> dict:
  path = os.path.join(_RESULTS.value, f"{name}.json")
  if os.path.exists(path):
    with open(path) as f:
      stored = json.load(f)
    if stored.get("limit") == _LIMIT.value:
      return stored
  record = make()
  record["limit"] = _LIMIT.value
  with atomic_file.open(path) as f:
    json.dump(record, f)
  return record


def _evaluate(workdir: str) -> dict:
  """`evaluate_mixtures` of ``workdir``'s newest checkpoint (a multi-channel or a single-speaker run) on the test
  mixtures, with the ORC-WER's session-bootstrap interval."""
  config = run_config.load(workdir)
  task, params, steps = trainer.restore(config, workdir)
  split = sources.open_split(load_config("full").data.name, "test", _DATA_DIR.value)
  ev = mt_eval.evaluate_mixtures(task.model, params["model"], split, task.tokenizer, limit=_LIMIT.value,
                                 front_end=task.front_end)
  per = metrics.session_wers({sid: ([metrics.Turn(**t) for t in s["reference"]],
                                    [metrics.Turn(**t) for t in s["hypothesis"]]) for sid, s in ev["sessions"].items()})
  ev["orcwer_interval"] = list(metrics.session_interval(per, "orcwer", draws=_DRAWS.value))
  ev["steps"] = list(steps)
  return ev


def _pct(x, digits=1):
  return "-" if x is None else f"{100 * x:.{digits}f}"


def _ms(summary, key):
  v = summary.get(key) if summary else None
  return "-" if v is None else f"{1000 * v:.0f}"


def _s(summary, key):
  v = summary.get(key) if summary else None
  return "-" if v is None else f"{v:+.2f}"


def table(records: dict) -> str:
  """The markdown table of `records` ``{run: evaluate_mixtures record}``: overall figures, then ORC-WER per bin."""
  lines = ["| model | ORC-WER % [95% CI] | cpWER % | tcpWER % | turn counting % | EOT P50 / P90 ms | early cutoff % "
           "| missed turns | RTF |", "| --- " * 9 + "|"]
  for run, r in records.items():
    o, (lo, hi) = r["metrics"]["overall"], r["orcwer_interval"]
    lines.append(f"| {run} | {_pct(o['orcwer']['error_rate'])} [{_pct(lo)}, {_pct(hi)}] | "
                 f"{_pct(o['cpwer']['error_rate'])} | {_pct(o['tcpwer']['error_rate'])} | "
                 f"{_pct(o['turn_counting_accuracy'])} | {_ms(o['eot_latency'], 'p50')} / {_ms(o['eot_latency'], 'p90')} | "
                 f"{_pct(o['early_cutoff_rate'])} | {o['missed_turns']} of {o['reference_turns']} | {r['rtf']:.3f} |")
  bins = list(dict.fromkeys(b for r in records.values() for b in r["metrics"]["bins"]))
  lines += ["", "ORC-WER % per overlap bin (mixtures):", "",
            "| model | " + " | ".join(bins) + " |", "| --- " * (len(bins) + 1) + "|"]
  for run, r in records.items():
    cells = [f"{_pct(r['metrics']['bins'][b]['orcwer']['error_rate'])} ({r['metrics']['bins'][b]['sessions']})"
             if b in r["metrics"]["bins"] else "-" for b in bins]
    lines.append(f"| {run} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _paper_claims(full, start, nopen, full_name: str, start_name: str) -> list[str]:
  """The paper's two claims from one family of runs (any of them None: its lines are left out)."""
  out = []
  if full and start:
    d = 100 * (full["turn_counting_accuracy"] - start["turn_counting_accuracy"])
    rel = 100 * (full["orcwer"]["error_rate"] / start["orcwer"]["error_rate"] - 1)
    out.append(f"turn counting, {full_name} - {start_name}: {d:+.1f} points (paper +4.6, goal >= +4.6); ORC-WER "
               f"{rel:+.1f}% relative (paper -17%)")
  if full and nopen and full["eot_latency"]["p90"] is not None and nopen["eot_latency"]["p90"] is not None:
    p_full, p_nopen = full["eot_latency"]["p90"], nopen["eot_latency"]["p90"]
    cost = 100 * (full["orcwer"]["error_rate"] / nopen["orcwer"]["error_rate"] - 1)
    if p_full > 0 and p_nopen > 0:
      out.append(f"EOT P90 of {full_name}, with the penalty vs without: {100 * (p_full / p_nopen - 1):+.1f}% (goal "
                 f"<= -30%) at {cost:+.1f}% relative ORC-WER (goal <= +3%)")
    else:  # a ratio of latencies is meaningless once one of them is early: report both
      out.append(f"EOT P90 of {full_name} with the penalty {p_full:+.2f} s vs without {p_nopen:+.2f} s: not "
                 f"comparable as a ratio (a P90 <= 0 means 90% of turns closed early; early cutoffs "
                 f"{_pct(full['early_cutoff_rate'], 0)}% vs {_pct(nopen['early_cutoff_rate'], 0)}%), at {cost:+.1f}% "
                 "relative ORC-WER")
  return out


def claims(records: dict) -> list[str]:
  """The paper's claims and the issue's goals, each measured where its runs are present."""
  out = []
  get = lambda run: records[run]["metrics"]["overall"] if run in records else None
  for pre in ("", "pre_"):  # from scratch, and started from the single-speaker model
    full, start, nopen = get(pre + "full"), get(pre + "start_only"), get(pre + "no_penalty")
    out += _paper_claims(full, start, nopen, f"{pre}full", f"{pre}start_only")
  full = get("full")
  two = get("two_sided")
  if full and two and full["eot_latency"]["p50"] is not None and two["eot_latency"]["p50"] is not None:
    cost = 100 * (two["orcwer"]["error_rate"] / full["orcwer"]["error_rate"] - 1)
    out.append(f"two-sided penalty vs late-only: early cutoffs {_pct(two['early_cutoff_rate'])}% vs "
               f"{_pct(full['early_cutoff_rate'])}%, EOT P50 {two['eot_latency']['p50']:+.2f} s vs "
               f"{full['eot_latency']['p50']:+.2f} s, ORC-WER {cost:+.1f}% relative")
  nofe = get("no_fastemit")
  if full and nofe:
    cost = 100 * (full["orcwer"]["error_rate"] / nofe["orcwer"]["error_rate"] - 1)
    out.append(f"FastEmit, full vs no_fastemit: EOT P50 {_s(full['eot_latency'], 'p50')} vs "
               f"{_s(nofe['eot_latency'], 'p50')} s, early cutoffs {_pct(full['early_cutoff_rate'])}% vs "
               f"{_pct(nofe['early_cutoff_rate'])}%, ORC-WER {cost:+.1f}% relative")
  pre, single = get("pre_two_sided"), get("single-speaker")
  if pre and (two or single):
    parts = [f"{name} {_pct(r['orcwer']['error_rate'])}%" for name, r in (("two_sided", two), ("single-speaker", single))
             if r]
    out.append(f"two_sided started from the single-speaker ConvRNN-T (pre_two_sided): ORC-WER "
               f"{_pct(pre['orcwer']['error_rate'])}% vs {', '.join(parts)}; early cutoffs {_pct(pre['early_cutoff_rate'])}%, EOT P50 / P90 "
               f"{_s(pre['eot_latency'], 'p50')} / {_s(pre['eot_latency'], 'p90')} s, {pre['missed_turns']} of "
               f"{pre['reference_turns']} turns missed")
  if full and full["early_cutoff_rate"] is not None:
    out.append(f"early cutoffs of the full model: {100 * full['early_cutoff_rate']:.1f}% (goal <= 2%)")
  if "full" in records:
    out.append(f"RTF of the full model (greedy, batched, this host): {records['full']['rtf']:.3f} (goal < 0.1 on one "
               "core, streaming)")
  return out


def main(argv):
  del argv
  unknown = sorted(set(_RUNS.value) - set(RUNS))
  if unknown:
    raise app.UsageError(f"--runs: unknown {unknown}; choose from {list(RUNS)}.")
  if _LIMIT.value < 0 or _DRAWS.value < 1:
    raise app.UsageError(f"--limit must be >= 0 and --draws >= 1; got {_LIMIT.value}, {_DRAWS.value}.")
  kept_baseline = os.path.exists(os.path.join(_RESULTS.value, "single_speaker.json"))
  if _BASELINE.value and not os.path.exists(os.path.join(_BASELINE.value, "config.json")) and not kept_baseline:
    raise app.UsageError(f"--baseline_workdir: {_BASELINE.value} holds no trained run (no config.json) and "
                         f"{_RESULTS.value} keeps no single_speaker.json record of one.")
  os.makedirs(_RESULTS.value, exist_ok=True)
  records = {}
  for run in _RUNS.value:
    workdir = os.path.join(_ROOT.value, run)
    def make(run=run, workdir=workdir):
      if not os.path.exists(os.path.join(workdir, "results.json")):
        trainer.train_and_evaluate(load_config(run), workdir)
      return _evaluate(workdir)
    records[run] = _record(run, make)
  if _BASELINE.value:
    records["single-speaker"] = _record("single_speaker", lambda: _evaluate(_BASELINE.value))
  text = table(records) + "\n\n" + "\n".join(f"- {c}" for c in claims(records))
  print(text)
  with atomic_file.open(os.path.join(_RESULTS.value, "sts_multitalker.md")) as f:
    f.write(text + "\n")
  shown = _PICTURE.value if _PICTURE.value in records else next(iter(records))
  sid = next(iter(records[shown]["sessions"]))
  mt_eval.draw_session(os.path.join(_RESULTS.value, "sts_mixture.png"), records[shown]["sessions"][sid],
                       title=f"{sid}: reference turns and the {shown} model's channels")


if __name__ == "__main__":
  app.run(main)
