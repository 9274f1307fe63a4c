r"""The turn-token latency penalty of multi-talker transducers: emitting ``<sot>`` / ``<eot>`` late costs.

Following the late-emission penalty of RNN-T endpointers (Li et al. 2020, applied to
end-of-turn tokens by Sklyar et al. 2022), the log-probability of emitting a turn token
at frame ``t`` is lowered in the lattice by its lateness past the reference boundary:

  log p'(y_{u+1} | t, u) = log p(y_{u+1} | t, u) - weight * max(0, t - boundary_{u+1} - buffer)

for each label that is a turn token (``turn_mask``), where ``boundary`` is the frame
the turn starts (``<sot>``) or ends (``<eot>``). Li et al.'s early penalty is the optional
other side: ``early_weight * max(0, boundary - early_buffer - t)`` more for a turn token
emitted before its boundary (off by default; without it nothing holds a turn token back,
and an under-trained model can close every turn early at no cost). The penalised loss ``-log P'(y|x)`` is
the plain RNN-T loss plus the **latency term**

  term = -log E_{alignments ~ P(.|x, y)} [ exp(-weight * D(alignment)) ] >= 0,

with ``D`` an alignment's total frames of lateness (``weight * D`` its weighted
lateness plus earliness when the early side is on): 0 exactly when no alignment the
model gives weight to emits a turn token late, growing with the delay (for small
weights it is ``weight * E[D]``). The objective is the penalised loss; `latency_term`
returns the term, so a task logs it as a named part of the objective. Its gradient is
the lattice's (through `asrjax.losses.rnnt_loss_from_log_probs`), FastEmit included.

References:
  Li et al., "Towards fast and accurate streaming end-to-end ASR", ICASSP 2020 (early and
  late endpointer penalties); Sklyar et al., "Separator-transducer-segmenter: streaming
  recognition and segmentation of multi-party speech", Interspeech 2022 (end-of-turn
  emission latency penalty).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from asrjax.losses.rnnt import rnnt_loss_from_log_probs


def lateness(num_frames: int, boundaries: jax.Array, turn_mask: jax.Array, *, buffer: float = 0.0,
             early: bool = False) -> jax.Array:
  """``[B, T, U+1]`` frames by which emitting label ``u`` at frame ``t`` is late (``early``: early,
  ``max(0, boundary - buffer - t)``); 0 for non-turn labels and for the last column;
  ``boundaries``, ``turn_mask`` ``[B, U]``."""
  t = jnp.arange(num_frames, dtype=jnp.float32)[None, :, None]
  off = t - jnp.asarray(boundaries, jnp.float32)[:, None, :]
  late = jnp.maximum(0.0, (-off if early else off) - buffer)
  late = late * jnp.asarray(turn_mask, jnp.float32)[:, None, :]
  return jnp.pad(late, ((0, 0), (0, 0), (0, 1)))


def penalised_loss(blank_log_probs, label_log_probs, logit_paddings, labels, label_paddings, boundaries, turn_mask,
                   *, weight: float, buffer: float = 0.0, early_weight: float = 0.0, early_buffer: float = 0.0,
                   blank_id: int = 0, fastemit_lambda: float = 0.0):
  """``(penalised loss [B], latency term [B])``: ``-log P'(y|x)`` of the module docstring and
  its excess over the plain RNN-T loss (the plain loss is ``penalised - term``).

  Args:
    blank_log_probs, label_log_probs: ``[B, T, U+1]`` gathered log-probs (as
      `rnnt_loss_from_log_probs`).
    logit_paddings: ``[B, T]``; labels, label_paddings: ``[B, U]``.
    boundaries: ``[B, U]`` reference frame of each turn token (ignored elsewhere).
    turn_mask: ``[B, U]`` 1 where the label is a turn token.
    weight: penalty per frame of lateness (``>= 0``; 0 gives a zero term).
    buffer: frames of lateness allowed free.
    early_weight: penalty per frame of earliness past ``early_buffer`` (``>= 0``; 0, the
      default, charges only lateness, as Sklyar et al.).
    early_buffer: frames of earliness allowed free.

  Raises:
    ValueError: a negative or non-finite ``weight`` / ``buffer`` / ``early_weight`` /
      ``early_buffer``, or ``boundaries`` /
      ``turn_mask`` not ``[B, U]``.
  """
  for name, v in (("weight", weight), ("buffer", buffer), ("early_weight", early_weight),
                  ("early_buffer", early_buffer)):
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < float("inf")):
      raise ValueError(f"{name} must be a finite number >= 0; got {v!r}.")
  shape = jnp.shape(labels)
  for name, x in (("boundaries", boundaries), ("turn_mask", turn_mask)):
    if jnp.shape(x) != shape:
      raise ValueError(f"{name} must have the labels' shape [B, U] = {shape}; got {jnp.shape(x)}.")
  kw = dict(blank_id=blank_id, fastemit_lambda=fastemit_lambda)
  plain = rnnt_loss_from_log_probs(blank_log_probs, label_log_probs, logit_paddings, labels, label_paddings, **kw)
  if not (weight or early_weight):
    return plain, jnp.zeros_like(plain)
  frames = jnp.shape(blank_log_probs)[1]
  cost = 0.0
  if weight:
    cost = weight * lateness(frames, boundaries, turn_mask, buffer=buffer)
  if early_weight:
    cost = cost + early_weight * lateness(frames, boundaries, turn_mask, buffer=early_buffer, early=True)
  penalised = rnnt_loss_from_log_probs(blank_log_probs, label_log_probs - cost, logit_paddings, labels,
                                       label_paddings, **kw)
  return penalised, penalised - plain


def latency_term(*args, **kwargs) -> jax.Array:
  """``[B]`` the latency term alone (see `penalised_loss`)."""
  return penalised_loss(*args, **kwargs)[1]


__all__ = ["latency_term", "lateness", "penalised_loss"]
