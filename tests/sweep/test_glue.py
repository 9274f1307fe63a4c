"""Bad-input sweep of the glue behind every reported figure: WER and OOV metrics, `evaluate`,
the evaluation and training launchers' checks, `error_breakdown`'s inputs, `LossConfig` and `FrontEnd`.

Each case is correct against an independent reference (jiwer, hand-derived counts, the
split's own order) or a clear error whose message names the argument. The launchers
run in one subprocess (`_DRIVER`): it loads each launcher, replaces what would need a
corpus or a trained workdir (`sources.open_split` returns a hand-built split;
`transducer_asr.restore_params` and `trainer.train_and_evaluate` stop the run, showing that
the launcher's checks passed and the work began -- an error for a bad input, even if
the real function would fail later -- or `restore_params` gives a stub model whose
decoder returns empty hypotheses), and runs ``main`` once per scenario with its flags. A scenario that rewrote an earlier evaluation JSON
with a worse one is `DataLoss`.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from asrjax import decoding
from asrjax.metrics import oov, wer
from asrjax.frontend.featurize import FrontEnd, featurize
from asrjax.inference import evaluation
from asrjax.tasks.transducer_asr import LossConfig
from tests.sweep import cases
from tests.sweep.cases import Case, DataLoss

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = "--config=" + os.path.join(ROOT, "experiments/configs/convrnnt.py") + ":tiny"


def _jiwer():
  return pytest.importorskip("jiwer")


def _counts(c) -> tuple:
  return (c.substitutions, c.deletions, c.insertions, c.reference_words)


def _jiwer_counts(refs, hyps) -> tuple:
  o = _jiwer().process_words(refs, hyps)
  return (o.substitutions, o.deletions, o.insertions, sum(len(r.split()) for r in refs))


def _random_pairs(seed, n, vocab=3, max_len=8, min_ref=1):
  rng = np.random.default_rng(seed)
  words = [f"w{i}" for i in range(vocab)]
  refs = [" ".join(rng.choice(words, size=rng.integers(min_ref, max_len + 1))) for _ in range(n)]
  return refs, [" ".join(rng.choice(words, size=rng.integers(0, max_len + 1))) for _ in range(n)]


def _split_agrees_with_jiwer(seed, vocab):
  refs, hyps = _random_pairs(seed, 400, vocab)
  return [_counts(wer.word_errors(r, h)) for r, h in zip(refs, hyps)] == [_jiwer_counts([r], [h])
                                                                           for r, h in zip(refs, hyps)]


def _raise_type_error_on_add():
  return wer.ErrorCounts() + 1


WER_CASES = [
    # hand-derived ties (module docstring of asrjax.metrics.wer) and jiwer
    Case("wer/word_errors/tie-swap", lambda: wer.word_errors("a b", "b a"),
         check=lambda c: _counts(c) == (0, 1, 1, 2) == _jiwer_counts(["a b"], ["b a"])),
    Case("wer/word_errors/tie-two-substitutions", lambda: wer.word_errors("a b", "b c"),
         check=lambda c: _counts(c) == (2, 0, 0, 2) == _jiwer_counts(["a b"], ["b c"])),
    Case("wer/word_errors/tie-after-common-prefix", lambda: wer.word_errors("a a b", "a b a"),
         check=lambda c: _counts(c) == (0, 1, 1, 3) == _jiwer_counts(["a a b"], ["a b a"])),
    Case("wer/word_errors/empty-reference", lambda: wer.word_errors("", "x y"),
         check=lambda c: _counts(c) == (0, 0, 2, 0) and math.isnan(c.wer)),
    Case("wer/word_errors/both-empty", lambda: wer.word_errors("", ""),
         check=lambda c: _counts(c) == (0, 0, 0, 0) and math.isnan(c.wer)),
    Case("wer/word_errors/empty-hypothesis", lambda: wer.word_errors("a b c", ""),
         check=lambda c: _counts(c) == (0, 3, 0, 3) and c.wer == 1.0),
    Case("wer/word_errors/tabs-and-newlines", lambda: wer.word_errors("a\tb\nc", " a  b c "),
         check=lambda c: _counts(c) == (0, 0, 0, 3)),
    Case("wer/word_errors/reference-None", lambda: wer.word_errors(None, "a"), raises=TypeError,
         match="reference must be a str"),
    Case("wer/word_errors/hypothesis-None", lambda: wer.word_errors("a", None), raises=TypeError,
         match="hypothesis must be a str"),
    Case("wer/word_errors/reference-bytes", lambda: wer.word_errors(b"a b", "a b"), raises=TypeError,
         match="reference must be a str"),
    Case("wer/word_errors/hypothesis-list", lambda: wer.word_errors("a b", ["a", "b"]), raises=TypeError,
         match="hypothesis must be a str"),
    Case("wer/word_errors/hypothesis-int", lambda: wer.word_errors("a", 3), raises=TypeError,
         match="hypothesis must be a str"),
    Case("wer/word_errors/split-vs-jiwer-3-words", lambda: _split_agrees_with_jiwer(0, 3), check=bool),
    Case("wer/word_errors/split-vs-jiwer-6-words", lambda: _split_agrees_with_jiwer(1, 6), check=bool),
    Case("wer/corpus_errors/lengths-differ", lambda: wer.corpus_errors(["a", "b"], ["a"]), raises=ValueError,
         match="2 references but 1 hypotheses"),
    Case("wer/corpus_errors/strings-not-lists", lambda: wer.corpus_errors("a b", "a b"), raises=TypeError,
         match="references must be a list of str"),
    Case("wer/corpus_errors/hypotheses-a-string", lambda: wer.corpus_errors(["a"], "a"), raises=TypeError,
         match="hypotheses must be a list of str"),
    Case("wer/corpus_errors/references-None", lambda: wer.corpus_errors(None, []), raises=TypeError,
         match="references must be a list of str"),
    Case("wer/corpus_errors/None-inside", lambda: wer.corpus_errors(["a", None], ["a", "b"]), raises=TypeError,
         match=r"references\[1\] must be a str"),
    Case("wer/corpus_errors/hypothesis-None-inside", lambda: wer.corpus_errors(["a"], [None]), raises=TypeError,
         match=r"hypotheses\[0\] must be a str"),
    Case("wer/corpus_errors/no-utterances", lambda: wer.corpus_errors([], []),
         check=lambda c: _counts(c) == (0, 0, 0, 0) and math.isnan(c.wer)),
    Case("wer/corpus_errors/generators", lambda: wer.corpus_errors(iter(["a b", "c"]), (h for h in ["a", "d"])),
         check=lambda c: _counts(c) == (1, 1, 0, 3)),
    Case("wer/corpus_errors/empty-references-vs-jiwer",
         lambda: (wer.corpus_errors(*_random_pairs(2, 300, min_ref=0)), _random_pairs(2, 300, min_ref=0)),
         check=lambda r: _counts(r[0]) == _jiwer_counts(*r[1]) and sum(not x for x in r[1][0]) > 10),
    Case("wer/corpus_errors/empty-references-by-hand", lambda: wer.corpus_errors(["", "a b", ""], ["x y", "a", ""]),
         check=lambda c: _counts(c) == (0, 1, 2, 2) and c.wer == 1.5),
    Case("wer/corpus_errors/sum-of-utterances", lambda: _random_pairs(3, 200, min_ref=0),
         check=lambda p: wer.corpus_errors(*p) == functools.reduce(
             lambda a, b: a + b, [wer.word_errors(r, h) for r, h in zip(*p)], wer.ErrorCounts())),
    Case("wer/grouped_errors/groups-shorter", lambda: wer.grouped_errors(["a", "b"], ["a", "b"], ["g"]),
         raises=ValueError, match="2 references, 2 hypotheses and 1 groups"),
    Case("wer/grouped_errors/hypotheses-shorter", lambda: wer.grouped_errors(["a", "b"], ["a"], ["g", "h"]),
         raises=ValueError, match="2 references, 1 hypotheses and 2 groups"),
    Case("wer/grouped_errors/groups-None", lambda: wer.grouped_errors(["a"], ["a"], None), raises=TypeError,
         match="groups must be a list"),
    Case("wer/grouped_errors/groups-a-string", lambda: wer.grouped_errors(["a", "b"], ["a", "b"], "gh"),
         raises=TypeError, match="groups must be a list"),
    Case("wer/grouped_errors/mixed-label-types", lambda: wer.grouped_errors(["a", "b c", "d"], ["a", "b", "x"],
                                                                           [1, "x", 1]),
         check=lambda g: list(g) == [1, "x"] and _counts(g[1]) == (1, 0, 0, 2) and _counts(g["x"]) == (0, 1, 0, 2)),
    Case("wer/grouped_errors/vs-jiwer-per-group", lambda: _random_pairs(4, 120),
         check=lambda p: all(_counts(c) == _jiwer_counts([r for r, g in zip(p[0], range(120)) if g % 3 == k],
                                                         [h for h, g in zip(p[1], range(120)) if g % 3 == k])
                             for k, c in wer.grouped_errors(p[0], p[1], [i % 3 for i in range(120)]).items())),
    Case("wer/utterance_errors/vs-jiwer-one-by-one", lambda: _random_pairs(5, 60),
         check=lambda p: [_counts(c) for c in wer.utterance_errors(*p)] == [_jiwer_counts([r], [h])
                                                                            for r, h in zip(*p)]),
    Case("wer/utterance_errors/lengths-differ", lambda: wer.utterance_errors(["a", "b"], ["a"]), raises=ValueError,
         match="2 references but 1 hypotheses"),
    Case("wer/group_counts/groups-shorter", lambda: wer.group_counts([wer.ErrorCounts(1, 0, 0, 1)] * 2, ["g"]),
         raises=ValueError, match="2 utterances but 1 groups"),
    Case("wer/group_counts/sums-per-label", lambda: wer.group_counts(
        [wer.ErrorCounts(1, 0, 0, 2), wer.ErrorCounts(0, 1, 1, 3), wer.ErrorCounts(0, 0, 2, 0)], ["b", "a", "b"]),
         check=lambda g: list(g) == ["a", "b"] and _counts(g["b"]) == (1, 0, 2, 2) and _counts(g["a"]) == (0, 1, 1, 3)),
    Case("wer/ErrorCounts/add-an-int", _raise_type_error_on_add, raises=TypeError,
         match="unsupported operand.*ErrorCounts"),
    Case("wer/wer_table/group-without-words", lambda: wer.wer_table({"silence": wer.ErrorCounts(insertions=2)}),
         check=lambda t: "| silence | 0 | - | 0 | 0 | 2 |" in t and "nan" not in t.lower()),
]

OOV_CASES = [
    Case("oov/vocabulary/a-string", lambda: oov.vocabulary("play the song"), raises=TypeError,
         match="transcripts must be a list of str"),
    Case("oov/vocabulary/None-inside", lambda: oov.vocabulary(["a", None]), raises=TypeError,
         match=r"transcripts\[1\] must be a str"),
    Case("oov/vocabulary/None", lambda: oov.vocabulary(None), raises=TypeError, match="transcripts must be a list"),
    Case("oov/vocabulary/empty", lambda: oov.vocabulary([]), check=lambda v: v == frozenset()),
    Case("oov/oov_words/vocab-a-string", lambda: oov.oov_words("the", "theatre"), raises=TypeError,
         match="vocab must be a set"),
    Case("oov/oov_words/reference-None", lambda: oov.oov_words(None, frozenset()), raises=TypeError,
         match="reference must be a str"),
    Case("oov/oov_words/list-vocab", lambda: oov.oov_words("a b a c", ["a"]), check=lambda w: w == ["b", "c"]),
    Case("oov/oov_words/case-sensitive", lambda: oov.oov_words("The the", oov.vocabulary(["the"])),
         check=lambda w: w == ["The"]),
]


# ---------------------------------------------------------------------------------------- evaluate()

class _StubModel:
  """Stands in for a Transducer: its encoder output is the log-mel features themselves."""

  blank_id = 0
  predictor_hidden = predictor_layers = 1

  def apply(self, params, feats, pads, method=None):
    return feats, pads, None


# (audio samples, reference, hypothesis the stub decoder gives it, accent), in split order (not by length)
_RECORDS = [(3_000, "turn on the light", "turn on light", "gb"), (1_600, "play music", "play some music", "us"),
            (4_800, "what time is it", "what time is it", "gb"), (2_400, "call mom", "call tom", "in"),
            (4_000, "stop", "", "us")]


def _records(texts=None):
  rng = np.random.default_rng(0)
  return [{"audio": (rng.normal(size=n) * 1000).astype(np.int16), "text": ref if texts is None else texts[i],
           "accent": accent} for i, (n, ref, _, accent) in enumerate(_RECORDS)]


@functools.cache
def _hyp_of_frames() -> dict:
  """Valid feature frames of each record alone, at its exact length -> the stub decoder's hypothesis."""
  import jax
  out = {}
  for ex, (_, _, hyp, _) in zip(_records(), _RECORDS):
    audio = jax.numpy.asarray(ex["audio"])[None]
    _, pads = featurize({"audio": audio, "audio_paddings": jax.numpy.zeros(audio.shape)}, jax.random.key(0),
                        FrontEnd(), train=False)
    out[int(np.sum(1 - np.asarray(pads)))] = hyp
  assert len(out) == len(_RECORDS)
  return out


