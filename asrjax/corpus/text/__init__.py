"""Seeded English text (voice-assistant requests and read speech) for synthetic corpora."""

from asrjax.corpus.text.generator import Sentence, generate_sentences, make_splits, oov_rate, vocabulary
from asrjax.corpus.text.numbers import cardinal, ordinal

__all__ = ["Sentence", "cardinal", "generate_sentences", "make_splits", "oov_rate", "ordinal", "vocabulary"]
