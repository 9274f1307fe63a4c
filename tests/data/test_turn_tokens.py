"""Turn tokens: ids by hand, round trips, splitting with positions, and turn tokens refused inside text."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asrjax.data.tokenizer import EOT, SOT, CharTokenizer, TurnTokenizer

BASE = CharTokenizer.build(["ab c", "ba"])  # blank 0, unk 1, " " 2, "a" 3, "b" 4, "c" 5
TOK = TurnTokenizer(BASE)


def test_turn_ids_follow_the_base_vocabulary_by_hand():
  assert BASE.vocab_size == 6 and (TOK.sot_id, TOK.eot_id, TOK.vocab_size) == (6, 7, 8)
  assert TOK.encode_turns(["ab", "c"]) == [6, 3, 4, 7, 6, 5, 7]
  assert TOK.encode_turns(["ab", "c"], end_tokens=False) == [6, 3, 4, 6, 5]
  assert TOK.decode([6, 3, 4, 7, 6, 5]) == "<sot>ab<eot><sot>c"
  assert (TOK.blank_id, TOK.unk_id) == (0, 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abc ", max_size=8), max_size=4))
def test_decode_turns_round_trips_encode_turns(turns):
  assert TOK.decode_turns(TOK.encode_turns(turns)) == [(t, True) for t in turns]
  assert TOK.decode_turns(TOK.encode_turns(turns, end_tokens=False)) == [(t, False) for t in turns]


def test_split_turns_gives_positions_and_handles_unmatched_tokens():
  # text before any <sot>, an unclosed turn, a stray <eot>
  ids = [3, 6, 4, 5, 6, 3, 7, 7, 5]
  assert TOK.split_turns(ids) == [([3], 0, None), ([4, 5], 1, None), ([3], 4, 6), ([5], 8, None)]
  assert TOK.decode_turns(ids) == [("a", False), ("bc", False), ("a", True), ("c", False)]


def test_turn_tokens_inside_text_are_refused():
  with pytest.raises(ValueError, match="'<sot>' at position 2 of 'ab<sot>' is a turn token"):
    TOK.encode("ab" + SOT)
  with pytest.raises(ValueError, match="is a turn token"):
    TOK.encode_turns(["a", EOT])
  with pytest.raises(TypeError, match="not one string"):
    TOK.encode_turns("ab")
  with pytest.raises(ValueError, match="outside the vocabulary"):
    TOK.decode([8])
  with pytest.raises(ValueError, match="blank"):
    TOK.split_turns([6, 0])
  with pytest.raises(TypeError, match="already has turn tokens"):
    TurnTokenizer(TOK)


def test_save_writes_the_base_tokenizer(tmp_path):
  TOK.save(tmp_path / "tok.json")
  assert TurnTokenizer(CharTokenizer.load(tmp_path / "tok.json")).encode_turns(["ba"]) == [6, 4, 3, 7]
