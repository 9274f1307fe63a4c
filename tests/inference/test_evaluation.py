"""`evaluation.evaluate` on a hand-built split with known transcripts and hypotheses.

The decoder is replaced by a stub that answers each row with a hypothesis chosen by
the row's number of valid encoder frames (every record has a different audio
length), so the expected hypotheses, the WER and the per-group counts are derived
by hand; the real encoder, front end, batching, bucketing and re-ordering run. A
second test runs the real greedy decoder and compares against decoding each record
alone, at its exact length.
"""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax import decoding
from asrjax.data import tokenizer as tokenizer_lib
from asrjax.metrics import wer
from asrjax.models import convrnnt, transducer
from asrjax.frontend.featurize import FrontEnd, featurize
from asrjax.inference import evaluation

TINY = dict(stack=3, channels=16, local_layers=1, local_kernel=3, global_blocks=1, global_kernel=3,
            lstm_hidden=16, lstm_layers=1, output_dim=16)

# (audio samples, reference, hypothesis, accent, hand-counted (S, D, I)), in split order: not sorted by
# length, so that evaluate's internal sort must be undone. The last record is longer than the
# largest bucket used below (it gets a bucket of its own length).
RECORDS = [
    (6_400, "play some music", "play music", b"en-gb", (0, 1, 0)),
    (2_000, "turn on the light", "turn on the light", b"en-us", (0, 0, 0)),
    (9_600, "what time is it", "what time is it now", "en-gb", (0, 0, 1)),
    (3_600, "call mom", "call tom", b"en-us", (1, 0, 0)),
    (12_000, "stop", "", b"en-in", (0, 1, 0)),
    (4_800, "open the door", "close the door", b"en-gb", (1, 0, 0)),
    (8_000, "set a timer", "set the timer please", b"en-in", (1, 0, 1)),
]


def _split():
  rng = np.random.default_rng(0)
  return [{"audio": (rng.normal(size=n) * 2000).astype(np.int16), "text": ref.encode() if i % 2 else ref,
           "accent": accent, "gender": "f" if i % 3 else "m", "id": f"utt{i}",
           **({"speaker_id": f"spk{i % 3}".encode()} if i < 6 else {})}  # the last one has no speaker
          for i, (n, ref, _, accent, _) in enumerate(RECORDS)]


@pytest.fixture(scope="module")
def setup():
  tok = tokenizer_lib.CharTokenizer.build([r[1] + r[2] for r in RECORDS])
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**TINY), vocab_size=tok.vocab_size, embed_dim=8,
                                predictor_hidden=16, joint_hidden=16)
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 40, 80)), jnp.zeros((1, 40)),
                               jnp.ones((1, 2), jnp.int32), jnp.zeros((1, 2)))
  hyp_of_frames = {int(np.sum(1 - _encode_alone(model, params, ex)[1])): r[2] for ex, r in zip(_split(), RECORDS)}
  assert len(hyp_of_frames) == len(RECORDS)  # every record is recognisable by its length
  return model, params, tok, hyp_of_frames


def _encode_alone(model, params, example):
  """Encoder output and paddings of one example alone at its exact length (no batching, no bucket)."""
  @jax.jit
  def encode(p, audio):
    feats, pads = featurize({"audio": audio, "audio_paddings": jnp.zeros(audio.shape)}, jax.random.key(0),
                            FrontEnd(), train=False)
    return model.apply(p, feats, pads, method=transducer.Transducer.encode)[:2]
  return encode(params, jnp.asarray(example["audio"])[None])


@pytest.fixture
def stub_decoder(setup, monkeypatch):
  """Replaces the greedy decoder by one answering each row with RECORDS' hypothesis of its length."""
  _, _, tok, hyp_of_frames = setup
  split = _split()
  calls = []

  def stub(fns, params, enc, enc_paddings, **options):
    frames = np.sum(1 - np.asarray(enc_paddings), axis=1).astype(int)
    calls.append((enc.shape, options))
    ids = [tok.encode(hyp_of_frames[f]) for f in frames]
    width = max(1, max(map(len, ids)))
    labels = np.zeros((len(ids), 1, width), np.int32)
    pads = np.ones((len(ids), 1, width), np.float32)
    for b, row in enumerate(ids):
      labels[b, 0, : len(row)], pads[b, 0, : len(row)] = row, 0.0
    return decoding.NBest(jnp.asarray(labels), jnp.asarray(pads), jnp.zeros((len(ids), 1)))

  monkeypatch.setitem(decoding.DECODERS, "greedy", stub)
  return split, calls


