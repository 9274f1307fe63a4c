"""The ARW comparison's plan and table (`experiments/sv_arw.py`): runs per seed, relative changes.

Per seed: the baseline extractor, then from it (``train.init_from``) each ARW variant and
the baseline continued for as many steps (the reference the variants are measured
against, so extra training is not mistaken for reweighting). The table reports, per
configuration, the mean over seeds of overall EER, minDCF, the female / male EER and
their gap, the std and max - min of EER across accents, and the relative change of the
three fairness-relevant figures against the same seed's continued baseline, with the
seeds' spread (half their range), beside the paper's relative changes.

References:
  Jin et al., "Adversarial reweighting for speaker verification fairness", Interspeech 2022:
  PW lowers overall EER by 7.6% relative, the gender gap by 17% (0.70 to 0.58 points) and
  the std across nationalities by about 10% (0.21 to 0.19), on VoxCeleb.
"""

from __future__ import annotations

import numpy as np

# relative change (%) the paper reports for its best variant (PW), on VoxCeleb
PAPER = {"eer": -7.6, "gender_gap": -17.0, "accent_std": -10.0}

VARIANTS = {  # name: config options after the variant (experiments/configs/sv_ecapa.py)
    "pw": "arw=pw",
    "sample": "arw=sample",
    "pw_cluster_only": "arw=pw,adversary_input=cluster",
}


def planned_runs(seeds, variants) -> list[dict]:
  """``[{"name", "seed", "arg", "init", "method"}]`` in training order."""
  runs = []
  for seed in seeds:
    base = f"base_seed{seed}"
    runs.append(dict(name=base, seed=seed, arg="", init=None, method="baseline"))
    runs.append(dict(name=f"base_continued_seed{seed}", seed=seed, arg="", init=base, method="baseline continued"))
    for v in variants:
      if v not in VARIANTS:
        raise ValueError(f"unknown ARW variant {v!r}; choose from {sorted(VARIANTS)}.")
      runs.append(dict(name=f"{v}_seed{seed}", seed=seed, arg=VARIANTS[v], init=base, method=v))
  return runs


def figures(metrics: dict) -> dict:
  """The table's figures (fractions) of one run's metrics (`asrjax.speaker.evaluation.metrics_of`)."""
  g = metrics.get("gender", {}).get("per_group", {})
  a = metrics.get("accent", {}).get("per_group", {})
  return {"eer": metrics["eer"], "min_dcf": metrics["min_dcf"], "eer_female": g.get("female"),
          "eer_male": g.get("male"), "gender_gap": metrics.get("gender", {}).get("gap"),
          "accent_std": metrics.get("accent", {}).get("std"),
          "accent_range": float(max(a.values()) - min(a.values())) if a else None}


def trial_record(result: dict) -> dict:
  """``{"cosine", "as_norm"}`` metrics of the one split a run's ``results.json`` evaluated
  (``"test"`` on the embedded corpus, ``"train+validation+test"`` on VoxCeleb's built protocol).

  Raises:
    ValueError: the results hold no evaluated split, or several.
  """
  splits = [k for k, v in result.items() if isinstance(v, dict) and "cosine" in v]
  if len(splits) != 1:
    raise ValueError(f"expected one evaluated split in the results, found {splits}.")
  return result[splits[0]]


def summarise(results: dict, runs: list[dict], scoring: str = "cosine") -> list[dict]:
  """One line per method: means over seeds and relative changes (%) vs the continued baseline.

  Args:
    results: ``{run name: results.json of that run}`` (runs not trained yet are absent).
    runs: `planned_runs`.
    scoring: ``"cosine"`` or ``"as_norm"``.
  """
  fig = {r["name"]: figures(trial_record(results[r["name"]])[scoring]) for r in runs if r["name"] in results}
  reference = {r["seed"]: r["name"] for r in runs if r["method"] == "baseline continued"}
  out = []
  for method in dict.fromkeys(r["method"] for r in runs):
    members = [r for r in runs if r["method"] == method and r["name"] in fig]
    if not members:
      continue
    line = {"method": method, "seeds": [r["seed"] for r in members]}
    for k in ("eer", "min_dcf", "eer_female", "eer_male", "gender_gap", "accent_std", "accent_range"):
      vals = [fig[r["name"]][k] for r in members if fig[r["name"]][k] is not None]
      line[k] = float(np.mean(vals)) if vals else None
    for k in ("eer", "gender_gap", "accent_std"):
      rel = [100 * (fig[r["name"]][k] / fig[reference[r["seed"]]][k] - 1) for r in members
             if reference.get(r["seed"]) in fig and fig[reference[r["seed"]]][k]]
      line[f"rel_{k}"] = float(np.mean(rel)) if rel else None
      line[f"rel_{k}_spread"] = float((max(rel) - min(rel)) / 2) if len(rel) > 1 else 0.0
    out.append(line)
  return out


__all__ = ["PAPER", "VARIANTS", "figures", "planned_runs", "summarise", "trial_record"]
