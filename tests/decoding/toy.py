"""A tiny history-dependent transducer, in JAX (for the decoders) and NumPy (for oracles)."""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np

from asrjax.decoding import TransducerFns
from tests import oracles

P = 5  # prediction-network width
H = 6  # joint hidden width


def make_params(seed: int, d: int, v: int, scale: float = 1.0, blank_bias: float = 0.0, blank_id: int = 0) -> dict:
  """Random weights; ``blank_bias`` is added to the blank logit (shorter outputs)."""
  rng = np.random.default_rng(seed)
  return {
      "bias": (blank_bias * (np.arange(v) == blank_id)).astype(np.float32),
      "emb": rng.normal(size=(v, P)).astype(np.float32),
      "rec": (0.8 * rng.normal(size=(P, P))).astype(np.float32),
      "enc": rng.normal(size=(d, H)).astype(np.float32),
      "pred": rng.normal(size=(P, H)).astype(np.float32),
      "out": (scale * rng.normal(size=(H, v))).astype(np.float32),
  }


def _init(batch):
  return jnp.zeros((batch, P), jnp.float32)


def _step(params, labels, state):
  h = jnp.tanh(state @ params["rec"] + params["emb"][labels])
  return h, h


def _joint(params, enc, pred):
  return jnp.tanh(enc @ params["enc"] + pred @ params["pred"]) @ params["out"] + params["bias"]


def fns(blank_id: int = 0) -> TransducerFns:
  return TransducerFns(_init, _step, _joint, blank_id)


FNS = fns(0)


class NumpyModel:
  """The same model in float64 NumPy: ``log_probs(t, prefix) -> [V]``."""

  def __init__(self, params: dict, enc: np.ndarray, blank_id: int = 0):
    self.p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    self.enc = np.asarray(enc, np.float64)
    self.blank = blank_id

  def pred(self, prefix) -> np.ndarray:
    h = np.zeros(P)
    for y in (self.blank,) + tuple(prefix):
      h = np.tanh(h @ self.p["rec"] + self.p["emb"][y])
    return h

  def log_probs(self, t: int, prefix) -> np.ndarray:
    z = np.tanh(self.enc[t] @ self.p["enc"] + self.pred(prefix) @ self.p["pred"]) @ self.p["out"] + self.p["bias"]
    return oracles.log_softmax(z)

  def sequence_log_prob(self, y) -> float:
    """``log P(y|x)`` over all RNN-T alignments (any number of labels per frame)."""
    y = tuple(y)
    terms = []
    for path in oracles.alignments(len(self.enc), len(y)):
      terms.append(sum(self.log_probs(t, y[:u])[self.blank if b else y[u]] for t, u, b in path))
    return float(np.logaddexp.reduce(terms))

  def limited_log_prob(self, y, max_symbols: int) -> float:
    """``log P(y|x)`` over the alignments that emit at most ``max_symbols`` labels in each frame (-inf if none)."""
    y, terms = tuple(y), []
    for counts in itertools.product(range(max_symbols + 1), repeat=len(self.enc)):
      if sum(counts) != len(y):
        continue
      s, u = 0.0, 0
      for t, c in enumerate(counts):
        for _ in range(c):
          s += self.log_probs(t, y[:u])[y[u]]
          u += 1
        s += self.log_probs(t, y[:u])[self.blank]
      terms.append(s)
    return float(np.logaddexp.reduce(terms)) if terms else -np.inf

  def limited_log_probs(self, max_symbols: int) -> dict:
    """``{y: limited_log_prob(y)}`` for every y with at most ``max_symbols`` labels per frame."""
    vocab = len(self.p["out"][0])
    return {y: self.limited_log_prob(y, max_symbols)
            for y in all_sequences(vocab, len(self.enc) * max_symbols, self.blank)}

  def one_per_frame_log_probs(self) -> dict:
    """``{y: log sum over one-label-per-frame alignments}`` for every reachable y."""
    out = {}
    vocab = len(self.p["out"][0])
    for choice in itertools.product(range(vocab), repeat=len(self.enc)):
      y, s = (), 0.0
      for t, k in enumerate(choice):
        s += self.log_probs(t, y)[k]
        if k != self.blank:
          y = y + (k,)
      out[y] = np.logaddexp(out.get(y, -np.inf), s)
    return out


def numpy_greedy(model: NumpyModel, num_frames: int, max_symbols: int) -> tuple[list[int], float]:
  """Plain per-utterance greedy search (Graves 2012, sec. 2.3), written independently of the decoders."""
  y, score = (), 0.0
  for t in range(num_frames):
    emitted = 0
    while True:
      lp = model.log_probs(t, y)
      k = int(np.argmax(lp))
      if k == model.blank or emitted == max_symbols:
        score += lp[model.blank]
        break
      y, score, emitted = y + (k,), score + lp[k], emitted + 1
  return list(y), score


