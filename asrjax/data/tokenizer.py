r"""Text tokenizers for transducer training: characters and SentencePiece.

Both tokenizers share one id layout, fixed by the transducer loss and decoders:

* id 0 is the **blank** (``blank_id``). It is not a text token: ``encode`` never
  returns it and ``decode`` rejects it (decoders strip blanks before decoding).
* id 1 is the **unknown** token (``unk_id``); it decodes to ``"⁇"`` (U+2047).
* ids ``2 .. vocab_size - 1`` are text tokens. ``vocab_size`` counts all ids,
  blank and unk included, i.e. it is the size of the model's output layer.

Neither tokenizer normalises text (no lower-casing, no whitespace clean-up):
``decode(encode(s)) == s`` for every string whose characters are all known.
Normalise transcripts (e.g. lowercase, letters and apostrophes) before encoding.

Unknown characters: with ``strict=True`` (the default) ``encode`` raises
`ValueError` naming the first unknown character and its position; with
``strict=False`` it is encoded as ``unk_id``. ``encode("") == []`` and
``decode([]) == ""``. ``encode`` takes ``str`` only (`TypeError` otherwise: decode
``bytes`` first). ``decode`` raises `ValueError` for the blank, for ids outside
``[0, vocab_size)`` and for anything that is not an integer (bools and floats
included).

`CharTokenizer`: one token per character, the space (word boundary) at id 2 and
the other characters seen in the training text in code-point order from id 3.
Saved as a small JSON file.

`SentencePieceTokenizer`: a unigram-LM or BPE SentencePiece model whose special
ids are configured so that the layout above is SentencePiece's own (``pad_id=0``
with piece ``<blank>``, a control symbol SentencePiece never emits; ``unk_id=1``;
no BOS/EOS), so the ids need no shifting and the saved file is a plain
SentencePiece model usable by any SentencePiece tool. Training is single-threaded
on the full, unshuffled input, so the same sentences always give a byte-identical
model file. ``load`` checks that the file is complete: SentencePiece itself
silently accepts a model protobuf cut at a field boundary (fewer pieces, no
normaliser), so a truncated or corrupt file raises `ValueError` naming the file.

References:
  T. Kudo and J. Richardson, "SentencePiece: A simple and language independent
  subword tokenizer and detokenizer for Neural Text Processing", EMNLP 2018 demo.
  T. Kudo, "Subword regularization: Improving neural network translation models
  with multiple subword candidates", ACL 2018 (unigram language model).
  R. Sennrich et al., "Neural machine translation of rare words with subword units",
  ACL 2016 (BPE).
"""

from __future__ import annotations

import io
import json
import operator
import os
import re
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import sentencepiece as spm
from google.protobuf import message as protobuf_message
from sentencepiece import sentencepiece_model_pb2

from asrjax import atomic_file

BLANK_ID = 0
UNK_ID = 1
UNK_SURFACE = "\u2047"  # "⁇", SentencePiece's unknown surface without its padding spaces.
_BLANK_PIECE = "<blank>"
_CHAR_FORMAT = "asrjax.char_tokenizer"
_CHAR_VERSION = 1

PathLike = str | os.PathLike


@runtime_checkable
class Tokenizer(Protocol):
  """What the data pipeline and decoders need from a tokenizer."""

  @property
  def vocab_size(self) -> int:
    """Number of ids, blank and unk included (output-layer size)."""

  @property
  def blank_id(self) -> int:
    """The transducer blank, always 0; never produced by `encode`."""

  @property
  def unk_id(self) -> int:
    """The unknown token, always 1."""

  def encode(self, text: str) -> list[int]:
    """Text to ids in ``[1, vocab_size)``."""

  def decode(self, ids: Iterable[int]) -> str:
    """Ids in ``[1, vocab_size)`` to text; `ValueError` for anything else."""

  def save(self, path: PathLike) -> None:
    """Writes the tokenizer to ``path`` (read back by the class's ``load``)."""


