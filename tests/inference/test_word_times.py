"""Token and word times from labels and emission frames (`batch_decoder.timings`), with hand-derived values.

Frames become seconds through the encoder frame duration: ``stack`` log-mel hops of 10 ms. Each expected
value below is written out by hand from the hypothesis, its frames and that duration; no model is trained
(the last test runs an untrained one through `BatchDecoder.decode_timed`).
"""

import fractions
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax import decoding
from asrjax.data import tokenizer as tokenizer_lib
from asrjax.frontend.featurize import FrontEnd
from asrjax.inference import batch_decoder
from asrjax.models import convrnnt, transducer

F3 = fractions.Fraction(3, 100)  # stack 3: 30 ms per encoder frame
F4 = fractions.Fraction(4, 100)  # stack 4: 40 ms


def _model(stack):
  return types.SimpleNamespace(encoder=types.SimpleNamespace(stack=stack))


@pytest.mark.parametrize("stack,seconds", [(1, 0.01), (3, 0.03), (4, 0.04)])
def test_encoder_frame_seconds_is_stack_hops_of_10_ms(stack, seconds):
  got = batch_decoder.encoder_frame_seconds(_model(stack))
  assert got == fractions.Fraction(stack * 160, 16_000) and float(got) == seconds
  real = transducer.Transducer(convrnnt.ConvRNNTEncoder(), vocab_size=5)  # ConvRNN-T stacks 3 frames by default
  assert batch_decoder.encoder_frame_seconds(real) == F3


@pytest.fixture(scope="module")
def chars():
  return tokenizer_lib.CharTokenizer([" ", "a", "c", "e", "h", "t"])  # ids: " " 2, a 3, c 4, e 5, h 6, t 7


def test_char_hypothesis_with_leading_trailing_and_double_spaces(chars):
  labels = chars.encode(" the  cat ")
  assert labels == [2, 7, 6, 5, 2, 2, 4, 3, 7, 2]
  frames = [0, 1, 1, 2, 4, 4, 5, 6, 8, 9]  # "t" and "h" on one frame
  tokens, words = batch_decoder.timings(chars, labels, frames, F3)
  assert tokens == ((" ", 0.0), ("t", 0.03), ("h", 0.03), ("e", 0.06), (" ", 0.12), (" ", 0.12), ("c", 0.15),
                    ("a", 0.18), ("t", 0.24), (" ", 0.27))
  # a word: from its first letter's frame start to its last letter's frame end (start + 30 ms)
  assert words == (("the", 0.03, 0.09), ("cat", 0.15, 0.27))


def test_char_unk_is_a_word_character_and_spaces_only_make_no_word(chars):
  tokens, words = batch_decoder.timings(chars, [1, 3, 2, 4], [2, 3, 3, 10], F4)
  assert tokens == (("\u2047", 0.08), ("a", 0.12), (" ", 0.12), ("c", 0.4))
  assert words == (("\u2047a", 0.08, 0.16), ("c", 0.4, 0.44))
  assert batch_decoder.timings(chars, [2, 2], [0, 3], F4) == (((" ", 0.0), (" ", 0.12)), ())


def test_empty_hypothesis(chars):
  assert batch_decoder.timings(chars, [], [], F3) == ((), ())


def test_labels_and_frames_must_pair_up(chars):
  with pytest.raises(ValueError, match="one entry per label"):
    batch_decoder.timings(chars, [3, 4], [0], F3)


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
  """A tiny unigram SentencePiece model and ``{piece: id}``; the pieces the tests use must be in it."""
  sentences = ["the cat sat on the mat", "a cat and a hat", "the hat is on the cat"] * 20
  tok = tokenizer_lib.SentencePieceTokenizer.train(sentences, tmp_path_factory.mktemp("sp") / "sp.model",
                                                   vocab_size=18, strict=False)
  ids = {tok.id_to_piece(i): i for i in range(1, tok.vocab_size)}
  assert {"\u2581", "t", "h", "e", "\u2581cat", "s", "at", "<unk>"} <= set(ids), sorted(ids)
  return tok, ids


def _ids(ids, pieces):
  return [ids[p.replace("_", "\u2581")] for p in pieces]