def _stub_decoder(fns, params, enc, enc_paddings, **options):
  words = sorted({w for _, r, h, _ in _RECORDS for w in (r + " " + h).split()})
  hyps = [_hyp_of_frames()[int(f)] for f in np.sum(1 - np.asarray(enc_paddings), axis=1)]
  ids = [[words.index(w) + 1 for w in h.split()] for h in hyps]
  width = max(1, max(map(len, ids)))
  labels, pads = np.zeros((len(ids), 1, width), np.int32), np.ones((len(ids), 1, width), np.float32)
  for b, row in enumerate(ids):
    labels[b, 0, : len(row)], pads[b, 0, : len(row)] = row, 0.0
  return decoding.NBest(labels, pads, np.zeros((len(ids), 1), np.float32))


class _WordTok:
  def decode(self, ids):
    words = sorted({w for _, r, h, _ in _RECORDS for w in (r + " " + h).split()})
    return " ".join(words[i - 1] for i in ids)


def _evaluate(split, **kwargs):
  decoding.DECODERS["sweep_stub"] = _stub_decoder
  try:
    return evaluation.evaluate(_StubModel(), None, split, _WordTok(), **{"decoder": "sweep_stub", **kwargs})
  finally:
    del decoding.DECODERS["sweep_stub"]


