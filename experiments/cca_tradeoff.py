r"""Compute against WER: the arbitrated Transformer at several lambda, sliding-window attention, LayerDrop.

  python experiments/cca_tradeoff.py --workdir_root=workdirs/cca --seeds=0,1

Reproduces Xie et al. (Interspeech 2022) on the embedded corpus with the one trainer and
`experiments/configs/cca_transformer.py`:

1. **Train.** Per seed a dense model (``--pretrain_steps``), then from it, with the same
   fine-tuning recipe (``--finetune_steps``, fresh optimizer, peak learning rate
   ``--finetune_lr``): the dense model continued (the reference point), the arbitrated
   model at every ``--lams`` (compute term weight), sliding-window attention at every
   ``--windows``, and LayerDrop ``--layerdrop``; also the arbitrated
   model with each gate estimator of ``--probe_estimators`` at ``--probe_lam``. Every run
   has the same parameters (the arbitrators exist, unused, in the dense ones). A run whose
   workdir holds ``results.json`` is not trained again.
2. **Evaluate** every row on ``--splits`` (greedy, the encoders' own accuracy, the first
   ``--limit`` utterances) through the task's one evaluation path; the LayerDrop model is
   also statically pruned to every ``--keep_layers`` count (blocks evenly spaced).
3. **Measure** on one CPU core, in a pinned subprocess (``--measure``): the encoder alone
   streaming ``--stream_utterances`` test utterances in chunks of ``--chunk_frames``
   (median of 3 passes); XLA's FLOPs of those chunks (the dense chunk's count with each
   block's skippable work replaced by its count at the capacity the gates chose); our own
   counted FLOPs (`cca_transformer.flops_per_frame`); the gate usage per block and
   sub-block, and against frame energy, silence vs speech, clean vs noisy utterances.

Prints one table, writes ``tradeoff.json`` and ``tradeoff.png`` into ``--results_dir`` (relative
WER change against compute saved, one curve per method, dense at the origin, the
paper's two points). Each row's WER and cost are kept in ``--results_dir`` (``<row>.wer.json``,
``<row>.cost.json``; committed under ``experiments/results/cca_tradeoff``): a measured row
is not measured again, nor its run trained again, and the table is made from them even
when the workdirs are gone; delete them to measure again.

References:
  Xie et al., "Compute cost amortized Transformer for streaming ASR", Interspeech 2022.
  Fan et al., "Reducing Transformer depth on demand with structured dropout", ICLR 2020.
"""

import os
import sys

if "--measure" in " ".join(sys.argv):  # one core, single-threaded XLA, set before JAX starts
  os.environ["JAX_PLATFORMS"] = "cpu"
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
  if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import copy  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402

