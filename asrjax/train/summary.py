"""Training telemetry: TensorBoard scalars and progress log lines.

`SummaryWriter` writes scalar summaries as TensorBoard event files through
tensorboardX (no TensorFlow needed) under ``workdir/tensorboard`` and mirrors them
as one absl log line per call. Only process 0 writes files in a multi-host run.
View with ``tensorboard --logdir workdirs/<run>/tensorboard``.
"""

from __future__ import annotations

import os

from absl import logging


class SummaryWriter:
  """``scalars(step, {name: value})`` -> event file + log line.

  Args:
    logdir: event-file directory (created).
    enabled: False on non-zero processes: log lines only.
  """

  def __init__(self, logdir: str, enabled: bool = True):
    self._writer = None
    if enabled:
      try:
        import tensorboardX
      except ImportError as e:
        raise ImportError("TensorBoard summaries need tensorboardX: pip install tensorboardX") from e
      os.makedirs(logdir, exist_ok=True)
      self._writer = tensorboardX.SummaryWriter(logdir, flush_secs=30)

  def scalars(self, step: int, values: dict, prefix: str = "") -> None:
    for name, value in values.items():
      if self._writer is not None:
        self._writer.add_scalar(f"{prefix}{name}", float(value), global_step=int(step))
    shown = " ".join(f"{k} {float(v):.4g}" for k, v in values.items())
    logging.info("%sstep %d %s", prefix, int(step), shown)

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None