def _evaluation_is_right(ev, records):
  refs, hyps = [r[1] for r in records], [r[2] for r in records]
  accents = [r[3] for r in records]
  per_group = {a: _jiwer_counts([r for r, g in zip(refs, accents) if g == a], [h for h, g in zip(hyps, accents)
                                                                                 if g == a]) for a in set(accents)}
  return (ev["references"] == refs and ev["hypotheses"] == hyps and _counts(ev["total"]) == _jiwer_counts(refs, hyps)
          and {a: _counts(c) for a, c in ev["errors"]["accent"].items()} == per_group and ev["rtf"] > 0)


EVALUATE_CASES = [
    Case("evaluate/batches-and-buckets", lambda: _evaluate(_records(), batch_size=2, buckets=(2_000, 4_000)),
         check=lambda ev: _evaluation_is_right(ev, _RECORDS) and ev["wer"] == pytest.approx(4 / 13)),
    Case("evaluate/limit-2-is-the-first-two", lambda: _evaluate(_records(), limit=2),
         check=lambda ev: _evaluation_is_right(ev, _RECORDS[:2])),
    Case("evaluate/limit-past-the-end", lambda: _evaluate(_records(), limit=50),
         check=lambda ev: _evaluation_is_right(ev, _RECORDS)),
    Case("evaluate/bytes-transcripts", lambda: _evaluate([dict(r, text=r["text"].encode()) for r in _records()]),
         check=lambda ev: _evaluation_is_right(ev, _RECORDS)),
    Case("evaluate/all-references-empty", lambda: _evaluate(_records([""] * 5)),
         check=lambda ev: _counts(ev["total"]) == (0, 0, 12, 0) and math.isnan(ev["wer"])),
    Case("evaluate/8-khz-split", lambda: _evaluate(cases.RatedRecords(_records(), 8_000)), raises=ValueError,
         match="evaluate: split: audio is sampled at 8000 Hz but 16000 Hz is expected"),
    Case("evaluate/empty-split", lambda: _evaluate([]), raises=ValueError, match="split holds no utterances"),
    Case("evaluate/limit-negative", lambda: _evaluate(_records(), limit=-1), raises=ValueError,
         match="limit must be an integer >= 0"),
    Case("evaluate/limit-a-string", lambda: _evaluate(_records(), limit="3"), raises=ValueError,
         match="limit must be an integer >= 0"),
    Case("evaluate/unknown-decoder", lambda: evaluation.evaluate(_StubModel(), None, _records(), _WordTok(),
                                                                 decoder="viterbi"),
         raises=ValueError, match="decoder must be one of .*greedy"),
    Case("evaluate/record-without-text", lambda: _evaluate([{"audio": np.zeros(800, np.int16)}]), raises=ValueError,
         match=r"split\[0\] has no 'text' field"),
    Case("evaluate/record-without-audio", lambda: _evaluate([{"text": "a"}]), raises=ValueError,
         match=r"split\[0\] has no 'audio' field"),
    Case("evaluate/text-None", lambda: _evaluate([{"audio": np.zeros(800, np.int16), "text": None}]),
         raises=ValueError, match=r"split\[0\]\['text'\] must be the transcript"),
    Case("evaluate/batch-size-0", lambda: _evaluate(_records(), batch_size=0), raises=ValueError,
         match="batch_size must be an integer >= 1"),
    Case("evaluate/option-of-another-decoder", lambda: evaluation.evaluate(
        _StubModel(), None, _records(), _WordTok(), decoder="greedy", decoder_options={"beam": 4}),
         raises=ValueError, match=r"decoder_options \['beam'\] are not options of the greedy decoder"),
    Case("evaluate/options-a-string", lambda: evaluation.evaluate(
        _StubModel(), None, _records(), _WordTok(), decoder="greedy", decoder_options="beam=4"),
         raises=ValueError, match="decoder_options must be a dict"),
]


