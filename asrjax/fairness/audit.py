"""The fairness audit: discover cohorts on some speakers, measure their gap there and on held-out speakers.

A gap found and measured on the same speakers is biased upwards (the search picks the
partition whose noise happens to be largest), so `audit` finds cohorts on a
*discovery* half of the speakers (`split_speakers`, seeded) and reports every figure
on the discovery half and on the *held-out* half, with the bottom cohort fixed from
discovery: a gap that is only selection noise shrinks towards 0 on the held-out half.
k of the automatic cohorts is chosen on a separate development set when one is given
(else on the discovery half), never on the held-out speakers.

`write_map` draws the speakers' locations coloured by their region's WER (the
geographic tree's leaves as boxes), as Trinh et al.'s map.

References:
  Trinh et al., "Reducing geographic disparities in automatic speech recognition via
  elastic weight consolidation", Interspeech 2022; Dheram et al., "Toward fairness in
  speech recognition: discovery and mitigation of performance disparities", Interspeech 2022.
"""

from __future__ import annotations

import numpy as np

from asrjax.fairness import cohorts as cohorts_lib
from asrjax.fairness import disparity as disparity_lib


def split_speakers(speakers: cohorts_lib.Speakers, *, seed: int) -> tuple:
  """``(discovery, held_out)``: a seeded random half of the speakers and the rest.

  Raises:
    ValueError: fewer than 4 speakers.
  """
  if len(speakers) < 4:
    raise ValueError(f"an audit needs at least 4 speakers to split in two; got {len(speakers)}.")
  order = np.random.default_rng(seed).permutation(len(speakers))
  half = len(speakers) // 2
  return speakers.subset(np.sort(order[:half])), speakers.subset(np.sort(order[half:]))


def discover(method: str, speakers: cohorts_lib.Speakers, *, dev: cohorts_lib.Speakers | None = None,
             options: dict | None = None, seed: int = 0) -> cohorts_lib.Cohorts:
  """Cohorts of ``method`` (one of `asrjax.fairness.cohorts.METHODS`) found on ``speakers``;
  ``options`` go to the method (``k_candidates`` for the automatic cohorts, chosen on ``dev``
  or, without one, on ``speakers``).

  Raises:
    ValueError: an unknown method.
  """
  options = dict(options or {})
  if method == "geographic_tree":
    return cohorts_lib.geographic_tree(speakers, **options)
  if method == "geodemographic":
    return cohorts_lib.geodemographic_partition(speakers, **options)
  if method == "embedding_kmeans":
    candidates = options.pop("k_candidates", (2, 3, 4, 5, 6, 8, 10))
    k = options.pop("k", None) or disparity_lib.choose_k(dev if dev is not None else speakers, candidates, seed=seed,
                                                         **options)
    return cohorts_lib.embedding_cohorts(speakers, k=k, seed=seed)
  raise ValueError(f"unknown cohort method {method!r}; known: {cohorts_lib.METHODS}.")


def audit(speakers: cohorts_lib.Speakers, *, seed: int = 0, methods=cohorts_lib.METHODS,
          dev: cohorts_lib.Speakers | None = None, options: dict | None = None, draws: int = 1000) -> dict:
  """Every method's cohorts found on the discovery half and measured on both halves.

  Returns ``{method: {"cohorts": Cohorts, "discovery": disparity, "held_out": disparity}}``
  (`asrjax.fairness.disparity.disparity` records; the held-out one with the discovery
  bottom cohort). A method the speakers cannot support (no coordinates, no embeddings, no
  allowed split) is reported as ``{"error": message}``, not dropped silently.
  """
  discovery, held_out = split_speakers(speakers, seed=seed)
  out = {}
  for method in methods:
    try:
      found = discover(method, discovery, dev=dev, options=(options or {}).get(method), seed=seed)
      first = disparity_lib.disparity(discovery, found, draws=draws, key=seed)
      second = disparity_lib.disparity(held_out, found, draws=draws, key=seed + 1, bottom=first["bottom"])
    except ValueError as e:
      out[method] = {"error": str(e)}
      continue
    out[method] = {"cohorts": found, "discovery": first, "held_out": second}
  return out


SUMMARY_FIGURES = ("gap_vs_rest", "gap_vs_top", "bottom_share", "bottom_wer", "cohort_wer_var")


