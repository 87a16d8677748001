"""HTTP entrypoint of analysis: the aggregate analysis of a period, as JSON or CSV
(``Accept: text/csv`` or ``format=csv``). A parameter it does not know, a time that is
not one, a ``groupBy`` outside the dimensions or a period that ends before it starts is
a 400 naming the field. And the SLA credits of closed conformance periods, listed and
read one by one."""

from __future__ import annotations

import csv
import io
from typing import Any
from uuid import UUID

from flask import Response, g, request
from flask.views import MethodView

from services.analysis import aggregates
from services.analysis import schemas as s
from services.analysis.application import Analysis
from shared.errors import InvalidValue
from shared.http.blueprint import Blueprint
from shared.http.schemas import list_query
from shared.http.security import requires
from shared.readmodel import Listing

READ = "sla:read"
#: Running an analysis records it (and publishes its results): an SLA manager's act.
ANALYSE = "sla:write"
FILTERS = {"customerId": "customer_id", "customerGroup": "customer_group",
           "offeringGroupId": "offering_group_id", "productOfferingId": "product_offering_id",
           "slaTypeId": "sla_type_id", "purchasedOfferingId": "purchased_offering_id"}
KNOWN = {f.data_key or name for name, f in s.AggregateAnalysisQuery().fields.items()}


def _wants_csv(args: dict[str, Any]) -> bool:
    if args.get("format"):
        return args["format"] == "csv"
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv" and request.accept_mimetypes["text/csv"] > \
        request.accept_mimetypes["application/json"]


def blueprint(runtime: Any) -> Blueprint:
    app: Analysis = runtime.app
    blp = Blueprint("analysis", __name__,
                    description="Aggregate analysis of the window summaries monitoring "
                                "publishes, across customers, customer groups, offering "
                                "groups, offerings and SLA types")

    @blp.route("/aggregateAnalysis")
    class AggregateAnalysis(MethodView):
        @blp.arguments(s.AggregateAnalysisQuery, location="query")
        @blp.response(200, s.AggregateAnalysis, etag=False)
        @blp.alt_response(200, content_type="text/csv", description=(
            "the same items as CSV (Accept: text/csv or format=csv): the groupBy "
            "dimensions, then the figures, one row per group and parameter"),
            success=True, schema={"type": "string"})
        @requires(READ)
        def get(self, args: dict[str, Any]) -> Any:
            """The figures of a period (windows ending in (from, to]), filtered by
            customerId, customerGroup, offeringGroupId, productOfferingId, slaTypeId,
            purchasedOfferingId (comma-separated alternatives) and grouped by any of them
            (groupBy), one row per group and parameter: availability pooled by time, the
            share of purchased offerings meeting their target, breaches and breached
            minutes, percentiles of the measured values and the SLA credit exposure."""
            unknown = sorted(set(request.args) - KNOWN)
            if unknown:
                raise InvalidValue({f"query.{name}": [f"unknown query parameter; known: "
                                           f"{', '.join(sorted(KNOWN))}"] for name in unknown})
            query = aggregates.AggregateQuery(
                start=args["start"].timestamp(), end=args["end"].timestamp(),
                filters={wire: args[attr] for wire, attr in FILTERS.items() if attr in args},
                group_by=tuple(args["group_by"]), parameter=args.get("parameter"),
                scope_type=args["scope_type"])
            items = app.aggregate(query)
            if _wants_csv(args):
                header, rows = aggregates.csv_rows(query.group_by, items)
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerow(header)
                writer.writerows(rows)
                return Response(buffer.getvalue(), mimetype="text/csv", headers={
                    "Content-Disposition": 'attachment; filename="aggregate-analysis.csv"'})
            return {"valid_for": {"start_date_time": s.iso(args["start"]),
                                  "end_date_time": s.iso(args["end"])},
                    "group_by": list(query.group_by),
                    "filter": {k: list(v) for k, v in query.filters.items()},
                    "parameter": query.parameter, "scope_type": query.scope_type,
                    "item": items}

    # --- SLA credits ---------------------------------------------------------------------
    @blp.route("/slaCredit")
    class SlaCredits(MethodView):
        @blp.arguments(list_query(s.SlaCredit), location="query")
        @blp.response(200, s.SlaCredit(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """List the SLA credits of closed conformance periods; filter by
            purchasedOfferingId, customerId, slaTypeId, status and the period
            (periodStart.gte=…, periodEnd.lte=…), page with offset and limit."""
            return app.sla_credits()

    @blp.route("/slaCredit/<uuid:credit_id>")
    class OneSlaCredit(MethodView):
        @blp.response(200, s.SlaCredit)
        @requires(READ)
        def get(self, credit_id: UUID) -> dict[str, Any]:
            """Read one SLA credit: the breached periods, the percentage, the amount, the
            crossings behind it, and the windows that arrived after it was computed."""
            return app.sla_credit(credit_id)

    # --- trend analysis --------------------------------------------------------------------
    @blp.route("/trendAnalysis")
    class TrendAnalyses(MethodView):
        @blp.arguments(list_query(s.TrendAnalysisBrief), location="query")
        @blp.response(200, s.TrendAnalysisBrief(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """List trend analysis runs, without their results (filter by trigger, actor
            or analysedAt; sort=-analysedAt for the newest first)."""
            return app.trend_runs()

        @blp.arguments(s.TrendQuestion)
        @blp.response(201, s.TrendAnalysis)
        @requires(ANALYSE)
        def post(self, body: dict[str, Any]) -> Any:
            """Run a trend analysis now: a series per group and parameter over the
            period, a point per day, week or month; each tested (Mann-Kendall with Sen's
            slope: original, seasonal, or corrected for autocorrelation) and, when it
            deteriorates, projected to its conformance target. The run is recorded and
            each series' result published as an AnalysisResultEvent (logged on its
            product offerings in the inventory)."""
            return app.analyse_trends(s.TrendQuestion.query(body), str(g.principal.subject))

    @blp.route("/trendAnalysis/<uuid:run_id>")
    class OneTrendAnalysis(MethodView):
        @blp.response(200, s.TrendAnalysis)
        @requires(READ)
        def get(self, run_id: UUID) -> Any:
            """Read a trend analysis run: its question, when and by whom it was asked,
            and every series' result with the points it was computed from."""
            return app.trend_run(run_id)

    return blp