# ------------------------------------------------------------------- evaluate.py's checks, in-process

def _read_only_dir() -> str:
  """A folder this process cannot write to (root ignores mode bits: then a read-only file system)."""
  d = tempfile.mkdtemp(prefix="sweep_ro_")
  atexit.register(shutil.rmtree, d, ignore_errors=True)  # no litter in the temporary folder
  os.chmod(d, 0o555)
  for candidate in (d, "/sys"):
    try:
      open(os.path.join(candidate, ".probe"), "w").close()
    except OSError:
      return candidate
  pytest.skip("no unwritable folder on this machine")


CHECK_CASES = [
    Case("evaluate.py/check_limit/negative", lambda: evaluation.check_limit(-1, "--limit"), raises=ValueError,
         match="--limit must be an integer >= 0"),
    Case("evaluate.py/check_limit/0-means-all", lambda: evaluation.check_limit(0, "--limit"), check=lambda n: n == 0),
    Case("evaluate.py/parse_decoder_options/not-json", lambda: evaluation.parse_decoder_options("{beam: 4}"),
         raises=ValueError, match="--decoder_options must be a JSON object.*not valid JSON"),
    Case("evaluate.py/parse_decoder_options/array", lambda: evaluation.parse_decoder_options("[1, 2]"),
         raises=ValueError, match="--decoder_options must be a JSON object.*JSON array"),
    Case("evaluate.py/parse_decoder_options/object", lambda: evaluation.parse_decoder_options('{"beam": 4}'),
         check=lambda o: o == {"beam": 4}),
    Case("evaluate.py/check_writable/read-only-folder",
         lambda: evaluation.check_writable(os.path.join(_read_only_dir(), "eval.json"), "--out"),
         raises=ValueError, match="--out: cannot write to"),
    Case("evaluate.py/check_writable/missing-folder",
         lambda: evaluation.check_writable("/nonexistent/dir/eval.json", "--out"), raises=ValueError,
         match="--out: the folder of /nonexistent/dir/eval.json does not exist"),
    Case("evaluate.py/check_writable/a-folder", lambda: evaluation.check_writable(tempfile.gettempdir(), "--out"),
         raises=ValueError, match="--out: .* is a folder"),
    Case("evaluate.py/check_decoder_options/typo", lambda: evaluation.check_decoder_options("beam", {"beem": 4}),
         raises=ValueError, match=r"decoder_options \['beem'\] are not options of the beam decoder"),
]


