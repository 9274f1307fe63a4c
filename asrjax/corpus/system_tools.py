"""External programs the corpus needs (espeak-ng, sox), with install instructions when missing."""

from __future__ import annotations

import shutil


def require(tool: str) -> str:
  """Path of ``tool``, or a `RuntimeError` that says how to install it."""
  path = shutil.which(tool)
  if path is None:
    raise RuntimeError(
        f"{tool} is not installed; the embedded corpus is built with it. "
        f"Install it with `sudo apt-get install {tool}` (Debian/Ubuntu) or `make system-deps`."
    )
  return path
