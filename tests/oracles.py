"""Independent references: brute-force enumeration over transducer alignments, in float64 NumPy.

Nothing here calls asrjax; tests compare asrjax against these.
"""

from __future__ import annotations

import itertools

import numpy as np


def log_softmax(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x, np.float64)
  m = x.max(-1, keepdims=True)
  return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def alignments(num_frames: int, num_labels: int):
  """Every RNN-T alignment as the list of (t, u, is_blank) edges it takes.

  An alignment emits the U labels at non-decreasing frames and leaves every frame
  with a blank; there are C(T - 1 + U, U) of them, one per choice of emission frames.
  """
  for frames in itertools.combinations_with_replacement(range(num_frames), num_labels):
    edges, u = [], 0
    for t in range(num_frames):
      while u < num_labels and frames[u] == t:
        edges.append((t, u, False))
        u += 1
      edges.append((t, u, True))
    yield edges


def rnnt_nll_and_grads(logits: np.ndarray, labels, blank: int = 0, fastemit_lambda: float = 0.0, keep=None):
  """Loss and gradients of one utterance by enumerating every alignment.

  Args:
    logits: ``[T, U+1, V]`` (exact lengths, no padding). Use float64 (or cast the
      fp32 input as given): `log_softmax` here subtracts the max in float64, so the
      result is the exact loss of those values, whatever their common offset.
    labels: ``U`` label ids.
    keep: optional ``alignment edges -> bool``; only the alignments it accepts are
      summed (the windowed lattice of the pruned loss).

  Returns:
    ``(nll, d nll / d logits [T, U+1, V], d nll / d log_probs blank [T, U+1],
    d nll / d log_probs next-label [T, U+1])``; FastEmit scales the emission-edge
    terms by ``1 + fastemit_lambda`` (Yu et al. 2021, eq. 10). With ``keep`` the
    occupancies are those of the kept alignments, normalised among them.
  """
  lp = log_softmax(logits)
  t_max, u1, _ = lp.shape
  paths = [p for p in alignments(t_max, u1 - 1) if keep is None or keep(p)]
  path_lp = np.array([
      sum(lp[t, u, blank] if is_blank else lp[t, u, labels[u]] for t, u, is_blank in p) for p in paths
  ])
  total = np.logaddexp.reduce(path_lp)
  weight = np.exp(path_lp - total)
  g_blank = np.zeros((t_max, u1))
  g_emit = np.zeros((t_max, u1))
  for w, p in zip(weight, paths):
    for t, u, is_blank in p:
      if is_blank:
        g_blank[t, u] += w
      else:
        g_emit[t, u] += w
  g_emit *= 1.0 + fastemit_lambda
  d_logits = np.exp(lp) * (g_blank + g_emit)[..., None]
  for t in range(t_max):
    for u in range(u1):
      d_logits[t, u, blank] -= g_blank[t, u]
      if u < u1 - 1:
        d_logits[t, u, labels[u]] -= g_emit[t, u]
  return -total, d_logits, -g_blank, -g_emit


def rnnt_nll_of_edge_scores(blank_lp: np.ndarray, emit_lp: np.ndarray) -> float:
  """``-log sum_alignments exp(sum of edge scores)`` for given per-node scores.

  Args:
    blank_lp: ``[T, U+1]`` score of leaving frame t at label position u.
    emit_lp: ``[T, U+1]`` score of emitting label u+1 at (t, u) (column U unused).
  """
  t_max, u1 = blank_lp.shape
  path_lp = [sum(blank_lp[t, u] if is_blank else emit_lp[t, u] for t, u, is_blank in p)
             for p in alignments(t_max, u1 - 1)]
  return -float(np.logaddexp.reduce(path_lp))


def rnnt_nll_windowed(logits: np.ndarray, labels, starts, window: int, blank: int = 0) -> float:
  """``-log`` of the mass of the alignments whose every visited node (t, u) has ``starts[t] <= u < starts[t] + window``.

  Args:
    logits: ``[T, U+1, V]`` full joint logits (exact lengths).
    labels: ``U`` label ids.
    starts: ``T`` window starts.
    window: window size S.

  Returns:
    The windowed negative log-likelihood (``inf`` when no alignment fits).
  """
  lp = log_softmax(logits)
  t_max, u1, _ = lp.shape
  kept = [
      sum(lp[t, u, blank] if is_blank else lp[t, u, labels[u]] for t, u, is_blank in p)
      for p in alignments(t_max, u1 - 1)
      if all(starts[t] <= u < starts[t] + window for t, u, _ in p)
  ]
  return -np.logaddexp.reduce(kept) if kept else np.inf
