"""HTTP entrypoint of outage-negotiation: one flask-smorest ``MethodView`` per resource,
thin over the application's commands and queries; each move of an outage is a ``POST``
on the outage (``…/propose``, ``…/agree`` …) whose actor is the token's subject. A rule
a window breaks is a 409 whose code names the rule (``MINIMUM_NOTICE``, ``BLACKOUT``,
``OVERLAP``, ``CAP``) and whose details say what would pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from uuid import UUID

from flask import Response, g, request
from flask.views import MethodView

from services.outage_negotiation import ROOT, calendar, pages
from services.outage_negotiation import schemas as s
from services.outage_negotiation.application import OutageNegotiation
from services.outage_negotiation.domain import (
    AlreadyAnswered,
    CustomerBlackouts,
    DeadlinePassed,
    OutageRuleBroken,
    PlannedOutage,
)
from shared import outage_links as links
from shared.errors import InvalidTransition, InvalidValue, NotFound
from shared.http.blueprint import Blueprint
from shared.http.errors import ApiError
from shared.http.listing import expected_version
from shared.http.schemas import list_query
from shared.http.security import public, requires
from shared.readmodel import Listing

READ, WRITE = "sla:read", "sla:write"


@dataclass(frozen=True)
class Receipt:
    """A customer's answer as it sees it: its outage and who it is."""

    outage: PlannedOutage
    customer: str
    answer: str
RULES_DOC = {"409": {
    "description": "a rule refused it: INVALID_TRANSITION (the status does not allow the "
                   "move), UNKNOWN_REFERENCE (unknown or retired offerings), "
                   "MINIMUM_NOTICE (details.earliestStart), BLACKOUT, OVERLAP or CAP "
                   "(details say what would pass), STALE_VERSION (If-Match)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}


def rule_refusals(view: Callable[..., Any]) -> Callable[..., Any]:
    """A broken rule as a 409 naming it, with what would pass in ``details``."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except OutageRuleBroken as exc:
            raise ApiError(409, str(exc), exc.rule, exc.details) from None

    return checked


def actor() -> str:
    return str(g.principal.subject)


def blueprint(runtime: Any) -> Blueprint:
    app: OutageNegotiation = runtime.app
    blp = Blueprint("outage-negotiation", __name__,
                    description="Planned outages, their negotiation with the customers "
                                "they affect, and customers' blackout periods")

    # --- planned outages -----------------------------------------------------------------
    @blp.route("/plannedOutage")
    class Outages(MethodView):
        @blp.arguments(list_query(s.PlannedOutage), location="query")
        @blp.response(200, s.PlannedOutage(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """List planned outages; filter e.g. by status, impact, offeringGroupId or
            startDateTime."""
            return app.outages()

        @blp.arguments(s.PlannedOutageCreate)
        @blp.response(201, s.PlannedOutage)
        @blp.doc(responses=RULES_DOC)
        @requires(WRITE)
        def post(self, body: dict[str, Any]) -> PlannedOutage:
            """Draft a planned outage: what it affects, the windows proposed (most
            preferred first), the reason and the expected impact. Windows in the past or
            ending before they start are refused (400, naming the window); unknown or
            retired offerings too (409)."""
            return app.draft(**body, actor=actor())

    @blp.route("/plannedOutage/<uuid:outage_id>")
    class OneOutage(MethodView):
        @blp.response(200, s.PlannedOutage)
        @requires(READ)
        def get(self, outage_id: UUID) -> PlannedOutage:
            """Read a planned outage: its windows, the customers it affects as resolved
            when it was proposed, the overlaps flagged and every move."""
            return app.outage(outage_id)

        @blp.arguments(s.PlannedOutagePatch)
        @blp.response(200, s.PlannedOutage)
        @blp.doc(responses=RULES_DOC)
        @requires(WRITE)
        def patch(self, body: dict[str, Any], outage_id: UUID) -> PlannedOutage:
            """Change a draft (merge-patch; If-Match honoured)."""
            return app.revise(outage_id, body, actor(), expected_version())

    def move(name: str, schema: type, command: Callable[..., PlannedOutage],
             summary: str) -> None:
        @blp.route(f"/plannedOutage/<uuid:outage_id>/{name}", methods=["POST"],
                   endpoint=f"{name}_outage")
        @blp.arguments(schema)
        @blp.response(200, s.PlannedOutage)
        @blp.doc(responses=RULES_DOC)
        @requires(WRITE)
        @rule_refusals
        def act(body: dict[str, Any], outage_id: UUID) -> PlannedOutage:
            return command(outage_id, actor=actor(), expected_version=expected_version(),
                           **body)

        act.__doc__ = summary

    move("propose", s.Move, app.propose,
         "Propose a draft: the customers and purchased offerings it affects are resolved "
         "from the inventory now and kept with it; every window must give the SLA types' "
         "minimum notice, miss the customers' blackout periods and stay within the caps; "
         "overlaps with other outages are flagged (or refused, by policy).")
    move("negotiate", s.Negotiation, app.open_negotiation,
         "Open the negotiation of a proposed outage with the customers it affects: each "
         "answers by its response link until the deadline, and the policy says when the "
         "answers agree a window (at the deadline: agreed, or left to the planner with a "
         "summary). Without a deadline the planner agrees by hand.")
    move("round", s.Negotiation, app.new_round,
         "Ask the customers again (a new round; the earlier round's links answer nothing "
         "any more).")

    @blp.route("/plannedOutage/<uuid:outage_id>/responseLink", methods=["POST"])
    @blp.arguments(s.LinkRequest)
    @blp.response(200, s.ResponseLink, etag=False)
    @requires(WRITE)
    def response_link(body: dict[str, Any], outage_id: UUID) -> dict[str, Any]:
        """The token that lets one affected customer answer the current round, until its
        deadline (or the first window's start)."""
        return app.response_link(outage_id, body["customer_id"])

    @blp.route("/plannedOutageResponse", methods=["POST"])
    @blp.arguments(s.CustomerResponse)
    @blp.response(200, s.ResponseReceipt, etag=False)
    @blp.doc(responses={"403": {"description": "INVALID_LINK (not made here, changed, or "
                                               "of an earlier round) or LINK_EXPIRED"},
                        "409": {"description": "ALREADY_ANSWERED, DEADLINE_PASSED, or "
                                               "the outage is not in negotiation"}})
    @public
    def respond(body: dict[str, Any]) -> Receipt:
        """A customer's answer, by its response link's token (no account needed): accept
        a window, reject with a reason, or counter-propose windows; once a round."""
        try:
            outage, given = app.respond(**body)
        except links.ExpiredLink as exc:
            raise ApiError(403, str(exc), "LINK_EXPIRED") from None
        except links.InvalidLink as exc:
            raise ApiError(403, str(exc), "INVALID_LINK") from None
        except AlreadyAnswered as exc:
            raise ApiError(409, str(exc), "ALREADY_ANSWERED") from None
        except DeadlinePassed as exc:
            raise ApiError(409, str(exc), "DEADLINE_PASSED") from None
        return Receipt(outage, given.customer_id, given.answer)

    @blp.route("/respond", methods=["GET"])
    @blp.arguments(s.PageQuery, location="query")
    @blp.response(200, {"type": "string"}, content_type="text/html",
                  description="The outage and a form to answer it; opening it answers "
                              "nothing")
    @blp.alt_response(403, schema={"type": "string"}, content_type="text/html",
                      description="A page saying the link is not valid or expired")
    @public
    def response_page(query: dict[str, Any]) -> Response:
        """The page a customer's response link opens: the outage, its windows and a form
        (no script) that POSTs the answer back."""
        token = query.get("token") or ""
        if not token:
            return pages.page("Answer a planned outage", [
                "Open the response link you were sent for the outage."], 200)
        try:
            outage, customer = app.link_outage(token)
        except (links.InvalidLink, links.ExpiredLink, NotFound) as exc:
            return pages.page("Link not valid", [str(exc)], 403)
        if app.answer_of(outage, customer["customerId"]) is not None:
            return pages.page("Already answered", [
                "Your answer to this round was recorded; thank you."], 200)
        return pages.page(f"Planned outage: {outage.name or outage.reason}", [
            f"Reason: {outage.reason}. Expected impact: {outage.impact}.",
            "Choose the window that suits you, or reject it with your reason."], 200,
            pages.answer_form(request.path, token, outage, customer))

    @blp.route("/respond", methods=["POST"])
    @blp.arguments(s.PageForm, location="form")
    @blp.response(200, {"type": "string"}, content_type="text/html",
                  description="A page saying what was recorded")
    @blp.alt_response(403, schema={"type": "string"}, content_type="text/html",
                      description="A page saying the link is not valid or expired")
    @blp.alt_response(409, schema={"type": "string"}, content_type="text/html",
                      description="A page saying the answer cannot be taken (answered "
                                  "before, or after the deadline)")
    @public
    def answer_page(form: dict[str, Any]) -> Response:
        """The page's form: the customer's answer, once a round."""
        choice = form["choice"]
        answer, _, index = choice.partition(":")
        try:
            app.respond(form["token"], answer, int(index or 0), form.get("reason") or None)
        except (links.InvalidLink, links.ExpiredLink, NotFound) as exc:
            return pages.page("Link not valid", [str(exc)], 403)
        except InvalidTransition as exc:
            return pages.page("Answer not taken", [str(exc)], 409)
        except InvalidValue as exc:
            return pages.page("Answer not taken", [
                "; ".join(" ".join(v) for v in exc.errors.values())], 400)
        return pages.page("Thank you", ["Your answer was recorded."], 200)
    move("agree", s.Agreement, app.agree,
         "Agree one of the proposed windows (checked again against blackouts, overlaps "
         "and caps): it is published to monitoring and notification, and the outage "
         "starts and completes by the clock at its start and end.")
    move("reject", s.ReasonedMove, app.reject, "Reject a proposed or negotiated outage.")
    move("cancel", s.ReasonedMove, app.cancel,
         "Cancel an outage not started yet (an agreed one's cancellation is published).")
    move("reschedule", s.Reschedule, app.reschedule,
         "New windows for an agreed outage: negotiated again with the customers it "
         "touches, every rule checked again; its old window is no longer in force.")
    move("extend", s.Extension, app.extend,
         "A later end for an outage in progress, with the reason (published as a notice "
         "of extension).")

    # --- customers' blackout periods -----------------------------------------------------
    @blp.route("/customerBlackout")
    class Blackouts(MethodView):
        @blp.arguments(list_query(s.CustomerBlackouts), location="query")
        @blp.response(200, s.CustomerBlackouts(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """The customers' declared blackout periods."""
            return app.blackout_listing()

    @blp.route("/customerBlackout/<string:customer_id>")
    class OneCustomerBlackouts(MethodView):
        @blp.response(200, s.CustomerBlackouts)
        @requires(READ)
        def get(self, customer_id: str) -> CustomerBlackouts:
            """A customer's declared blackout periods."""
            return app.blackouts_of(customer_id)

        @blp.arguments(s.BlackoutDeclaration)
        @blp.response(200, s.CustomerBlackouts)
        @requires(WRITE)
        def put(self, body: dict[str, Any], customer_id: str) -> CustomerBlackouts:
            """Declare a customer's periods free of maintenance (replacing those declared
            before): every outage that affects the customer is checked against them."""
            return app.declare_blackouts(customer_id, body["periods"], actor())

    # --- the planner's ranking of candidate windows, and its choice ----------------------
    @blp.route("/plannedOutage/<uuid:outage_id>/candidateWindow", methods=["GET"])
    @blp.arguments(list_query(s.CandidateWindow), location="query")
    @blp.response(200, s.CandidateWindow(many=True))
    @blp.doc(responses=RULES_DOC)
    @requires(READ)
    def candidate_windows(_: Any, outage_id: UUID) -> list[dict[str, Any]]:
        """The ranking of an outage in negotiation (after the deadline too): the round's
        proposed windows and every counter-proposed one, best first — acceptable to the
        most customers, in the fewest blackout periods, with the least SLA exposure,
        then the earliest — each with its scores, whether it passes the rules and why."""
        return app.candidate_windows(outage_id)

    move("chooseWindow", s.WindowChoice, app.choose_window,
         "Choose a candidate window (its rank, or its window) with a reason: a new round "
         "whose one window it is, asking only the customers who had not accepted it (the "
         "others' acceptance is carried into it); agreed at once when the acceptances "
         "already meet the policy. Checked as agree checks a window.")

    # --- customers' calendar feeds -------------------------------------------------------
    @blp.route("/customerCalendarLink", methods=["POST"])
    @blp.arguments(s.CalendarLinkRequest)
    @blp.response(200, s.CalendarLink, etag=False)
    @blp.doc(responses={"409": {
        "description": "UNKNOWN_REFERENCE: no purchased offering of the customer is known",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}})
    @requires(WRITE)
    def calendar_link(body: dict[str, Any]) -> dict[str, Any]:
        """The address of a customer's iCalendar feed of its planned outages, for its
        calendar to subscribe to: signed, naming the customer, needing no token and not
        expiring (changing the suite's key revokes it)."""
        link = app.calendar_link(body["customer_id"])
        feed = f"{app.settings.public_url}{ROOT}/calendar/{link['token']}.ics"
        return {**link, "url": feed}

    @blp.route("/calendar/<string:token>.ics", methods=["GET"])
    @blp.response(200, {"type": "string"}, content_type="text/calendar",
                  description="The customer's planned outages as an iCalendar feed "
                              "(RFC 5545)")
    @blp.doc(responses={"403": {
        "description": "INVALID_LINK: the link was not made here, or it was changed",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}})
    @public
    def calendar_feed(token: str) -> Response:
        """A customer's planned outages as iCalendar events (agreed, in progress,
        completed or extended; cancelled after being agreed; from 90 days back), by its
        calendar link."""
        try:
            customer, found = app.calendar_of(token)
        except links.InvalidLink as exc:
            raise ApiError(403, str(exc), "INVALID_LINK") from None

        def address(outage_id: UUID) -> str:
            return f"{app.settings.public_url}{ROOT}/plannedOutage/{outage_id}"

        return Response(calendar.feed(found, customer, address), status=200,
                        mimetype="text/calendar",
                        headers={"Cache-Control": "private, max-age=300",
                                 "Referrer-Policy": "no-referrer",
                                 "Content-Disposition": 'inline; filename="outages.ics"'})
    # --- the negotiation's figures -------------------------------------------------------
    @blp.route("/negotiationFigures")
    class NegotiationFigures(MethodView):
        @blp.arguments(s.FiguresQuery, location="query")
        @blp.response(200, s.NegotiationSummary)
        @requires(READ)
        def get(self, query: dict[str, Any]) -> dict[str, Any]:
            """The negotiation's figures over the outages agreed in a period (``from``
            inclusive, ``to`` exclusive): notice given, cycle time, rounds, acceptance
            rate pooled over customers, and the share agreed by silence."""
            return app.negotiation_summary(query.get("start"), query.get("end"))

    return blp
