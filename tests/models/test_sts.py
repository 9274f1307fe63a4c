"""Separator-transducer-segmenter model: channels as rows of a tied transducer, streaming chunk by chunk equal to
the whole mixture (encoder and two-channel greedy decoding), label shapes refused clearly."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from asrjax import models
from asrjax.decoding import greedy
from asrjax.losses import rnnt_loss
from asrjax.models import sts, transducer

B, T, F, V, C = 2, 24, 8, 9, 2


def _config(**sts_options):
  return ml_collections.ConfigDict({
      "name": "sts", "mixture_encoder": "convrnnt", "recognition_encoder": "lstm_rnnt",
      "encoder": {"stack": 3, "channels": 8, "local_layers": 1, "global_blocks": 1, "lstm_hidden": 16,
                  "lstm_layers": 1, "output_dim": 16},
      "recognition": {"stack": 1, "lstm_hidden": 16, "lstm_layers": 1, "output_dim": 12},
      "sts": {"channels": C, "separator_hidden": 16, **sts_options},
      "transducer": {"embed_dim": 8, "predictor_hidden": 16, "joint_hidden": 16, "num_features": F}})


@functools.lru_cache(maxsize=None)
def _setup(seed=0, features=F):
  """Model, parameters and a batch, built once per seed for the module (init is the costly part)."""
  model = models.build(_config(), V)
  rng = np.random.default_rng(seed)
  feats = jnp.asarray(rng.normal(size=(B, T, features)), jnp.float32)
  pads = jnp.asarray(np.arange(T)[None] >= np.array([[T], [18]]).T[0][:, None], jnp.float32)
  labels = jnp.asarray(rng.integers(1, V, size=(B, C, 3)), jnp.int32)
  label_pads = jnp.zeros((B, C, 3), jnp.float32).at[1, 1, 1:].set(1.0)
  params = model.init(jax.random.key(seed), feats, pads, labels, label_pads)
  return model, params, feats, pads, labels, label_pads


def test_channels_are_rows_of_one_tied_transducer():
  model, params, feats, pads, labels, label_pads = _setup()
  p = params["params"]
  assert {"separator_0", "separator_1", "recognition_encoder", "predictor", "joint_net", "encoder"} <= set(p)
  assert not any(k.startswith("recognition_encoder_") for k in p)  # one recognition encoder for all channels
  enc, enc_pad, _ = model.apply(params, feats, pads, method=model.encode)
  assert enc.shape == (B * C, T // 3, 12) and enc_pad.shape == (B * C, T // 3)
  np.testing.assert_array_equal(enc_pad[2], enc_pad[3])  # both channels of mixture 1 share its frames
  assert float(enc_pad[2].sum()) == 2  # 18 of 24 frames valid -> 6 of 8 encoder frames
  # equal separators make equal channels: everything after them is shared
  tied = jax.tree.map(lambda x: x, params)
  tied["params"]["separator_1"] = tied["params"]["separator_0"]
  enc_t, _, _ = model.apply(tied, feats, pads, method=model.encode)
  np.testing.assert_allclose(enc_t[0], enc_t[1], atol=1e-6)
  assert float(jnp.max(jnp.abs(enc[0] - enc[1]))) > 1e-3  # distinct separators separate


def test_training_logits_and_loss_per_channel():
  model, params, feats, pads, labels, label_pads = _setup()
  logits, enc_pad = model.apply(params, feats, pads, labels, label_pads)
  assert logits.shape == (B * C, T // 3, 4, V)
  loss = rnnt_loss(logits, enc_pad, labels.reshape(B * C, 3), label_pads.reshape(B * C, 3))
  assert loss.shape == (B * C,) and bool(jnp.all(jnp.isfinite(loss)))
  # channel c of mixture b is decoded against labels[b, c]: permuting a mixture's channel labels changes its loss
  swapped = labels.at[0].set(labels[0, ::-1])
  logits2, _ = model.apply(params, feats, pads, swapped, label_pads)
  loss2 = rnnt_loss(logits2, enc_pad, swapped.reshape(B * C, 3), label_pads.reshape(B * C, 3))
  assert not np.allclose(loss[:2], loss2[:2]) and np.allclose(loss[2:], loss2[2:])


@pytest.mark.parametrize("chunks", [(6, 9, 9), pytest.param((3, 3, 18), marks=pytest.mark.slow)])
def test_two_channel_streaming_chunk_by_chunk_equals_the_whole_mixture(chunks):
  from asrjax.inference.streaming import StreamingRecognizer  # noqa: PLC0415

  model, params, feats, pads, *_ = _setup(1)
  enc, enc_pad, _ = model.apply(params, feats, pads, method=model.encode)
  whole = greedy.greedy_search(transducer.decoder_fns(model), params, enc, enc_pad)
  rec = StreamingRecognizer(model, params, batch=B)
  assert rec.rows == B * C
  start = 0
  for n in chunks:
    rec.accept(feats[:, start:start + n], pads[:, start:start + n])
    start += n
  assert sum(len(x) for x in rec.labels) > 0  # an untrained model still emits: the comparison is not vacuous
  for r in range(B * C):
    keep = np.asarray(whole.label_paddings[r, 0]) == 0
    assert rec.labels[r] == list(np.asarray(whole.labels[r, 0])[keep])
    assert rec.frames[r] == list(np.asarray(whole.frames[r, 0])[keep])
  np.testing.assert_allclose(rec.scores, np.asarray(whole.scores[:, 0]), rtol=1e-5)
  # the encoder itself streams: chunked output equals the whole mixture's
  state, parts, start = model.init_encode_state(B), [], 0
  for n in chunks:
    e, _, state = model.apply(params, feats[:, start:start + n], pads[:, start:start + n], state, method=model.encode)
    parts.append(e)
    start += n
  np.testing.assert_allclose(jnp.concatenate(parts, axis=1), enc, atol=2e-5)


def test_bad_labels_and_encoders_are_refused():
  from asrjax.inference.batch_decoder import BatchDecoder  # noqa: PLC0415
  from asrjax.frontend.featurize import FrontEnd  # noqa: PLC0415

  model, params, feats, pads, labels, label_pads = _setup()
  with pytest.raises(ValueError, match="decodes 2 channels per input: use decode_channels_timed"):
    BatchDecoder(model, params, decoder="greedy", decoder_options={}, front_end=FrontEnd())._checked([[]] * 4, [0, 0])
  with pytest.raises(ValueError, match=r"must both be \[B, C, U\] with \(B, C\) = \(2, 2\)"):
    model.apply(params, feats, pads, labels.reshape(B * C, 3), label_pads.reshape(B * C, 3))
  bad = _config()
  bad.recognition.stack = 2
  with pytest.raises(ValueError, match="needs stack = 1 and no look-ahead"):
    models.build(bad, V).init(jax.random.key(0), feats, pads, labels, label_pads)
  bad = _config()
  bad.recognition_encoder = "lstm"
  with pytest.raises(ValueError, match="model.recognition_encoder must be one of"):
    models.build(bad, V)
  with pytest.raises(ValueError, match="channels must be an integer >= 1"):
    models.build(_config(channels=0), V).init(jax.random.key(0), feats, pads, labels, label_pads)
  assert isinstance(models.build(_config(), V), sts.MultiChannelTransducer)


def test_an_audio_stream_of_a_mixture_gives_the_whole_mixtures_turns():
  """Audio chunk by chunk through `AudioStream` (streaming log-mel, both channels) equals the whole-mixture
  decode of the one evaluation path (`BatchDecoder.decode_channels_timed` + `hypothesis_turns`)."""
  from asrjax.data.tokenizer import CharTokenizer, TurnTokenizer  # noqa: PLC0415
  from asrjax.frontend.featurize import FrontEnd  # noqa: PLC0415
  from asrjax.inference import multitalker as mt_eval  # noqa: PLC0415
  from asrjax.inference.batch_decoder import BatchDecoder  # noqa: PLC0415
  from asrjax.inference.streaming import AudioStream  # noqa: PLC0415

  model, params, *_ = _setup(0, 80)  # log-mel features
  tok = TurnTokenizer(CharTokenizer.build(["abcd"]))  # 7 base ids + <sot>, <eot> = V
  assert tok.vocab_size == V
  front = FrontEnd(feature_mean=(0.0,) * 80, feature_std=(1.0,) * 80)
  audio = (np.random.default_rng(3).normal(size=9_600) * 4000).astype(np.int16)
  dec = BatchDecoder(model, params, decoder="greedy", decoder_options={}, front_end=front)
  (channels,) = dec.decode_channels_timed([audio], 16_000)
  seconds = float(dec.frame_seconds)
  whole = [t for c, (labels, _, frames) in enumerate(channels)
           for t in mt_eval.hypothesis_turns(tok, labels, frames, seconds, str(c))]
  stream = AudioStream(model, params, front, tok)
  assert stream.channels == C
  for start in range(0, len(audio), 1_700):
    stream.accept_waveform(audio[start:start + 1_700])
  result = stream.finalize()
  assert sum(len(labels) for labels, _, _ in channels) > 0  # the untrained model emits: not vacuous
  assert list(result.turns) == whole
  assert result.text == " | ".join(tok.decode(labels) for labels, _, _ in channels)
  # a whole file through the Recognizer: the same turns and text
  from asrjax.inference.recognizer import Recognizer  # noqa: PLC0415
  from asrjax.tasks.transducer_asr import Restored  # noqa: PLC0415

  rec = Recognizer(Restored(model, params, tok, front, (0,)))
  got = rec.recognize(audio, 16_000)
  assert list(got.turns) == whole and got.text == result.text
  assert got.nbest[0][1] == pytest.approx(sum(score for _, score, _ in channels), rel=1e-5)
  assert rec.recognize(np.repeat(audio[:, None], 2, axis=1), 16_000).turns == got.turns  # a stereo file: mixed down