def _check_ids(ids: Iterable[int], vocab_size: int) -> list[int]:
  """Returns ``ids`` as Python ints, raising `ValueError` for blank or out-of-range ids."""
  out = []
  for i, raw in enumerate(ids):
    try:
      if isinstance(raw, (bool, np.bool_)):
        raise TypeError
      value = operator.index(raw)
    except TypeError:
      raise ValueError(f"decode: ids[{i}] = {raw!r} is not an integer.") from None
    if value == BLANK_ID:
      raise ValueError(f"decode: ids[{i}] is the blank id {BLANK_ID}, which is not a text token.")
    if not 0 <= value < vocab_size:
      raise ValueError(f"decode: ids[{i}] = {value} is outside the vocabulary [0, {vocab_size}).")
    out.append(value)
  return out


def _check_text(text) -> str:
  if not isinstance(text, str):
    hint = " (decode bytes first, e.g. text.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
    raise TypeError(f"encode: text must be a str, got {type(text).__name__}{hint}.")
  return text


def _unknown_char_error(text: str, position: int) -> ValueError:
  return ValueError(f"encode: unknown character {text[position]!r} at position {position} of {text!r}.")


def _write_atomic(path: PathLike, data: bytes) -> None:
  with atomic_file.open(path, "wb") as f:
    f.write(data)


# ----------------------------------------------------------------------------
# Characters
# ----------------------------------------------------------------------------


class _ReservedIds:
  """Ids 0 (blank) and 1 (unk), shared by every tokenizer here."""

  @property
  def blank_id(self) -> int:
    return BLANK_ID

  @property
  def unk_id(self) -> int:
    return UNK_ID


class CharTokenizer(_ReservedIds):
  """Character tokenizer: blank 0, unk 1, space 2, then one id per character.

  Attributes:
    symbols: The text symbols of ids ``2 ..``, ``symbols[0] == " "``.
    strict: Whether `encode` raises on unknown characters (else maps them to unk).
  """

  def __init__(self, symbols: Sequence[str], *, strict: bool = True):
    symbols = list(symbols)
    if not symbols or symbols[0] != " ":
      raise ValueError("CharTokenizer symbols must start with the space (word boundary) symbol ' '.")
    for s in symbols:
      if not isinstance(s, str) or len(s) != 1:
        raise ValueError(f"CharTokenizer symbols must be single characters, got {s!r}.")
    if len(set(symbols)) != len(symbols):
      raise ValueError("CharTokenizer symbols must be unique.")
    self.symbols = tuple(symbols)
    self.strict = strict
    self._ids = {s: UNK_ID + 1 + i for i, s in enumerate(self.symbols)}

  @classmethod
  def build(cls, sentences: Iterable[str], *, strict: bool = True) -> CharTokenizer:
    """Vocabulary of every character in ``sentences`` (plus the space), in code-point order."""
    chars = set()
    for sentence in sentences:
      chars.update(sentence)
    chars.discard(" ")
    return cls([" ", *sorted(chars)], strict=strict)

  @property
  def vocab_size(self) -> int:
    return len(self.symbols) + 2

  def encode(self, text: str) -> list[int]:
    """One id per character; see the module docstring for unknown characters."""
    _check_text(text)
    ids = []
    for position, char in enumerate(text):
      i = self._ids.get(char)
      if i is None:
        if self.strict:
          raise _unknown_char_error(text, position)
        i = UNK_ID
      ids.append(i)
    return ids

  def decode(self, ids: Iterable[int]) -> str:
    """Concatenated symbols; unk decodes to ``"⁇"``."""
    return "".join(UNK_SURFACE if i == UNK_ID else self.symbols[i - 2] for i in _check_ids(ids, self.vocab_size))

  def save(self, path: PathLike) -> None:
    """Writes a JSON file ``{"format", "version", "symbols"}`` (``strict`` is not saved)."""
    doc = {"format": _CHAR_FORMAT, "version": _CHAR_VERSION, "symbols": list(self.symbols)}
    _write_atomic(path, (json.dumps(doc, ensure_ascii=True, indent=1) + "\n").encode("ascii"))

  @classmethod
  def load(cls, path: PathLike, *, strict: bool = True) -> CharTokenizer:
    """Reads a file written by `save`.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: naming ``path``, if it is not a valid character tokenizer file.
    """
    with open(path, "rb") as f:
      data = f.read()
    try:
      doc = json.loads(data.decode("utf-8"))
      if not isinstance(doc, dict) or doc.get("format") != _CHAR_FORMAT:
        raise ValueError(f"'format' is not {_CHAR_FORMAT!r}")
      if doc.get("version") != _CHAR_VERSION:
        raise ValueError(f"unsupported version {doc.get('version')!r}")
      return cls(doc["symbols"], strict=strict)
    except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors.
      raise ValueError(f"{os.fspath(path)!r} is not a valid asrjax character tokenizer file: {e}") from e