def _hand_counts(records) -> wer.ErrorCounts:
  return sum((wer.ErrorCounts(*sdi, len(ref.split())) for _, ref, _, _, sdi in records), wer.ErrorCounts())


def test_wer_groups_and_order_of_a_hand_built_split(setup, stub_decoder):
  model, params, tok, _ = setup
  split, calls = stub_decoder
  ev = evaluation.evaluate(model, params, split, tok, batch_size=2, buckets=(4_000, 8_000, 10_000))
  # every reference and hypothesis in split order (evaluate decodes them sorted by length)
  assert ev["references"] == [r[1] for r in RECORDS]
  assert ev["hypotheses"] == [r[2] for r in RECORDS]
  # 7 errors in 20 words, counted by hand; jiwer agrees on the whole corpus
  assert ev["total"] == _hand_counts(RECORDS) == wer.ErrorCounts(3, 2, 2, 20)
  assert ev["wer"] == pytest.approx(7 / 20)
  jiwer = pytest.importorskip("jiwer")
  assert ev["wer"] == pytest.approx(jiwer.process_words([r[1] for r in RECORDS], [r[2] for r in RECORDS]).wer)
  # and utterance by utterance, in split order: the counts every total is summed from
  assert ev["utterance_errors"] == [wer.ErrorCounts(*r[4], len(r[1].split())) for r in RECORDS]  # by hand
  # the bootstrap's clusters: each example's speaker, or the utterance itself without one
  assert ev["speakers"] == ["spk0", "spk1", "spk2", "spk0", "spk1", "spk2", "utterance-6"]
  # per accent (bytes and str labels alike) and per gender, summed by hand
  accents = {a: _hand_counts([r for r in RECORDS if r[3] in (a, a.encode())]) for a in ("en-gb", "en-us", "en-in")}
  assert ev["errors"]["accent"] == dict(sorted(accents.items()))
  assert ev["errors"]["accent"]["en-gb"] == wer.ErrorCounts(1, 1, 1, 10)
  genders = {g: _hand_counts([r for i, r in enumerate(RECORDS) if ("f" if i % 3 else "m") == g]) for g in "fm"}
  assert ev["errors"]["gender"] == genders
  assert set(ev["errors"]) == {"accent", "gender"}
  # 7 records in batches of 2 -> 4 decoder calls, padded to 3 bucket lengths plus the longest record's own
  assert len(calls) == 4 and [c[0][0] for c in calls] == [2, 2, 2, 1]
  assert len({c[0][1] for c in calls}) == 4
  assert 0 < ev["rtf"] < math.inf


def test_limit_decodes_the_first_examples_of_the_split(setup, stub_decoder):
  model, params, tok, _ = setup
  split, calls = stub_decoder
  ev = evaluation.evaluate(model, params, split, tok, batch_size=16, limit=3)
  assert ev["references"] == [r[1] for r in RECORDS[:3]]  # the first three, not the three shortest
  assert ev["hypotheses"] == [r[2] for r in RECORDS[:3]]
  assert ev["total"] == _hand_counts(RECORDS[:3]) == wer.ErrorCounts(0, 1, 1, 11)
  assert len(calls) == 1
  assert evaluation.evaluate(model, params, split, tok, limit=100)["references"] == [r[1] for r in RECORDS]


def test_decoder_options_reach_the_decoder(setup, stub_decoder):
  model, params, tok, _ = setup
  split, calls = stub_decoder
  evaluation.evaluate(model, params, split[:2], tok, decoder_options={"max_symbols_per_frame": 2})
  assert [c[1] for c in calls] == [{"max_symbols_per_frame": 2}]


def test_a_group_without_reference_words_is_reported_not_a_crash(setup, stub_decoder):
  model, params, tok, _ = setup
  split, _ = stub_decoder
  split = [dict(split[0], kind="read"), dict(split[1], text="", kind="silence")]  # hyp "turn on the light"
  ev = evaluation.evaluate(model, params, split, tok)
  silence = ev["errors"]["kind"]["silence"]
  assert silence == wer.ErrorCounts(insertions=4) and math.isnan(silence.wer)
  assert evaluation.rate(silence) is None and evaluation.rate(ev["errors"]["kind"]["read"]) == pytest.approx(1 / 3)
  assert ev["total"] == wer.ErrorCounts(0, 1, 4, 3)
  assert "| silence | 0 | - | 0 | 0 | 4 |" in wer.wer_table(ev["errors"]["kind"], "kind")
  json.dumps({k: evaluation.rate(v) for k, v in ev["errors"]["kind"].items()}, allow_nan=False)
  # an example without a field the others have gets the MISSING label, not a KeyError
  del split[1]["gender"]
  assert set(evaluation.evaluate(model, params, split, tok)["errors"]["gender"]) == {"m", evaluation.MISSING}