from absl import app, flags, logging  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from asrjax import atomic_file, models, tasks  # noqa: E402
from asrjax.data import catalog, sources  # noqa: E402
from asrjax.frontend.featurize import featurize  # noqa: E402
from asrjax.inference import encoder_cost  # noqa: E402
from asrjax.models import cca_transformer  # noqa: E402
from asrjax.train import config_check, run_config, trainer, tradeoff  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = flags.DEFINE_string("workdir_root", "workdirs/cca", "One workdir per run under here.")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/tfds", "TFDS data directory.")
_VARIANT = flags.DEFINE_string("variant", "demo", "Config variant (corpus and training recipe).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1"], "Training seeds.")
_LAMS = flags.DEFINE_list("lams", ["0.03", "0.1", "0.3", "1.0"], "Compute-term weights of the arbitrated runs.")
_WINDOWS = flags.DEFINE_list("windows", ["16", "4"], "Attention history (frames) of the sliding-window runs.")
_LAYERDROP = flags.DEFINE_float("layerdrop", 0.2, "LayerDrop probability of the LayerDrop run.")
_KEEP = flags.DEFINE_list("keep_layers", ["6", "5", "4", "3"], "Blocks the LayerDrop model is pruned to.")
_PROBE_EST = flags.DEFINE_list("probe_estimators", ["relaxed"], "Other gate estimators, on every seed at --probe_lam.")
_PROBE_LAM = flags.DEFINE_float("probe_lam", 0.3, "Their compute-term weight.")
_PRETRAIN = flags.DEFINE_integer("pretrain_steps", 2000, "Steps of the dense model.")
_FINETUNE = flags.DEFINE_integer("finetune_steps", 500, "Steps of every run started from it.")
_FT_LR = flags.DEFINE_float("finetune_lr", 5e-4, "Peak learning rate of the fine-tuning runs.")
_SPLITS = flags.DEFINE_list("splits", ["dev", "test", "test_unseen"], "Splits to score.")
_LIMIT = flags.DEFINE_integer("limit", 800, "Utterances per split (0 = all).")
_STREAM_UTTS = flags.DEFINE_integer("stream_utterances", 30, "Test utterances streamed for wall-clock and gates.")
_CHUNK = flags.DEFINE_integer("chunk_frames", 64, "Input frames (10 ms) per streaming call.")
_MEASURE = flags.DEFINE_string("measure", None, "Internal: measure one row (JSON spec) on one core and print it.")
_RESULTS = flags.DEFINE_string("results_dir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                            "cca_tradeoff"),
                               "Where each row's WER and cost are kept (<row>.wer.json, <row>.cost.json); a row found "
                               "here is not measured again, and is in the table even without its workdir.")
_PHASE = flags.DEFINE_enum("phase", "all", ["all", "train", "wer", "cost"],
                           "'train': train the runs only; 'wer' / 'cost': only score / only measure the rows whose "
                           "runs are trained (the cost wants the machine otherwise idle); 'all': everything, "
                           "then the table and picture.")

PAPER = tradeoff.PAPER


