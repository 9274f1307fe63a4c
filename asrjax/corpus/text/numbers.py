"""Spelling numeric values as English words, for text that a TTS engine reads aloud.

Every function is pure and returns lowercase words separated by single spaces
(letters and apostrophes only). The style is American and fixed, so that one
value always has one written form: no "and" inside numbers ("one hundred one"),
years read in pairs ("nineteen eighty four", "two thousand five", "twenty ten"),
clock times with "oh" for single-digit minutes ("seven oh five a m").
"""

from __future__ import annotations

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_IRREGULAR_ORDINALS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}
_LIMIT = 10**12

def _below_thousand(n: int) -> list[str]:
  words = []
  hundreds, rest = divmod(n, 100)
  if hundreds:
    words += [_ONES[hundreds], "hundred"]
  if rest >= 20:
    tens, ones = divmod(rest, 10)
    words.append(_TENS[tens])
    if ones:
      words.append(_ONES[ones])
  elif rest or not words:
    words.append(_ONES[rest])
  return words


def cardinal(n: int) -> str:
  """Spells a non-negative integer, e.g. ``12345 -> "twelve thousand three hundred forty five"``.

  Args:
    n: integer in ``[0, 10**12)``.

  Returns:
    The number in words.

  Raises:
    ValueError: if ``n`` is out of range.
  """
  if not 0 <= n < _LIMIT:
    raise ValueError(f"cardinal() supports 0 <= n < {_LIMIT}, got {n}")
  if n == 0:
    return "zero"
  words = []
  for scale, name in _SCALES:
    count, n = divmod(n, scale)
    if count:
      words += _below_thousand(count) + [name]
  if n:
    words += _below_thousand(n)
  return " ".join(words)


def ordinal(n: int) -> str:
  """Spells an ordinal, e.g. ``21 -> "twenty first"``, ``100 -> "one hundredth"``.

  Args:
    n: integer in ``[1, 10**12)``.

  Returns:
    The ordinal in words.

  Raises:
    ValueError: if ``n`` is out of range.
  """
  if n < 1:
    raise ValueError(f"ordinal() needs n >= 1, got {n}")
  *head, last = cardinal(n).split(" ")
  if last in _IRREGULAR_ORDINALS:
    last = _IRREGULAR_ORDINALS[last]
  elif last.endswith("y"):
    last = last[:-1] + "ieth"
  else:
    last += "th"
  return " ".join([*head, last])


def year(n: int) -> str:
  """Spells a calendar year the way it is spoken.

  ``1984 -> "nineteen eighty four"``, ``1900 -> "nineteen hundred"``,
  ``1905 -> "nineteen oh five"``, ``2000 -> "two thousand"``,
  ``2005 -> "two thousand five"``, ``2024 -> "twenty twenty four"``; years below
  1000 are plain cardinals.

  Args:
    n: integer in ``[1, 9999]``.

  Returns:
    The year in words.

  Raises:
    ValueError: if ``n`` is out of range.
  """
  if not 1 <= n <= 9999:
    raise ValueError(f"year() supports 1 <= n <= 9999, got {n}")
  if n < 1000 or n % 1000 == 0 or 2000 <= n < 2010:
    return cardinal(n)
  high, low = divmod(n, 100)
  if low == 0:
    return f"{cardinal(high)} hundred"
  if low < 10:
    return f"{cardinal(high)} oh {cardinal(low)}"
  return f"{cardinal(high)} {cardinal(low)}"


def clock_time(hour: int, minute: int, *, meridiem: bool = True) -> str:
  """Spells a clock time in the twelve-hour style.

  ``(7, 30) -> "seven thirty a m"``, ``(19, 5) -> "seven oh five p m"``,
  ``(0, 0) -> "twelve a m"``; without the meridiem a full hour takes
  "o'clock": ``(7, 0, meridiem=False) -> "seven o'clock"``.

  Args:
    hour: hour of the day in ``[0, 23]``.
    minute: minute in ``[0, 59]``.
    meridiem: append "a m" / "p m".

  Returns:
    The time in words.

  Raises:
    ValueError: if ``hour`` or ``minute`` is out of range.
  """
  if not (0 <= hour <= 23 and 0 <= minute <= 59):
    raise ValueError(f"bad clock time {hour}:{minute}")
  words = [cardinal(hour % 12 or 12)]
  if minute == 0:
    if not meridiem:
      words.append("o'clock")
  elif minute < 10:
    words += ["oh", cardinal(minute)]
  else:
    words.append(cardinal(minute))
  if meridiem:
    words.append("p m" if hour >= 12 else "a m")
  return " ".join(words)


def informal_time(hour: int, minute: int) -> str | None:
  """Spells quarter and half hours informally, e.g. ``(7, 45) -> "quarter to eight"``.

  Args:
    hour: hour of the day in ``[0, 23]``.
    minute: minute in ``[0, 59]``.

  Returns:
    "quarter past H", "half past H", "quarter to H+1", "noon" or "midnight",
    or None where no informal form exists.

  Raises:
    ValueError: if ``hour`` or ``minute`` is out of range.
  """
  if not (0 <= hour <= 23 and 0 <= minute <= 59):
    raise ValueError(f"bad clock time {hour}:{minute}")
  if minute == 0 and hour in (0, 12):
    return "midnight" if hour == 0 else "noon"
  twelve = hour % 12 or 12
  if minute == 15:
    return f"quarter past {cardinal(twelve)}"
  if minute == 30:
    return f"half past {cardinal(twelve)}"
  if minute == 45:
    return f"quarter to {cardinal(twelve % 12 + 1)}"
  return None


def _all_words() -> frozenset[str]:
  spelled = [f(n) for n in (*range(1, 100), 100, 10**3, 10**6, 10**9) for f in (cardinal, ordinal)]
  literals = ["zero", "oh", "o'clock", "a", "p", "m", "noon", "midnight", "half", "quarter", "past", "to"]
  return frozenset(" ".join(spelled + literals).split(" "))


# Every word that a function of this module can produce.
WORDS: frozenset[str] = _all_words()
