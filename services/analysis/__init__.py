"""The analysis service (to come: API root ``/analysis/v1``, distributed port 8083): trend
analysis of groups of like purchased offerings, aggregate analysis, offering-wide problems,
SLA credits and the capability and cost of the process (issue 11). What exists so far is
its pure computational core, :mod:`services.analysis.trends` (docs/trend-analysis.md); the
service is not part of the suite yet."""
