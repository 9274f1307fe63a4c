"""The optimizer of a parameter set from a config section: warm-up + cosine schedule, AdamW, clipping."""

from __future__ import annotations

import optax


def make_schedule(optimizer_config, num_steps: int) -> optax.Schedule:
  """Linear warm-up to ``learning_rate``, cosine decay to ``end_learning_rate`` at ``num_steps``."""
  o = optimizer_config
  return optax.warmup_cosine_decay_schedule(
      0.0, o.learning_rate, o.warmup_steps, max(num_steps, o.warmup_steps + 1), o.end_learning_rate)


def make_optimizer(optimizer_config, num_steps: int) -> optax.GradientTransformation:
  """Global-norm clipping then AdamW on `make_schedule`; ``grad_accum_steps > 1`` wraps it in
  `optax.MultiSteps` (an update every that many steps, on the mean gradient)."""
  o = optimizer_config
  tx = optax.chain(optax.clip_by_global_norm(o.clip_norm),
                   optax.adamw(make_schedule(o, num_steps), weight_decay=o.weight_decay))
  if o.grad_accum_steps > 1:
    tx = optax.MultiSteps(tx, o.grad_accum_steps)
  return tx
