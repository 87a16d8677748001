"""HTTP entrypoint of analysis: the aggregate analysis of a period, as JSON or CSV
(``Accept: text/csv`` or ``format=csv``). A parameter it does not know, a time that is
not one, a ``groupBy`` outside the dimensions or a period that ends before it starts is
a 400 naming the field. And the SLA credits of closed conformance periods, listed and
read one by one; and the offering-wide problems (TMF656 ``serviceProblem``) with the
rules that open them (``serviceProblemRule``)."""

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
from shared.http.listing import expected_version
from shared.http.schemas import list_query
from shared.http.security import requires
from shared.readmodel import Listing

READ, WRITE = "sla:read", "sla:write"
#: Running an analysis records it (and publishes its results): an SLA manager's act.
ANALYSE = WRITE
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
    # --- offering-wide problems ------------------------------------------------------------
    @blp.route("/serviceProblem")
    class Problems(MethodView):
        @blp.arguments(s.ServiceProblemQuery, location="query")
        @blp.response(200, s.ServiceProblemOut(many=True), reserved=("customerId",))
        @requires(READ)
        def get(self, args: dict[str, Any]) -> Listing:
            """The offering-wide problems (TMF656 ServiceProblem), filtered e.g. by
            productOfferingId, status (inProgress, resolved) or customerId (problems of
            offerings in which the customer's purchased offerings had a violation);
            paged with offset and limit."""
            return app.service_problems(args.get("customerId"))

    @blp.route("/serviceProblem/<uuid:problem_id>")
    class OneProblem(MethodView):
        @blp.response(200, s.ServiceProblemOut)
        @requires(READ)
        def get(self, problem_id: UUID) -> dict[str, Any]:
            """One offering-wide problem: the offering, the purchased offerings and
            customers affected (counts, and the latest ones), its evidence, first and last
            seen, its status and when it resolves if quiet."""
            return s.problem_view(app.service_problem(problem_id))

    @blp.route("/serviceProblemRule")
    class Rules(MethodView):
        @blp.arguments(list_query(s.ProblemRuleOut), location="query")
        @blp.response(200, s.ProblemRuleOut(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """The rules set: an offering's own, and the default (without one, the
            built-in default applies: 3 purchased offerings or half the active ones
            within PT24H, resolved after PT6H quiet)."""
            return app.problem_rules()

    @blp.route("/serviceProblemRule/<string:rule_id>")
    class OneRule(MethodView):
        @blp.response(200, s.ProblemRuleOut)
        @requires(READ)
        def get(self, rule_id: str) -> Any:
            """The rule of an offering (its id), or the default one (``default``)."""
            return app.problem_rule_of(rule_id)

        @blp.arguments(s.ProblemRuleIn)
        @blp.response(200, s.ProblemRuleOut)
        @requires(WRITE)
        def put(self, body: dict[str, Any], rule_id: str) -> Any:
            """Set the rule of an offering (its id) or the default (``default``);
            replacing a rule names its version in If-Match. Open problems follow it from
            their next violation."""
            return app.set_problem_rule(rule_id, body, expected_version())

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