# ------------------------------------------------------------------- LossConfig and FrontEnd (the step's options)

def _step_config_case(field, value, match):
  cls = LossConfig if field in {f.name for f in dataclasses.fields(LossConfig)} else FrontEnd
  return Case(f"step/{cls.__name__}/{field}={value!r}", lambda: cls(**{field: value}),
              raises=ValueError, match=f"{cls.__name__}.{field} must be {match}")


STEP_CASES = [
    _step_config_case("num_freq_masks", -1, "an integer >= 0"),
    _step_config_case("max_freq_mask", -27, "an integer >= 0"),
    _step_config_case("num_time_masks", -5, "an integer >= 0"),
    _step_config_case("num_time_masks", 2.5, "an integer >= 0"),
    _step_config_case("max_time_mask_ratio", -0.05, "a finite number >= 0.0, <= 1.0"),
    _step_config_case("max_time_mask_ratio", 2.0, "a finite number >= 0.0, <= 1.0"),
    _step_config_case("compute_dtype", "float8", "one of"),
    _step_config_case("compute_dtype", "int8", "one of"),
    _step_config_case("fastemit_lambda", float("nan"), "a finite number >= 0"),
    _step_config_case("simple_loss_scale", -1.0, "a finite number >= 0"),
    _step_config_case("spec_augment", "yes", "a bool"),
    _step_config_case("vtlp_max_warp", -0.1, "a finite number >= 0.0, < 1.0"),
    Case("step/FrontEnd/feature_std-zero", lambda: FrontEnd(feature_mean=(0.0,), feature_std=(0.0,)),
         raises=ValueError, match="feature_std finite and > 0"),
    Case("step/LossConfig/compute_dtype-a-name", lambda: LossConfig(compute_dtype="bfloat16"),
         check=lambda c: c.compute_dtype == np.dtype("bfloat16") and hash(c) is not None),
]


# --------------------------------------------------------------------------------- launchers (driver)

