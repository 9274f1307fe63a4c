"""`experiments/sts_multitalker.py`'s table and claim lines, from hand-built records with hand-computed figures."""

from asrjax.inference import multitalker as mt_eval


def _record(orc, counting, p50, p90, early, missed=0, rtf=0.01, bins=None):
  overall = {"orcwer": {"error_rate": orc}, "cpwer": {"error_rate": orc + 0.1}, "tcpwer": {"error_rate": orc + 0.2},
             "turn_counting_accuracy": counting, "eot_latency": {"p50": p50, "p90": p90}, "early_cutoff_rate": early,
             "missed_turns": missed, "reference_turns": 8}
  bins = bins or {"0L": (orc, 3)}
  return {"metrics": {"overall": overall,
                      "bins": {b: {"orcwer": {"error_rate": e}, "sessions": n} for b, (e, n) in bins.items()}},
          "orcwer_interval": [orc - 0.05, orc + 0.05], "rtf": rtf}


def test_the_paper_claims_from_hand_computed_figures():
  records = {"full": _record(0.50, 0.90, 0.2, 1.0, 0.01),
             "start_only": _record(0.60, 0.80, None, None, None),
             "no_penalty": _record(0.49, 0.90, 0.5, 2.0, 0.0)}
  lines = mt_eval.claims(records)
  # 90 - 80 points; 0.50 / 0.60 - 1 = -16.7%; 1.0 / 2.0 - 1 = -50%; 0.50 / 0.49 - 1 = +2.0%
  assert lines[0] == ("turn counting, full - start_only: +10.0 points (paper +4.6, goal >= +4.6); ORC-WER -16.7% "
                      "relative (paper -17%)")
  assert lines[1] == ("EOT P90 of full, with the penalty vs without: -50.0% (goal <= -30%) at +2.0% relative ORC-WER "
                      "(goal <= +3%)")
  assert "early cutoffs of the full model: 1.0% (goal <= 2%)" in lines
  assert lines[-1].startswith("RTF of the full model (greedy, batched, this host): 0.010")


def test_early_latencies_are_not_a_ratio_and_the_pretrained_family_has_its_own_lines():
  records = {"full": _record(1.1, 0.99, -3.0, -1.0, 1.0), "no_penalty": _record(0.95, 1.0, -3.0, -2.0, 1.0),
             "pre_full": _record(0.80, 0.70, 0.1, 0.5, 0.1), "pre_start_only": _record(0.88, 0.75, None, None, None)}
  lines = mt_eval.claims(records)
  assert lines[0].startswith("EOT P90 of full with the penalty -1.00 s vs without -2.00 s: not comparable as a ratio")
  # 70 - 75 points; 0.80 / 0.88 - 1 = -9.1%
  assert ("turn counting, pre_full - pre_start_only: -5.0 points (paper +4.6, goal >= +4.6); ORC-WER -9.1% relative "
          "(paper -17%)") in lines
  assert not any(line.startswith("turn counting, full") for line in lines)  # no start_only from scratch


def test_the_table_rows_and_bins():
  records = {"full": _record(0.5, 0.9, 0.2, 1.0, 0.01, missed=2, bins={"0L": (0.4, 3), "OV10": (0.6, 2)}),
             "start_only": _record(0.6, 0.8, None, None, None, bins={"0L": (0.55, 3)})}
  lines = mt_eval.report_table(records).splitlines()
  assert lines[2] == "| full | 50.0 [45.0, 55.0] | 60.0 | 70.0 | 90.0 | 200 / 1000 | 1.0 | 2 of 8 | 0.010 |"
  assert lines[3] == "| start_only | 60.0 [55.0, 65.0] | 70.0 | 80.0 | 80.0 | - / - | - | 0 of 8 | 0.010 |"
  assert "| model | 0L | OV10 |" in lines
  assert "| full | 40.0 (3) | 60.0 (2) |" in lines and "| start_only | 55.0 (3) | - |" in lines
