"""The padding contract shared by the losses and the decoders, checked eagerly or in-graph.

Every asrjax sequence input comes as a (value, paddings) pair. A paddings array
``[B, N]`` holds ``paddings[b, n] == 1`` for a padded position and ``0`` for a
valid one (float, int or bool), and padding is *trailing*: each row is some
valid positions followed by padded ones, ``0 ... 0 1 ... 1`` (once 1, then 1 to the
end of the row). Lengths are read as the number of zeros, so a fractional value
(0.5) or a valid position after a padded one (``[0, 1, 0]``) would silently give a
wrong length.

Two checks of the same rule:

- `validate_paddings` inspects concrete (host or committed device) arrays and
  raises `ValueError` naming the argument, the first bad row and what was
  expected. The losses call it whenever their inputs are concrete; call it
  yourself before a jitted step if you want the error rather than the NaN.
- `paddings_valid` is its jit-safe twin, a ``[B]`` bool array. Under `jit`, where
  values cannot be inspected, the losses use it to make the loss of a row with
  invalid paddings NaN (loud), as they do for invalid labels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(*xs) -> bool:
  """True when no argument is a JAX tracer (its values can be inspected on the host)."""
  return not any(isinstance(x, jax.core.Tracer) for x in xs)


def validate_paddings(paddings, name: str) -> None:
  """Raises unless ``paddings`` is a concrete ``[B, N]`` array of trailing 0/1 rows.

  Args:
    paddings: ``(B, N)``-array (float, int or bool); ``paddings[b, n] == 1`` marks a
      padded position. Must be concrete (not traced inside `jit`); use
      `paddings_valid` in traced code.
    name: the argument's name in the caller's API (e.g. ``"logit_paddings"``), used in
      the message.

  Raises:
    ValueError: wrong rank, a non-numeric dtype, a value other than 0 or 1 (NaN and
      0.5 included), or a valid position after a padded one; the message names
      ``name``, the first bad row and what was expected.
    TypeError: ``paddings`` is a tracer (the values are unknown under `jit`).
  """
  if not is_concrete(paddings):
    raise TypeError(
        f"validate_paddings({name}) needs a concrete array, not a tracer inside jit; "
        "call it before the jitted function, or use asrjax.losses.paddings_valid in-graph."
    )
  p = np.asarray(paddings)
  if p.ndim != 2:
    raise ValueError(f"{name} must be a [B, N] array (1 = padded, 0 = valid); got shape {p.shape}.")
  if not (jnp.issubdtype(p.dtype, jnp.number) or p.dtype == np.bool_) or np.iscomplexobj(p):
    raise ValueError(f"{name} must hold real numbers 0 (valid) and 1 (padded); got dtype {p.dtype}.")
  binary = (p == 0) | (p == 1)
  if not np.all(binary):
    row, col = np.argwhere(~binary)[0]
    raise ValueError(
        f"{name}[{row}, {col}] = {p[row, col].item()!r}: paddings must hold only 0 (valid) and 1 (padded), "
        f"trailing (once 1, then 1 to the end of the row)."
    )
  if p.shape[1] > 1:
    rises = np.diff(p.astype(np.int8), axis=1) < 0  # a 1 followed by a 0
    if np.any(rises):
      row, col = np.argwhere(rises)[0]
      raise ValueError(
          f"{name} row {row} has a valid position ({col + 1}) after a padded one ({col}): padding must be "
          f"trailing (once 1, then 1 to the end of the row); got {p[row].tolist()[:32]}."
      )


def paddings_valid(paddings: jax.Array) -> jax.Array:
  """``[B, N] -> [B]`` bool, jit-safe: row b holds only 0/1 and its padding is trailing.

  The in-graph twin of `validate_paddings` (same rule, no exception): NaN, 0.5 or a
  0 after a 1 make the row invalid.

  Raises:
    ValueError: ``paddings`` is not 2-D (shapes are static, so this runs at trace time).
  """
  p = jnp.asarray(paddings)
  if p.ndim != 2:
    raise ValueError(f"paddings must be a [B, N] array (1 = padded, 0 = valid); got shape {p.shape}.")
  if p.dtype == jnp.bool_:
    p = p.astype(jnp.int32)
  binary = jnp.all((p == 0) | (p == 1), axis=1)
  if p.shape[1] < 2:
    return binary
  return binary & jnp.all(p[:, 1:] >= p[:, :-1], axis=1)