_DRIVER = r'''
import contextlib, importlib.util, io, json, os, sys
repo, spec_path = sys.argv[1], sys.argv[2]
sys.path.insert(0, repo)
import numpy as np
from absl import app, flags
from asrjax import decoding
from asrjax.data import sources
from asrjax.metrics import wer
from asrjax.inference import evaluation
from asrjax.train import trainer
from asrjax.tasks import transducer_asr


class Reached(Exception):
  """Raised by a replaced expensive function: the launcher passed its checks and began the work."""


class StubModel:
  blank_id = 0
  predictor_hidden = predictor_layers = 1

  def apply(self, params, feats, pads, method=None):
    return feats, pads, None


class Tok:
  def decode(self, ids):
    return ""


def empty_hypotheses(fns, params, enc, enc_paddings, *, max_symbols_per_frame=4):  # greedy_search's keywords
  b = enc.shape[0]
  return decoding.NBest(np.zeros((b, 1, 1), np.int32), np.ones((b, 1, 1), np.float32), np.zeros((b, 1), np.float32))


def records(texts):
  return [{"audio": np.full(800 + 160 * i, 100, np.int16), "text": t, "accent": "a" if i % 2 else "b"}
          for i, t in enumerate(texts)]


ORIGINAL_EVALUATE, ORIGINAL_RESTORE, GREEDY = evaluation.evaluate, transducer_asr.restore_params, decoding.DECODERS["greedy"]
BASE_FLAGS = set(flags.FLAGS)
results, loaded, launcher_flags = {}, {}, set()
with open(spec_path) as f:
  scenarios = json.load(f)
for sc in scenarios:
  path = os.path.join(repo, "experiments", sc["launcher"] + ".py")
  if sc["launcher"] not in loaded:
    for name in set(flags.FLAGS) - BASE_FLAGS:  # launchers share flag names (--config, ...): drop the last one's
      delattr(flags.FLAGS, name)
    loaded.clear()
    spec = importlib.util.spec_from_file_location("launcher_" + sc["launcher"], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded[sc["launcher"]] = module
    launcher_flags = set(flags.FLAGS)
  module = loaded[sc["launcher"]]
  calls = []

  def reach(name):
    def f(*args, **kwargs):
      calls.append(name)
      raise Reached(name)
    return f

  split = records(sc.get("split", ["a b", "c d e"]))
  sources.open_split = lambda *a, **k: split
  transducer_asr.restore_params = ORIGINAL_RESTORE if sc.get("mode") == "real" else reach("restore_params")
  trainer.train_and_evaluate = reach("train_and_evaluate")
  transducer_asr.train_transcripts = lambda *a, **k: sc.get("train_transcripts", ["a b c"])
  evaluation.evaluate = ORIGINAL_EVALUATE
  decoding.DECODERS["greedy"] = GREEDY
  if sc.get("mode") == "stub":  # restores a stub model; the real evaluate runs, every hypothesis empty
    decoding.DECODERS["greedy"] = empty_hypotheses
    transducer_asr.restore_params = lambda *a, **k: (calls.append("restore_params"), (StubModel(), None, Tok(), None, (7,)))[1]

    def counting_evaluate(*args, **kwargs):
      calls.append("evaluate")
      return ORIGINAL_EVALUATE(*args, **kwargs)
    evaluation.evaluate = counting_evaluate
  if sc.get("mode") == "fake":  # evaluate replaced by one giving the scenario's hypotheses
    transducer_asr.restore_params = lambda *a, **k: (calls.append("restore_params"), (None, None, Tok(), None, (7,)))[1]

    def fake_evaluate(model, params, split, tok, *, limit=0, **kwargs):
      calls.append("evaluate")
      split = split[:limit] if limit else split
      refs, hyps, groups = [r["text"] for r in split], sc["hypotheses"], [r["accent"] for r in split]
      total = wer.corpus_errors(refs, hyps)
      return {"wer": total.wer, "total": total, "errors": {"accent": wer.grouped_errors(refs, hyps, groups)},
              "rtf": 0.1, "hypotheses": hyps, "references": refs,
              "utterance_errors": [wer.word_errors(r, h) for r, h in zip(refs, hyps)],
              "speakers": [f"s{i}" for i in range(len(refs))]}
    evaluation.evaluate = fake_evaluate
  out, kind, message = io.StringIO(), "ok", ""
  try:
    with contextlib.redirect_stdout(out):
      flags.FLAGS.unparse_flags()
      sys.argv = [path] + sc["argv"]  # config_flags reads its --config.* overrides from sys.argv
      flags.FLAGS(sys.argv)
      module.main([])
  except Reached as e:
    kind, message = "reached", str(e)
  except app.UsageError as e:
    kind, message = "usage_error", str(e)
  except flags.Error as e:
    kind, message = "flag_error", str(e)
  except BaseException as e:  # noqa: BLE001 -- reported
    kind, message = type(e).__name__, str(e)
  for name in set(flags.FLAGS) - launcher_flags:  # each --config.* override registers a flag, once per parse
    delattr(flags.FLAGS, name)
  results[sc["launcher"] + "/" + sc["id"]] = {"kind": kind, "message": message, "calls": calls, "stdout": out.getvalue()}
print(json.dumps(results))
'''


class LauncherRefused(Exception):
  """The launcher stopped with a usage or flag error, before any work (the message is its own)."""


class LauncherFailed(Exception):
  """The launcher stopped some other way (an exception a user sees as a traceback), or refused late."""


@functools.cache
def _workspace() -> dict:
  """Folders and files the launcher scenarios use, made once per session."""
  d = tempfile.mkdtemp(prefix="sweep_glue_")
  atexit.register(shutil.rmtree, d, ignore_errors=True)
  paths = {"dir": d, "workdir": os.path.join(d, "wd"), "ro": _read_only_dir()}
  for name in ("workdir", "wd_neg_limit", "wd_empty_split", "wd_partial"):  # the last three hold an earlier result
    paths.setdefault(name, os.path.join(d, name))
    os.makedirs(paths[name])
  good = {"dataset": "synth_speech/tiny", "split": "test", "steps": [9], "wer": 0.25, "utterances": 2,
          "references": ["a b", "c d e"], "hypotheses": ["a b", "c x e"]}
  jsons = {
      "good": good,
      "empty": dict(good, references=[], hypotheses=[], utterances=0),
      "other_split": dict(good, split="dev"),
      "other_dataset": dict(good, dataset="librispeech/clean100"),
      "other_transcripts": dict(good, references=["a b", "c d f"]),
      "length_mismatch": dict(good, hypotheses=["a b"]),
      "no_references": {"dataset": "synth_speech/tiny", "split": "test", "wer": 0.25},
      "too_many": dict(good, references=["a b", "c d e", "f"], hypotheses=["a b", "c x e", "f"]),
      "breakdown": dict(good, references=["turn on the light", "play music"],
                        hypotheses=["turn on light", "play some music"]),
  }
  for name, record in jsons.items():
    paths[name] = os.path.join(d, name + ".json")
    with open(paths[name], "w") as f:
      json.dump(record, f)
  paths["invalid"] = os.path.join(d, "invalid.json")
  with open(paths["invalid"], "w") as f:
    f.write("{not json")
  return paths


