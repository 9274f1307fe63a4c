"""Frame stacking: ``[B, T, F] -> [B, T // s, s * F]``, the usual 10 ms -> 30 ms transducer subsampling."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def stack_frames(x: jax.Array, paddings: jax.Array, stride: int) -> tuple[jax.Array, jax.Array]:
  """Concatenates each run of ``stride`` frames; a stacked frame is valid only if all its frames are.

  Trailing frames that do not fill a group are dropped, so a streaming caller must
  feed chunks whose length is a multiple of ``stride`` to match whole-utterance output.

  Args:
    x: ``[B, T, F]``; paddings ``[B, T]`` (1.0 = padded).

  Returns:
    ``([B, T // stride, stride * F], [B, T // stride])``.
  """
  b, t, f = x.shape
  n = t // stride
  x = x[:, : n * stride].reshape(b, n, stride * f)
  paddings = jnp.max(paddings[:, : n * stride].reshape(b, n, stride), axis=-1)
  return x, paddings
