"""Tokenizers: hand-derived ids, round trips, determinism, unknowns and corrupt files."""

from __future__ import annotations

import json
import random

import pytest
import sentencepiece as spm
from hypothesis import given, settings
from hypothesis import strategies as st

from asrjax.data.tokenizer import CharTokenizer, SentencePieceTokenizer, Tokenizer

ALPHABET = "abcdefghijklmnopqrstuvwxyz' "
WORDS = (
    "the quick brown fox jumps over lazy dog it's don't speech recognition we'll sing a song of sixpence "
    "pocket full rye four and twenty blackbirds baked in pie when was opened birds began to king's "
    "counting house money queen parlour eating bread honey maid garden hanging out clothes down came "
    "blackbird pecked off her nose"
).split()
TEXT = st.text(alphabet=ALPHABET, max_size=60)
VOCAB = 64


def _corpus(n: int = 1500, seed: int = 0) -> list[str]:
  rng = random.Random(seed)
  return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def char_tok() -> CharTokenizer:
  return CharTokenizer.build(_corpus())


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def sp_tok(request, tmp_path_factory) -> SentencePieceTokenizer:
  path = tmp_path_factory.mktemp("sp") / f"{request.param}.model"
  return SentencePieceTokenizer.train(_corpus(), path, vocab_size=VOCAB, model_type=request.param)


# ----------------------------------------------------------------------------
# Characters
# ----------------------------------------------------------------------------


def test_char_vocabulary_and_ids_hand_derived(char_tok):
  # blank 0, unk 1, space 2, apostrophe 3 (U+0027 sorts before letters), a..z = 4..29.
  assert (char_tok.blank_id, char_tok.unk_id, char_tok.vocab_size) == (0, 1, 30)
  assert char_tok.symbols == tuple(" '" + "abcdefghijklmnopqrstuvwxyz")
  assert char_tok.encode("ab c'z") == [4, 5, 2, 6, 3, 29]
  assert char_tok.decode([4, 5, 2, 6, 3, 29]) == "ab c'z"
  assert char_tok.encode("") == [] and char_tok.decode([]) == ""
  assert isinstance(char_tok, Tokenizer)


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_char_round_trip(char_tok, text):
  ids = char_tok.encode(text)
  assert len(ids) == len(text) and all(2 <= i < 30 for i in ids)
  assert char_tok.decode(ids) == text


def test_char_unknowns_and_bad_ids(char_tok):
  with pytest.raises(ValueError, match=r"unknown character 'Q' at position 4"):
    char_tok.encode("the Quick")
  lenient = CharTokenizer(char_tok.symbols, strict=False)
  assert lenient.encode("a7b") == [4, 1, 5]
  assert lenient.decode([4, 1, 5]) == "a\u2047b"
  for bad in ([0], [30], [-1], [4, 99]):
    with pytest.raises(ValueError):
      char_tok.decode(bad)
  with pytest.raises(ValueError, match="blank"):
    char_tok.decode([4, 0])


def test_char_save_load_and_corrupt_files(char_tok, tmp_path):
  path = tmp_path / "chars.json"
  char_tok.save(path)
  loaded = CharTokenizer.load(path)
  assert loaded.symbols == char_tok.symbols and loaded.encode("it's a dog") == char_tok.encode("it's a dog")
  data = path.read_bytes()
  bad = tmp_path / "bad.json"
  for content in (data[: len(data) // 2], data[:-3], b"", b"\xff\xfe garbage", json.dumps({"format": "x"}).encode()):
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="bad.json"):
      CharTokenizer.load(bad)
  with pytest.raises(FileNotFoundError):
    CharTokenizer.load(tmp_path / "missing.json")


# ----------------------------------------------------------------------------
# SentencePiece
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sp_training_is_byte_identical_and_layout_is_blank_first(model_type, tmp_path):
  a, b = tmp_path / "a.model", tmp_path / "sub_dir_b.model"
  SentencePieceTokenizer.train(_corpus(), a, vocab_size=VOCAB, model_type=model_type)
  SentencePieceTokenizer.train(iter(_corpus()), b, vocab_size=VOCAB, model_type=model_type)  # generator input too
  assert a.read_bytes() == b.read_bytes()
  c = tmp_path / "c.model"
  SentencePieceTokenizer.train(_corpus(seed=1), c, vocab_size=VOCAB, model_type=model_type)
  assert c.read_bytes() != a.read_bytes()  # the comparison can fail
  # Inspect the file with SentencePiece itself, independently of our wrapper.
  sp = spm.SentencePieceProcessor(model_file=str(a))
  assert sp.get_piece_size() == VOCAB
  assert sp.id_to_piece(0) == "<blank>" and sp.is_control(0)
  assert sp.unk_id() == 1 and sp.bos_id() == -1 and sp.eos_id() == -1
  assert not any(sp.is_control(i) for i in range(1, VOCAB))
  assert all(0 not in ids for ids in sp.encode(_corpus(200, seed=2)))


@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_sp_round_trip(sp_tok, text):
  ids = sp_tok.encode(text)
  assert all(2 <= i < sp_tok.vocab_size for i in ids)
  assert sp_tok.decode(ids) == text


def test_sp_encodes_into_pieces(sp_tok):
  text = "the quick brown fox"
  ids = sp_tok.encode(text)
  assert len(ids) < len(text)  # subwords, not characters
  pieces = [sp_tok.id_to_piece(i) for i in ids]
  assert "".join(pieces).replace("\u2581", " ").strip() == text
  assert sp_tok.encode("") == [] and sp_tok.decode([]) == ""
  assert sp_tok.blank_id == 0 and sp_tok.unk_id == 1 and isinstance(sp_tok, Tokenizer)


def test_sp_unknowns_and_bad_ids(sp_tok, tmp_path):
  with pytest.raises(ValueError, match=r"unknown character 'é' at position 2"):
    sp_tok.encode("caé dog")
  with pytest.raises(ValueError, match=r"unknown character 'Q' at position 4"):
    sp_tok.encode("the Quick")
  path = tmp_path / "m.model"
  sp_tok.save(path)
  lenient = SentencePieceTokenizer.load(path, strict=False)
  ids = lenient.encode("a 7 dog")
  assert ids.count(1) == 1
  assert lenient.decode(ids) == "a \u2047 dog"
  for bad in ([0], [sp_tok.vocab_size], [-1]):
    with pytest.raises(ValueError):
      sp_tok.decode(bad)


def test_sp_unknown_position_counts_characters_not_bytes(tmp_path):
  tok = SentencePieceTokenizer.train(_corpus() + ["über alles"] * 5, tmp_path / "u.model", vocab_size=VOCAB)
  assert tok.decode(tok.encode("über dog")) == "über dog"
  with pytest.raises(ValueError, match=r"unknown character 'Q' at position 5"):  # byte offset 6
    tok.encode("über Qat")


def test_sp_save_load_and_corrupt_files(sp_tok, tmp_path):
  path = tmp_path / "m.model"
  sp_tok.save(path)
  loaded = SentencePieceTokenizer.load(path)
  assert loaded.model_proto == path.read_bytes() == sp_tok.model_proto
  assert loaded.encode("we'll sing a song") == sp_tok.encode("we'll sing a song")
  data = path.read_bytes()
  bad = tmp_path / "broken.model"
  # Every truncation, including those on protobuf field boundaries that SentencePiece
  # itself would load silently with missing pieces.
  for n in range(0, len(data), 3):
    bad.write_bytes(data[:n])
    with pytest.raises(ValueError, match="broken.model"):
      SentencePieceTokenizer.load(bad)
  bad.write_bytes(b"\x00garbage" * 10)
  with pytest.raises(ValueError, match="broken.model"):
    SentencePieceTokenizer.load(bad)
  with pytest.raises(FileNotFoundError):
    SentencePieceTokenizer.load(tmp_path / "missing.model")


def test_sp_rejects_model_with_default_special_ids(tmp_path):
  path = tmp_path / "default_ids.model"
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(_corpus()), model_prefix=str(tmp_path / "default_ids"), vocab_size=40, minloglevel=2
  )  # unk=0, bos=1, eos=2: id 0 is not a blank
  with pytest.raises(ValueError, match="default_ids.model.*id 0"):
    SentencePieceTokenizer.load(path)


def test_sp_training_errors_are_value_errors(tmp_path):
  # "a b" has 3 characters (a, b and the word boundary) + blank + unk = 5 ids in all
  with pytest.raises(ValueError, match=r"vocab_size=500 is too large .* at most 5 pieces"):
    SentencePieceTokenizer.train(["a b"], tmp_path / "x.model", vocab_size=500)
  # 10 letters + the word boundary + blank + unk = 13 ids needed
  with pytest.raises(ValueError, match=r"vocab_size=5 is too small: the training text needs 13 ids"):
    SentencePieceTokenizer.train(["abcdef ghij"] * 20, tmp_path / "x.model", vocab_size=5)
  with pytest.raises(ValueError, match="at least one sentence"):
    SentencePieceTokenizer.train([], tmp_path / "x.model", vocab_size=10)
  with pytest.raises(ValueError, match="single string"):
    SentencePieceTokenizer.train("abc abc", tmp_path / "x.model", vocab_size=10)
  with pytest.raises(ValueError, match="vocab_size must be an integer"):
    SentencePieceTokenizer.train(["a b"], tmp_path / "x.model", vocab_size=4.5)
  with pytest.raises(ValueError, match="model_type"):
    SentencePieceTokenizer.train(["a b"], tmp_path / "x.model", vocab_size=10, model_type="word")


def test_encode_takes_str_only_and_decode_integers_only(char_tok, sp_tok):
  for tok in (char_tok, sp_tok):
    with pytest.raises(TypeError, match=r"text must be a str, got bytes \(decode bytes first"):
      tok.encode(b"abc")
    with pytest.raises(TypeError, match=r"text must be a str, got NoneType"):
      tok.encode(None)
    for bad in ([True], [4.0]):
      with pytest.raises(ValueError, match=r"ids\[0\] = .* is not an integer"):
        tok.decode(bad)
