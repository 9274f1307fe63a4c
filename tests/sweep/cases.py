"""The bad-input sweep: a table of unusual or wrong inputs to every public API and launcher.

Each `Case` calls one public function (or launcher) with one input and says what a
demanding user should get: either an error of a given type whose message names the
argument and what was expected (``raises`` + ``match``), or a result that an
independent reference confirms (``check``). `outcome` runs a case and sorts it into
one of five classes:

- ``correct``: accepted, and ``check`` confirmed the result;
- ``clear_error``: the expected exception type, with a message matching ``match``;
- ``silent_wrong``: accepted, but the result is wrong (``check`` failed), or an error
  was expected and none came;
- ``unclear_error``: some other exception, or the right type with a message that does
  not say what is wrong (a raw traceback a user cannot act on);
- ``data_loss``: ``check`` reported that something the user had was destroyed (a check
  signals it by raising `DataLoss`).

Only the first two are acceptable; the sweep's tests assert that, and
``tests/sweep/conftest.py`` prints the count of each class at the end of a run, so
the same table can be run against an older checkout to count what it got wrong.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import traceback
from typing import Any, Callable

OUTCOMES = ("correct", "clear_error", "silent_wrong", "unclear_error", "data_loss")
COUNTS: collections.Counter = collections.Counter()  # filled by `assert_case`, printed by conftest


class DataLoss(AssertionError):
  """Raised by a ``check`` when the case destroyed something the user had."""


@dataclasses.dataclass(frozen=True)
class Case:
  """One input to one API.

  Attributes:
    id: short unique name, ``area/api/what`` (the pytest id).
    run: calls the API with the input; its return value goes to ``check``.
    raises: the exception type(s) a clear rejection has (e.g. ``ValueError``).
    match: regex (searched, case-insensitive) the message must contain: the argument's
      name and what was expected.
    check: for inputs that must be accepted: ``result -> bool`` (or raises
      `DataLoss`), comparing against an independent reference.
  """

  id: str
  run: Callable[[], Any]
  raises: type | tuple[type, ...] | None = None
  match: str | None = None
  check: Callable[[Any], bool] | None = None

  def __post_init__(self):
    if (self.raises is None) == (self.check is None):
      raise TypeError(f"case {self.id}: give exactly one of raises= or check=")


def outcome(case: Case) -> tuple[str, str]:
  """``(class, detail)`` of running ``case`` (see the module docstring)."""
  try:
    result = case.run()
  except Exception as e:  # noqa: BLE001 -- every exception is classified
    detail = f"{type(e).__name__}: {e}"
    if case.raises is None:
      return "unclear_error", detail + "\n" + traceback.format_exc(limit=-3)
    if not isinstance(e, case.raises):
      return "unclear_error", detail
    if case.match and not re.search(case.match, str(e), re.IGNORECASE | re.DOTALL):
      return "unclear_error", f"message does not match {case.match!r}: {detail}"
    return "clear_error", detail
  if case.raises is not None:
    return "silent_wrong", f"expected {case.raises}, got a result: {result!r}"[:2000]
  try:
    ok = case.check(result)
  except DataLoss as e:
    return "data_loss", str(e)
  except Exception as e:  # noqa: BLE001
    return "silent_wrong", f"check raised {type(e).__name__}: {e}"
  return ("correct", "") if ok else ("silent_wrong", f"check failed on {result!r}"[:2000])


def assert_case(case: Case) -> None:
  """Runs ``case``, counts its class, and fails unless it is ``correct`` or ``clear_error``."""
  kind, detail = outcome(case)
  COUNTS[kind] += 1
  assert kind in ("correct", "clear_error"), f"{kind.upper()}: {case.id}: {detail}"


def ids(cases) -> list[str]:
  return [c.id for c in cases]


class RatedRecords(list):
  """Records (a list of dicts) that declare their sample rate as `asrjax.data.sources.Split` does."""

  def __init__(self, records, sample_rate):
    super().__init__(records)
    self.sample_rate = sample_rate