def across_seeds(results: list) -> dict:
  """The spread of `audit` results over audit seeds (each seed draws another discovery half
  and k-means start): ``{method: {half: {figure: {"mean", "min", "max", "per_seed"}},
  "seeds": n}}`` for `SUMMARY_FIGURES`; a method some seed could not support is
  ``{"error": first message, "failed_seeds": m, ...}`` over the seeds that ran, if any.

  Raises:
    ValueError: no results.
  """
  if not results:
    raise ValueError("no audit results to summarise.")
  out = {}
  for method in results[0]:
    ran = [r[method] for r in results if "error" not in r.get(method, {"error": "missing"})]
    failed = [r.get(method, {"error": "missing"}) for r in results if "error" in r.get(method, {"error": "missing"})]
    entry = {"seeds": len(ran)}
    if failed:
      entry.update(error=failed[0]["error"], failed_seeds=len(failed))
    for half in ("discovery", "held_out") if ran else ():
      entry[half] = {}
      for name in SUMMARY_FIGURES:
        values = [float(r[half]["figures"][name]) for r in ran]
        finite = [v for v in values if np.isfinite(v)]
        entry[half][name] = {"per_seed": values, "mean": float(np.mean(finite)) if finite else float("nan"),
                             "min": float(np.min(finite)) if finite else float("nan"),
                             "max": float(np.max(finite)) if finite else float("nan")}
    out[method] = entry
  return out


def as_record(result: dict) -> dict:
  """`audit`'s result as JSON-ready data (each method's cohorts as their JSON rule)."""
  import json  # noqa: PLC0415

  return {m: ({"error": r["error"]} if "error" in r else
              {"cohorts": json.loads(r["cohorts"].to_json()), "discovery": r["discovery"], "held_out": r["held_out"]})
          for m, r in result.items()}


def _cell(record, name, scale=1.0, digits=1) -> str:
  v = record["figures"][name]
  lo, hi = record["intervals"][name]
  if v is None or np.isnan(v):
    return "-"
  return f"{scale * v:.{digits}f} [{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"


def table(result: dict) -> str:
  """Markdown: per method and half, cohorts, bottom-cohort WER, gap vs rest and vs top (relative
  %), bottom share (% of speakers), and the mean / max / variance of cohort WERs, with 95%
  speaker-bootstrap intervals."""
  rows = ["| method | speakers | cohorts | bottom WER % | gap vs rest % | gap vs top % | bottom share % | "
          "cohort WER mean / max % | cohort WER var (pts^2) |", "| --- " * 9 + "|"]
  for method, r in result.items():
    if "error" in r:
      rows.append(f"| {method} | - | - | not available: {r['error']} | | | | | |")
      continue
    for half in ("discovery", "held_out"):
      d = r[half]
      rows.append(f"| {method} | {half} | {len(r['cohorts'])} | {_cell(d, 'bottom_wer', 100)} | "
                  f"{_cell(d, 'gap_vs_rest')} | {_cell(d, 'gap_vs_top')} | {_cell(d, 'bottom_share')} | "
                  f"{_cell(d, 'cohort_wer_mean', 100)} / {_cell(d, 'cohort_wer_max', 100)} | "
                  f"{_cell(d, 'cohort_wer_var', 1e4, 2)} |")
  return "\n".join(rows)


def write_map(path: str, speakers: cohorts_lib.Speakers, cohorts: cohorts_lib.Cohorts, *, title: str = "") -> None:
  """A PNG of the speakers' locations, each coloured by its cohort's WER; geographic cohorts'
  boxes outlined (matplotlib, Agg backend).

  Raises:
    ValueError: the speakers have no coordinates.
  """
  if speakers.latitude is None or speakers.longitude is None:
    raise ValueError("a map needs each speaker's latitude and longitude.")
  import matplotlib  # noqa: PLC0415 -- plotting only when asked for

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  labels = cohorts.assign(speakers)
  per = disparity_lib.cohort_wers(speakers.errors, speakers.words, labels, len(cohorts))
  colour = np.array([per[k] if k >= 0 else np.nan for k in labels]) * 100
  fig, ax = plt.subplots(figsize=(9, 5), dpi=120)
  points = ax.scatter(speakers.longitude, speakers.latitude, c=colour, cmap="viridis", s=14)
  fig.colorbar(points, ax=ax, label="cohort WER %")
  if cohorts.method == "geographic_tree":
    lon_lo, lon_hi = np.min(speakers.longitude) - 2, np.max(speakers.longitude) + 2
    lat_lo, lat_hi = np.min(speakers.latitude) - 2, np.max(speakers.latitude) + 2
    for leaf in cohorts.rule["leaves"]:
      (a, b), (c, d) = leaf["lon"], leaf["lat"]
      a, b = lon_lo if a is None else a, lon_hi if b is None else b
      c, d = lat_lo if c is None else c, lat_hi if d is None else d
      ax.add_patch(plt.Rectangle((a, c), b - a, d - c, fill=False, lw=0.6, ec="0.3"))
    ax.set_xlim(lon_lo, lon_hi)
    ax.set_ylim(lat_lo, lat_hi)
  ax.set_xlabel("longitude")
  ax.set_ylabel("latitude")
  ax.set_title(title or f"{cohorts.method}: {len(cohorts)} cohorts")
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


__all__ = ["SUMMARY_FIGURES", "across_seeds", "as_record", "audit", "discover", "split_speakers", "table", "write_map"]
