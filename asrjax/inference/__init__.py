"""Using a trained model on any audio: `Recognizer` (arrays and files), `BatchDecoder` (the decoding path).

``Recognizer`` is imported on first use (PEP 562): the training code imports
`batch_decoder` from here, and `recognizer` imports the training code.
"""

from asrjax.inference.batch_decoder import BatchDecoder


def __getattr__(name):
  if name in ("Recognizer", "Result"):
    from asrjax.inference import recognizer  # noqa: PLC0415
    return getattr(recognizer, name)
  raise AttributeError(f"module 'asrjax.inference' has no attribute {name!r}")


__all__ = ["BatchDecoder", "Recognizer", "Result"]
