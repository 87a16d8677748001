"""``python -m bench.trend_analysis``: trend analysis of many series — the batch
Mann-Kendall of ``services/analysis/trends.py`` against pymannkendall on the same input,
in the same run.

* **Input**: 10,000 series of 90 points (``--series``, ``--points``), seeded: daily
  availability percentages, a third falling or rising slowly, a third flat, a third rounded
  to two decimals (many ties) — no missing values (series with gaps take the one-series
  path, which is pymannkendall's speed class).
* **Baseline**: ``pymannkendall.original_test`` called on each series in turn, as a service
  would call it; its series per second. A count (every series) and a time limit
  (``--time-limit``; past it the rate is that of the series done, and ``incomplete`` says
  so).
* **Ours**: ``mann_kendall_batch`` over the whole 2-D array, timed three times — before,
  between and after the baseline's halves, so a change of load on a shared machine hits
  both — the median taken; its series per second. ``ratioToPymannkendall`` = ours / theirs
  (the issue's goal: at least 50).
* **Identical answers**: every field of every series compared with pymannkendall's
  (trend, h exactly; p, z, tau, s, var_s, slope, intercept to 1e-9); any difference fails
  the benchmark (exit 1) and is counted in ``mismatches``.
* **Variants** (information): the seasonal (period 7), Hamed-Rao and Yue-Wang tests, the
  same way on the first 1,000 series (``--variant-series``).

The machine's load average (``os.getloadavg()``) before and after goes into the JSON: on a
shared machine it says how much to trust the absolute rates; the ratio holds better.

Writes ``bench/results/trend_analysis.json`` (``--quick``: ``.quick.json``, 1,000 series,
200 for the variants).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import warnings
from importlib.metadata import version
from typing import Any

import numpy as np

from bench import common
from services.analysis import trends

SEED = 20261201
FIELDS = ("p", "z", "tau", "s", "var_s", "slope", "intercept")
TOLERANCE = 1e-9
GOAL = 50.0


def series(count: int, points: int, seed: int = SEED) -> np.ndarray:
    """Daily availability (%) of ``count`` purchased offerings over ``points`` days."""
    rng = np.random.default_rng(seed)
    t = np.arange(points)
    kind = np.arange(count) % 3
    drift = rng.uniform(-0.0008, 0.0008, count) * (kind == 0)
    x = 99.95 + drift[:, None] * t + rng.normal(0, 0.01, (count, points))
    x[kind == 2] = np.round(x[kind == 2], 2)
    return x


def reference(x: np.ndarray, test: str, period: int | None) -> Any:
    import pymannkendall as mk

    if test == "original":
        return mk.original_test(x)
    if test == "seasonal":
        return mk.seasonal_test(x, period=period)
    if test == "hamed_rao":
        return mk.hamed_rao_modification_test(x)
    return mk.yue_wang_modification_test(x)


def differs(ref: Any, batch: trends.TrendBatch, i: int) -> str | None:
    """The first field in which series ``i`` differs from pymannkendall's answer."""
    if str(batch.trend[i]) != ref.trend:
        return "trend"
    if bool(batch.h[i]) != bool(ref.h):
        return "h"
    for field in FIELDS:
        ours = float(getattr(batch, field)[i])
        theirs = float(getattr(ref, "Tau" if field == "tau" else field))
        if math.isnan(ours) and math.isnan(theirs):
            continue
        if not abs(ours - theirs) <= TOLERANCE * max(1.0, abs(ours), abs(theirs)):
            return field
    return None


