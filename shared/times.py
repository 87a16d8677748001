"""The suite's one conversion between ISO-8601 text, ``datetime`` and epoch seconds.

On the wire every time is ISO-8601 in UTC with a ``Z`` (``2026-03-01T10:00:00Z``); inside,
the domains keep timezone-aware ``datetime``s or, on the evaluator's hot path, epoch
seconds. A time without a zone is refused where a person wrote it (``parse``) and read as
UTC where the suite itself stored it without one (``epoch_of``'s lenient reading of old
records), never guessed from the machine's local zone.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime | float | int | None = None) -> str:
    """``moment`` (a datetime, epoch seconds, or now) as ISO-8601 UTC text with ``Z``.
    A naive datetime is taken as UTC."""
    if moment is None:
        moment = now()
    elif isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_or_none(moment: datetime | float | None) -> str | None:
    return None if moment is None else iso(moment)


def parse(text: str, *, assume_utc: bool = False) -> datetime:
    """ISO-8601 text as a timezone-aware datetime in UTC. ``ValueError`` for text that is
    not a date-time, and for one without a zone unless ``assume_utc``."""
    try:
        parsed = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{str(text)[:60]!r} is not an ISO-8601 date-time such as 2026-01-01T00:00:00Z"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        if not assume_utc:
            raise ValueError(f"{parsed.isoformat()} has no time zone; add one, e.g. Z")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_epoch(moment: datetime | str) -> float:
    """A timezone-aware datetime (or ISO-8601 text with a zone) as epoch seconds.
    Naive datetimes raise ``ValueError``: the suite's times are never local."""
    if isinstance(moment, str):
        return parse(moment).timestamp()
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: the suite's times must be timezone-aware (UTC)")
    return moment.timestamp()


def epoch_of(text: str | None) -> float | None:
    """Stored ISO-8601 text as epoch seconds, zone-less text read as UTC; None when absent
    or unreadable (the caller decides what an unreadable stored time means)."""
    if not text:
        return None
    try:
        return parse(text, assume_utc=True).timestamp()
    except (TypeError, ValueError):
        return None
