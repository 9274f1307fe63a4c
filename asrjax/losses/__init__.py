"""Sequence losses, and the padding contract they share with the decoders."""

from asrjax.losses.contracts import paddings_valid, validate_paddings
from asrjax.losses.rnnt import rnnt_loss, rnnt_loss_from_log_probs

__all__ = ["paddings_valid", "rnnt_loss", "rnnt_loss_from_log_probs", "validate_paddings"]