# ----------------------------------------------------------------------------
# SentencePiece
# ----------------------------------------------------------------------------


def _check_model_proto(data: bytes, source: str) -> None:
  """Raises `ValueError` naming ``source`` unless ``data`` is a complete asrjax SentencePiece model.

  A SentencePiece model is a protobuf; cut at a field boundary it still parses
  (with fewer pieces or without its trainer/normaliser specs) and SentencePiece
  loads it silently, so completeness is checked here explicitly.
  """

  def fail(reason: str) -> ValueError:
    return ValueError(f"{source} is not a valid asrjax SentencePiece model file ({reason}).")

  model = sentencepiece_model_pb2.ModelProto()
  try:
    model.ParseFromString(data)
  except protobuf_message.DecodeError as e:
    raise fail(f"corrupt or truncated protobuf: {e}") from e
  if not (model.HasField("trainer_spec") and model.HasField("normalizer_spec")):
    raise fail("truncated: trainer or normalizer spec missing")
  if len(model.pieces) != model.trainer_spec.vocab_size:
    raise fail(f"truncated: {len(model.pieces)} pieces, trainer spec says {model.trainer_spec.vocab_size}")
  types = sentencepiece_model_pb2.ModelProto.SentencePiece
  pieces = model.pieces
  if len(pieces) < 3 or pieces[BLANK_ID].type != types.CONTROL or pieces[UNK_ID].type != types.UNKNOWN:
    raise fail("id 0 must be a control piece (the blank) and id 1 the unknown piece")
  if any(p.type == types.CONTROL for p in pieces[UNK_ID + 1 :]):
    raise fail("control pieces other than the blank (BOS/EOS) are not supported")


def _training_error(e: RuntimeError, vocab_size: int) -> ValueError:
  """SentencePiece's training failure as a `ValueError` that says what to change."""
  text = str(e)
  small = re.search(r"smaller than required_chars\. \d+ vs (\d+)", text)
  if small:
    return ValueError(
        f"vocab_size={vocab_size} is too small: the training text needs {small.group(1)} ids (every character it "
        f"contains, plus blank and unk); use vocab_size >= {small.group(1)} or character_coverage < 1.")
  large = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", text)
  if large:
    return ValueError(f"vocab_size={vocab_size} is too large for the training text: at most {large.group(2)} "
                      f"pieces can be learnt from it; use vocab_size <= {large.group(2)} or more text.")
  return ValueError(f"SentencePiece training failed: {text}")


