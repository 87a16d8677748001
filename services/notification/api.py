"""HTTP entrypoint of the notification service: a MethodView per resource over the
application's commands and queries, in TMF630 style (the blueprint dumps what they
return with the resource's schema), plus the TMF hub and the public acknowledgement
link's pages."""

from __future__ import annotations

import csv
import html
import io
from typing import Any
from uuid import UUID

from flask import Response, g, request
from flask.views import MethodView

from services.notification import schemas as s
from services.notification.application import NotificationService
from services.notification.domain import Delivery, HubSubscription, Incident, NotificationList
from shared.errors import NotFound
from shared.http.blueprint import Blueprint, wire_names
from shared.http.listing import _matches, expected_version, parse_filters
from shared.http.schemas import list_query
from shared.http.security import public, requires
from shared.readmodel import Listing

READ, WRITE = "sla:read", "sla:write"


class Created:
    """An aggregate as it was just created, with what is shown only now (webhook
    signing secrets); everything else is the aggregate's."""

    def __init__(self, aggregate: Any, **shown: Any) -> None:
        self._aggregate = aggregate
        self.__dict__.update(shown)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._aggregate, name)


def _page(title: str, message: str, status: int,
          form: dict[str, str] | None = None) -> Response:
    """A small HTML page for people following a link; ``form`` adds a confirmation button
    that POSTs the token back (``action``, ``token``, ``button``)."""
    button = "" if form is None else (
        f"<form method='post' action='{html.escape(form['action'])}'>"
        f"<input type='hidden' name='token' value='{html.escape(form['token'])}'>"
        f"<button type='submit'>{html.escape(form['button'])}</button></form>")
    body = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head><body style='font-family:sans-serif'><h1>{html.escape(title)}"
            f"</h1><p>{html.escape(message)}</p>{button}</body></html>")
    return Response(body, status=status, mimetype="text/html",
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


HISTORY_COLUMNS = ("id", "createdAt", "status", "channel", "recipient", "listId", "hubId",
                   "eventType", "reason", "eventIds", "alertIds", "correlationIds",
                   "attemptCount", "deliveredAt", "lastError", "subject")
HISTORY_QUERY = ("eventId", "correlationId", "alertId")  # not attributes: what a delivery carries


def blueprint(runtime: Any) -> Blueprint:
    app: NotificationService = runtime.app
    blp = Blueprint("notification", __name__,
                    description="Notification lists, hub subscriptions, incidents, "
                                "deliveries and their history")

    # --- notification lists --------------------------------------------------------------
    @blp.route("/notificationList")
    class Lists(MethodView):
        @blp.arguments(list_query(s.NotificationList), location="query")
        @blp.response(200, s.NotificationList(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """List notification lists; filter e.g. by kind, owner or name."""
            return app.lists()

        @blp.arguments(s.NotificationListCreate)
        @blp.response(201, s.NotificationList)
        @requires(WRITE)
        def post(self, body: dict[str, Any]) -> Created:
            """Create a notification list with its topics, noise settings and members.

            Webhook members' signing secrets are in the response, once."""
            nlist, secrets_once = app.create_list(**body)
            return Created(nlist, members=[
                {**m, "secret": secrets_once[m["id"]]} if m["id"] in secrets_once else m
                for m in nlist.members])

    @blp.route("/notificationList/<uuid:list_id>")
    class OneList(MethodView):
        @blp.response(200, s.NotificationList)
        @requires(READ)
        def get(self, list_id: UUID) -> NotificationList:
            """Read a notification list."""
            return app.notification_list(list_id)

        @blp.arguments(s.NotificationListPatch)
        @blp.response(200, s.NotificationList)
        @requires(WRITE)
        def patch(self, body: dict[str, Any], list_id: UUID) -> NotificationList:
            """Change a list (merge-patch; If-Match honoured). Members have their own endpoints."""
            return app.update_list(list_id, body, expected_version())

        @blp.response(204)
        @requires(WRITE)
        def delete(self, list_id: UUID) -> Response:
            """Delete a list (its history stays in the audit log and the delivery history)."""
            app.delete_list(list_id, expected_version())
            return Response(status=204)

    @blp.route("/notificationList/<uuid:list_id>/member")
    class Members(MethodView):
        @blp.arguments(s.MemberCreate)
        @blp.response(201, s.Member)
        @requires(WRITE)
        def post(self, body: dict[str, Any], list_id: UUID) -> tuple[dict, int, dict]:
            """Add a member; a webhook member's signing secret is in the response, once."""
            nlist, record, secret = app.add_member(list_id, body, expected_version())
            member = {**record, "href": f"{s.NotificationList.PATH}/{list_id}/member/"
                                        f"{record['id']}"}
            if secret:
                member["secret"] = secret
            return member, 201, {"ETag": f'"{nlist.version}"'}

    @blp.route("/notificationList/<uuid:list_id>/member/<uuid:member_id>")
    class OneMember(MethodView):
        @blp.response(204)
        @requires(WRITE)
        def delete(self, list_id: UUID, member_id: UUID) -> Response:
            """Remove a member from a list."""
            app.remove_member(list_id, str(member_id), expected_version())
            return Response(status=204)

    # --- TMF hub -------------------------------------------------------------------------
    @blp.route("/hub")
    class Hubs(MethodView):
        @blp.arguments(list_query(s.Hub), location="query")
        @blp.response(200, s.Hub(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """Registered event subscriptions (TMF hub)."""
            return app.subscriptions()

        @blp.arguments(s.HubCreate)
        @blp.response(201, s.Hub)
        @requires(WRITE)
        def post(self, body: dict[str, Any]) -> Created:
            """Subscribe a listener: matching events are POSTed to
            ``{callback}/listener/{eventName}`` in the TMF688 envelope, signed with the
            secret returned here once."""
            sub, secret = app.register_hub(body["callback"], body.get("query"))
            return Created(sub, secret=secret)

    @blp.route("/hub/<uuid:hub_id>")
    class OneHub(MethodView):
        @blp.response(200, s.Hub)
        @requires(READ)
        def get(self, hub_id: UUID) -> HubSubscription:
            """Read a hub subscription."""
            return app.subscription(hub_id)

        @blp.response(204)
        @requires(WRITE)
        def delete(self, hub_id: UUID) -> Response:
            """Unsubscribe a listener."""
            app.remove_hub(hub_id)
            return Response(status=204)

    # --- incidents and acknowledgement -------------------------------------------------
    @blp.route("/incident")
    class Incidents(MethodView):
        @blp.arguments(list_query(s.Incident), location="query")
        @blp.response(200, s.Incident(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """Alerts the service was told about; filter e.g. open=true, acknowledged=false."""
            return app.incidents()

    @blp.route("/incident/<uuid:incident_id>")
    class OneIncident(MethodView):
        @blp.response(200, s.Incident)
        @requires(READ)
        def get(self, incident_id: UUID) -> Incident:
            """Read an incident: level, acknowledgement, pending escalations."""
            return app.incident(incident_id)

    @blp.route("/incident/<uuid:incident_id>/acknowledge")
    class IncidentAcknowledgement(MethodView):
        @blp.arguments(s.Acknowledgement)
        @blp.response(200, s.Incident)
        @requires(WRITE)
        def post(self, body: dict[str, Any], incident_id: UUID) -> Incident:
            """Acknowledge: stops escalation and reminders (idempotent). The token's subject
            is recorded as who acknowledged."""
            incident, _ = app.acknowledge(incident_id, g.principal.subject)
            return incident

    def _headline(incident: Any) -> str:
        labels = incident.labels
        return f"{labels.get('parameter')} on {labels.get('scopeType')} {labels.get('scopeId')}"

    @blp.route("/acknowledge", methods=["GET"])
    @blp.arguments(s.AckLinkQuery, location="query")
    @blp.response(200, {"type": "string"}, content_type="text/html",
                  description="A page that asks the recipient to confirm (or says where "
                              "links come from); opening it acknowledges nothing")
    @blp.alt_response(403, schema={"type": "string"}, content_type="text/html",
                      description="A page saying the link is not valid (tampered, expired, "
                                  "or for an incident that is gone)")
    @public
    def acknowledge_link(query: dict[str, Any]) -> Response:
        """The link in a message: a page that asks its recipient to confirm. Opening the
        link acknowledges nothing, so a mail scanner or link preview that fetches it can
        neither use it up nor acknowledge in the recipient's name; the page's button POSTs
        the token back. Each link names one incident and one recipient, expires
        (SLA_ACK_TOKEN_TTL), works once, and stops working when its recipient leaves the
        list; anything else is refused. Without a token, a page explains where the link
        comes from."""
        token = query.get("token")
        if not token:
            return _page("Acknowledge an SLA alert",
                         "Open the acknowledgement link from your notification message.", 200)
        try:
            incident = app.ack_link_incident(token)
        except (ValueError, NotFound) as exc:
            return _page("Link not valid", str(exc), 403)
        return _page("Acknowledge this SLA alert?",
                     f"{_headline(incident)}: acknowledging stops its escalation and "
                     "reminders, in your name.", 200,
                     form={"action": request.path, "token": token, "button": "Acknowledge"})

    @blp.route("/acknowledge", methods=["POST"])
    @blp.arguments(s.AckLinkForm, location="form")
    @blp.response(200, {"type": "string"}, content_type="text/html",
                  description="A page saying what was acknowledged")
    @blp.alt_response(403, schema={"type": "string"}, content_type="text/html",
                      description="A page saying the link is not valid (tampered, expired, "
                                  "used, or for an incident that is gone)")
    @public
    def confirm_acknowledge_link(form: dict[str, Any]) -> Response:
        """The confirmation of the link's page (a form POST with the link's token):
        acknowledges in the name of the recipient the link was sent to, once."""
        try:
            incident, changed = app.acknowledge_link(form["token"])
        except (ValueError, NotFound) as exc:
            return _page("Link not valid", str(exc), 403)
        return _page("Acknowledged" if changed else "Already acknowledged",
                     f"{_headline(incident)}: acknowledged by {incident.acknowledged_by}; "
                     "escalation stopped.", 200)

    # --- deliveries and history ----------------------------------------------------------
    def history() -> Listing:
        """Deliveries carrying the event, correlation and alert the query names."""
        return app.history(event_id=request.args.get("eventId") or None,
                           correlation_id=request.args.get("correlationId") or None,
                           alert_id=request.args.get("alertId") or None)

    @blp.route("/delivery")
    class Deliveries(MethodView):
        @blp.arguments(s.HistoryQuery, location="query")
        @blp.response(200, s.Delivery(many=True), reserved=HISTORY_QUERY)
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """Delivery history: filter by listId, recipient, status, eventType, eventId,
            alertId, correlationId, createdAt.gte ..."""
            return history()

    @blp.route("/delivery/export", methods=["GET"])
    @blp.arguments(s.HistoryQuery, location="query")
    @blp.response(200, {"type": "string"}, content_type="text/csv",
                  description="One delivery a row, with a header row")
    @requires(READ)
    def export_deliveries(_: Any) -> Response:
        """The same history as CSV (same filters), for spreadsheets and archives."""
        filters = parse_filters(request.args, wire_names(s.Delivery()),
                                {*HISTORY_QUERY, "offset", "limit", "fields", "sort"})
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(HISTORY_COLUMNS)
        for item in s.Delivery(many=True).dump(history()):
            if not all(_matches(item, a, op, raws) for a, op, raws in filters):
                continue
            writer.writerow([";".join(v) if isinstance(v := item.get(c), list)
                             else ("" if v is None else v) for c in HISTORY_COLUMNS])
        return Response(buffer.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition":
                                 'attachment; filename="notification-deliveries.csv"'})

    @blp.route("/delivery/deadLetter")
    class DeadLetters(MethodView):
        @blp.arguments(list_query(s.Delivery), location="query")
        @blp.response(200, s.Delivery(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """Deliveries that failed for good (attempts used up, or refused); retry by hand."""
            return app.dead_letters()

    @blp.route("/delivery/<uuid:delivery_id>")
    class OneDelivery(MethodView):
        @blp.response(200, s.Delivery)
        @requires(READ)
        def get(self, delivery_id: UUID) -> Delivery:
            """One delivery with its content and every attempt."""
            return app.delivery(delivery_id)

    @blp.route("/delivery/<uuid:delivery_id>/retry")
    class DeliveryRetry(MethodView):
        @blp.response(200, s.Delivery)
        @requires(WRITE)
        def post(self, delivery_id: UUID) -> Delivery:
            """Send a failed delivery again (its attempts start over)."""
            return app.retry_delivery(delivery_id, g.principal.subject)

    @blp.route("/decision")
    class Decisions(MethodView):
        @blp.arguments(list_query(s.Decision), location="query")
        @blp.response(200, s.Decision(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """Why each event did or did not become a message on each list: queued, grouped,
            inhibited, suppressed, sent; filter by eventId, listId, alertId, decision ..."""
            return app.decisions()

    return blp