def test_real_greedy_decoding_equals_decoding_each_record_alone(setup):
  model, params, tok, _ = setup
  split = _split()[:3]  # lengths 6400, 2000, 9600: batches [2000, 6400] (bucket 8000) and [9600] (its own)
  ev = evaluation.evaluate(model, params, split, tok, batch_size=2, buckets=(4_000, 8_000))
  fns = transducer.decoder_fns(model)
  alone = []
  for ex in split:
    enc, enc_pads = _encode_alone(model, params, ex)
    alone.append(tok.decode(decoding.greedy_search(fns, params, enc, enc_pads).to_lists()[0][0][0]))
  assert ev["hypotheses"] == alone
  assert all(alone), alone  # the untrained model does emit labels, so the comparison has content
  assert ev["total"] == wer.corpus_errors([r[1] for r in RECORDS[:3]], alone)


@pytest.mark.parametrize("kwargs, split, match", [
    (dict(), [], "split holds no utterances"),
    (dict(limit=-1), None, "limit must be an integer >= 0"),
    (dict(limit=1.5), None, "limit must be an integer >= 0"),
    (dict(batch_size=0), None, "batch_size must be an integer >= 1"),
    (dict(decoder="beem"), None, r"decoder must be one of \['beam', 'greedy', 'maes', 'modified_beam'\]"),
    (dict(decoder_options={"beam": 4}), None, r"decoder_options \['beam'\] are not options of the greedy"),
    (dict(decoder_options=[("beam", 4)]), None, "decoder_options must be a dict"),
    (dict(), [{"audio": np.zeros(100, np.int16)}], r"split\[0\] has no 'text' field"),
    (dict(), [{"text": "a"}], r"split\[0\] has no 'audio' field"),
    (dict(), [{"audio": np.zeros(100, np.int16), "text": None}], r"split\[0\]\['text'\] must be the transcript"),
])
def test_bad_requests_fail_before_decoding(setup, kwargs, split, match):
  model, params, tok, _ = setup
  with pytest.raises(ValueError, match=match):
    evaluation.evaluate(model, params, _split() if split is None else split, tok, **kwargs)


def test_check_writable(tmp_path):
  evaluation.check_writable(str(tmp_path / "eval.json"))
  with pytest.raises(ValueError, match="--out: .* is a folder"):
    evaluation.check_writable(str(tmp_path))
  with pytest.raises(ValueError, match="the folder of .*missing/eval.json does not exist"):
    evaluation.check_writable(str(tmp_path / "missing" / "eval.json"))
  read_only = tmp_path / "ro"
  read_only.mkdir()
  read_only.chmod(0o555)
  target = read_only / "eval.json"
  try:
    open(read_only / "probe", "w").close()  # root ignores the mode bits: use a read-only file system instead
    target = "/sys/asrjax_eval.json"
    open(target, "w").close()
    pytest.skip("no unwritable folder available")
  except OSError:
    pass
  with pytest.raises(ValueError, match="--out: cannot write to .*expected a writable folder"):
    evaluation.check_writable(str(target))


@pytest.mark.parametrize("text, match", [
    ("{beam: 4}", "not valid JSON"),
    ("[4]", "got a JSON array"),
    ("4", "got a JSON number"),
    ("null", "got a JSON null"),
])
def test_parse_decoder_options(text, match):
  assert evaluation.parse_decoder_options('{"beam": 4}') == {"beam": 4}
  with pytest.raises(ValueError, match="--decoder_options must be a JSON object.*" + match):
    evaluation.parse_decoder_options(text)


