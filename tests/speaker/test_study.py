"""The ARW comparison's plan and its relative changes, by hand."""

import pytest

from asrjax.speaker import study


def _metrics(eer, female, male, accents):
  return {"test": {"cosine": {"eer": eer, "min_dcf": 0.5, "gender": {"per_group": {"female": female, "male": male},
                                                                      "gap": abs(female - male)},
                              "accent": {"per_group": accents, "std": 0.0 + _std(list(accents.values()))}}}}


def _std(v):
  m = sum(v) / len(v)
  return (sum((x - m) ** 2 for x in v) / len(v)) ** 0.5


def test_planned_runs_start_every_variant_from_its_seeds_baseline():
  runs = study.planned_runs([0, 1], ["pw"])
  assert [r["name"] for r in runs] == ["base_seed0", "base_continued_seed0", "pw_seed0", "base_seed1",
                                       "base_continued_seed1", "pw_seed1"]
  assert runs[2]["init"] == "base_seed0" and runs[2]["arg"] == "arw=pw" and runs[0]["init"] is None
  with pytest.raises(ValueError, match="unknown ARW variant 'adv'"):
    study.planned_runs([0], ["adv"])


def test_relative_changes_are_against_the_same_seeds_continued_baseline():
  runs = study.planned_runs([0, 1], ["pw"])
  results = {
      "base_seed0": _metrics(0.10, 0.12, 0.08, {"a": 0.1, "b": 0.1}),
      "base_continued_seed0": _metrics(0.10, 0.12, 0.08, {"a": 0.08, "b": 0.12}),  # gap 0.04, std 0.02
      "pw_seed0": _metrics(0.09, 0.10, 0.07, {"a": 0.09, "b": 0.10}),  # -10%, gap 0.03 (-25%), std 0.005 (-75%)
      "base_continued_seed1": _metrics(0.20, 0.25, 0.15, {"a": 0.2, "b": 0.2}),  # gap 0.10, std 0
      "pw_seed1": _metrics(0.18, 0.21, 0.15, {"a": 0.2, "b": 0.2}),  # -10%, gap 0.06 (-40%), std 0 (no ratio)
  }
  lines = {x["method"]: x for x in study.summarise(results, runs)}
  pw = lines["pw"]
  assert pw["seeds"] == [0, 1]
  assert pw["eer"] == pytest.approx(0.135) and pw["rel_eer"] == pytest.approx(-10.0)
  assert pw["rel_gender_gap"] == pytest.approx(-32.5) and pw["rel_gender_gap_spread"] == pytest.approx(7.5)
  assert pw["rel_accent_std"] == pytest.approx(-75.0)  # seed 1's reference std is 0: left out
  assert pw["accent_range"] == pytest.approx((0.01 + 0.0) / 2)
  assert lines["baseline"]["seeds"] == [0]  # seed 1's baseline not trained: absent, not an error


def test_the_evaluated_split_is_found_whatever_its_name():
  record = {"cosine": {"eer": 0.1}, "as_norm": {"eer": 0.09}}
  assert study.trial_record({"steps": 5, "history": {}, "test": record}) is record
  assert study.trial_record({"steps": 5, "train+validation+test": record}) is record  # VoxCeleb's built protocol
  with pytest.raises(ValueError, match=r"expected one evaluated split in the results, found \[\]"):
    study.trial_record({"steps": 5})
  with pytest.raises(ValueError, match=r"found \['test', 'dev'\]"):
    study.trial_record({"test": record, "dev": record})
