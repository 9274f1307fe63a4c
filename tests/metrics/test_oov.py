"""Out-of-vocabulary words against a hand-built vocabulary."""

from asrjax.metrics import oov


def test_oov_words_against_a_hand_built_vocabulary():
  vocab = oov.vocabulary(["play the song", "the  weather\ttoday"])
  assert vocab == {"play", "the", "song", "weather", "today"}
  assert oov.oov_words("play the zither the zither", vocab) == ["zither", "zither"]
  assert oov.oov_words("", vocab) == []
