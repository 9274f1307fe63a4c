"""The audit: a planted disparity survives on held-out speakers; a gap made of selection noise does not."""

import numpy as np
import pytest

from asrjax.fairness import audit
from asrjax.fairness import cohorts as C


def _population(seed=0, n=120, planted=True):
  rng = np.random.default_rng(seed)
  lat, lon = rng.uniform(-30, 30, n), rng.uniform(-30, 30, n)
  cluster = rng.integers(0, 3, n)
  emb = (np.eye(3, 6) * 4)[cluster] + 0.3 * rng.normal(size=(n, 6))
  area = np.array([f"{int(a // 10)}_{int(b // 10)}" for a, b in zip(lat, lon)])
  demo = np.array([("g_hi" if (a > 0 and b > 0) else "g_lo") for a, b in zip(lat, lon)])
  hard = (lat > 0) & (lon > 0) if planted else np.zeros(n, bool)
  words = np.full(n, 200)
  errors = rng.binomial(words, np.where(hard, 0.3, 0.1))
  return C.Speakers(np.arange(n).astype(str), errors, words, lat, lon, area, {"demographic_group": demo}, emb)


def test_a_planted_disparity_is_found_and_holds_on_held_out_speakers():
  result = audit.audit(_population(), seed=0, draws=300,
                       options={"geographic_tree": dict(min_speakers=5, min_words=500, max_depth=2),
                                "embedding_kmeans": dict(k_candidates=(2, 3))})
  for method in ("geographic_tree", "geodemographic"):
    held = result[method]["held_out"]
    assert held["figures"]["gap_vs_rest"] > 100  # 0.3 vs 0.1: the planted gap is ~200%
    assert held["intervals"]["gap_vs_rest"][0] > 0  # and its interval excludes 0
  assert "gap vs rest" in audit.table(result) and "held_out" in audit.table(result)


def test_selection_noise_shrinks_on_held_out_speakers():
  result = audit.audit(_population(seed=3, planted=False), seed=0, draws=300,
                       options={"geographic_tree": dict(min_speakers=15, min_words=500, max_depth=3),
                                "embedding_kmeans": dict(k_candidates=(2, 3, 4))})
  tree = result["geographic_tree"]
  assert tree["discovery"]["figures"]["gap_vs_rest"] > tree["held_out"]["figures"]["gap_vs_rest"]
  lo, hi = tree["held_out"]["intervals"]["gap_vs_rest"]
  assert lo < 0 < hi  # no real disparity: the held-out interval covers no gap
  assert tree["held_out"]["bottom"] == tree["discovery"]["bottom"]  # measured for the cohort discovery found
  held = {c["name"]: c["wer"] for c in tree["held_out"]["per_cohort"]}
  assert held[tree["discovery"]["bottom_name"]] < max(held.values())  # on held-out speakers it is not the worst


def test_a_method_the_speakers_cannot_support_is_reported_not_dropped(tmp_path):
  spk = _population()
  no_emb = C.Speakers(spk.ids, spk.errors, spk.words, spk.latitude, spk.longitude, spk.area_code, spk.attributes)
  result = audit.audit(no_emb, draws=50)
  assert "embedding" in result["embedding_kmeans"]["error"]
  assert "not available" in audit.table(result)
  path = tmp_path / "map.png"
  audit.write_map(str(path), spk, result["geographic_tree"]["cohorts"])
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
  with pytest.raises(ValueError, match="at least 4 speakers"):
    audit.split_speakers(spk.subset(np.arange(3)), seed=0)


def _result(gap, share, error=None):
  if error:
    return {"error": error}
  half = {"figures": {"gap_vs_rest": gap, "gap_vs_top": 2 * gap, "bottom_share": share, "bottom_wer": 0.2,
                      "cohort_wer_var": 0.01}}
  return {"discovery": half, "held_out": {"figures": dict(half["figures"], gap_vs_rest=gap / 2)}}


def test_across_seeds_gives_the_mean_and_range_of_each_figure_and_counts_failed_seeds():
  results = [{"tree": _result(30.0, 10.0), "kmeans": _result(0, 0, error="no embeddings")},
             {"tree": _result(60.0, 20.0), "kmeans": _result(0, 0, error="no embeddings")},
             {"tree": _result(float("nan"), 30.0), "kmeans": _result(90.0, 5.0)}]
  s = audit.across_seeds(results)
  gap = s["tree"]["discovery"]["gap_vs_rest"]
  assert gap["mean"] == 45.0 and (gap["min"], gap["max"]) == (30.0, 60.0)  # NaN (no rest) left out of the spread
  assert np.isnan(gap["per_seed"][2]) and s["tree"]["seeds"] == 3 and "error" not in s["tree"]
  assert s["tree"]["held_out"]["gap_vs_rest"]["mean"] == 22.5
  assert s["tree"]["discovery"]["bottom_share"]["mean"] == 20.0
  assert s["kmeans"]["seeds"] == 1 and s["kmeans"]["failed_seeds"] == 2 and s["kmeans"]["error"] == "no embeddings"
  assert s["kmeans"]["held_out"]["gap_vs_rest"]["per_seed"] == [45.0]
  only_failed = audit.across_seeds([{"kmeans": _result(0, 0, error="no embeddings")}])
  assert "discovery" not in only_failed["kmeans"] and only_failed["kmeans"]["failed_seeds"] == 1
  with pytest.raises(ValueError, match="no audit results"):
    audit.across_seeds([])
