"""Files written whole or not at all: a temporary file in the same folder, then a rename.

Every file the toolkit writes and later reads back as a cache or a result (tokenizers,
LM tables, transcripts, feature statistics, evaluation JSONs) goes through `open`, so a
run killed mid-write leaves the previous file (or none), never a truncated one that a
later run would fail to parse or, worse, half-read.
"""

from __future__ import annotations

import builtins
import contextlib
import os


@contextlib.contextmanager
def open(path, mode: str = "w", **kwargs):  # noqa: A001  (mirrors the builtin it wraps)
  """Like the builtin ``open`` for writing; the file appears at ``path`` only when the block
  ends without an exception (then replacing any file there). On an exception the temporary
  file is removed and ``path`` is left as it was.

  Args:
    path: destination file.
    mode: a write mode, ``"w"`` or ``"wb"``.
    **kwargs: passed to the builtin ``open`` (e.g. ``encoding``).
  """
  if mode not in ("w", "wb"):
    raise ValueError(f"atomic_file.open writes whole files; mode must be 'w' or 'wb', not {mode!r}.")
  path = os.fspath(path)
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    with builtins.open(tmp, mode, **kwargs) as f:
      yield f
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise
