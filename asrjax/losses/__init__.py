"""Sequence losses."""

from asrjax.losses.rnnt import rnnt_loss, rnnt_loss_from_log_probs

__all__ = ["rnnt_loss", "rnnt_loss_from_log_probs"]