def test_read_eval_json_refuses_empty_and_foreign_files(tmp_path):
  path = tmp_path / "eval.json"
  good = {"dataset": "d", "split": "dev", "references": ["a b"], "hypotheses": ["a"]}
  path.write_text(json.dumps(good))
  assert evaluation.read_eval_json(str(path), dataset="d") == (good, "dev")
  cases = [(dict(good, references=[], hypotheses=[]), {}, "holds no decoded utterances"),
           (dict(good, split="test"), dict(split="dev"), "decoded from split 'test', not 'dev'"),
           (dict(good, dataset="other"), {}, "decoded from dataset 'other', not 'd'"),
           ({k: v for k, v in good.items() if k != "split"}, {}, "does not record its split"),
           (dict(good, hypotheses=["a", "b"]), {}, "1 references but 2 hypotheses"),
           ({"wer": 0.1}, {}, "has no 'references' and 'hypotheses' lists")]
  for record, kwargs, match in cases:
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=match):
      evaluation.read_eval_json(str(path), dataset="d", **kwargs)
  path.write_text("{not json")
  with pytest.raises(ValueError, match="is not valid JSON"):
    evaluation.read_eval_json(str(path), dataset="d")
  split = [{"audio": [0], "text": b"a b"}, {"audio": [0], "text": "c"}]
  evaluation.check_references(["a b", "c"], split, "eval.json", "dev")
  with pytest.raises(ValueError, match="reference 1 is 'd', the split's transcript 'c'"):
    evaluation.check_references(["a b", "d"], split, "eval.json", "dev")
  with pytest.raises(ValueError, match="has 3 utterances; dev has 2"):
    evaluation.check_references(["a b", "c", "e"], split, "eval.json", "dev")


def test_example_groups_decodes_fields_and_adds_the_condition():
  record = {"audio": [0], "text": b"hi", "accent": b"en-gb-scotland", "variant": b"aunty", "noise": b"pink",
            "snr_db": 5.0, "reverb": 0, "band_limited": False, "latitude": 1.0}
  assert evaluation.example_groups(record) == {
      "accent": "en-gb-scotland", "variant": "aunty", "noise": "pink", "snr_db": "5.0", "band_limited": "False",
      "condition": "noise 0-5 dB"}


def test_example_groups_without_condition_fields():
  # a LibriSpeech-like record: no recording-condition metadata, so no "condition" label
  assert evaluation.example_groups({"text": "hi", "gender": "f", "snr_db": math.inf}) == {
      "gender": "f", "snr_db": "inf"}


def test_a_second_evaluation_of_the_model_compiles_nothing(setup):
  """Every `evaluate` builds its own `BatchDecoder`; the front end, the encoder and the decoder's search
  are compiled once per batch shape for the model, so a repeat (a benchmark's timed pass after its
  warm-up) times decoding, not compilation."""
  from asrjax.decoding import maes
  from asrjax.inference import batch_decoder
  model, params, tok, _ = setup
  split = _split()[:3]
  run = dict(batch_size=2, buckets=(4_000, 8_000), decoder="maes", decoder_options={"beam": 2})
  first = evaluation.evaluate(model, params, split, tok, **run)
  jitted = (batch_decoder._featurize, batch_decoder._encode, maes._continue)
  sizes = [f._cache_size() for f in jitted]
  assert all(sizes), sizes  # these are the programs evaluate runs
  again = evaluation.evaluate(model, params, split, tok, **run)
  assert [f._cache_size() for f in jitted] == sizes
  assert again["hypotheses"] == first["hypotheses"]


def test_batch_plan_sorts_by_length_and_pads_to_the_first_bucket_that_holds_a_batch():
  # lengths by id: 0 -> 5, 1 -> 1, 2 -> 9, 3 -> 3, 4 -> 4; sorted ids 1, 3, 4, 0, 2
  assert evaluation.batch_plan([5, 1, 9, 3, 4], 2, (4, 8)) == [([1, 3], 4), ([4, 0], 8), ([2], 9)]


class _UnhashableTransducer(transducer.Transducer):
  """A model whose configuration cannot be hashed (as with a list-valued field)."""

  def __hash__(self):
    raise TypeError("unhashable type: 'list'")


def test_an_unhashable_model_still_decodes_the_same(setup):
  """The shared compiled programs key on the model; a model that cannot be hashed falls back to
  programs of its own, with the same hypotheses."""
  model, params, tok, _ = setup
  twin = _UnhashableTransducer(model.encoder, vocab_size=model.vocab_size, embed_dim=8, predictor_hidden=16,
                               joint_hidden=16)
  with pytest.raises(TypeError):
    hash(twin)
  split = _split()[:3]
  run = dict(batch_size=2, buckets=(4_000, 8_000), decoder="maes", decoder_options={"beam": 2})
  want = evaluation.evaluate(model, params, split, tok, **run)["hypotheses"]
  assert evaluation.evaluate(twin, params, split, tok, **run)["hypotheses"] == want