def _scenarios(p) -> list[dict]:
  wd = [CONFIG, f"--workdir={p['workdir']}"]
  ev = lambda id_, *argv, **kw: dict(id=id_, launcher="evaluate", argv=wd + list(argv), **kw)
  eb = lambda id_, json_, *argv, **kw: dict(id=id_, launcher="error_breakdown",
                                            argv=wd + [f"--eval_json={p.get(json_, json_)}", *argv], **kw)
  tr = lambda id_, *argv: dict(id=id_, launcher="train", argv=wd + list(argv))
  kept = lambda id_, wd_, *argv, **kw: dict(id=id_, launcher="evaluate", argv=[CONFIG, f"--workdir={p[wd_]}", *argv],
                                            **kw)
  return [
      kept("neg-limit", "wd_neg_limit", "--limit=-1", mode="stub"),
      kept("empty-split", "wd_empty_split", mode="stub", split=[]),
      kept("partial", "wd_partial", "--limit=2", mode="fake", split=["a b", "c", "d"], hypotheses=["a b", "c"]),
      ev("read-only-out", f"--out={p['ro']}/eval.json", mode="stub"),
      ev("average-0", "--average=0"),
      ev("options-not-json", "--decoder_options={beam: 4}"),
      ev("options-array", "--decoder_options=[4]"),
      ev("options-of-beam-for-greedy", '--decoder_options={"beam": 4}'),
      ev("step-negative", "--step=-1"),
      ev("out-a-folder", f"--out={p['dir']}"),
      ev("valid", "--limit=5"),
      ev("whole-run", f"--out={p['dir']}/whole.json", mode="fake", split=["a b", "", "c"], hypotheses=["a", "x", "c"]),
      dict(id="missing-workdir", launcher="evaluate", argv=[CONFIG, "--workdir=/nonexistent/wd"], mode="real"),
      eb("no-utterances", "empty"),
      eb("other-split", "other_split", "--split=test"),
      eb("other-dataset", "other_dataset"),
      eb("other-transcripts", "other_transcripts"),
      eb("missing-file", "/nonexistent/eval.json"),
      eb("invalid-json", "invalid"),
      eb("length-mismatch", "length_mismatch"),
      eb("no-references", "no_references"),
      eb("more-than-the-split", "too_many"),
      eb("breakdown", "breakdown", split=["turn on the light", "play music"], train_transcripts=["turn on the light"]),
      tr("num-steps-negative", "--config.train.num_steps=-1"),
      tr("batch-size-0", "--config.data.batch_size=0"),
      dict(id="unknown-variant", launcher="train", argv=[CONFIG + "x", f"--workdir={p['workdir']}"]),
      tr("compute-dtype-float8", "--config.train.compute_dtype=float8"),
      tr("freq-masks-negative", "--config.train.spec_augment_options.num_freq_masks=-1"),
      tr("valid", "--config.train.num_steps=3"),
  ]


_PREVIOUS = {"dataset": "synth_speech/tiny", "split": "test", "wer": 0.1, "utterances": 3,
             "references": ["a", "b", "c"], "hypotheses": ["a", "b", "x"]}  # a good earlier result


def _previous(workdir: str) -> str:
  return os.path.join(_workspace()[workdir], "eval_test_greedy.json")


