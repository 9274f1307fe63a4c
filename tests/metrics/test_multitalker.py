"""Multi-talker metrics: hand-computed cases and brute force over permutations / assignments (meeteval is the code
under test's engine; the references here are independent: hand values and our own single-speaker Levenshtein)."""

import itertools

import numpy as np
import pytest

from asrjax.metrics import multitalker as M
from asrjax.metrics import wer

T = M.Turn

# Speaker A speaks twice around B; the model puts A's second turn on B's channel: the best ORC
# assignment crosses channels (0 errors) while cpWER, bound to one channel per speaker, pays 2.
REF = [T("A", "a b c", 0.0, 1.0), T("B", "d e", 0.5, 1.5), T("A", "f", 2.0, 2.5)]
HYP = [T("0", "a b c", 0.1, 1.2), T("1", "d e", 0.7, 1.4), T("1", "f", 2.3, 2.9)]


def test_the_best_assignment_crosses_channels_orc_is_zero_cp_pays_two():
  s = M.session_wers({"s": (REF, HYP)})["s"]
  assert s["orcwer"]["errors"] == 0 and s["orcwer"]["length"] == 6
  assert s["orc_assignment"] == ("0", "1", "1")
  # cpWER by hand: A<->0: "a b c f" vs "a b c" = 1 deletion; B<->1: "d e" vs "d e f" = 1 insertion.
  # (A<->1, B<->0 costs 3 + 3.)
  assert (s["cpwer"]["errors"], s["cpwer"]["deletions"], s["cpwer"]["insertions"]) == (2, 1, 1)
  assert s["cpwer"]["error_rate"] == pytest.approx(2 / 6)
  ch = M.channel_wers({"s": (REF, HYP)})
  assert (ch["0"]["deletions"], ch["0"]["length"]) == (1, 4) and (ch["1"]["insertions"], ch["1"]["length"]) == (1, 2)


def test_tcpwer_matches_only_within_the_collar():
  ref = [T("A", "one two three", 0.0, 1.5)]
  near = [T("0", "one two three", 0.5, 2.0)]
  far = [T("0", "one two three", 10.0, 11.5)]
  assert M.session_wers({"s": (ref, near)}, collar=1.0)["s"]["tcpwer"]["errors"] == 0
  far_rates = M.session_wers({"s": (ref, far)}, collar=1.0)["s"]
  assert far_rates["cpwer"]["errors"] == 0  # no time constraint: a perfect transcript
  assert (far_rates["tcpwer"]["deletions"], far_rates["tcpwer"]["insertions"]) == (3, 3)  # nothing can match


def _brute_cp(ref, hyp):
  speakers, channels = sorted({t.speaker for t in ref}), sorted({t.speaker for t in hyp})
  words = lambda ts, who: " ".join(t.words for t in sorted(ts, key=lambda t: t.start) if t.speaker == who)
  n = max(len(speakers), len(channels))
  s = speakers + [None] * (n - len(speakers))
  best = None
  for perm in itertools.permutations(channels + [None] * (n - len(channels))):
    e = sum(wer.word_errors(words(ref, a) if a else "", words(hyp, b) if b else "").errors for a, b in zip(s, perm))
    best = e if best is None else min(best, e)
  return best


def _brute_orc(ref, hyp):
  ref = sorted(ref, key=lambda t: t.start)
  channels = sorted({t.speaker for t in hyp})
  words = lambda ts: " ".join(t.words for t in sorted(ts, key=lambda t: t.start))
  best = None
  for assign in itertools.product(channels, repeat=len(ref)):
    e = sum(wer.word_errors(words([r for r, a in zip(ref, assign) if a == c]),
                            words([h for h in hyp if h.speaker == c])).errors for c in channels)
    best = e if best is None else min(best, e)
  return best


@pytest.mark.parametrize("seed", range(6))
def test_cp_and_orc_equal_brute_force_on_random_sessions(seed):
  rng = np.random.default_rng(seed)
  vocab = list("abcdef")
  sentence = lambda: " ".join(rng.choice(vocab, size=int(rng.integers(1, 4))))
  ref = [T(str(rng.choice(["A", "B"])), sentence(), float(i), float(i) + 0.8) for i in range(int(rng.integers(2, 5)))]
  hyp = [T(str(rng.choice(["0", "1"])), sentence(), float(i) + 0.1, float(i) + 0.9) for i in range(int(rng.integers(1, 5)))]
  s = M.session_wers({"s": (ref, hyp)})["s"]
  assert s["cpwer"]["errors"] == _brute_cp(ref, hyp)
  assert s["orcwer"]["errors"] == _brute_orc(ref, hyp)
  assert s["cpwer"]["length"] == sum(len(t.words.split()) for t in ref)


