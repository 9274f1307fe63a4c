"""Audio batches to n-best lists: the front end, the encoder and one decoder, compiled once.

The one decoding path: `asrjax.train.evaluation.evaluate` and
`asrjax.inference.Recognizer` both decode through `BatchDecoder`, so a corpus
evaluation and a user's own files give the same hypotheses for the same audio.
"""

from __future__ import annotations

import jax
import numpy as np

from asrjax import decoding
from asrjax.data import pipeline
from asrjax.models import transducer
from asrjax.train import step as step_lib


class BatchDecoder:
  """``[int16 [N_b]] -> [[(label ids, score)]]`` (best first) with a model's own front end.

  Args:
    model: a `asrjax.models.transducer.Transducer`; params its variables.
    decoder: a name in `asrjax.decoding.DECODERS`; decoder_options its keyword options
      (already checked by the caller, e.g. `evaluation.check_decoder_options`).
    step_config: the feature front end the model was trained with (normalisation).
  """

  def __init__(self, model, params, *, decoder: str, decoder_options: dict, step_config: step_lib.StepConfig):
    self._params, self._options = params, dict(decoder_options)
    self._fns = transducer.decoder_fns(model)
    self._decode = decoding.DECODERS[decoder]
    self.decoder = decoder
    self._encode = jax.jit(lambda p, f, pad: model.apply(p, f, pad, method=transducer.Transducer.encode)[:2])
    self._featurize = jax.jit(lambda b: step_lib.featurize(b, jax.random.key(0), step_config, train=False))

  def __call__(self, audio: list[np.ndarray], bucket: int) -> list[list[tuple[list[int], float]]]:
    """Decodes one batch of int16 waveforms padded to ``bucket`` samples (one compile per bucket)."""
    batch = pipeline.pad_batch([{"audio": a, "text": ""} for a in audio], lambda t: [], bucket, 1)
    feats, pads = self._featurize({"audio": batch["audio"], "audio_paddings": batch["audio_paddings"]})
    enc, enc_pads = self._encode(self._params, feats, pads)
    out = self._decode(self._fns, self._params, enc, enc_pads, **self._options).to_lists()
    if len(out) != len(audio):
      raise RuntimeError(f"the {self.decoder} decoder returned {len(out)} rows for a batch of {len(audio)}.")
    return out


def bucket_for(longest: int, buckets) -> int:
  """The first of ``buckets`` (samples) that holds ``longest``; ``longest`` itself past the last."""
  return next((b for b in sorted(buckets) if b >= longest), longest)