def load_config(arg: str):
  path = os.path.join(_HERE, "configs", "cca_transformer.py")
  spec = importlib.util.spec_from_file_location("config_cca_transformer", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def run_config_of(run: dict, root: str):
  config = load_config(f"{_VARIANT.value},method={run['arg']}")
  config.train.seed = run["seed"]
  config.data.data_dir = _DATA_DIR.value
  config.eval.splits = ()  # evaluated below, through `evaluate_row`, with every row alike
  config.eval.decoder, config.eval.decoder_options, config.eval.lm.order, config.eval.lm.word_order = "greedy", {}, 0, 0
  config.train.max_train_seconds = 0
  if run["init"] is None:
    config.train.num_steps = _PRETRAIN.value
  else:
    run_config.as_finetune(config, os.path.join(root, run["init"]), _FINETUNE.value, _FT_LR.value)
  config_check.validate(config)
  return config


def with_keep(config, keep):
  config = copy.deepcopy(config)
  if keep:
    config.model.encoder.layers_to_keep = tuple(keep)
  return config


def evaluate_row(row: dict, root: str) -> dict:
  """WER per split of one row (the task's evaluation), with the speaker-bootstrap interval."""
  workdir = os.path.join(root, row["name"])
  config = run_config.load(workdir)
  task, params, _ = trainer.restore(config, workdir)
  config = with_keep(config, row["keep"])
  config.eval.splits, config.eval.limit = tuple(_SPLITS.value), _LIMIT.value
  task = tasks.build(config, workdir)
  out = task.evaluate(params, 0)
  return {split: {"wer": rec["wer"], "wer_interval": rec["wer_interval"], "per_family": rec["per_group"].get("family")}
          for split, (rec, _) in out.items()}


def measure_row(row: dict, root: str) -> dict:
  """Streaming wall-clock, XLA and counted FLOPs, gate statistics of one row (run on one core)."""
  workdir = os.path.join(root, row["name"])
  config = run_config.load(workdir)
  task, params, _ = trainer.restore(config, workdir)
  config = with_keep(config, row["keep"])
  model = models.build(config.model, task.tokenizer.vocab_size)
  enc = model.encoder
  split = sources.open_split(config.data.name, "test", config.data.data_dir)
  feats, meta = [], []
  for i in range(min(_STREAM_UTTS.value, len(split))):
    ex = split[i]
    audio = np.asarray(ex["audio"], np.int16)[None]
    f, _ = featurize({"audio": audio, "audio_paddings": np.zeros(audio.shape, np.float32)}, jax.random.key(0),
                     task.front_end, train=False)
    feats.append(np.asarray(f[0]))
    meta.append({"clean": catalog.as_text(ex["noise"]) == "none" if "noise" in ex else None})
  timing = encoder_cost.stream_seconds(model, params["model"], feats, _CHUNK.value)
  # where the time goes (gated models): the gating machinery with nothing skipped, and the floor
  # with everything skippable skipped (key/value projections, arbitrators, input/output layers)
  forced = {f"stream_seconds_gates_{v}": encoder_cost.stream_seconds(model, params["model"], feats, _CHUNK.value,
                                                                     gates=float(v))["seconds"]
            for v in (1, 0)} if model.encoder.gating == "arbitrator" else {}
  if forced:  # the arbitrators with nothing compacted: gates multiply, every sub-block runs for every frame
    masked = model.clone(encoder=model.encoder.clone(inference="masked"))
    forced["stream_seconds_masked"] = encoder_cost.stream_seconds(masked, params["model"], feats, _CHUNK.value)["seconds"]
  flops = cca_transformer.flops_per_frame(enc, enc.num_features)
  # the reference: the dense model (all blocks, the dense run's attention window)
  reference = enc.clone(gating="none", layers_to_keep=(), left_chunks=row["dense_left_chunks"])
  per_call = _CHUNK.value // enc.stack
  sub = encoder_cost.subblock_flops(enc, per_call)

  def chunk_flops(encoder):  # XLA's count of one streaming call of ``encoder`` (every frame valid)
    m = model.clone(encoder=encoder)
    chunk, pads = np.zeros((1, _CHUNK.value, feats[0].shape[1]), np.float32), np.zeros((1, _CHUNK.value), np.float32)
    state = m.apply(params["model"], 1, method=m.init_encode_state)
    return encoder_cost.compiled_flops(lambda p, f, s: m.apply(p, f, pads, s, method=m.encode), params["model"],
                                       chunk, state)

  xla_reference_call = chunk_flops(reference)
  gated = enc.gating == "arbitrator"
  # gated: this model's dense call with each block's skippable work at the capacity its gates chose;
  # otherwise the model's own call (a smaller window, pruned blocks) as compiled
  xla_own_call = chunk_flops(enc.clone(gating="none", layers_to_keep=()) if gated else enc)
  caps = list(sub["capacities"])
  full_sub = sub["mha"][-1] + sub["ffn"][-1]
  dense_per_frame = cca_transformer.flops_per_frame(reference, enc.num_features)["dense"]
  kept = set(enc.layers_to_keep) if enc.layers_to_keep else set(range(enc.layers))
  counted = dense_counted = xla = xla_dense = 0.0
  usage = np.zeros((enc.layers, 2))
  frames_total, energy_all, gates_all, clean_flags = 0, [], [], []
  for trace, m in zip(encoder_cost.gate_trace(model, params["model"], feats), meta):
    t = trace["mha"].shape[1]
    g = np.zeros((enc.layers, t, 2), bool)  # [L, T', 2]; pruned blocks stay off
    g[sorted(kept)] = np.stack([trace["mha"], trace["ffn"]], axis=-1) > 0.5
    valid = np.ones(t, bool)
    n = int(valid.sum())
    frames_total += n
    usage += g.sum(axis=1)
    counted += n * flops["fixed"] + (g[..., 0] * flops["mha"] + g[..., 1] * flops["ffn"]).sum()
    dense_counted += n * dense_per_frame
    calls = -(-n // per_call)
    for c in range(calls):  # XLA count of each streaming call
      window = g[:, c * per_call:(c + 1) * per_call]
      if gated:
        skippable = sum(sub[name][int(np.searchsorted(caps, window[li, :, k].sum()))]
                        for li in sorted(kept) for k, name in ((0, "mha"), (1, "ffn")))
        xla += xla_own_call - enc.layers * full_sub + skippable
      else:
        xla += xla_own_call
      xla_dense += xla_reference_call
    energy_all.append(trace["energy"])
    gates_all.append(g.sum(axis=(0, 2)) / (2 * enc.layers))  # fraction of sub-blocks on, per frame
    clean_flags.append(m["clean"])
  energy, on = np.concatenate(energy_all), np.concatenate(gates_all)
  quiet = np.concatenate([e <= np.quantile(e, 0.2) for e in energy_all])  # each utterance's quietest 20%
  per_utt = np.array([x.mean() for x in gates_all])
  clean = np.array([c is True for c in clean_flags])
  return {
      "stream_seconds": timing["seconds"], "stream_all": timing["all"], "audio_seconds": timing["frames"] / 100,
      **forced,
      "counted_flops_saved": 1 - counted / dense_counted, "xla_flops_saved": 1 - xla / xla_dense,
      "usage_mha": (usage[:, 0] / frames_total).tolist(), "usage_ffn": (usage[:, 1] / frames_total).tolist(),
      "gate_energy_corr": float(np.corrcoef(energy, on)[0, 1]) if on.std() > 0 else None,
      "on_quiet": float(on[quiet].mean()), "on_loud": float(on[~quiet].mean()),
      "on_clean": float(per_utt[clean].mean()) if clean.any() else None,
      "on_noisy": float(per_utt[~clean].mean()) if (~clean).any() else None,
      "device": jax.devices()[0].device_kind, "utterances": len(feats), "chunk_frames": _CHUNK.value}


def _measure_in_subprocess(row: dict, root: str) -> dict:
  spec = json.dumps({"row": row, "root": root})
  cmd = [sys.executable, os.path.abspath(__file__), f"--measure={spec}", f"--data_dir={_DATA_DIR.value}",
         f"--stream_utterances={_STREAM_UTTS.value}", f"--chunk_frames={_CHUNK.value}"]
  out = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if out.returncode:
    raise RuntimeError(f"measuring {row['row']} failed:\n{out.stderr[-3000:]}")
  line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
  return json.loads(line[len("RESULT "):])


def _cached(path: str, make):
  """The JSON at ``path``, or ``make()`` written there first."""
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  value = make()
  with atomic_file.open(path) as f:
    json.dump(value, f)
  return value


def _plot(rows, summary, path: str) -> None:
  try:
    import matplotlib  # noqa: PLC0415
  except ImportError:
    raise SystemExit(f"the table and {os.path.dirname(path)}/tradeoff.json are written, but the picture needs "
                     "matplotlib: pip install -e '.[plots]'") from None
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  for method, marker in (("arbitrated", "o"), ("sliding", "s"), ("layerdrop", "^")):
    pts = sorted((s["xla_saved"], s["rel_wer"], s["rel_wer_spread"]) for s in summary if s["method"] == method)
    if pts:
      x, y, e = zip(*pts)
      ax.errorbar([100 * v for v in x], y, yerr=e, marker=marker, capsize=3, label=f"{method} (ours)")
  ax.scatter([0], [0], color="k", zorder=5, label="dense (ours, reference)")
  for method, (x, y) in PAPER.items():
    ax.scatter([x], [y], marker="*", s=120, label=f"{method} (Xie et al. 2022)")
  ax.set_xlabel("encoder FLOPs saved, % (XLA count, streaming)")
  ax.set_ylabel("relative WER change vs dense, % (test)")
  ax.axhline(0, color="grey", lw=0.5)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main(argv):
  del argv
  if _MEASURE.value:
    spec = json.loads(_MEASURE.value)
    print("RESULT " + json.dumps(measure_row(spec["row"], spec["root"])))
    return
  root = _ROOT.value
  try:
    seeds = [int(s) for s in _SEEDS.value]
    lams = [float(x) for x in _LAMS.value]
    windows = [int(w) for w in _WINDOWS.value]
  except ValueError as e:
    raise app.UsageError(f"--seeds, --lams and --windows take numbers: {e}") from None
  runs = tradeoff.planned_runs(seeds, lams, windows, _LAYERDROP.value, _PROBE_EST.value, _PROBE_LAM.value)
  configs = {r["name"]: run_config_of(r, root) for r in runs}  # every config checked before training
  phase = _PHASE.value
  trained = lambda name: os.path.exists(os.path.join(root, name, "results.json"))
  keep_counts = [int(k) for k in _KEEP.value]
  dense_encoder = configs[runs[0]["name"]].model.encoder
  rows_all = tradeoff.evaluation_rows(runs, dense_encoder.layers, dense_encoder.left_chunks, keep_counts)
  measured = lambda row: all(os.path.exists(os.path.join(_RESULTS.value, f"{row['row']}.{k}.json"))
                             for k in ("wer", "cost"))
  # a run is trained when one of its rows is not measured yet; a dense pre-training run when one
  # of the fine-tunes that start from it must be trained
  todo = {r["name"] for r in rows_all if not measured(r) and not trained(r["name"])}
  todo |= {r["init"] for r in runs if r["name"] in todo and r["init"] and not trained(r["init"])}
  if phase in ("all", "train"):
    for run in runs:
      if run["name"] in todo:
        logging.info("training %s", run["name"])
        trainer.train_and_evaluate(configs[run["name"]], workdir=os.path.join(root, run["name"]))
  if phase == "train":
    return
  rows = []
  os.makedirs(_RESULTS.value, exist_ok=True)
  for row in rows_all:
    # measured rows live in the results folder (committed): the table survives a lost workdir
    wer_path, cost_path = (os.path.join(_RESULTS.value, f"{row['row']}.{k}.json") for k in ("wer", "cost"))
    if not trained(row["name"]):
      if not (os.path.exists(wer_path) and os.path.exists(cost_path)):
        logging.info("%s is not trained yet: left out", row["name"])
        continue
    if phase in ("all", "wer"):
      _cached(wer_path, lambda row=row: evaluate_row(row, root))
    if phase in ("all", "cost"):
      _cached(cost_path, lambda row=row: _measure_in_subprocess(row, root))
    if os.path.exists(wer_path) and os.path.exists(cost_path):
      rows.append({**row, "wer": _cached(wer_path, None), **_cached(cost_path, None)})
  if phase != "all":
    return
  summary = tradeoff.summarise(rows, _SPLITS.value)
  with atomic_file.open(os.path.join(_RESULTS.value, "tradeoff.json")) as f:
    json.dump({"rows": rows, "summary": summary, "paper": PAPER}, f, indent=1)
  print_table(summary)
  _plot(rows, summary, os.path.join(_RESULTS.value, "tradeoff.png"))


def print_table(summary) -> None:
  splits = _SPLITS.value
  print("| config | seeds | " + " | ".join(f"WER {s} %" for s in splits) + " | rel. WER test % (± half-range) | "
        "FLOPs saved counted / XLA % | wall-clock saved % | MHA / FFN gate use per block |")
  print("| --- " * (6 + len(splits)) + "|")
  for s in summary:
    wers = " | ".join(f"{100 * s['wer'][x]:.2f}" for x in splits)
    use = " ".join(f"{m:.2f}/{f:.2f}" for m, f in zip(s["usage_mha"], s["usage_ffn"]))
    print(f"| {s['config']} | {','.join(map(str, s['seeds']))} | {wers} | {s['rel_wer']:+.1f} ± {s['rel_wer_spread']:.1f}"
          f" | {100 * s['counted_saved']:.1f} / {100 * s['xla_saved']:.1f} | {100 * s['wall_saved']:.1f} | {use} |")
  for method, (x, y) in PAPER.items():
    print(f"| paper: {method} (Xie et al. 2022) | - | " + " | ".join("-" for _ in splits) + f" | +{y:.0f} | {x:.0f} | - | - |")


if __name__ == "__main__":
  app.run(main)
