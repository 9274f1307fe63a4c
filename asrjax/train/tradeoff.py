"""The compute-cost-amortized Transformer's trade-off study: its runs, its rows and their summary.

`experiments/cca_tradeoff.py` trains and measures; this module holds the plan (which runs,
initialised from which) and the arithmetic of the table (relative WER change against the
same seed's dense run, savings), pure functions of plain dicts.

References:
  Xie et al., "Compute cost amortized Transformer for streaming ASR", Interspeech 2022.
"""

from __future__ import annotations

import numpy as np

PAPER = {"arbitrated": (60.0, 3.0), "sliding": (13.0, 9.0)}  # (% compute saved, % relative WER increase), Xie et al.


def planned_runs(seeds, lams, windows, layerdrop, probe_estimators, probe_lam) -> list[dict]:
  """``[{"name", "seed", "method", "arg", "init"}]`` in training order: each seed's dense run, then its
  fine-tunes (``init``: the dense run's name), the estimator probes (``probe_estimators`` at
  ``probe_lam``) among them on every seed: an estimator is chosen on the seeds' spread, not on one seed."""
  runs = []
  for seed in seeds:
    dense = f"dense_pre_seed{seed}"
    runs.append(dict(name=dense, seed=seed, method="dense", arg="dense", init=None))
    ft = [("dense", "dense", "dense")]
    ft += [(f"arbitrated_lam{lam:g}", "arbitrated", f"arbitrated,lam={lam}") for lam in lams]
    ft += [(f"sliding_w{w}", "sliding", f"sliding,window={w}") for w in windows]
    ft += [(f"layerdrop_p{layerdrop:g}", "layerdrop", f"layerdrop,layerdrop={layerdrop}")]
    ft += [(f"arbitrated_{e}_lam{probe_lam:g}", f"arbitrated ({e})", f"arbitrated,lam={probe_lam},estimator={e}")
           for e in probe_estimators]
    runs += [dict(name=f"{n}_seed{seed}", seed=seed, method=m, arg=a, init=dense) for n, m, a in ft]
  return runs


def kept_blocks(layers: int, k: int) -> tuple[int, ...]:
  """``k`` of ``layers`` block indices, evenly spaced, the first and last among them."""
  return tuple(sorted({int(round(x)) for x in np.linspace(0, layers - 1, k)}))


def evaluation_rows(runs, layers: int, dense_left_chunks: int, keep_counts) -> list[dict]:
  """The table's rows: every fine-tuned run, the LayerDrop runs once per pruning to each of
  ``keep_counts`` blocks (`kept_blocks`)."""
  rows = []
  for run in runs:
    if run["init"] is None:
      continue
    if run["method"] == "layerdrop":
      for k in keep_counts:
        keep = kept_blocks(layers, k)
        rows.append({**run, "method": "layerdrop", "keep": keep, "row": f"{run['name']}_keep{k}"})
    else:
      rows.append({**run, "keep": (), "row": run["name"]})
  for row in rows:  # the dense run's attention window: the reference of every FLOP count
    row["dense_left_chunks"] = dense_left_chunks
  return rows


def _row_key(row) -> str:
  return row["row"].rsplit("_seed", 1)[0] + (f"_keep{len(row['keep'])}" if row["keep"] else "")


def summarise(rows, splits) -> list[dict]:
  """One line per configuration: means over seeds, relative WER change (%) vs the same seed's dense
  run (``rel_wer``: on test, with half the seeds' range), wall-clock saved vs that run."""
  dense = {r["seed"]: r for r in rows if r["method"] == "dense"}
  groups = {}
  for r in rows:
    groups.setdefault(_row_key(r), []).append(r)
  out = []
  for key, rs in groups.items():
    rel = {s: [100 * (r["wer"][s]["wer"] / dense[r["seed"]]["wer"][s]["wer"] - 1) for r in rs if r["seed"] in dense]
           for s in splits}
    wall = [1 - r["stream_seconds"] / dense[r["seed"]]["stream_seconds"] for r in rs if r["seed"] in dense]
    out.append({
        "config": key, "method": rs[0]["method"], "seeds": [r["seed"] for r in rs],
        "wer": {s: float(np.mean([r["wer"][s]["wer"] for r in rs])) for s in splits},
        "rel_wer": float(np.mean(rel["test"])) if rel["test"] else 0.0,
        "rel_wer_spread": float(np.ptp(rel["test"]) / 2) if len(rel["test"]) > 1 else 0.0,
        "rel_wer_splits": {s: [round(v, 2) for v in vs] for s, vs in rel.items()},
        "counted_saved": float(np.mean([r["counted_flops_saved"] for r in rs])),
        "xla_saved": float(np.mean([r["xla_flops_saved"] for r in rs])),
        "wall_saved": float(np.mean(wall)) if wall else 0.0, "wall_saved_all": wall,
        "usage_mha": np.mean([r["usage_mha"] for r in rs], axis=0).round(3).tolist(),
        "usage_ffn": np.mean([r["usage_ffn"] for r in rs], axis=0).round(3).tolist(),
        **{k: _mean_or_none([r[k] for r in rs]) for k in ("gate_energy_corr", "on_quiet", "on_loud", "on_clean",
                                                          "on_noisy")}})
  return out


def _mean_or_none(values):
  values = [v for v in values if v is not None]
  return float(np.mean(values)) if values else None