def test_sentencepiece_a_lone_word_marker_starts_the_next_word(pieces):
  tok, ids = pieces
  labels = _ids(ids, ["_", "t", "h", "e", "_cat", "_", "s", "at"])
  frames = [0, 1, 2, 2, 5, 7, 8, 8]
  assert tok.decode(labels) == "the cat sat"
  tokens, words = batch_decoder.timings(tok, labels, frames, F4)
  # decoding drops the first piece's space: the first "▁" adds nothing, "▁cat" adds " cat"
  assert tokens == (("", 0.0), ("t", 0.04), ("h", 0.08), ("e", 0.08), (" cat", 0.2), (" ", 0.28), ("s", 0.32),
                    ("at", 0.32))
  # "the" starts with its "▁" (frame 0), "sat" with the "▁" at frame 7; ends are last frame + 1
  assert words == (("the", 0.0, 0.12), ("cat", 0.2, 0.24), ("sat", 0.28, 0.36))


def test_sentencepiece_leading_trailing_double_spaces_and_unk(pieces):
  tok, ids = pieces
  labels = _ids(ids, ["_", "_", "t", "h", "e", "_", "_cat", "_"])
  frames = [1, 2, 3, 3, 4, 6, 6, 9]
  assert tok.decode(labels) == " the  cat "
  tokens, words = batch_decoder.timings(tok, labels, frames, F3)
  assert [t for t, _ in tokens] == ["", " ", "t", "h", "e", " ", " cat", " "]
  # "the" starts at the "▁" just before "t" (frame 2), not the first one (an empty word); "▁cat" starts its own
  assert words == (("the", 0.06, 0.15), ("cat", 0.18, 0.21))
  labels = _ids(ids, ["_", "<unk>", "_cat"])
  assert tok.decode(labels) == "\u2047 cat"
  assert batch_decoder.timings(tok, labels, [0, 2, 4], F3)[1] == (("\u2047", 0.0, 0.09), ("cat", 0.12, 0.15))
  # a hypothesis that starts inside a word: its first piece starts the first word
  assert batch_decoder.timings(tok, _ids(ids, ["at", "_cat"]), [3, 5], F3)[1] == (("at", 0.09, 0.12),
                                                                                  ("cat", 0.15, 0.18))
  assert batch_decoder.timings(tok, [], [], F3) == ((), ())


def test_decode_timed_is_call_with_the_decoders_frames():
  """An untrained tiny ConvRNN-T through `BatchDecoder`: `decode_timed` gives `__call__`'s hypotheses plus the
  greedy frames of the same encoder output, all inside the utterance's encoder frames."""
  tok = tokenizer_lib.CharTokenizer([" ", "a", "b", "c"])
  tiny = dict(stack=3, channels=8, local_layers=1, local_kernel=3, global_blocks=1, global_kernel=3, lstm_hidden=8,
              lstm_layers=1, output_dim=8)
  model = transducer.Transducer(convrnnt.ConvRNNTEncoder(**tiny), vocab_size=tok.vocab_size, embed_dim=4,
                                predictor_hidden=8, joint_hidden=8)
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 30, 80)), jnp.zeros((1, 30)),
                               jnp.ones((1, 2), jnp.int32), jnp.zeros((1, 2)))
  params = jax.tree_util.tree_map_with_path(  # rare blanks: many labels
      lambda path, x: x.at[0].add(-3.0) if "bias" in jax.tree_util.keystr(path) and x.shape == (tok.vocab_size,)
      else x, params)
  rng = np.random.default_rng(0)
  audio = [(rng.normal(size=n) * 3000).astype(np.int16) for n in (8_000, 4_800)]
  dec = batch_decoder.BatchDecoder(model, params, decoder="greedy", decoder_options={}, front_end=FrontEnd())
  assert dec.frame_seconds == F3
  timed, plain = dec.decode_timed(audio, 8_000), dec(audio, 8_000)
  assert [[(y, s) for y, s, _ in row] for row in timed] == plain
  assert sum(len(row[0][0]) for row in timed) > 5
  for row, n in zip(timed, (8_000, 4_800)):
    (labels, _, frames), = row
    num_enc = (1 + (n - 400) // 160) // 3  # log-mel frames, stacked by 3
    assert len(frames) == len(labels) and frames == sorted(frames) and 0 <= min(frames) and max(frames) < num_enc
    tokens, words = batch_decoder.timings(tok, labels, frames, dec.frame_seconds)
    assert "".join(t for t, _ in tokens) == tok.decode(labels)
    assert all(s < n / 16_000 for _, s in tokens) and all(s < e for _, s, e in words)
  assert isinstance(dec._nbest(audio, 8_000), decoding.NBest)
