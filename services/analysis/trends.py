"""Trend analysis: the Mann-Kendall test with Sen's slope, its seasonal variant and the
variants corrected for autocorrelation — for one series and, fast, for many at once — and
what a trend means for an SLA: whether it is a deterioration, and when the trend line
would cross the standard's conformance target (docs/trend-analysis.md).

Pure: numpy and scipy, no store, no clock. The answers are pymannkendall's (1.4.3) on the
same input, field for field (tests/unit/test_analysis_trends.py checks it against the
library itself), so a figure the service publishes can be re-derived by anyone with the
library. pymannkendall computes one series at a time in Python loops (about 3 ms for 90
points); :func:`mann_kendall_batch` computes the same figures for a 2-D array of series,
vectorised over the series (bench/trend_analysis.py measures the difference).

The statistics, for a series x_1..x_n (missing values, NaN, skipped as pymannkendall skips
them: the test runs on the values present, in their order):

* S = Σ_{i<j} sign(x_j − x_i), Kendall's score;
* Var(S) = [n(n−1)(2n+5) − Σ_g t_g(t_g−1)(2t_g+5)] / 18, t_g the size of tie group g;
* τ = S / (n(n−1)/2);
* Z = (S − 1)/√Var(S) if S > 0, (S + 1)/√Var(S) if S < 0, 0 if S = 0 (continuity correction);
* p = 2(1 − Φ(|Z|)); significant (h) when |Z| > Φ⁻¹(1 − α/2); the trend is "increasing"
  (Z > 0) or "decreasing" (Z < 0) when significant, "no trend" otherwise;
* Sen's slope = the median of the pairwise slopes (x_j − x_i)/(j − i) over the pairs of
  values present, i and j their positions in the series (so a gap keeps its length);
  intercept (Conover) = median(x) − median(positions) × slope, the line
  ``intercept + slope × position`` with positions counted from 0.

Variants (``test``):

* ``"original"`` — the test above (Mann 1945, Kendall 1975, Gilbert 1987).
* ``"seasonal"`` — Hirsch-Slack: the series cut into seasons of ``period`` points (12 for
  months of a year, 7 for days of a week); S, Var(S) and the pair count summed over the
  seasons, each season a series of its own (values one period apart); Sen's slope the
  median of the within-season slopes, per period (per cycle); the intercept
  median(x) − median(positions)/period × slope.
* ``"hamed_rao"`` — Hamed & Rao (1998): Var(S) multiplied by
  n/n* = 1 + 2/(n(n−1)(n−2)) × Σ_i (n−i)(n−i−1)(n−i−2) ρ_i over the lags i whose
  autocorrelation ρ_i of the ranks of the detrended series (x_k − k × slope, k = 1..n) is
  significant (outside ±Φ⁻¹(1 − α/2)/√n); positive autocorrelation inflates S's variance
  and makes the original test see trends that are not there.
* ``"yue_wang"`` — Yue & Wang (2004): Var(S) multiplied by 1 + 2 Σ_i (1 − i/n) ρ_i, ρ_i
  the autocorrelation of the detrended series itself, every lag.

Both corrected variants take ``lag``: the number of lags considered (default: every lag,
as pymannkendall's default).

Where pymannkendall raises (fewer than 2 values present — 3 for Hamed-Rao —, or no season
with 2 values), the answer here is "no trend", h false, and NaN for p, z and what cannot be
computed; ``n`` says how many values were used. Values must be finite or NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import norm, rankdata

Test = Literal["original", "seasonal", "hamed_rao", "yue_wang"]
TESTS: tuple[str, ...] = ("original", "seasonal", "hamed_rao", "yue_wang")
INCREASING, DECREASING, NO_TREND = "increasing", "decreasing", "no trend"
DEFAULT_ALPHA = 0.05

# Pairwise differences held at once by the batch path (float64 values): 256k = 2 MB, a
# chunk of 64 series of 90 points, which stays in the processor's cache while it is worked
# on (measured: faster than chunks of 500 or 1,000 series).
_PAIRS_PER_CHUNK = 256_000


# --- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrendResult:
    """One series' test: pymannkendall's fields (``tau`` is its ``Tau``) and ``n``, the
    number of values present (the test's sample size)."""

    trend: str
    h: bool
    p: float
    z: float
    tau: float
    s: float
    var_s: float
    slope: float
    intercept: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"trend": self.trend, "h": self.h, "p": self.p, "z": self.z,
                "tau": self.tau, "s": self.s, "var_s": self.var_s, "slope": self.slope,
                "intercept": self.intercept, "n": self.n}