def test_turn_timing_by_hand():
  # REF/HYP: matched A1<->0, B<->1 (first), A2<->1 (second). SOT latencies 0.1, 0.2, 0.3;
  # EOT latencies 0.2, -0.1 (an early cutoff), 0.4.
  second_ref = [T("C", "x", 0.0, 1.0), T("D", "y", 2.0, 3.0)]
  second_hyp = [T("0", "x", 0.2, 1.5, closed=False)]  # D missed; C's turn never closed
  sessions = {"s": (REF, HYP), "t": (second_ref, second_hyp)}
  t = M.turn_timing(sessions, {"s": ("0", "1", "1"), "t": ("0", "1")})
  assert t["sot_latency"]["mean"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.2) / 4)
  assert t["eot_latency"]["mean"] == pytest.approx(0.5 / 3) and t["eot_latency"]["count"] == 3
  assert t["eot_latency"]["p50"] == pytest.approx(0.2)
  assert t["eot_latency"]["p90"] == pytest.approx(0.2 + 0.8 * 0.2)  # linear interpolation in [-0.1, 0.2, 0.4]
  assert t["early_cutoff_rate"] == pytest.approx(1 / 3)
  assert (t["missed_turns"], t["unclosed_turns"], t["reference_turns"]) == (1, 1, 5)
  assert t["turn_counting_accuracy"] == 0.5  # 3 of 3 turns in s, 1 of 2 in t


def test_overlap_bins_and_the_per_bin_table():
  assert [M.overlap_bin(o) for o in (-0.5, -0.2, 0.0, 0.1, 0.25, 0.5)] == ["0L", "0S", "0S", "OV10", "OV25", "OV50"]
  sessions = {"a": (REF, HYP), "b": ([T("A", "p q", 0, 1)], [T("0", "p", 0, 1.2)]), "c": (REF, HYP)}
  r = M.evaluate(sessions, overlaps={"a": 0.25, "b": -0.5, "c": 0.25})
  assert list(r["bins"]) == ["0L", "OV25"]
  assert r["bins"]["0L"]["orcwer"]["errors"] == 1 and r["bins"]["0L"]["orcwer"]["length"] == 2
  assert r["bins"]["OV25"]["cpwer"]["errors"] == 4 and r["bins"]["OV25"]["sessions"] == 2
  assert r["overall"]["cpwer"]["error_rate"] == pytest.approx(5 / 14)
  with pytest.raises(ValueError, match="no overlap for 1 sessions"):
    M.evaluate(sessions, overlaps={"a": 0.25, "b": -0.5})


def test_bad_input_is_refused_clearly():
  with pytest.raises(ValueError, match="no sessions"):
    M.session_wers({})
  with pytest.raises(ValueError, match="no reference turns"):
    M.session_wers({"s": ([], HYP)})
  with pytest.raises(ValueError, match="start <= end"):
    T("A", "a", 2.0, 1.0)
  with pytest.raises(TypeError, match="must be a string"):
    T("A", ["a"], 0.0, 1.0)
  with pytest.raises(TypeError, match="must be asrjax.metrics.multitalker.Turn"):
    M.session_wers({"s": ([("A", "a", 0, 1)], [])})
  with pytest.raises(ValueError, match="collar"):
    M.session_wers({"s": (REF, HYP)}, collar=-1)
  with pytest.raises(ValueError, match="assignment names 2 channels for 3"):
    M.match_turns(REF, HYP, ("0", "1"))
  with pytest.raises(ValueError, match="finite"):
    M.overlap_bin(float("nan"))


def test_session_interval_by_exhaustive_enumeration_of_two_sessions():
  # two sessions: 1 error of 2 words and 3 errors of 6; resampling 2 of 2 gives 1/2 (p 1/4), 4/8 (p 1/2), 6/12 (p 1/4)
  # -- every draw is 0.5 here, so the interval is exactly [0.5, 0.5]; with 0 of 2 instead the rates are 0, 3/8, 1/2
  per = {"a": {"orcwer": {"errors": 1, "length": 2}}, "b": {"orcwer": {"errors": 3, "length": 6}}}
  assert M.session_interval(per, draws=200) == (0.5, 0.5)
  per["a"]["orcwer"]["errors"] = 0
  lo, hi = M.session_interval(per, draws=2000, seed=1)
  assert lo == 0.0 and hi == 0.5  # both extremes have probability 1/4 > 2.5%
  with pytest.raises(ValueError, match="draws must be"):
    M.session_interval(per, draws=0)
