"""The regimes' clock: windows close on processing time too, not only when a later sample
arrives — the most common outage is the one that sends no data.

The ticker runs beside the evaluator (same role, same partition of regimes). Once
processing time passes a window's end plus the regime's allowed lateness, it records that
boundary on the regime's :class:`RegimeClock` in the intake log. The evaluator reads those
events in log order with the batches, so what the clock closed is part of the recorded
history and replays identically after a crash; the projection itself never reads the wall
clock. One event per regime per window boundary at most (a clock that jumps records only the
newest boundary), and a boundary already recorded — by this ticker before a restart, or by
another process — is not recorded again.

The intake reads the same boundaries (from the cache) so that a sample for a window the
clock closed is refused as late, with that reason.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.monitoring.domain import Regime, RegimeClock

log = logging.getLogger(__name__)

NEVER = float("-inf")


def boundary(now: float, regime: Regime) -> float:
    """The newest window end that processing time has passed by the allowed lateness."""
    w = regime.window_seconds
    return ((now - regime.lateness_seconds) // w) * w


def clock_key(regime_id: str) -> str:
    return f"clock:{regime_id}"


def read_clocks(cache: Any, regime_ids: list[str]) -> dict[str, tuple[float, float]]:
    """Per regime, ``(origin, until)``: windows ending in ``(origin, until]`` are closed."""
    clocks = {}
    for regime_id in regime_ids:
        raw = cache.get(clock_key(regime_id))
        if raw is not None:
            origin, until = json.loads(raw)
            clocks[regime_id] = (float(origin), float(until))
    return clocks


class Ticker:
    """Advances each regime's clock of one evaluator partition."""

    def __init__(self, app: Any, partition: int = 0, partitions: int = 1,
                 period: float = 1.0, clock: Callable[[], float] | None = None) -> None:
        self.app = app
        self.index, self.partitions = partition, partitions
        self.period = period
        self._clock = clock
        self._known: dict[str, tuple[float, float]] = {}  # regime id -> (origin, until)
        self.last_error: str | None = None

    def now(self) -> float:
        return (self._clock or self.app.clock)()

    def mine(self, regime_id: str) -> bool:
        return self.partitions == 1 or zlib.crc32(regime_id.encode()) % self.partitions == \
            self.index

    def tick(self) -> int:
        """Record every boundary passed since the last tick; returns how many regimes moved."""
        now = self.now()
        moved = 0
        for regime in self.app.working_set.regimes():  # active and paused ones
            regime_id = str(regime.id)
            if not self.mine(regime_id):
                continue
            until = boundary(now, regime)
            known = self._known.get(regime_id)
            if known is not None and until <= known[1]:
                continue
            if self._advance(regime, until):
                moved += 1
        return moved

    def _advance(self, regime: Regime, until: float) -> bool:
        regime_id = str(regime.id)
        try:
            clock = self.app.repository.get(RegimeClock.create_id(regime_id))
        except AggregateNotFoundError:
            clock = None
        moved = False
        if clock is None:
            # Watch from the window the regime started in (the ticker may have been down
            # then), or from now if that is earlier (a test's clock, history sent later).
            w = regime.window_seconds
            started = (regime.created_on.timestamp() // w) * w
            clock = RegimeClock(regime_id=regime.id, origin=min(until, started))
            clock.advance(until)  # closes what passed since it started (saved together)
            moved = True
        elif until > clock.until:
            clock.advance(until)
            moved = True
        if moved:
            try:
                self.app.save(clock)
            except IntegrityError:  # another process recorded it first: read it next time
                self._known.pop(regime_id, None)
                return False
        self._known[regime_id] = (clock.origin, clock.until)
        self.app.cache.set(clock_key(regime_id), json.dumps([clock.origin, clock.until]).encode())
        return moved

    def run(self, stop: threading.Event) -> None:
        while True:
            try:
                self.tick()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - report, and try again next period
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("regime clock tick failed")
            if stop.wait(self.period):
                return
