"""The trade-off experiment's plan and arithmetic: runs and their order, pruned blocks, relative
WER and savings by hand."""

import pytest

from asrjax.train import tradeoff as cca


def test_every_seed_pretrains_dense_first_and_fine_tunes_the_rest_from_it():
  runs = cca.planned_runs([0, 1], [0.1, 1.0], [16], 0.2, ["relaxed"], 0.3)
  names = [r["name"] for r in runs]
  assert names[0] == "dense_pre_seed0" and names.index("dense_pre_seed1") == 7 and len(names) == 14
  assert names[1:7] == ["dense_seed0", "arbitrated_lam0.1_seed0", "arbitrated_lam1_seed0", "sliding_w16_seed0",
                        "layerdrop_p0.2_seed0", "arbitrated_relaxed_lam0.3_seed0"]
  assert names[-1] == "arbitrated_relaxed_lam0.3_seed1"  # the estimator probe: on every seed
  assert all(r["init"] == f"dense_pre_seed{r['seed']}" for r in runs if not r["name"].startswith("dense_pre"))


def test_pruned_blocks_are_evenly_spaced_with_both_ends():
  assert cca.kept_blocks(6, 6) == (0, 1, 2, 3, 4, 5)
  assert cca.kept_blocks(6, 5) == (0, 1, 2, 4, 5)
  assert cca.kept_blocks(6, 3) == (0, 2, 5)
  assert cca.kept_blocks(6, 2) == (0, 5)
  runs = cca.planned_runs([0], [], [], 0.2, [], 0.3)
  rows = cca.evaluation_rows(runs, 6, 64, [6, 3])
  assert [r["row"] for r in rows] == ["dense_seed0", "layerdrop_p0.2_seed0_keep6", "layerdrop_p0.2_seed0_keep3"]
  assert all(r["dense_left_chunks"] == 64 for r in rows)


def _row(name, method, seed, test_wer, seconds, keep=()):
  return {"row": name, "method": method, "seed": seed, "keep": keep, "wer": {"test": {"wer": test_wer}},
          "stream_seconds": seconds, "counted_flops_saved": 0.5, "xla_flops_saved": 0.4, "usage_mha": [1, 0.5],
          "usage_ffn": [0.5, 0.5], "gate_energy_corr": None, "on_quiet": 0.2, "on_loud": 0.8, "on_clean": None,
          "on_noisy": None}


def test_relative_wer_and_wall_clock_savings_by_hand():
  rows = [_row("dense_seed0", "dense", 0, 0.40, 10.0), _row("dense_seed1", "dense", 1, 0.50, 12.0),
          _row("arbitrated_lam1_seed0", "arbitrated", 0, 0.42, 5.0),
          _row("arbitrated_lam1_seed1", "arbitrated", 1, 0.50, 9.0)]
  summary = {s["config"]: s for s in cca.summarise(rows, ["test"])}
  arb = summary["arbitrated_lam1"]
  # seed 0: 0.42 / 0.40 - 1 = +5%; seed 1: 0%; mean +2.5, half-range 2.5
  assert arb["rel_wer"] == pytest.approx(2.5) and arb["rel_wer_spread"] == pytest.approx(2.5)
  # wall-clock: 1 - 5/10 = 50%, 1 - 9/12 = 25%
  assert arb["wall_saved"] == pytest.approx(0.375)
  assert summary["dense"]["rel_wer"] == 0.0 and summary["dense"]["wall_saved"] == 0.0
  assert arb["usage_mha"] == [1.0, 0.5] and arb["seeds"] == [0, 1]
