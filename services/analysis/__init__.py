"""The analysis service (API root ``/analysis/v1``, distributed port 8083): trend
analysis of groups of like purchased offerings, aggregate analysis, offering-wide problems,
SLA credits and the capability and cost of the process (issue 11). What exists so far:
aggregate analysis over the window summaries monitoring publishes, kept in a stored read
model beside replicas of the registry's inventory, offerings, groups, SLA types and
standards (docs/analysis.md); trend analysis on request and daily over the same summaries
(:mod:`~services.analysis.trend_series`, :mod:`~services.analysis.trend_runs`, its pure
core :mod:`~services.analysis.trends`; docs/trend-analysis.md), each result published for
the inventory's log; and the SLA credits of each closed conformance period, which its
clock computes and publishes to billing (:mod:`services.analysis.credits`;
docs/analysis.md)."""

from shared.config import SERVICES

#: The service's API root.
ROOT = str(SERVICES["analysis"]["root"])