class SentencePieceTokenizer(_ReservedIds):
  """SentencePiece (unigram or BPE) tokenizer with the shared id layout.

  Attributes:
    strict: Whether `encode` raises on unknown characters (else maps them to unk).
  """

  def __init__(self, model_proto: bytes, *, strict: bool = True, source: str = "SentencePiece model bytes"):
    """Wraps a serialised model (as written by `train`/`save`); ``source`` names it in errors."""
    _check_model_proto(model_proto, source)
    self._model_proto = bytes(model_proto)
    try:
      self._sp = spm.SentencePieceProcessor(model_proto=self._model_proto)
    except RuntimeError as e:
      raise ValueError(f"{source} is not a valid asrjax SentencePiece model file ({e}).") from e
    self.strict = strict

  @classmethod
  def train(
      cls,
      sentences: Iterable[str],
      path: PathLike,
      *,
      vocab_size: int,
      model_type: str = "unigram",
      character_coverage: float = 1.0,
      max_piece_length: int = 16,
      seed: int = 0,
      strict: bool = True,
  ) -> SentencePieceTokenizer:
    """Trains a model on ``sentences`` and writes it to ``path``.

    Deterministic: the same sentences and options give a byte-identical file (one
    thread, all sentences in order, fixed seed; the model records no file names).

    Args:
      sentences: Training text, one sentence per item (already normalised).
      path: Model file to write (overwritten).
      vocab_size: Total ids including blank (0) and unk (1). SentencePiece raises
        if the text cannot support that many pieces (reported as `ValueError`).
      model_type: ``"unigram"`` or ``"bpe"``.
      character_coverage: Fraction of characters covered by the vocabulary (1.0:
        every character of the training text is a piece).
      max_piece_length: Longest piece, in characters.
      seed: SentencePiece's random seed.
      strict: See the class docstring.

    Returns:
      The trained tokenizer.
    """
    if model_type not in ("unigram", "bpe"):
      raise ValueError(f"model_type must be 'unigram' or 'bpe', got {model_type!r}.")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 3:
      raise ValueError(f"vocab_size must be an integer >= 3 (blank, unk and one piece), got {vocab_size!r}.")
    if isinstance(sentences, (str, bytes)):
      raise ValueError("sentences must be an iterable of sentences (str), not a single string.")
    sentences = list(sentences)
    if not sentences:
      raise ValueError("SentencePiece training needs at least one sentence; sentences is empty.")
    spm.set_random_generator_seed(seed)
    buffer = io.BytesIO()
    try:
      spm.SentencePieceTrainer.train(
          sentence_iterator=iter(sentences),
          model_writer=buffer,
          model_type=model_type,
          vocab_size=vocab_size,
          character_coverage=character_coverage,
          max_sentencepiece_length=max_piece_length,
          pad_id=BLANK_ID,
          pad_piece=_BLANK_PIECE,
          unk_id=UNK_ID,
          unk_surface=UNK_SURFACE,
          bos_id=-1,
          eos_id=-1,
          normalization_rule_name="identity",
          remove_extra_whitespaces=False,
          num_threads=1,
          input_sentence_size=0,
          shuffle_input_sentence=False,
          minloglevel=2,
      )
    except RuntimeError as e:
      raise _training_error(e, vocab_size) from None
    data = buffer.getvalue()
    _write_atomic(path, data)
    return cls(data, strict=strict, source=repr(os.fspath(path)))

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()

  @property
  def model_proto(self) -> bytes:
    """The serialised SentencePiece model (the file contents)."""
    return self._model_proto

  def id_to_piece(self, i: int) -> str:
    """The piece string of id ``i`` (``"▁"`` marks a word start)."""
    return self._sp.id_to_piece(_check_ids([i], self.vocab_size)[0])

  def encode(self, text: str) -> list[int]:
    """Most likely (unigram) or greedy-merge (BPE) segmentation, as ids."""
    ids = self._sp.encode(_check_text(text))
    if self.strict and UNK_ID in ids:
      for piece in self._sp.encode(text, out_type="proto").pieces:
        if piece.id == UNK_ID:
          raise _unknown_char_error(text, len(text.encode("utf-8")[: piece.begin].decode("utf-8")))
    return ids

  def decode(self, ids: Iterable[int]) -> str:
    """Concatenated pieces, ``"▁"`` as spaces; unk decodes to ``"⁇"``."""
    return self._sp.decode(_check_ids(ids, self.vocab_size))

  def save(self, path: PathLike) -> None:
    """Writes the SentencePiece model file."""
    _write_atomic(path, self._model_proto)

  @classmethod
  def load(cls, path: PathLike, *, strict: bool = True) -> SentencePieceTokenizer:
    """Reads a model file written by `train` or `save`.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: naming ``path``, if the file is corrupt, truncated or not an
        asrjax SentencePiece model (id 0 must be the blank control piece).
    """
    with open(path, "rb") as f:
      data = f.read()
    return cls(data, strict=strict, source=repr(os.fspath(path)))


# ----------------------------------------------------------------------------
# Turn tokens (multi-talker recognition)
# ----------------------------------------------------------------------------

SOT = "<sot>"
EOT = "<eot>"


