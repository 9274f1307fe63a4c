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


def all_sequences(vocab: int, max_len: int, blank_id: int = 0):
  labels = [k for k in range(vocab) if k != blank_id]
  for n in range(max_len + 1):
    yield from itertools.product(labels, repeat=n)