def compare(matrix: np.ndarray, test: str, period: int | None, time_limit: float
            ) -> dict[str, Any]:
    """pymannkendall on each row and ours on the whole matrix, interleaved."""
    def ours() -> tuple[float, trends.TrendBatch]:
        t0 = time.perf_counter()
        batch = trends.mann_kendall_batch(matrix, test, period=period)  # type: ignore[arg-type]
        return time.perf_counter() - t0, batch

    timings = []
    seconds, batch = ours()
    timings.append(seconds)
    refs: list[Any] = []
    baseline_seconds = 0.0
    deadline = time.monotonic() + time_limit
    half = len(matrix) // 2
    incomplete = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, x in enumerate(matrix):
            if i == half:
                seconds, _ = ours()
                timings.append(seconds)
            t0 = time.perf_counter()
            refs.append(reference(x, test, period))
            baseline_seconds += time.perf_counter() - t0
            if time.monotonic() > deadline:
                incomplete = (f"time limit of {time_limit:.0f} s reached after {i + 1:,} of "
                              f"{len(matrix):,} pymannkendall calls")
                break
    seconds, _ = ours()
    timings.append(seconds)
    mismatches: dict[str, int] = {}
    first = None
    for i, ref in enumerate(refs):
        field = differs(ref, batch, i)
        if field:
            mismatches[field] = mismatches.get(field, 0) + 1
            first = first if first is not None else {"series": i, "field": field}
    ours_seconds = statistics.median(timings)
    ours_rate = len(matrix) / ours_seconds
    theirs_rate = len(refs) / baseline_seconds if baseline_seconds else None
    result: dict[str, Any] = {
        "test": test, **({"period": period} if period else {}),
        "series": len(matrix), "points": matrix.shape[1],
        "seriesPerSecond": {"ours": round(ours_rate, 1),
                            "pymannkendall": round(theirs_rate, 1) if theirs_rate else None},
        "seconds": {"ours": round(ours_seconds, 4),
                    "oursRuns": [round(t, 4) for t in timings],
                    "pymannkendall": round(baseline_seconds, 3),
                    "pymannkendallSeries": len(refs)},
        "ratioToPymannkendall": round(common.ratio(ours_rate, theirs_rate) or 0.0, 1),
        "compared": len(refs), "mismatches": sum(mismatches.values()),
        "identical": not mismatches,
    }
    if mismatches:
        result["mismatchedFields"] = mismatches
        result["firstMismatch"] = first
    if incomplete:
        result["incomplete"] = incomplete
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 series (variants 200)")
    parser.add_argument("--series", type=int, default=None, help="default 10,000")
    parser.add_argument("--points", type=int, default=90)
    parser.add_argument("--variant-series", type=int, default=None,
                        help="series for the seasonal and corrected tests (default 1,000)")
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="seconds for pymannkendall's loop, per test (default 600)")
    args = parser.parse_args(argv)
    count = args.series or (1_000 if args.quick else 10_000)
    variant_count = min(count, args.variant_series or (200 if args.quick else 1_000))
    matrix = series(count, args.points)
    load_before = os.getloadavg()
    common.progress(f"{count:,} series of {args.points} points, load average "
                    f"{load_before[0]:.2f}: pymannkendall per series, ours in one batch")
    main_result = compare(matrix, "original", None, args.time_limit)
    variants = []
    for test, period in (("seasonal", 7), ("hamed_rao", None), ("yue_wang", None)):
        common.progress(f"{test}: {variant_count:,} series")
        variants.append(compare(matrix[:variant_count], test, period, args.time_limit))
    load_after = os.getloadavg()
    identical = main_result["identical"] and all(v["identical"] for v in variants)
    result = {
        "quick": args.quick,
        "series": count, "points": args.points, "seed": SEED,
        "ratioToPymannkendall": main_result["ratioToPymannkendall"],
        "seriesPerSecond": main_result["seriesPerSecond"],
        "goalRatio": GOAL,
        "goalMet": main_result["ratioToPymannkendall"] >= GOAL and identical,
        "identical": identical,
        "original": main_result,
        "variants": variants,
        "loadAverage": {"before": [round(v, 2) for v in load_before],
                        "after": [round(v, 2) for v in load_after]},
        "versions": {name: version(name) for name in ("numpy", "scipy", "pymannkendall")},
        "openblasCoretype": os.environ.get("OPENBLAS_CORETYPE"),
    }
    if "incomplete" in main_result:
        result["incomplete"] = main_result["incomplete"]
    common.table("trend analysis (series/s)", ["test", "series", "ours", "pymannkendall",
                                                "ratio", "identical"],
                 [[r["test"] + (f" ({r['period']})" if r.get("period") else ""),
                   r["series"], r["seriesPerSecond"]["ours"],
                   r["seriesPerSecond"]["pymannkendall"], r["ratioToPymannkendall"],
                   r["identical"]] for r in (main_result, *variants)])
    common.progress(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    common.write_result("trend_analysis", result)
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
