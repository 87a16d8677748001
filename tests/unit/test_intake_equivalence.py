"""The tuned intake check accepts, converts and refuses exactly what the check before it
did — sample for sample, reason for reason — over random batches full of edge cases:
late samples (on event time and on the clock), duplicates, samples of the future,
unknown offerings and parameters, units, intervals, status samples, malformed fields and
times in every form a sender may use."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.monitoring.application import Monitoring
from services.monitoring.ingestion import check
from tests.integration.test_monitoring_stream import GROUP, estate
from tests.unit.intake_reference import reference_check

PRODUCTS = [f"po-{n}" for n in range(8)]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def monitoring() -> tuple[Monitoring, str]:
    app = Monitoring({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for kind, rid, resource in estate(PRODUCTS[:-1]):  # the last one is not in the inventory
        app.receive_replica(kind, rid, resource, int(resource["version"]))
    regime = app.start_regime(name="r", offering_group_id=uuid.UUID(GROUP), offering_id=None,
                              sla_type_id=None, customer_group=None, parameters=["latency"],
                              window="PT1M", allowed_lateness="PT1M", clear_after=1)
    return app, str(getattr(regime, "id", regime))


def a_time(rng: random.Random) -> Any:
    moment = NOW - rng.uniform(-600, 3 * 3600)
    as_datetime = datetime.fromtimestamp(moment, UTC)
    form = rng.randrange(12)
    if form < 4:
        return as_datetime.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if form == 4:
        return as_datetime.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if form == 5:
        return as_datetime.isoformat(timespec="seconds")  # +00:00
    if form == 6:
        zone = timezone(timedelta(hours=rng.choice([-5, 2, 9]), minutes=rng.choice([0, 30])))
        return as_datetime.astimezone(zone).isoformat()
    if form == 7:
        return as_datetime.replace(tzinfo=None).isoformat()  # no zone
    if form == 8:
        return as_datetime.strftime("%Y-%m-%d %H:%M:%S.%fZ")  # a space, not a T
    if form == 9:
        return rng.choice(["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-30T25:00Z",
                           "2026-11-30T10:00:00.1234567Z", "20261130T100000Z"])
    if form == 10:
        return rng.choice([None, 1_764_500_000, 1.5, [], {}])
    return as_datetime.isoformat(timespec="milliseconds").replace("+00:00", "+00:00")


def a_value(rng: random.Random) -> Any:
    if rng.random() < 0.7:
        return rng.uniform(0, 200)
    return rng.choice([
        rng.randrange(500), 0, -0.0, math.nan, math.inf, -math.inf, 1e15, -1e15, 1e15 + 1,
        10 ** 16, 10 ** 30, 10 ** 400, -(10 ** 400), 2.5e300, True, False, "12", None,
        [1]])


def a_sample(rng: random.Random) -> Any:
    if rng.random() < 0.02:
        return rng.choice([None, "sample", 3, [1, 2]])
    sample: dict[str, Any] = {
        "purchasedOfferingId": rng.choice(PRODUCTS) if rng.random() > 0.03 else rng.choice(
            ["", None, 5]),
        "parameter": "latency" if rng.random() > 0.05 else rng.choice(
            ["availability", "", None, 7]),
        "observedAt": a_time(rng),
    }
    if rng.random() < 0.9:
        sample["value"] = a_value(rng)
    if rng.random() < 0.1:
        sample["status"] = rng.choice(["up", "down", "up", "unknown", 1, None])
    if rng.random() < 0.1:
        sample["intervalSeconds"] = rng.choice([60, 0.5, 0, -1, True, "60", 31 * 86400,
                                                31 * 86400 + 1, None])
    if rng.random() < 0.1:
        sample["unit"] = rng.choice(["ms", "%", "ratio", " ms ", "", 3, None, "s"])
    if rng.random() < 0.05:
        sample["extra"] = {"kept": "out"}
    return sample


def as_compared(checked: Any) -> tuple[Any, ...]:
    return (checked.accepted, checked.rejected, checked.newest, checked.digest,
            checked.malformed)


@pytest.mark.parametrize("seed", range(40))
def test_the_tuned_check_agrees_with_the_reference(monitoring: tuple[Monitoring, str],
                                                   seed: int) -> None:
    app, regime_id = monitoring
    ws = app.working_set
    rng = random.Random(seed)
    batch = [a_sample(rng) for _ in range(rng.choice([1, 5, 50, 200]))]
    if batch and rng.random() < 0.3:
        batch.extend(rng.choices(batch, k=5))  # the same samples twice in a batch
    marks = {} if seed % 4 == 0 else {regime_id: NOW - rng.uniform(0, 2 * 3600)}
    clocks = {} if seed % 3 else {regime_id: (NOW - 3 * 3600, NOW - rng.uniform(0, 3600))}
    for _ in range(2):  # the second time, every lookup comes from the generation's cache
        assert as_compared(check(batch, ws, marks, NOW, clocks)) == as_compared(
            reference_check(batch, ws, marks, NOW, clocks))


def test_the_whole_batch_refusals_agree(monitoring: tuple[Monitoring, str]) -> None:
    app, _ = monitoring
    ws = app.working_set
    for batch in ("samples", {"a": 1}, None, [{"purchasedOfferingId": "po-0"}] * 10_001, []):
        assert as_compared(check(batch, ws, {}, NOW)) == as_compared(
            reference_check(batch, ws, {}, NOW))


def test_times_in_utc_read_as_the_general_reader_reads_them() -> None:
    from services.monitoring.ingestion import _time
    from shared.times import to_epoch

    rng = random.Random(9)
    for _ in range(20_000):
        moment = datetime.fromtimestamp(rng.uniform(0, 4e9), UTC)
        for spec in ("seconds", "milliseconds", "microseconds"):
            text = moment.isoformat(timespec=spec)
            assert _time(text.replace("+00:00", "Z")) == _time(text) == to_epoch(text)


def a_clean_batch(rng: random.Random, size: int) -> list[dict[str, Any]]:
    """Samples of the usual shape, a minute or two back: what the column check takes."""
    start = NOW - rng.uniform(1200, 7200)
    return [{"purchasedOfferingId": rng.choice(PRODUCTS[:-1]), "parameter": "latency",
             "value": rng.choice([rng.uniform(0, 200), rng.randrange(300)]),
             "observedAt": datetime.fromtimestamp(start + i * rng.uniform(0, 3), UTC)
             .isoformat(timespec=rng.choice(["milliseconds", "microseconds", "seconds"]))
             .replace("+00:00", rng.choice(["Z", "+00:00"]))} for i in range(size)]


SPOILS = [
    ("value", math.nan), ("value", math.inf), ("value", 1e15 + 1), ("value", 10 ** 16),
    ("value", 10 ** 400), ("value", -(10 ** 400)), ("value", None), ("value", True),
    ("value", "1"), ("status", "up"), ("status", "x"), ("intervalSeconds", 60),
    ("unit", "ms"), ("unit", "%"), ("observedAt", "soon"),
    ("observedAt", "2026-11-30T10:00:00+01:00"), ("observedAt", "2026-11-30T10:00:00"),
    ("observedAt", datetime.fromtimestamp(NOW + 400, UTC).isoformat()),
    ("purchasedOfferingId", "po-7"), ("purchasedOfferingId", ""), ("parameter", "other"),
    ("parameter", 3), ("extra", 1)]


def spoil(rng: random.Random, batch: list[dict[str, Any]]) -> None:
    """One sample (or one bound) off the usual shape."""
    field, value = rng.choice(SPOILS)
    rng.choice(batch)[field] = value


@pytest.mark.parametrize(("field", "value"), SPOILS)
def test_a_usual_batch_with_one_sample_off_agrees(monitoring: tuple[Monitoring, str],
                                                  field: str, value: Any) -> None:
    app, _ = monitoring
    batch = a_clean_batch(random.Random(5), 50)
    batch[17][field] = value
    assert as_compared(check(batch, app.working_set, {}, NOW)) == as_compared(
        reference_check(batch, app.working_set, {}, NOW))


@pytest.mark.parametrize("seed", range(60))
def test_usual_batches_take_the_column_check_and_agree(monitoring: tuple[Monitoring, str],
                                                       seed: int) -> None:
    from services.monitoring.ingestion import Checked, _check_columns

    app, regime_id = monitoring
    ws = app.working_set
    rng = random.Random(1000 + seed)
    batch = a_clean_batch(rng, rng.choice([1, 2, 100, 300]))
    earliest = min(datetime.fromisoformat(s["observedAt"]).timestamp() for s in batch)
    # No bound, bounds well clear of the batch, and bounds that cut through it.
    marks = [{}, {regime_id: earliest - 3600},
             {regime_id: earliest + rng.uniform(0, 200)}][seed % 3]
    clocks = [{}, {regime_id: (earliest - 7200, earliest - 3600)},
              {regime_id: (earliest - 7200, earliest + rng.uniform(0, 300))}][seed % 4 % 3]
    if seed % 5 == 4:
        spoil(rng, batch)
    out = Checked()
    took = _check_columns(batch, ws, marks, NOW, clocks, out)
    expected = reference_check(batch, ws, marks, NOW, clocks)
    assert as_compared(check(batch, ws, marks, NOW, clocks)) == as_compared(expected)
    if took:  # only what the reference accepts whole, with the same rows and times
        assert not expected.rejected
        assert (out.accepted, out.newest) == (expected.accepted, expected.newest)
    elif seed % 12 == 0 and seed % 5 != 4:  # clean, no bound: the column check takes it
        raise AssertionError("a usual batch went sample by sample")