def paddings(lengths, size) -> np.ndarray:
  """``[B, size]`` trailing float32 paddings for valid ``lengths``."""
  return (np.arange(size)[None, :] >= np.asarray(lengths)[:, None]).astype(np.float32)


def all_sequences(vocab: int, max_len: int, blank_id: int = 0):
  labels = [k for k in range(vocab) if k != blank_id]
  for n in range(max_len + 1):
    yield from itertools.product(labels, repeat=n)


MAES_SYMBOLS = 2  # max_symbols_per_frame of the exact ("maes") contract case


def reference_nbest(decoder: str, params: dict, enc: np.ndarray, lengths, vocab: int, blank_id: int = 0,
                    max_symbols: int = 4) -> list:
  """What decoder ``decoder`` ("greedy", "beam", "modified_beam", "maes") must return on rows
  ``enc[b, :lengths[b]]``, from the NumPy model alone: ``[row] -> [(labels, score)]`` best first
  (greedy: the plain search; modified beam: every one-label-per-frame sequence; maes: every sequence
  with at most `MAES_SYMBOLS` labels per frame), or for "beam" ``[row] -> {labels: log P(y|x)}``
  over all sequences of up to 5 labels (brute force over alignments)."""
  out = []
  for b, n in enumerate(lengths):
    model = NumpyModel(params, enc[b, :n], blank_id)
    if decoder == "maes":
      out.append(sorted(model.limited_log_probs(MAES_SYMBOLS).items(), key=lambda kv: -kv[1]))
    elif decoder == "greedy":
      y, s = numpy_greedy(model, n, max_symbols)
      out.append([(tuple(y), s)])
    elif decoder == "modified_beam":
      out.append(sorted(model.one_per_frame_log_probs().items(), key=lambda kv: -kv[1]))
    else:
      out.append({y: model.sequence_log_prob(y) for y in all_sequences(vocab, 5, blank_id)})
  return out


def matches_reference(decoder: str, got: list, ref: list, rtol: float = 1e-5) -> bool:
  """`NBest.to_lists` output against `reference_nbest`: the same hypotheses and scores (greedy,
  modified beam; maes: the same set, scores in descending order), or (beam) the brute-force argmax
  first and every score the brute-force ``log P(y|x)``."""
  if len(got) != len(ref):
    return False
  for row, r in zip(got, ref):
    if decoder == "maes":
      want = dict(r)
      scores = [s for _, s in row]
      if ({tuple(y) for y, _ in row} != set(want) or scores != sorted(scores, reverse=True)
          or not all(np.isclose(s, want[tuple(y)], rtol=rtol, atol=1e-5) for y, s in row)):
        return False
    elif decoder == "beam":
      if not row or tuple(row[0][0]) != max(r, key=r.get):
        return False
      if not all(tuple(y) in r and np.isclose(s, r[tuple(y)], rtol=rtol) for y, s in row):
        return False
    elif [tuple(y) for y, _ in row] != [tuple(y) for y, _ in r] or not np.allclose(
        [s for _, s in row], [s for _, s in r], rtol=rtol):
      return False
  return True


# The shared case of the input-contract tests and the decoder sweep: a batch of two rows
# (3 and 2 valid frames), a model per decoder whose search is exact at these options.
CONTRACT_V, CONTRACT_D, CONTRACT_T = 3, 3, 3
CONTRACT_LENGTHS = [3, 2]
CONTRACT_ENC = np.random.default_rng(12).normal(size=(2, CONTRACT_T, CONTRACT_D)).astype(np.float32)
CONTRACT_PADS = paddings(CONTRACT_LENGTHS, CONTRACT_T)
CONTRACT_PARAMS = {
    "greedy": make_params(5, CONTRACT_D, CONTRACT_V, scale=2.0),
    "beam": make_params(7, CONTRACT_D, CONTRACT_V, scale=1.5, blank_bias=5.0),
    "modified_beam": make_params(11, CONTRACT_D, CONTRACT_V),
    "maes": make_params(13, CONTRACT_D, CONTRACT_V, scale=1.5, blank_bias=1.0),
}
CONTRACT_OPTIONS = {"greedy": {}, "beam": dict(beam=64, expand=CONTRACT_V, nbest=10, max_symbols_per_frame=8),
                    "modified_beam": dict(beam=16),
                    # 127 sequences of at most 2 labels in each of 3 frames: a beam of 128 prunes nothing
                    "maes": dict(beam=128, max_symbols_per_frame=MAES_SYMBOLS)}
