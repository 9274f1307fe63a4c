"""The sweep framework's own classes, against hand-built cases (each class must be reachable)."""

import pytest

from tests.sweep import cases
from tests.sweep.cases import Case


def _raise(e):
  raise e


@pytest.mark.parametrize("case, kind", [
    (Case("c", lambda: 2, check=lambda r: r == 2), "correct"),
    (Case("e", lambda: _raise(ValueError("labels must be < 5")), raises=ValueError, match="labels"), "clear_error"),
    (Case("s", lambda: 3, check=lambda r: r == 2), "silent_wrong"),
    (Case("s2", lambda: 3, raises=ValueError), "silent_wrong"),
    (Case("u", lambda: _raise(IndexError("x")), raises=ValueError), "unclear_error"),
    (Case("u2", lambda: _raise(ValueError("too many values to unpack")), raises=ValueError, match="labels"),
     "unclear_error"),
    (Case("d", lambda: 1, check=lambda r: _raise(cases.DataLoss("deleted step 9"))), "data_loss"),
])
def test_outcome_classes(case, kind):
  assert cases.outcome(case)[0] == kind
