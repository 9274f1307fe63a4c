"""The transducer around any streaming encoder: prediction network, joint network, logits.

``Transducer(encoder, vocab_size, ...)`` owns an encoder with the streaming
interface ``init_state(batch)`` / ``__call__(feats, paddings, state) ->
(enc, enc_paddings, state)``, an embedding + LSTM prediction network primed with
blank as start symbol, and an additive joint network
``logits = W_out tanh(W_enc enc + W_pred pred)``. Every encoder shares these, the
loss and the decoders (`decoder_fns`). Encoders also expose ``lookahead_frames``
(encoder frames of look-ahead) and ``chunk_multiple`` (streaming chunks must be
multiples of this many input frames), and each model file's ``build(config,
vocab_size)`` is `from_config` with its encoder class.

References:
  Graves, "Sequence transduction with recurrent neural networks", 2012.
  He et al., "Streaming end-to-end speech recognition for mobile devices", ICASSP 2019.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from asrjax.decoding import transducer as decoding
from asrjax.losses import pruned_rnnt
from asrjax.nn import causal_cmvn, lstm


class Predictor(nn.Module):
  """``labels [B, U] -> [B, U, hidden]``; consumes labels left to right with carried state."""

  vocab_size: int
  embed_dim: int = 128
  hidden: int = 256
  layers: int = 1

  def init_state(self, batch: int) -> list:
    return lstm.zero_state(batch, self.hidden, self.layers)

  @nn.compact
  def __call__(self, labels, paddings, state):
    x = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(labels)
    return lstm.StackedLSTM(self.hidden, self.layers, name="lstm")(x, paddings, state)


class Joint(nn.Module):
  """``enc [..., D], pred [..., P] -> logits [..., V]`` (broadcasting leading dims).

  ``logits = out(tanh(enc_proj(enc) + pred_proj(pred)))``; `project` and `output`
  are the two halves, so that a pruned loss can project ``[B, T, D]`` and
  ``[B, U+1, P]`` once and run `output` on the gathered ``[B, T, S, H]`` only.
  """

  vocab_size: int
  hidden: int = 256

  def setup(self):
    self.enc_proj = nn.Dense(self.hidden)
    self.pred_proj = nn.Dense(self.hidden, use_bias=False)
    self.out = nn.Dense(self.vocab_size)

  def project(self, enc, pred):
    """``(enc_proj(enc) [..., H], pred_proj(pred) [..., H])``."""
    return self.enc_proj(enc), self.pred_proj(pred)

  def output(self, hidden):
    """``[..., H]`` summed projections -> ``[..., V]`` logits."""
    return self.out(jnp.tanh(hidden))

  def __call__(self, enc, pred):
    enc_h, pred_h = self.project(enc, pred)
    return self.output(enc_h + pred_h)


class Transducer(nn.Module):
  """Encoder + predictor + joint.

  Attributes:
    encoder: a streaming encoder module.
    vocab_size: output symbols including blank (id ``blank_id``).
    causal_cmvn_frames: if > 0, the input features are first normalised per utterance
      with causal running statistics and a prior of this many frames
      (`asrjax.nn.causal_cmvn`); 0 = off.
    num_features: input feature size (for the causal CMVN state).
  """

  encoder: nn.Module
  vocab_size: int
  blank_id: int = 0
  embed_dim: int = 128
  predictor_hidden: int = 256
  predictor_layers: int = 1
  joint_hidden: int = 256
  causal_cmvn_frames: float = 0.0
  num_features: int = 80

  def setup(self):
    if self.vocab_size < 2 or not 0 <= self.blank_id < self.vocab_size:
      raise ValueError(f"vocab_size must be >= 2 (blank and at least one label) with 0 <= blank_id < vocab_size; "
                       f"got vocab_size={self.vocab_size}, blank_id={self.blank_id}.")
    self.predictor = Predictor(self.vocab_size, self.embed_dim, self.predictor_hidden, self.predictor_layers)
    self.joint_net = Joint(self.vocab_size, self.joint_hidden)
    # the pruned loss's trivial joiner; parameters exist only in models initialised by `pruned_losses`
    self.simple_am = nn.Dense(self.vocab_size)
    self.simple_lm = nn.Dense(self.vocab_size)

  def init_encode_state(self, batch: int) -> dict:
    """The state `encode` carries between chunks, before the first chunk."""
    state = {"encoder": self.encoder.init_state(batch)}
    if self.causal_cmvn_frames > 0:
      state["cmvn"] = causal_cmvn.init_state(batch, self.num_features, self.causal_cmvn_frames)
    return state

  def encode(self, feats, paddings, state=None, **encoder_options):
    """``[B, T, F] -> (enc [B, T', D], enc_paddings, state)``; ``state=None`` starts fresh.

    ``encoder_options`` go to the encoder's call (e.g. forced ``gates`` of
    `asrjax.models.cca_transformer`, for measurements).

    Raises:
      ValueError: ``feats`` is not a ``[B, T, F]`` float array, ``paddings`` is not
        ``[B, T]``, or ``state`` was made for another batch size.
    """
    check_features(feats, paddings)
    if state is None:
      state = self.init_encode_state(feats.shape[0])
    else:
      batches = {x.shape[0] for x in jax.tree.leaves(state["encoder"]) if getattr(x, "ndim", 0)}
      if batches and batches != {feats.shape[0]}:
        raise ValueError(f"state was made for batch size {sorted(batches)}, but feats has {feats.shape[0]} rows: "
                         "start each stream with init_encode_state(batch) of its own batch size.")
    new_state = {}
    if self.causal_cmvn_frames > 0:
      if feats.shape[-1] != self.num_features:
        raise ValueError(f"causal CMVN expects {self.num_features} features per frame; got {feats.shape[-1]}.")
      feats, new_state["cmvn"] = causal_cmvn.causal_cmvn(feats, paddings, state["cmvn"])
    enc, enc_pad, new_state["encoder"] = self.encoder(feats, paddings, state["encoder"], **encoder_options)
    return enc, enc_pad, new_state

  def predict(self, labels, paddings, state):
    return self.predictor(labels, paddings, state)

  def joint(self, enc, pred):
    return self.joint_net(enc, pred)

  def teacher_forced(self, feats, feat_paddings, labels, label_paddings):
    """``(enc [B, T', D], enc_paddings [B, T'], pred [B, U+1, P])`` for training.

    The prediction network sees ``[blank, y_1 .. y_U]`` (teacher forcing).
    """
    enc, enc_pad, _ = self.encode(feats, feat_paddings)
    b = labels.shape[0]
    if labels.ndim != 2 or label_paddings.shape != labels.shape or b != feats.shape[0]:
      raise ValueError(f"labels and label_paddings must both be [B, U] with B = {feats.shape[0]} (feats' batch); "
                       f"got labels {labels.shape} and label_paddings {label_paddings.shape}.")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
      raise ValueError(f"labels must be integer token ids; got dtype {labels.dtype}.")
    inputs = jnp.concatenate([jnp.full((b, 1), self.blank_id, labels.dtype), labels], axis=1)
    in_pad = jnp.concatenate([jnp.zeros((b, 1), label_paddings.dtype), label_paddings], axis=1)
    pred, _ = self.predictor(inputs, in_pad, self.predictor.init_state(b))
    return enc, enc_pad, pred

  def __call__(self, feats, feat_paddings, labels, label_paddings):
    """Training logits ``[B, T', U+1, V]`` and ``enc_paddings [B, T']`` (for the full RNN-T loss)."""
    enc, enc_pad, pred = self.teacher_forced(feats, feat_paddings, labels, label_paddings)
    return self.joint_net(enc[:, :, None, :], pred[:, None, :, :]), enc_pad

  def pruned_losses(self, feats, feat_paddings, labels, label_paddings, *, prune_range: int,
                    fastemit_lambda: float = 0.0, lm_only_scale: float = 0.0, am_only_scale: float = 0.0):
    """``(simple [B], pruned [B])`` per-utterance losses of k2's pruned RNN-T (`asrjax.losses.pruned_rnnt`).

    The simple loss uses two extra projections to the vocabulary (``simple_am``,
    ``simple_lm``, the "trivial joiner"), created when the model is initialised
    through this method; its node occupancies choose ``prune_range`` label
    positions per frame, where the joint network runs (``[B, T', S, H]``).
    FastEmit applies to the pruned loss; ``lm_only_scale``/``am_only_scale`` smooth
    the simple one (k2's ``rnnt_loss_smoothed``, `pruned_rnnt.simple_log_probs`).
    """
    enc, enc_pad, pred = self.teacher_forced(feats, feat_paddings, labels, label_paddings)
    am, lm = self.simple_am(enc), self.simple_lm(pred)
    simple, occupancy = pruned_rnnt.simple_rnnt_loss(am, lm, enc_pad, labels, label_paddings, blank_id=self.blank_id,
                                                     lm_only_scale=lm_only_scale, am_only_scale=am_only_scale)
    frame_lengths = jnp.sum(1 - enc_pad.astype(jnp.int32), axis=1)
    label_lengths = jnp.sum(1 - label_paddings.astype(jnp.int32), axis=1)
    starts = pruned_rnnt.prune_ranges(occupancy, frame_lengths, label_lengths, prune_range)
    enc_h, pred_h = self.joint_net.project(enc, pred)
    hidden = enc_h[:, :, None, :] + pruned_rnnt.gather_windows(pred_h, starts, prune_range)  # [B, T', S, H]
    pruned = pruned_rnnt.pruned_rnnt_loss(self.joint_net.output(hidden), starts, enc_pad, labels, label_paddings,
                                          blank_id=self.blank_id, fastemit_lambda=fastemit_lambda)
    return simple, pruned


def check_features(feats, paddings) -> None:
  """Raises `ValueError` unless ``feats`` is a float ``[B, T, F]`` array and ``paddings`` ``[B, T]``.

  Shapes are static, so this runs under ``jit`` too; it catches what would otherwise
  surface as a reshape or parameter-shape error deep inside an encoder.
  """
  if getattr(feats, "ndim", None) != 3:
    raise ValueError(f"feats must be [B, T, F] (batch, frames, features); got shape {getattr(feats, 'shape', None)}.")
  if not jnp.issubdtype(feats.dtype, jnp.floating):
    raise ValueError(f"feats must be a float array (log-mel features); got dtype {feats.dtype}.")
  if getattr(paddings, "shape", None) != feats.shape[:2]:
    raise ValueError(f"paddings must be [B, T] = {feats.shape[:2]} to match feats {feats.shape}; "
                     f"got {getattr(paddings, 'shape', None)}.")


def from_config(encoder_cls, config, vocab_size: int) -> Transducer:
  """``Transducer(encoder_cls(**config.encoder), vocab_size, **config.transducer)``: every model's ``build``."""
  return Transducer(encoder_cls(**dict(config.encoder)), vocab_size=vocab_size, **dict(config.transducer))


def decoder_fns(model: Transducer) -> decoding.TransducerFns:
  """The three pure functions every decoder in `asrjax.decoding` needs.

  Made once per model configuration (modules compare by their fields): the decoders' jitted
  searches take these functions as static arguments, so equal functions mean one compile per
  input shape for every decoding of that model, not one per `BatchDecoder`. A model with an
  unhashable field (a list) gets fresh functions each call (correct, recompiled per call).
  """
  try:
    return _cached_decoder_fns(model)
  except TypeError:  # unhashable module field
    return _decoder_fns(model)


@functools.lru_cache(maxsize=32)
def _cached_decoder_fns(model: Transducer) -> decoding.TransducerFns:
  return _decoder_fns(model)


def _decoder_fns(model: Transducer) -> decoding.TransducerFns:

  def predictor_init(batch):
    return lstm.zero_state(batch, model.predictor_hidden, model.predictor_layers)

  def predictor_step(params, labels, state):
    out, state = model.apply(params, labels[:, None], jnp.zeros(labels.shape + (1,)), state, method=Transducer.predict)
    return out[:, 0], state

  def joint(params, enc, pred):
    return model.apply(params, enc, pred, method=Transducer.joint)

  return decoding.TransducerFns(predictor_init, predictor_step, joint, model.blank_id)
