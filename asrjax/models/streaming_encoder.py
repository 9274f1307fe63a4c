"""What every frame-stacking, zero-look-ahead encoder declares for streaming callers."""

from __future__ import annotations


class ZeroLookahead:
  """Mixin for encoders with a ``stack`` attribute and no look-ahead."""

  @property
  def lookahead_frames(self) -> int:
    """Encoder frames a frame's output may depend on beyond itself."""
    return 0

  @property
  def chunk_multiple(self) -> int:
    """Streaming chunks must be multiples of this many input frames."""
    return self.stack
