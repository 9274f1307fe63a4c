"""Out-of-vocabulary words against a hand-built vocabulary."""

import pytest

from asrjax.metrics import oov


def test_oov_words_against_a_hand_built_vocabulary():
  vocab = oov.vocabulary(["play the song", "the  weather\ttoday"])
  assert vocab == {"play", "the", "song", "weather", "today"}
  assert oov.oov_words("play the zither the zither", vocab) == ["zither", "zither"]
  assert oov.oov_words("", vocab) == []
  assert oov.vocabulary([]) == frozenset() and oov.vocabulary(iter(["a b"])) == {"a", "b"}


@pytest.mark.parametrize("call, match", [
    (lambda: oov.vocabulary("play the song"), "transcripts must be a list of str"),
    (lambda: oov.vocabulary(["a", None]), r"transcripts\[1\] must be a str"),
    (lambda: oov.oov_words(None, frozenset()), "reference must be a str"),
    (lambda: oov.oov_words("the", "theatre"), "vocab must be a set"),  # "the" in "theatre" is a substring
])
def test_bad_inputs_name_the_argument(call, match):
  with pytest.raises(TypeError, match=match):
    call()