@dataclass(frozen=True)
class TrendBatch:
    """Many series' tests, a field a numpy array (one entry per series, in input order).
    ``batch[i]`` is series i's :class:`TrendResult`."""

    trend: np.ndarray
    h: np.ndarray
    p: np.ndarray
    z: np.ndarray
    tau: np.ndarray
    s: np.ndarray
    var_s: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray
    n: np.ndarray

    def __len__(self) -> int:
        return len(self.trend)

    def __getitem__(self, i: int) -> TrendResult:
        return TrendResult(
            trend=str(self.trend[i]), h=bool(self.h[i]), p=float(self.p[i]),
            z=float(self.z[i]), tau=float(self.tau[i]), s=float(self.s[i]),
            var_s=float(self.var_s[i]), slope=float(self.slope[i]),
            intercept=float(self.intercept[i]), n=int(self.n[i]))

    def results(self) -> list[TrendResult]:
        return [self[i] for i in range(len(self))]


# --- the public entry points -----------------------------------------------------------------
def mann_kendall(x: Sequence[float] | np.ndarray, test: Test = "original", *,
                 alpha: float = DEFAULT_ALPHA, period: int | None = None,
                 lag: int | None = None) -> TrendResult:
    """One series' Mann-Kendall test (``test``: see the module's docstring), with Sen's
    slope. ``period`` is required by the seasonal test; ``lag`` is for the corrected ones.

    Why a straightforward one-series path besides the batch: it is the reference the batch
    path is checked against, and it handles missing values exactly as pymannkendall does
    (the batch path sends series with NaNs here)."""
    arr = _series(x)
    _check(test, alpha, period, lag)
    return TrendResult(**_exact(arr, test, alpha, period, lag))


