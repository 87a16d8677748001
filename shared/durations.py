"""ISO-8601 durations (``PT5M``, ``P30D``, ``P1M``), one reading for every service.

``duration_seconds`` gives a NOMINAL length (a month is 30 days, a year 365 days): what a
window, a lateness or a burn-rate rule is scaled by. Conformance periods are calendar
periods; they read the duration's parts (``duration_parts``) instead. Plain Python: domain
code may import it.
"""

from __future__ import annotations

import functools
import re

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_SECONDS = {
    "years": 365 * 86400,
    "months": 30 * 86400,
    "weeks": 7 * 86400,
    "days": 86400,
    "hours": 3600,
    "minutes": 60,
    "seconds": 1,
}


def _match(text: str) -> re.Match[str]:
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or text.endswith("T"):
        raise ValueError(
            f"{text!r} is not an ISO-8601 duration such as P30D, PT1H, PT5M or P1M"
        )
    return match


def duration_parts(text: str) -> dict[str, int]:
    """The non-zero parts of an ISO-8601 duration, e.g. ``P1Y6M`` -> ``{"years": 1,
    "months": 6}``; ``ValueError`` for anything else."""
    return {k: int(v) for k, v in _match(text).groupdict().items() if v and int(v)}


@functools.lru_cache(maxsize=1024)
def duration_seconds(text: str) -> int:
    """Seconds in an ISO-8601 duration; ``ValueError`` for anything else (cached: windows
    are read on hot paths)."""
    match = _match(text)
    return sum(int(v) * _SECONDS[k] for k, v in match.groupdict().items() if v)


def duration_text(seconds: float) -> str:
    """Whole seconds as the shortest ISO-8601 duration of days, hours, minutes or seconds
    (``86400`` -> ``P1D``, ``5400`` -> ``PT90M``); fractions of a second are dropped."""
    whole = int(seconds)
    if whole and whole % 86400 == 0:
        return f"P{whole // 86400}D"
    if whole and whole % 3600 == 0:
        return f"PT{whole // 3600}H"
    if whole and whole % 60 == 0:
        return f"PT{whole // 60}M"
    return f"PT{whole}S"


def _positive_duration_pattern(digits: int = 6) -> str:
    """A regular expression (no look-arounds, so any JSON Schema tool can use it) for the
    durations :func:`duration_seconds` reads that are longer than zero: some component is
    not zero; the ones before it are zero, the ones after it anything."""
    date, time = ["Y", "M", "W", "D"], ["H", "M", "S"]
    n, zero, nonzero = f"[0-9]{{1,{digits}}}", "0+", f"0*[1-9][0-9]{{0,{digits - 1}}}"

    def optional(units: list[str], number: str) -> str:
        return "".join(f"(?:{number}{u})?" for u in units)

    def some(units: list[str]) -> str:  # at least one of the units, in order
        return "(?:" + "|".join(f"{n}{u}{optional(units[i + 1:], n)}"
                                for i, u in enumerate(units)) + ")"

    alternatives = [f"{optional(date[:k], zero)}{nonzero}{u}{optional(date[k + 1:], n)}"
                    f"(?:T{some(time)})?" for k, u in enumerate(date)]
    alternatives += [f"{optional(date, zero)}T{optional(time[:k], zero)}{nonzero}{u}"
                     f"{optional(time[k + 1:], n)}" for k, u in enumerate(time)]
    return "^P(?:" + "|".join(alternatives) + ")$"


#: Durations longer than zero (``PT5M``, ``P30D``, ``P1DT12H``), as a pattern.
POSITIVE_DURATION = _positive_duration_pattern()