@functools.cache
def _launcher_results() -> dict:
  p = _workspace()
  for workdir in ("wd_neg_limit", "wd_empty_split", "wd_partial"):
    with open(_previous(workdir), "w") as f:
      json.dump(_PREVIOUS, f)
  spec, driver = os.path.join(p["dir"], "scenarios.json"), os.path.join(p["dir"], "driver.py")
  with open(spec, "w") as f:
    json.dump(_scenarios(p), f)
  with open(driver, "w") as f:
    f.write(_DRIVER)
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  out = subprocess.run([sys.executable, driver, ROOT, spec], capture_output=True, text=True, env=env, timeout=400,
                       cwd=ROOT)
  if out.returncode:
    raise RuntimeError(f"the launcher driver failed:\n{out.stderr[-3000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def _launch(key) -> dict:
  r = _launcher_results()[key]
  if r["kind"] in ("usage_error", "flag_error"):
    if r["calls"]:
      raise LauncherFailed(f"refused only after {r['calls']}: {r['message']}")
    raise LauncherRefused(r["message"])
  if r["kind"] not in ("ok", "reached"):
    raise LauncherFailed(f"{r['kind']}: {r['message']} (after {r['calls']})")
  return r


def _refused_and_kept(workdir, match):
  """A check for a scenario that could overwrite the earlier result at the default path of ``workdir``."""
  def check(r):
    with open(_previous(workdir)) as f:
      now = json.load(f)
    if now != _PREVIOUS:
      raise DataLoss(f"the earlier evaluation JSON ({_PREVIOUS['utterances']} utterances) was replaced by one of "
                     f"{now.get('utterances')}: {json.dumps(now)[:300]}")
    return r["kind"] == "usage_error" and not r["calls"] and re.search(match, r["message"]) is not None
  return check


def _partial_run_kept_the_full_one(r):
  """``--limit=2`` at the default path: its own ``_limit2`` file, the earlier (full) result untouched."""
  with open(_previous("wd_partial")) as f:
    if json.load(f) != _PREVIOUS:
      raise DataLoss("a --limit=2 evaluation replaced the earlier full result at the default path")
  with open(_previous("wd_partial").replace(".json", "_limit2.json")) as f:
    record = json.load(f)
  return r["kind"] == "ok" and record["utterances"] == 2 and record["references"] == ["a b", "c"]


def _whole_run_json(r):
  with open(os.path.join(_workspace()["dir"], "whole.json")) as f:
    record = json.loads(f.read(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # no NaN
  # "a b" -> "a" (1 deletion), "" -> "x" (1 insertion), "c" -> "c": 2 errors in 3 words; accent "a" is the
  # empty reference alone (no rate: null), "b" the other two (1 error in 3 words)
  return (r["calls"] == ["restore_params", "evaluate"] and record["utterances"] == 3
          and record["wer"] == pytest.approx(2 / 3)
          and record["per_group"]["accent"] == {"a": None, "b": pytest.approx(1 / 3)}
          and record["references"] == ["a b", "", "c"] and record["hypotheses"] == ["a", "x", "c"]
          and record["utterance_errors"] == [[0, 1, 0, 2], [0, 0, 1, 0], [0, 0, 0, 1]])  # [S, D, I, N] by hand


def _launcher_case(id_, launcher, match=None, check=None):
  key = launcher.removesuffix(".py") + "/" + id_
  run = (lambda: _launcher_results()[key]) if check else (lambda: _launch(key))
  if check:
    return Case(f"launchers/{launcher}/{id_}", run, check=check)
  return Case(f"launchers/{launcher}/{id_}", run, raises=LauncherRefused, match=match)


LAUNCHER_CASES = [
    _launcher_case("neg-limit", "evaluate.py",
                   check=_refused_and_kept("wd_neg_limit", "--limit must be an integer >= 0")),
    _launcher_case("empty-split", "evaluate.py", check=_refused_and_kept("wd_empty_split", "holds no utterances")),
    _launcher_case("partial", "evaluate.py", check=_partial_run_kept_the_full_one),
    _launcher_case("read-only-out", "evaluate.py", "--out: cannot write to"),
    _launcher_case("average-0", "evaluate.py", "--average must be >= 1"),
    _launcher_case("options-not-json", "evaluate.py", "--decoder_options must be a JSON object.*not valid JSON"),
    _launcher_case("options-array", "evaluate.py", "--decoder_options must be a JSON object.*array"),
    _launcher_case("options-of-beam-for-greedy", "evaluate.py", r"\['beam'\] are not options of the greedy decoder"),
    _launcher_case("step-negative", "evaluate.py", "--step must be"),
    _launcher_case("out-a-folder", "evaluate.py", "--out: .* is a folder"),
    _launcher_case("valid", "evaluate.py", check=lambda r: r["kind"] == "reached" and r["calls"] == ["restore_params"]),
    _launcher_case("whole-run", "evaluate.py", check=_whole_run_json),
    _launcher_case("missing-workdir", "evaluate.py", "no tokenizer at /nonexistent/wd"),
    _launcher_case("no-utterances", "error_breakdown.py", "holds no decoded utterances"),
    _launcher_case("other-split", "error_breakdown.py", "decoded from split 'dev', not 'test'"),
    _launcher_case("other-dataset", "error_breakdown.py", "decoded from dataset 'librispeech/clean100'"),
    _launcher_case("other-transcripts", "error_breakdown.py", "reference 1 is 'c d f', the split's transcript 'c d e'"),
    _launcher_case("missing-file", "error_breakdown.py", "/nonexistent/eval.json"),
    _launcher_case("invalid-json", "error_breakdown.py", "invalid.json is not valid JSON"),
    _launcher_case("length-mismatch", "error_breakdown.py", "2 references but 1 hypotheses"),
    _launcher_case("no-references", "error_breakdown.py", "no 'references' and 'hypotheses'"),
    _launcher_case("more-than-the-split", "error_breakdown.py", "has 3 utterances; .* has 2"),
    # "turn on the light" -> "turn on light" (1 deletion), "play music" -> "play some music" (1 insertion):
    # 2 errors in 6 words; "play" and "music" are not in the training transcripts
    _launcher_case("breakdown", "error_breakdown.py",
                   check=lambda r: r["kind"] == "ok" and "WER 33.3" in r["stdout"]
                   and "out-of-vocabulary: 2 of 6 reference words" in r["stdout"]),
    _launcher_case("num-steps-negative", "train.py", r"train\.num_steps=-1"),
    _launcher_case("batch-size-0", "train.py", r"data\.batch_size=0"),
    _launcher_case("unknown-variant", "train.py", "unknown config variant 'tinyx'"),
    _launcher_case("compute-dtype-float8", "train.py", r"train\.compute_dtype='float8'"),
    _launcher_case("freq-masks-negative", "train.py", r"num_freq_masks=-1"),
    _launcher_case("valid", "train.py", check=lambda r: r["kind"] == "reached" and r["calls"] == ["train_and_evaluate"]),
]

CASES = WER_CASES + OOV_CASES + EVALUATE_CASES + CHECK_CASES + STEP_CASES + LAUNCHER_CASES


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_sweep(case):
  cases.assert_case(case)
