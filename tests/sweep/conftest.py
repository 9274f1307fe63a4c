"""Prints the bad-input sweep's count per outcome class (`tests/sweep/cases.py`)."""

from tests.sweep import cases


def pytest_terminal_summary(terminalreporter):
  if sum(cases.COUNTS.values()):
    row = ", ".join(f"{k} {cases.COUNTS[k]}" for k in cases.OUTCOMES)
    terminalreporter.write_line(f"bad-input sweep: {sum(cases.COUNTS.values())} cases: {row}")