def mann_kendall_batch(series: Sequence[Sequence[float]] | np.ndarray,
                       test: Test = "original", *, alpha: float = DEFAULT_ALPHA,
                       period: int | None = None, lag: int | None = None) -> TrendBatch:
    """The same test over every row of a 2-D array (n_series × n_points), identical to
    :func:`mann_kendall` on each row. Shorter series go in padded with NaN at the end.

    Why it is fast: the rows without missing values are computed together, a few dozen at
    a time (so that their pairs stay in the processor's cache) — every pairwise difference
    x_j − x_i of all of them in one array, built a lag at a time from two slices; S from
    the count of positive differences and the pairs of equal values; the pairwise slopes
    as those differences divided by their lags, and Sen's slope from one in-place partition
    of each row; the tie terms from each row sorted once. The significance, the ranks and
    the autocorrelations of the corrected tests are computed over the whole batch at once.
    Rows with NaNs take the one-series path, pymannkendall's speed class."""
    matrix = np.asarray(series, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"series must be a 2-D array (n_series × n_points), got "
                         f"{matrix.ndim} dimension(s)")
    if np.isinf(matrix).any():
        raise ValueError("series values must be finite or NaN (missing)")
    _check(test, alpha, period, lag)
    rows, points = matrix.shape
    out = {
        "trend": np.full(rows, NO_TREND, dtype="<U10"), "h": np.zeros(rows, dtype=bool),
        **{k: np.full(rows, np.nan) for k in ("p", "z", "tau", "s", "var_s", "slope",
                                              "intercept")},
        "n": np.zeros(rows, dtype=np.int64),
    }
    # Fewer than two points: nothing to vectorise, the one-series path says what is missing.
    complete = ~np.isnan(matrix).any(axis=1) & (points >= 2)
    clean = np.flatnonzero(complete)
    if len(clean):
        pairs = points * (points - 1) // 2
        step = max(1, _PAIRS_PER_CHUNK // pairs)
        critical = float(norm.ppf(1 - alpha / 2))
        valid = True
        for start in range(0, len(clean), step):
            index = clean[start:start + step]
            part, valid = _vectorised(matrix[index], test, critical, period, lag)
            for key, values in part.items():
                out[key][index] = values
        out["n"][clean] = points
        if test in ("hamed_rao", "yue_wang"):
            out["var_s"][clean], valid = _corrected_variance(
                matrix[clean], out["slope"][clean], out["var_s"][clean], test, critical, lag)
        if valid:  # every clean row has the same length, so the same validity
            z, p, h, trend = _significance(out["s"][clean], out["var_s"][clean], alpha)
            out["z"][clean], out["p"][clean], out["h"][clean] = z, p, h
            out["trend"][clean] = trend
    for i in np.flatnonzero(~complete):
        for key, value in _exact(matrix[i], test, alpha, period, lag).items():
            out[key][i] = value
    return TrendBatch(**out)


def deteriorating(result: TrendResult | TrendBatch, higher_is_better: bool) -> Any:
    """Whether a significant trend goes the wrong way for the parameter: a decreasing trend
    for a higher-is-better one (availability, throughput), an increasing trend for a
    lower-is-better one (latency, error rate, packet loss). "No trend" is never a
    deterioration, however the slope leans — the test did not find it. A
    :class:`TrendBatch` gives a boolean array."""
    return result.trend == (DECREASING if higher_is_better else INCREASING)


# --- projection ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Projection:
    """When a deteriorating series' Sen line crosses the conformance target, on the series'
    own time axis (positions from 0, the first point; one unit a point; the service turns
    them into dates).

    ``status``: ``"not deteriorating"`` (no significant trend in the bad direction — nothing
    projected), ``"already crossed"`` (the line is past the target at the last position;
    ``crossing`` is when it got there), ``"crossing"`` (it crosses within the horizon) or
    ``"not within the horizon"`` (``crossing`` is None). ``earliest``/``latest``: the
    crossings of the lines with the confidence limits of Sen's slope — None when that line
    does not cross by the horizon's end (a limit on the good side never crosses).
    ``slope_low``/``slope_high``: the interval, per point."""

    status: str
    crossing: float | None
    earliest: float | None
    latest: float | None
    slope: float
    slope_low: float
    slope_high: float
    last: float
    horizon_end: float
    result: TrendResult


def sen_slope_interval(x: Sequence[float] | np.ndarray, test: Test = "original", *,
                       alpha: float = DEFAULT_ALPHA, period: int | None = None,
                       lag: int | None = None) -> tuple[float, float]:
    """The 1 − α confidence interval of Sen's slope (Gilbert 1987, §16.5; Sen 1968), in the
    slope's own unit (per point; per period for the seasonal test).

    Why this way: the interval is distribution-free — it is read off the ordered pairwise
    slopes themselves. With N' slopes and C = Φ⁻¹(1 − α/2) × √Var(S), the limits are the
    M1-th and M2-th smallest slopes, M1 = (N' − C)/2 and M2 = (N' + C)/2 + 1 (1-based,
    interpolated linearly between neighbours when not whole, clamped to 1..N'). Var(S) is
    the chosen test's, so the autocorrelation-corrected tests give the wider interval their
    inflated variance implies. NaN when there is no slope or Var(S) is undefined."""
    arr = _series(x)
    _check(test, alpha, period, lag)
    result = _exact(arr, test, alpha, period, lag)
    return _interval(_sorted_slopes(arr, test, period), result["var_s"], alpha)


def project_crossing(x: Sequence[float] | np.ndarray, target: float, *,
                     higher_is_better: bool, horizon: float, test: Test = "original",
                     alpha: float = DEFAULT_ALPHA, period: int | None = None,
                     lag: int | None = None) -> Projection:
    """Project when a deteriorating series crosses ``target`` (the standard's conformance
    target, in the series' unit), looking at most ``horizon`` points past the last one.

    Why the Sen line: it is the trend the test reports — y(t) = intercept + b·t, b the slope
    per point (Sen's slope; divided by the period for the seasonal test, whose slope is per
    cycle) — so the projected crossing is t* = (target − intercept)/b. Its uncertainty comes
    from the slope's confidence interval (:func:`sen_slope_interval`): each limit b' gives
    the line through the same Conover point (median position, median value) that the Sen
    line goes through, y = median(x) + b'·(t − median position), crossing at
    t' = median position + (target − median(x))/b'. The steeper limit in the bad direction
    gives the earliest crossing; the shallower one the latest — or none, when it is flat or
    on the good side (the data do not exclude a series that never crosses). A crossing
    beyond ``last + horizon`` is "not within the horizon"."""
    if horizon < 0:
        raise ValueError("horizon must not be negative")
    arr = _series(x)
    _check(test, alpha, period, lag)
    result = TrendResult(**_exact(arr, test, alpha, period, lag))
    per = float(period) if test == "seasonal" else 1.0
    low, high = _interval(_sorted_slopes(arr, test, period), result.var_s, alpha)
    slope, low, high = result.slope / per, low / per, high / per
    last = float(len(arr) - 1)
    end = last + horizon
    if not deteriorating(result, higher_is_better):
        return Projection("not deteriorating", None, None, None, slope, low, high, last, end,
                          result)
    sign = -1.0 if higher_is_better else 1.0
    present = ~np.isnan(arr)
    pivot_t = float(np.median(np.flatnonzero(present)))
    pivot_y = float(np.median(arr[present]))

    def crossing_at(b: float) -> float | None:
        if math.isnan(b) or b * sign <= 0:
            return None
        t = pivot_t + (target - pivot_y) / b
        return t if t <= end else None

    steep, shallow = (low, high) if higher_is_better else (high, low)
    earliest, latest = crossing_at(steep), crossing_at(shallow)
    # A significant trend whose median slope is flat (many ties) has a line that never
    # moves: it is past the target already or never gets there.
    moving = slope * sign > 0
    central = (target - result.intercept) / slope if moving else None
    if central is not None:
        passed = central <= last
    else:
        passed = (result.intercept + slope * last - target) * sign > 0
    if passed:
        status = "already crossed"
    elif central is not None and central <= end:
        status = "crossing"
    else:
        status, central = "not within the horizon", None
    return Projection(status, central, earliest, latest, slope, low, high, last, end, result)


# --- input -----------------------------------------------------------------------------------
def _series(x: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"a series must be 1-D, got {arr.ndim} dimension(s)")
    if np.isinf(arr).any():
        raise ValueError("series values must be finite or NaN (missing)")
    return arr


def _check(test: str, alpha: float, period: int | None, lag: int | None) -> None:
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; one of {', '.join(TESTS)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if test == "seasonal" and (period is None or int(period) != period or period < 1):
        raise ValueError("the seasonal test needs a period, a whole number of points >= 1")
    if lag is not None and (int(lag) != lag or lag < 0):
        raise ValueError("lag must be a whole number >= 0")


# --- what both paths share -------------------------------------------------------------------
def _significance(s: np.ndarray, var_s: np.ndarray, alpha: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Z (continuity-corrected), the two-sided p, h and the trend, elementwise — the same
    arithmetic as pymannkendall's scalar functions, so the values agree to the last bit."""
    with np.errstate(all="ignore"):
        root = np.sqrt(var_s)
        z = np.where(s > 0, (s - 1) / root, np.where(s < 0, (s + 1) / root, 0.0))
        p = 2 * (1 - norm.cdf(np.abs(z)))
        h = np.abs(z) > norm.ppf(1 - alpha / 2)
    trend = np.where(h & (z < 0), DECREASING, np.where(h & (z > 0), INCREASING, NO_TREND))
    return z, p, h, trend


def _ties(sorted_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of sorted values: Σ_g t_g(t_g−1)(2t_g+5), the tie term of Var(S), and
    Σ_g t_g(t_g−1)/2, the pairs of equal values. The value at position r (1-based) of its
    run of equal values adds 6(r² − 1) to the first and r − 1 to the second: over a run of t
    they add up to t(t−1)(2t+5) and t(t−1)/2."""
    m, n = sorted_rows.shape
    positions = np.arange(n, dtype=np.int64)
    new_run = np.ones((m, n), dtype=bool)
    new_run[:, 1:] = sorted_rows[:, 1:] != sorted_rows[:, :-1]
    run_start = np.maximum.accumulate(np.where(new_run, positions, 0), axis=1)
    r = positions - run_start
    return 6 * (r * (r + 2)).sum(axis=1), r.sum(axis=1)


def _acf_rows(values: np.ndarray, lags: int) -> np.ndarray:
    """Autocorrelation of every row at lags 0..lags−1, pymannkendall's estimator:
    ρ_k = c_k / c_0, c_k = Σ_t (x_t − x̄)(x_{t+k} − x̄) / n."""
    n = values.shape[1]
    y = values - values.mean(axis=1, keepdims=True)
    acov = np.empty((values.shape[0], lags))
    for k in range(lags):
        acov[:, k] = (y[:, :n - k] * y[:, k:]).sum(axis=1) / n
    with np.errstate(all="ignore"):
        return acov / acov[:, :1]


def _lags_used(n: int, lag: int | None) -> int:
    """pymannkendall's ``lag``: None = every lag (n), else lag + 1 (lag 0 included); at
    most n, the lags a series of n values has."""
    return n if lag is None else min(int(lag) + 1, n)


def _hamed_rao_factor(acf: np.ndarray, n: int, critical: float, lags: int) -> np.ndarray:
    """n/n* = 1 + 2/(n(n−1)(n−2)) × Σ over significant lags of (n−i)(n−i−1)(n−i−2) ρ_i, the
    sum taken lag by lag in pymannkendall's order; significant: outside ±critical/√n,
    critical = Φ⁻¹(1 − α/2). A NaN autocorrelation (a detrended series of equal ranks)
    counts as significant there, and so here: the variance is NaN."""
    bound = critical / np.sqrt(n)
    i = np.arange(1, lags)
    with np.errstate(all="ignore"):
        rho = acf[:, 1:lags]
        outside = ~((rho <= bound) & (rho >= -bound))
        terms = np.where(outside, ((n - i) * (n - i - 1) * (n - i - 2)) * rho, 0.0)
        # add.accumulate adds left to right, as pymannkendall's loop does: the same bits.
        sni = np.cumsum(terms, axis=1)[:, -1] if lags > 1 else np.zeros(acf.shape[0])
        return 1 + (2 / (n * (n - 1) * (n - 2))) * sni


def _yue_wang_factor(acf: np.ndarray, n: int, lags: int) -> np.ndarray:
    """1 + 2 Σ_{i=1..lags−1} (1 − i/n) ρ_i."""
    idx = np.arange(1, lags)
    with np.errstate(all="ignore"):
        return 1 + 2 * np.sum((1 - idx / n) * acf[:, 1:lags], axis=1)


# --- the batch path: rows without missing values ---------------------------------------------
def _pair_parts(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S, the tie term and the pairwise slopes (rows × n(n−1)/2, unordered) of every row.

    The pairs are laid out a lag at a time: for lag k the n−k differences x[k:] − x[:−k].
    S = #(d > 0) − #(d < 0) = 2·#(d > 0) − (pairs − #(d = 0)), and the pairs with d = 0 are
    the pairs of equal values, which the sorted row gives: one pass over the differences
    fewer."""
    m, n = rows.shape
    pairs = n * (n - 1) // 2
    diffs = np.empty((m, pairs))
    divisors = np.empty(pairs)
    offset = 0
    for k in range(1, n):
        np.subtract(rows[:, k:], rows[:, :n - k], out=diffs[:, offset:offset + n - k])
        divisors[offset:offset + n - k] = k
        offset += n - k
    ties, equal_pairs = _ties(np.sort(rows, axis=1))
    # The comparison's booleans summed as 8-bit integers into 32-bit counts: a third of
    # the time of np.count_nonzero(axis=1), which widens every boolean to 64 bits.
    positive = (diffs > 0).view(np.int8).sum(axis=1, dtype=np.int32)
    s = (2 * positive.astype(np.int64) - pairs + equal_pairs).astype(float)
    diffs /= divisors
    return s, ties, diffs


def _row_medians(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=1)``, the same numbers — the middle value, or the two middle
    values' (a + b)/2 as np.median's mean gives it — from one partition of the array in
    place (it is not needed afterwards). About four times faster than np.median on a few
    thousand values a row, which copies them and also partitions out the largest to look
    for a NaN (there is none here: the rows are finite)."""
    half = values.shape[1] // 2
    if values.shape[1] % 2:
        values.partition(half, axis=1)
        return values[:, half].copy()
    values.partition((half - 1, half), axis=1)
    return (values[:, half - 1] + values[:, half]) / 2


def _vectorised(rows: np.ndarray, test: str, critical: float, period: int | None,
                lag: int | None) -> tuple[dict[str, np.ndarray], bool]:
    """S, Var(S), τ, Sen's slope and intercept of rows without missing values (at least 2
    points each), and whether the test is defined at their length; the significance is
    worked out once for the whole batch by the caller. ``critical`` = Φ⁻¹(1 − α/2)."""
    m, n = rows.shape
    if test == "seasonal":
        assert period is not None
        return _vectorised_seasonal(rows, int(period))
    s, ties, slopes = _pair_parts(rows)
    var_s = (n * (n - 1) * (2 * n + 5) - ties).astype(float) / 18
    tau = s / (.5 * n * (n - 1))
    slope = _row_medians(slopes)
    intercept = np.median(rows, axis=1) - np.median(np.arange(n)) * slope
    return {"tau": tau, "s": s, "var_s": var_s, "slope": slope, "intercept": intercept}, True


def _corrected_variance(rows: np.ndarray, slope: np.ndarray, var_s: np.ndarray, test: str,
                        critical: float, lag: int | None) -> tuple[np.ndarray, bool]:
    """Var(S) of the corrected tests for rows without missing values, all rows at once (a
    lag at a time over every row: a few hundred numpy calls for the whole batch), and
    whether the test is defined at their length (Hamed-Rao needs 3 points)."""
    m, n = rows.shape
    lags = _lags_used(n, lag)
    detrended = rows - np.arange(1, n + 1) * slope[:, None]
    if test == "hamed_rao":
        if n < 3:
            return np.full(m, np.nan), False
        acf = _acf_rows(rankdata(detrended, axis=1), lags)
        return var_s * _hamed_rao_factor(acf, n, critical, lags), True
    return var_s * _yue_wang_factor(_acf_rows(detrended, lags), n, lags), True


def _vectorised_seasonal(rows: np.ndarray, period: int
                         ) -> tuple[dict[str, np.ndarray], bool]:
    """Each season (the values ``period`` apart, from each of the first ``period``
    positions) a series of its own: S, Var(S) and pair counts added season by season (in
    pymannkendall's order), the within-season slopes (per cycle) pooled for the median."""
    m, n = rows.shape
    s = np.zeros(m)
    var_s = np.zeros(m)
    denominator = 0.0
    pooled = []
    for season in range(min(period, n)):
        sub = rows[:, season::period]
        length = sub.shape[1]
        if length < 2:
            continue
        s_c, ties_c, slopes_c = _pair_parts(sub)
        s = s + s_c
        var_s = var_s + (length * (length - 1) * (2 * length + 5) - ties_c).astype(float) / 18
        denominator = denominator + (.5 * length * (length - 1))
        pooled.append(slopes_c)
    if not pooled:
        return {"s": s, "var_s": var_s}, False
    slope = _row_medians(np.concatenate(pooled, axis=1))
    intercept = np.median(rows, axis=1) - np.median(np.arange(n)) / period * slope
    return {"tau": s / denominator, "s": s, "var_s": var_s, "slope": slope,
            "intercept": intercept}, True


# --- the one-series path (and rows with missing values) --------------------------------------
def _score(x: np.ndarray) -> tuple[float, float]:
    """S and Var(S) of the values present, in order."""
    n = len(x)
    if n < 2:
        return 0.0, 0.0
    i, j = np.triu_indices(n, 1)
    d = x[j] - x[i]
    s = float(np.count_nonzero(d > 0) - np.count_nonzero(d < 0))
    _, t = np.unique(x, return_counts=True)
    ties = int(np.sum(t * (t - 1) * (2 * t + 5)))
    return s, (n * (n - 1) * (2 * n + 5) - ties) / 18


def _pairwise_slopes(x: np.ndarray) -> np.ndarray:
    """(x_j − x_i)/(j − i) over every pair i < j of positions; NaN where a value is
    missing."""
    n = len(x)
    i, j = np.triu_indices(n, 1)
    return (x[j] - x[i]) / (j - i)


def _sorted_slopes(arr: np.ndarray, test: str, period: int | None) -> np.ndarray:
    if test == "seasonal":
        assert period is not None
        slopes = np.concatenate([_pairwise_slopes(arr[c::int(period)])
                                 for c in range(min(int(period), len(arr)))] or [np.empty(0)])
    else:
        slopes = _pairwise_slopes(arr)
    return np.sort(slopes[~np.isnan(slopes)])


def _median_or_nan(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _interval(slopes: np.ndarray, var_s: float, alpha: float) -> tuple[float, float]:
    count = len(slopes)
    if not count or math.isnan(var_s) or var_s < 0:
        return math.nan, math.nan
    c = float(norm.ppf(1 - alpha / 2)) * math.sqrt(var_s)
    m1 = min(max((count - c) / 2, 1.0), float(count))
    m2 = min(max((count + c) / 2 + 1, 1.0), float(count))
    ranks = np.arange(1, count + 1)
    return float(np.interp(m1, ranks, slopes)), float(np.interp(m2, ranks, slopes))


def _exact(arr: np.ndarray, test: str, alpha: float, period: int | None,
           lag: int | None) -> dict[str, Any]:
    """One series, missing values skipped exactly as pymannkendall skips them: the test on
    the values present, in order; Sen's slope over the pairs of values present at their
    original positions (so a gap keeps its length); for the corrected tests, the
    detrending on the values present, numbered 1..n (pymannkendall's choice, kept)."""
    present = ~np.isnan(arr)
    x = arr[present]
    n = len(x)
    positions = np.flatnonzero(present)
    if test == "seasonal":
        assert period is not None
        return _exact_seasonal(arr, int(period), alpha)
    s, var_s = _score(x)
    slope = _median_or_nan(_sorted_slopes(arr, test, period))
    intercept = (float(np.median(x)) - float(np.median(positions)) * slope) if n else math.nan
    tau = s / (.5 * n * (n - 1)) if n >= 2 else math.nan
    minimum = 3 if test == "hamed_rao" else 2
    if n < minimum:
        return {"trend": NO_TREND, "h": False, "p": math.nan, "z": math.nan, "tau": tau,
                "s": s, "var_s": var_s if test == "original" else math.nan, "slope": slope,
                "intercept": intercept, "n": n}
    if test in ("hamed_rao", "yue_wang"):
        lags = _lags_used(n, lag)
        detrended = x - np.arange(1, n + 1) * slope
        series = rankdata(detrended) if test == "hamed_rao" else detrended
        y = series - series.mean()
        with np.errstate(all="ignore"):
            acov = (np.correlate(y, y, "full") / (n * np.ones(2 * n - 1)))[n - 1:]
            acf = (acov[:lags] / acov[0])[None, :]
        factor = (_hamed_rao_factor(acf, n, float(norm.ppf(1 - alpha / 2)), lags)
                  if test == "hamed_rao"
                  else _yue_wang_factor(acf, n, lags))
        var_s = var_s * float(factor[0])
    z, p, h, trend = _significance(np.array([s]), np.array([var_s]), alpha)
    return {"trend": str(trend[0]), "h": bool(h[0]), "p": float(p[0]), "z": float(z[0]),
            "tau": tau, "s": s, "var_s": var_s, "slope": slope, "intercept": intercept,
            "n": n}


def _exact_seasonal(arr: np.ndarray, period: int, alpha: float) -> dict[str, Any]:
    present = ~np.isnan(arr)
    s, var_s, denominator = 0.0, 0.0, 0.0
    for season in range(min(period, len(arr))):
        sub = arr[season::period]
        sub = sub[~np.isnan(sub)]
        s_c, var_c = _score(sub)
        s, var_s = s + s_c, var_s + var_c
        denominator += .5 * len(sub) * (len(sub) - 1)
    slope = _median_or_nan(_sorted_slopes(arr, "seasonal", period))
    n = int(present.sum())
    intercept = (float(np.median(arr[present]))
                 - float(np.median(np.flatnonzero(present))) / period * slope
                 if n else math.nan)
    if not denominator:
        return {"trend": NO_TREND, "h": False, "p": math.nan, "z": math.nan,
                "tau": math.nan, "s": s, "var_s": var_s, "slope": slope,
                "intercept": intercept, "n": n}
    z, p, h, trend = _significance(np.array([s]), np.array([var_s]), alpha)
    return {"trend": str(trend[0]), "h": bool(h[0]), "p": float(p[0]), "z": float(z[0]),
            "tau": s / denominator, "s": s, "var_s": var_s, "slope": slope,
            "intercept": intercept, "n": n}
