"""Lexicon word LM: character probabilities telescope to the word n-gram's, and form a distribution."""

import math

import numpy as np
import pytest

from asrjax.data import tokenizer
from asrjax.decoding import ngram_lm, word_lm

TEXT = ["a cab", "a bad cab", "bad a", "cab", "a a b", "dab cab a"]


def _build(char_weight, order=3):
  tok = tokenizer.CharTokenizer.build(TEXT)
  id_to_char = {i: tok.decode([i]) if i != 2 else " " for i in range(2, tok.vocab_size)}
  char_lm = ngram_lm.NgramLM.fit([tok.encode(t) for t in TEXT], tok.vocab_size, order=4)
  return tok, word_lm.LexiconWordLM.fit(TEXT, id_to_char, char_lm, order=order, char_weight=char_weight)


def _char_sentence_log_prob(lm, ids):
  return sum(float(lm.log_probs(ids[:i])[ids[i] if i < len(ids) else lm.eos_id]) for i in range(len(ids) + 1))


def _word_sentence_log_prob(lm, sentence):
  # The word n-gram without <unk>, renormalised by hand from its own vectors.
  ids = [lm.words.index(w) + 2 for w in sentence.split()]
  total = 0.0
  for i in range(len(ids) + 1):
    p = np.exp(lm.word_lm.log_probs(ids[:i]))
    p[0] = p[word_lm.UNK_WORD] = 0.0
    total += math.log(p[ids[i] if i < len(ids) else lm.word_lm.eos_id] / p.sum())
  return total


@pytest.mark.parametrize("sentence", ["a cab", "cab a bad", "dab", "b b b a"])
def test_in_vocabulary_sentences_telescope_to_the_word_ngram(sentence):
  tok, lm = _build(char_weight=0.0)
  np.testing.assert_allclose(_char_sentence_log_prob(lm, tok.encode(sentence)), _word_sentence_log_prob(lm, sentence),
                             rtol=1e-9)


def test_hand_derived_unigram_branching():
  # Order 1: P'(w) from counts. Words: a, b, bad, cab, dab. After "ba", only "bad" fits:
  # P(d | "ba") = 1; after "b" the choices are the word "b" itself (space or end) and "ba...".
  tok, lm = _build(char_weight=0.0, order=1)
  p_words = lm._cumulative(())[0]
  pb, pbad = p_words[lm.words.index("b") + 2], p_words[lm.words.index("bad") + 2]
  probs = np.exp(lm.log_probs(tok.encode("b")))
  np.testing.assert_allclose(probs[tok.encode("a")[0]], pbad / (pb + pbad), rtol=1e-12)
  end = p_words[lm.word_lm.eos_id]
  np.testing.assert_allclose(probs[2], pb / (pb + pbad) * (1 - end), rtol=1e-12)
  np.testing.assert_allclose(probs[lm.eos_id], pb / (pb + pbad) * end, rtol=1e-12)
  np.testing.assert_allclose(np.exp(lm.log_probs(tok.encode("ba")))[tok.encode("d")[0]], 1.0, rtol=1e-12)


@pytest.mark.parametrize("prefix", ["", "a", "a ", "ca", "cab a", "x", "a dd", "bad c"])
@pytest.mark.parametrize("char_weight", [0.0, 0.3])
def test_every_context_gives_a_distribution(prefix, char_weight):
  tok = tokenizer.CharTokenizer.build(TEXT + ["x"], strict=False)
  id_to_char = {i: tok.decode([i]) if i != 2 else " " for i in range(2, tok.vocab_size)}
  char_lm = ngram_lm.NgramLM.fit([tok.encode(t) for t in TEXT + ["x"]], tok.vocab_size, order=4)
  lm = word_lm.LexiconWordLM.fit(TEXT, id_to_char, char_lm, order=3, char_weight=char_weight)
  lp = lm.log_probs(tok.encode(prefix))
  assert lp.shape == (tok.vocab_size + 1,) and lp[0] == -np.inf
  np.testing.assert_allclose(np.exp(lp).sum(), 1.0, rtol=1e-9)


def test_out_of_vocabulary_spelling_falls_back_to_the_character_lm():
  tok, lm = _build(char_weight=0.2)
  prefix = tok.encode("a dd")  # no word starts with "dd"
  np.testing.assert_allclose(lm.log_probs(prefix), lm.char_lm.log_probs(prefix))
  # inside the lexicon, a letter no word continues with gets only the character LM's share
  p = np.exp(lm.log_probs(tok.encode("a c")))
  q = np.exp(lm.char_lm.log_probs(tok.encode("a c")))
  np.testing.assert_allclose(p[tok.encode("b")[0]], 0.2 * q[tok.encode("b")[0]], rtol=1e-9)
  np.testing.assert_allclose(p[tok.encode("a")[0]], 0.8 + 0.2 * q[tok.encode("a")[0]], rtol=1e-9)


def test_bad_arguments_raise():
  tok, lm = _build(char_weight=0.0)
  id_to_char = {i: tok.decode([i]) if i != 2 else " " for i in range(2, tok.vocab_size)}
  with pytest.raises(ValueError, match="sorted"):
    word_lm.LexiconWordLM(["b", "a"], lm.word_lm, lm.char_lm, id_to_char, 0.0)
  with pytest.raises(ValueError, match="char_weight"):
    word_lm.LexiconWordLM(lm.words, lm.word_lm, lm.char_lm, id_to_char, 1.5)
  with pytest.raises(ValueError, match="ids"):
    word_lm.LexiconWordLM(lm.words[:-1], lm.word_lm, lm.char_lm, id_to_char, 0.0)
