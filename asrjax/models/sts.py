"""Separator-transducer-segmenter: a streaming mixture encoder, a separator into C channels, one tied transducer.

  mixture feats [B, T, F] --mixture encoder--> [B, T', Dm]
      --separator c (its own LSTM, c = 0..C-1)--> [B, T', H] per channel
      --recognition encoder (tied across channels)--> [B*C, T', D]   (row b*C + c)
      --prediction + joint network (tied)--> logits of each channel

Every channel is decoded by the same transducer (one recognition encoder, one
prediction and one joint network whose parameters all channels share, as the paper's
colour-coded blocks), so a channel is a row of an ordinary transducer batch:
`MultiChannelTransducer` is an `asrjax.models.transducer.Transducer` whose ``encode``
returns ``B*C`` rows and whose labels are ``[B, C, U]``; the loss, decoders and streaming
code take it unchanged. Its vocabulary holds ``<sot>`` / ``<eot>`` (`asrjax.data.tokenizer.TurnTokenizer`),
so each channel segments as it recognises.

Streaming: the state holds the mixture encoder's state (``[B, ...]``), each separator's
LSTM state and the recognition encoder's state (kept as ``[B, C, ...]`` so every state
leaf leads with the mixture batch); chunked and whole-utterance outputs agree as the
layers' own (`asrjax.nn.lstm`, `asrjax.nn.causal_conv`). The recognition encoder sees
encoder frames, so it must not stack frames (``stack = 1``) nor look ahead.

References:
  Sklyar, Piunova, Osendorfer, "Separator-transducer-segmenter: streaming recognition and
  segmentation of multi-party speech", Interspeech 2022; Sklyar et al., "Streaming
  multi-speaker ASR with RNN-T", ICASSP 2021 (mixture / separation / recognition encoders).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from asrjax.models import transducer
from asrjax.nn import lstm


def _fold(tree, batch: int, channels: int):
  """``[B*C, ...]`` leaves -> ``[B, C, ...]``."""
  return jax.tree.map(lambda x: x.reshape((batch, channels) + x.shape[1:]), tree)


def _unfold(tree):
  """``[B, C, ...]`` leaves -> ``[B*C, ...]``."""
  return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)


class MultiChannelTransducer(transducer.Transducer):
  """`asrjax.models.transducer.Transducer` over ``channels`` separated streams of one mixture.

  Attributes (besides the transducer's; ``encoder`` is the mixture encoder):
    recognition_encoder: a streaming encoder with ``stack = 1`` and no look-ahead, tied
      across channels.
    channels: output channels (speakers active at once), >= 1.
    separator_hidden: each separator's LSTM width.
  """

  recognition_encoder: nn.Module | None = None
  channels: int = 2
  separator_hidden: int = 256

  def setup(self):
    super().setup()
    if self.recognition_encoder is None:
      raise ValueError("MultiChannelTransducer needs a recognition_encoder (tied across channels).")
    if isinstance(self.channels, bool) or not isinstance(self.channels, int) or self.channels < 1:
      raise ValueError(f"channels must be an integer >= 1; got {self.channels!r}.")
    if getattr(self.recognition_encoder, "stack", 1) != 1 or self.recognition_encoder.lookahead_frames:
      raise ValueError("the recognition encoder runs on encoder frames: it needs stack = 1 and no look-ahead; got "
                       f"stack {getattr(self.recognition_encoder, 'stack', None)}, look-ahead "
                       f"{self.recognition_encoder.lookahead_frames}.")
    self.separators = [lstm.StackedLSTM(self.separator_hidden, 1, name=f"separator_{c}") for c in range(self.channels)]

  def init_encode_state(self, batch: int) -> dict:
    state = super().init_encode_state(batch)
    state["separator"] = [lstm.zero_state(batch, self.separator_hidden, 1) for _ in range(self.channels)]
    state["recognition"] = _fold(self.recognition_encoder.init_state(batch * self.channels), batch, self.channels)
    return state

  def encode(self, feats, paddings, state=None, **encoder_options):
    """``[B, T, F] -> (enc [B*C, T', D], enc_paddings [B*C, T'], state)``; row ``b*C + c`` is
    channel ``c`` of mixture ``b``."""
    transducer.check_features(feats, paddings)
    b, c = feats.shape[0], self.channels
    if state is None:
      state = self.init_encode_state(b)
    mix_state = {k: v for k, v in state.items() if k not in ("separator", "recognition")}
    mixed, pad, new_state = super().encode(feats, paddings, mix_state, **encoder_options)
    streams, new_state["separator"] = [], []
    for sep, s in zip(self.separators, state["separator"]):
      h, s = sep(mixed, pad, s)
      streams.append(h)
      new_state["separator"].append(s)
    x = jnp.stack(streams, axis=1).reshape((b * c,) + streams[0].shape[1:])  # [B*C, T', H]
    rows_pad = jnp.repeat(pad, c, axis=0)
    enc, enc_pad, rec_state = self.recognition_encoder(x, rows_pad, _unfold(state["recognition"]))
    new_state["recognition"] = _fold(rec_state, b, c)
    return enc, enc_pad, new_state

  def teacher_forced(self, feats, feat_paddings, labels, label_paddings):
    """``(enc [B*C, T', D], enc_paddings, pred [B*C, U+1, P])`` for labels ``[B, C, U]``."""
    b, c = feats.shape[0], self.channels
    if labels.ndim != 3 or labels.shape[:2] != (b, c) or label_paddings.shape != labels.shape:
      raise ValueError(f"labels and label_paddings must both be [B, C, U] with (B, C) = {(b, c)}; got labels "
                       f"{labels.shape} and label_paddings {label_paddings.shape}.")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
      raise ValueError(f"labels must be integer token ids; got dtype {labels.dtype}.")
    enc, enc_pad, _ = self.encode(feats, feat_paddings)
    rows, row_pad = labels.reshape(b * c, -1), label_paddings.reshape(b * c, -1)
    inputs = jnp.concatenate([jnp.full((b * c, 1), self.blank_id, rows.dtype), rows], axis=1)
    in_pad = jnp.concatenate([jnp.zeros((b * c, 1), row_pad.dtype), row_pad], axis=1)
    pred, _ = self.predictor(inputs, in_pad, self.predictor.init_state(b * c))
    return enc, enc_pad, pred


def build(encoders: dict, config, vocab_size: int) -> MultiChannelTransducer:
  """``MultiChannelTransducer`` of ``config`` (``config.model``): ``mixture_encoder`` and
  ``recognition_encoder`` name entries of ``encoders`` (`asrjax.models.ENCODERS`), built with
  ``encoder`` and ``recognition`` options; ``sts`` holds ``channels`` and ``separator_hidden``,
  ``transducer`` the fields shared with every transducer.

  Raises:
    ValueError: an encoder name not in ``encoders``.
  """
  for field in ("mixture_encoder", "recognition_encoder"):
    if config[field] not in encoders:
      raise ValueError(f"model.{field} must be one of {sorted(encoders)}; got {config[field]!r}.")
  mixture = encoders[config.mixture_encoder](**dict(config.encoder))
  recognition = encoders[config.recognition_encoder](**dict(config.recognition))
  return MultiChannelTransducer(mixture, vocab_size=vocab_size, recognition_encoder=recognition,
                                **dict(config.sts), **dict(config.transducer))


__all__ = ["MultiChannelTransducer", "build"]