class TurnTokenizer:
  """A text tokenizer plus the start- and end-of-turn tokens of multi-talker transducers.

  The base tokenizer's ids are kept; ``<sot>`` gets id ``base.vocab_size`` and ``<eot>``
  ``base.vocab_size + 1``. ``encode`` is the base's and refuses text that spells a turn
  token (turns are not text: `encode_turns` places them); `encode_turns` gives ``<sot>
  words <eot>`` per turn (``<sot> words`` with ``end_tokens=False``, the start-only
  ablation); `split_turns` cuts an id sequence into turns by position and `decode_turns`
  gives back ``[(text, closed)]``, so ``decode_turns(encode_turns(t)) == [(x, True) ...]``.
  ``decode`` renders turn tokens as ``<sot>`` / ``<eot>`` around the base's text. Saved
  as the base tokenizer (the task's config says it wraps one).

  References:
    Sklyar et al., "Separator-transducer-segmenter: streaming recognition and segmentation
    of multi-party speech", Interspeech 2022 (start- and end-of-turn tokens).
  """

  def __init__(self, base: Tokenizer):
    if isinstance(base, TurnTokenizer):
      raise TypeError("the base tokenizer already has turn tokens.")
    self.base = base
    self.sot_id = base.vocab_size
    self.eot_id = base.vocab_size + 1

  @property
  def vocab_size(self) -> int:
    return self.base.vocab_size + 2

  @property
  def blank_id(self) -> int:
    return self.base.blank_id

  @property
  def unk_id(self) -> int:
    return self.base.unk_id

  def encode(self, text: str) -> list[int]:
    """The base's ids of ``text``; `ValueError` if it spells ``<sot>`` or ``<eot>``."""
    for token in (SOT, EOT):
      if token in _check_text(text):
        raise ValueError(f"encode: {token!r} at position {text.index(token)} of {text!r} is a turn token, not "
                         "text; give turns to encode_turns.")
    return self.base.encode(text)

  def encode_turns(self, turns: Sequence[str], *, end_tokens: bool = True) -> list[int]:
    """``<sot> ids(turn) <eot>`` for each turn, in order (no ``<eot>`` with ``end_tokens=False``)."""
    if isinstance(turns, str):
      raise TypeError("encode_turns takes a sequence of turn texts, not one string.")
    out = []
    for text in turns:
      out += [self.sot_id, *self.encode(text)] + ([self.eot_id] if end_tokens else [])
    return out

  def split_turns(self, ids: Iterable[int]) -> list[tuple[list[int], int, int | None]]:
    """``[(text ids, index of <sot>, index of <eot> or None)]``: the turns of an id sequence
    (indices into ``ids``, so a caller maps them to emission times). Text before the first
    ``<sot>`` (or after an ``<eot>`` with no new ``<sot>``) is a turn of its own whose
    start index is its first token's; an ``<eot>`` that closes no turn is dropped."""
    ids = _check_ids(ids, self.vocab_size)
    turns, current = [], None
    for i, t in enumerate(ids):
      if t == self.sot_id:
        if current is not None:
          turns.append((current[0], current[1], None))
        current = ([], i)
      elif t == self.eot_id:
        if current is not None:
          turns.append((current[0], current[1], i))
          current = None
      else:
        if current is None:
          current = ([], i)
        current[0].append(t)
    if current is not None:
      turns.append((current[0], current[1], None))
    return turns

  def decode_turns(self, ids: Iterable[int]) -> list[tuple[str, bool]]:
    """``[(text, closed)]`` of `split_turns`."""
    return [(self.base.decode(text), end is not None) for text, _, end in self.split_turns(ids)]

  def decode(self, ids: Iterable[int]) -> str:
    """Text with turn tokens rendered as ``<sot>`` / ``<eot>``."""
    ids = _check_ids(ids, self.vocab_size)
    out, run = [], []
    for t in [*ids, None]:
      if t is None or t in (self.sot_id, self.eot_id):
        if run:
          out.append(self.base.decode(run))
          run = []
        if t is not None:
          out.append(SOT if t == self.sot_id else EOT)
      else:
        run.append(t)
    return "".join(out)

  def save(self, path: PathLike) -> None:
    """Writes the base tokenizer (`TurnTokenizer` wraps what its class's ``load`` reads)."""
    self.base.save(path)
