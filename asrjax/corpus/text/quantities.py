"""Random spoken quantities: counts, durations, clock times, dates, money, ...

Each function draws a value with a `Sampler` and spells it with
`asrjax.corpus.text.numbers`; `QUANTITIES` names them for templates (``{duration}``).
Values favor the round numbers people say ("ten minutes", "seven thirty")
but cover every value in their range.
"""

from __future__ import annotations

from collections.abc import Callable

from asrjax.corpus.text import numbers
from asrjax.corpus.text import sampler as sampler_lib

Sampler = sampler_lib.Sampler

MONTHS = (
    ("january", 31), ("february", 28), ("march", 31), ("april", 30), ("may", 31), ("june", 30),
    ("july", 31), ("august", 31), ("september", 30), ("october", 31), ("november", 30), ("december", 31),
)
_ROUND_MINUTES = (1, 2, 3, 5, 10, 15, 20, 25, 30, 40, 45)
_ROUND_PERCENTS = (10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100)


def _plural(n: int, unit: str) -> str:
  return f"{numbers.cardinal(n)} {unit}" + ("" if n == 1 else "s")


def count(s: Sampler) -> str:
  """A small plural count, two to twelve."""
  return numbers.cardinal(s.integer(2, 12))


def small_number(s: Sampler) -> str:
  """One to twenty."""
  return numbers.cardinal(s.integer(1, 20))


def number(s: Sampler) -> str:
  """A number from two to 999,999, roughly log-uniform in its digit count."""
  digits = s.choice((1, 2, 2, 3, 3, 4, 5, 6))
  return numbers.cardinal(s.integer(max(2, 10 ** (digits - 1)), 10**digits - 1))


def big_number(s: Sampler) -> str:
  """A population-sized number: "four hundred thousand", "twelve million", ..."""
  if s.coin(0.5):
    return f"{numbers.cardinal(s.integer(2, 999))} {s.choice(('thousand', 'million'))}"
  return numbers.cardinal(s.integer(1000, 999_999))


def round_number(s: Sampler) -> str:
  """A round count of things: "three hundred", "twelve thousand"."""
  return f"{numbers.cardinal(s.integer(2, 20))} {s.choice(('hundred', 'thousand'))}"


def house_number(s: Sampler) -> str:
  """A street number, one to two thousand nine hundred ninety nine."""
  return numbers.cardinal(s.integer(1, 99) if s.coin(0.5) else s.integer(100, 2999))


def ordinal_number(s: Sampler) -> str:
  """An ordinal, first to twentieth."""
  return numbers.ordinal(s.integer(1, 20))


def minutes(s: Sampler) -> str:
  """A number of minutes, "one minute" to "ninety minutes"."""
  n = s.choice(_ROUND_MINUTES) if s.coin(0.6) else s.integer(1, 90)
  return _plural(n, "minute")


def duration(s: Sampler) -> str:
  """A timer duration in seconds, minutes or hours."""
  kind = s.below(6)
  if kind == 0:
    return _plural(s.choice((10, 15, 20, 30, 45, 60, 90)) if s.coin(0.7) else s.integer(1, 99), "second")
  if kind <= 2:
    return minutes(s)
  if kind == 3:
    return s.choice(("an hour", "half an hour", "an hour and a half", "a minute", "a minute and a half"))
  if kind == 4:
    return _plural(s.integer(1, 12), "hour")
  return f"{_plural(s.integer(1, 3), 'hour')} and {_plural(s.choice(_ROUND_MINUTES[2:]), 'minute')}"


def clock(s: Sampler) -> str:
  """A clock time: "seven thirty a m", "quarter to eight", "noon", "six o'clock"."""
  hour = s.integer(0, 23)
  minute = 5 * s.integer(0, 11) if s.coin(0.8) else s.integer(0, 59)
  informal = numbers.informal_time(hour, minute)
  if informal and s.coin(0.4):
    return informal
  return numbers.clock_time(hour, minute, meridiem=minute != 0 or s.coin(0.6))


def date(s: Sampler) -> str:
  """A calendar day: "march third" or "the twenty first of june"."""
  month, days = s.choice(MONTHS)
  day = numbers.ordinal(s.integer(1, days))
  return f"{month} {day}" if s.coin(0.5) else f"the {day} of {month}"


def day_of_month(s: Sampler) -> str:
  """"the third" to "the thirty first"."""
  return f"the {numbers.ordinal(s.integer(1, 31))}"


def month(s: Sampler) -> str:
  """A month name."""
  return s.choice(MONTHS)[0]


def year(s: Sampler) -> str:
  """A year, mostly 1900 to 2025."""
  return numbers.year(s.integer(1900, 2025) if s.coin(0.7) else s.integer(1500, 1899))


def temperature(s: Sampler) -> str:
  """"seventy two degrees", "minus five degrees"."""
  t = s.integer(-20, 110)
  return f"minus {_plural(-t, 'degree')}" if t < 0 else _plural(t, "degree")


def room_temperature(s: Sampler) -> str:
  """A thermostat setting in Fahrenheit, "sixty eight degrees"."""
  return _plural(s.integer(60, 80), "degree")


def percent(s: Sampler) -> str:
  """"forty percent", one to one hundred percent."""
  n = s.choice(_ROUND_PERCENTS) if s.coin(0.6) else s.integer(1, 100)
  return f"{numbers.cardinal(n)} percent"


def money(s: Sampler) -> str:
  """"twenty dollars", "four dollars and fifty cents"."""
  dollars = s.integer(1, 500)
  if s.coin(0.7):
    return _plural(dollars, "dollar")
  return f"{_plural(dollars, 'dollar')} and {_plural(s.integer(1, 99), 'cent')}"


def phone_number(s: Sampler) -> str:
  """Seven spoken digits, "five five five oh one two three"."""
  return " ".join("oh" if d == 0 else numbers.cardinal(d) for d in (s.below(10) for _ in range(7)))


def age(s: Sampler) -> str:
  """An age in years, two to ninety nine."""
  return numbers.cardinal(s.integer(2, 99))


QUANTITIES: dict[str, Callable[[Sampler], str]] = {
    f.__name__: f for f in (
        count, small_number, number, big_number, round_number, house_number, ordinal_number,
        minutes, duration, clock, date, day_of_month, month, year, temperature, room_temperature,
        percent, money, phone_number, age)
}

# Words these functions emit besides spelled numbers (`numbers.WORDS`).
WORDS: frozenset[str] = frozenset({
    "minute", "minutes", "second", "seconds", "hour", "hours", "an", "a", "and", "half",
    "degree", "degrees", "minus", "percent", "dollar", "dollars", "cent", "cents", "the",
    "of", "hundred", "thousand", "million", *(m for m, _ in MONTHS),
}) | numbers.WORDS
