"""HTTP entrypoint of the notification service: thin views over the application's
commands and queries, in TMF630 style, plus the TMF hub and the public acknowledgement
link."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from flask import Response, g, request
from flask_smorest import Blueprint

from services.notification import resources
from services.notification import schemas as s
from services.notification.application import NotificationService
from shared.errors import NotFound
from shared.http.listing import (
    created_response,
    expected_version,
    fields_of,
    list_response,
    one_response,
)
from shared.http.schemas import list_query
from shared.http.security import public, requires

READ, WRITE = "sla:read", "sla:write"
SETTINGS = ("groupBy", "groupWait", "groupInterval", "repeatInterval", "escalation")


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in SETTINGS:
        if key in body:
            value = body.pop(key)
            if key == "escalation" and value is not None:
                value = {"nextListId": str(value["nextListId"]), "delay": value["delay"]}
            out[key] = value
    return out


def _topics(topics: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"eventTypes": list(t.get("eventTypes") or ["*"]),
             "minSeverity": t.get("minSeverity") or "info",
             "offeringGroupIds": list(t.get("offeringGroupIds") or []),
             "offeringIds": list(t.get("offeringIds") or []),
             "customerIds": list(t.get("customerIds") or [])} for t in topics]


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


def blueprint(runtime: Any) -> Blueprint:
    app: NotificationService = runtime.app
    blp = Blueprint("notification", __name__,
                    description="Notification lists, hub subscriptions, incidents, "
                                "deliveries and their history")

    # --- notification lists --------------------------------------------------------------
    @blp.route("/notificationList", methods=["GET"])
    @blp.arguments(list_query(s.NotificationList), location="query")
    @blp.response(200, s.NotificationList(many=True))
    @requires(READ)
    def list_lists(_: Any) -> Response:
        """List notification lists; filter e.g. by kind, owner or name."""
        return list_response(map(resources.notification_list, app.lists()),
                             fields_of(s.NotificationList))

    @blp.route("/notificationList", methods=["POST"])
    @blp.arguments(s.NotificationListCreate)
    @blp.response(201, s.NotificationList)
    @requires(WRITE)
    def create_list(body: dict[str, Any]) -> Response:
        """Create a notification list with its topics, noise settings and members.

        Webhook members' signing secrets are in the response, once."""
        settings = _settings(body)
        nlist, secrets_once = app.create_list(
            name=body["name"], purpose=body.get("purpose"), owner=body.get("owner"),
            kind=body["kind"], customer_ids=body.get("customerIds") or [],
            offering_group_ids=body.get("offeringGroupIds") or [],
            topics=_topics(body["topics"]), settings=settings,
            members=body.get("members") or [])
        representation = resources.notification_list(nlist)
        for m in representation["members"]:
            if m["id"] in secrets_once:
                m["secret"] = secrets_once[m["id"]]
        return created_response(representation, nlist.version)

    @blp.route("/notificationList/<uuid:list_id>", methods=["GET"])
    @blp.response(200, s.NotificationList)
    @requires(READ)
    def get_list(list_id: UUID) -> Response:
        """Read a notification list."""
        nlist = app.notification_list(list_id)
        return one_response(resources.notification_list(nlist), nlist.version)

    @blp.route("/notificationList/<uuid:list_id>", methods=["PATCH"])
    @blp.arguments(s.NotificationListPatch)
    @blp.response(200, s.NotificationList)
    @requires(WRITE)
    def patch_list(body: dict[str, Any], list_id: UUID) -> Response:
        """Change a list (merge-patch; If-Match honoured). Members have their own endpoints."""
        changes: dict[str, Any] = {}
        settings = _settings(body)
        if settings:
            changes["settings"] = settings
        for key, attr in (("name", "name"), ("purpose", "purpose"), ("owner", "owner"),
                          ("customerIds", "customer_ids"),
                          ("offeringGroupIds", "offering_group_ids")):
            if key in body:
                changes[attr] = body[key] if body[key] is not None or key in (
                    "purpose", "owner") else []
        if "topics" in body:
            changes["topics"] = _topics(body["topics"])
        nlist = app.update_list(list_id, changes, expected_version())
        return one_response(resources.notification_list(nlist), nlist.version)

    @blp.route("/notificationList/<uuid:list_id>", methods=["DELETE"])
    @blp.response(204)
    @requires(WRITE)
    def delete_list(list_id: UUID) -> Response:
        """Delete a list (its history stays in the audit log and the delivery history)."""
        app.delete_list(list_id, expected_version())
        return Response(status=204)

    @blp.route("/notificationList/<uuid:list_id>/member", methods=["POST"])
    @blp.arguments(s.MemberCreate)
    @blp.response(201, s.Member)
    @requires(WRITE)
    def add_member(body: dict[str, Any], list_id: UUID) -> Response:
        """Add a member; a webhook member's signing secret is in the response, once."""
        nlist, record, secret = app.add_member(list_id, body, expected_version())
        representation = resources.member(record)
        representation["href"] = f"{resources.ROOT}/notificationList/{list_id}/member/" \
                                 f"{record['id']}"
        if secret:
            representation["secret"] = secret
        return one_response(representation, nlist.version, status=201,
                            location=representation["href"])

    @blp.route("/notificationList/<uuid:list_id>/member/<uuid:member_id>",
               methods=["DELETE"])
    @blp.response(204)
    @requires(WRITE)
    def remove_member(list_id: UUID, member_id: UUID) -> Response:
        """Remove a member from a list."""
        app.remove_member(list_id, str(member_id), expected_version())
        return Response(status=204)

    # --- TMF hub -------------------------------------------------------------------------
    @blp.route("/hub", methods=["GET"])
    @blp.arguments(list_query(s.Hub), location="query")
    @blp.response(200, s.Hub(many=True))
    @requires(READ)
    def list_hubs(_: Any) -> Response:
        """Registered event subscriptions (TMF hub)."""
        return list_response(map(resources.hub, app.subscriptions()), fields_of(s.Hub))

    @blp.route("/hub", methods=["POST"])
    @blp.arguments(s.HubCreate)
    @blp.response(201, s.Hub)
    @requires(WRITE)
    def register_hub(body: dict[str, Any]) -> Response:
        """Subscribe a listener: matching events are POSTed to
        ``{callback}/listener/{eventName}`` in the TMF688 envelope, signed with the
        secret returned here once."""
        sub, secret = app.register_hub(body["callback"], body.get("query"))
        return created_response({**resources.hub(sub), "secret": secret}, sub.version)

    @blp.route("/hub/<uuid:hub_id>", methods=["GET"])
    @blp.response(200, s.Hub)
    @requires(READ)
    def get_hub(hub_id: UUID) -> Response:
        """Read a hub subscription."""
        sub = app.subscription(hub_id)
        return one_response(resources.hub(sub), sub.version)

    @blp.route("/hub/<uuid:hub_id>", methods=["DELETE"])
    @blp.response(204)
    @requires(WRITE)
    def remove_hub(hub_id: UUID) -> Response:
        """Unsubscribe a listener."""
        app.remove_hub(hub_id)
        return Response(status=204)

    # --- incidents and acknowledgement -------------------------------------------------
    @blp.route("/incident", methods=["GET"])
    @blp.arguments(list_query(s.Incident), location="query")
    @blp.response(200, s.Incident(many=True))
    @requires(READ)
    def list_incidents(_: Any) -> Response:
        """Alerts the service was told about; filter e.g. open=true, acknowledged=false."""
        return list_response(map(resources.incident, app.incidents()), fields_of(s.Incident))

    @blp.route("/incident/<uuid:incident_id>", methods=["GET"])
    @blp.response(200, s.Incident)
    @requires(READ)
    def get_incident(incident_id: UUID) -> Response:
        """Read an incident: level, acknowledgement, pending escalations."""
        incident = app.incident(incident_id)
        return one_response(resources.incident(incident), incident.version)

    @blp.route("/incident/<uuid:incident_id>/acknowledge", methods=["POST"])
    @blp.arguments(s.Acknowledgement)
    @blp.response(200, s.Incident)
    @requires(WRITE)
    def acknowledge(body: dict[str, Any], incident_id: UUID) -> Response:
        """Acknowledge: stops escalation and reminders (idempotent). The token's subject
        is recorded as who acknowledged."""
        incident, _ = app.acknowledge(incident_id, g.principal.subject)
        return one_response(resources.incident(incident), incident.version)

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
    history_reserved = {"eventId", "correlationId", "alertId"}

    def history() -> Iterator[dict[str, Any]]:
        wanted = {k: request.args.get(k) for k in history_reserved if request.args.get(k)}
        for d in app.deliveries():
            if wanted.get("eventId") and wanted["eventId"] not in d.event_ids:
                continue
            if wanted.get("correlationId") and wanted["correlationId"] not in d.correlation_ids:
                continue
            if wanted.get("alertId") and wanted["alertId"] not in d.alert_ids:
                continue
            yield resources.delivery(d, with_content=False)

    @blp.route("/delivery", methods=["GET"])
    @blp.arguments(s.HistoryQuery, location="query")
    @blp.response(200, s.Delivery(many=True))
    @requires(READ)
    def list_deliveries(_: Any) -> Response:
        """Delivery history: filter by listId, recipient, status, eventType, eventId,
        alertId, correlationId, createdAt.gte ..."""
        return list_response(history(), fields_of(s.Delivery), extra_reserved=history_reserved)

    @blp.route("/delivery/export", methods=["GET"])
    @blp.arguments(s.HistoryQuery, location="query")
    @blp.response(200, {"type": "string"}, content_type="text/csv",
                  description="One delivery a row, with a header row")
    @requires(READ)
    def export_deliveries(_: Any) -> Response:
        """The same history as CSV (same filters), for spreadsheets and archives."""
        from shared.http.listing import _matches, parse_filters

        filters = parse_filters(request.args, fields_of(s.Delivery),
                                history_reserved | {"offset", "limit", "fields", "sort"})

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(HISTORY_COLUMNS)
        for item in history():
            if not all(_matches(item, a, op, raws) for a, op, raws in filters):
                continue
            writer.writerow([";".join(v) if isinstance(v := item.get(c), list)
                             else ("" if v is None else v) for c in HISTORY_COLUMNS])
        return Response(buffer.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition":
                                 'attachment; filename="notification-deliveries.csv"'})

    @blp.route("/delivery/deadLetter", methods=["GET"])
    @blp.arguments(list_query(s.Delivery), location="query")
    @blp.response(200, s.Delivery(many=True))
    @requires(READ)
    def dead_letters(_: Any) -> Response:
        """Deliveries that failed for good (attempts used up, or refused); retry by hand."""
        return list_response((resources.delivery(d, with_content=False)
                              for d in app.deliveries() if d.status == "failed"),
                             fields_of(s.Delivery))

    @blp.route("/delivery/<uuid:delivery_id>", methods=["GET"])
    @blp.response(200, s.Delivery)
    @requires(READ)
    def get_delivery(delivery_id: UUID) -> Response:
        """One delivery with its content and every attempt."""
        d = app.delivery(delivery_id)
        return one_response(resources.delivery(d), d.version)

    @blp.route("/delivery/<uuid:delivery_id>/retry", methods=["POST"])
    @blp.response(200, s.Delivery)
    @requires(WRITE)
    def retry_delivery(delivery_id: UUID) -> Response:
        """Send a failed delivery again (its attempts start over)."""
        d = app.retry_delivery(delivery_id, g.principal.subject)
        return one_response(resources.delivery(d), d.version)

    @blp.route("/decision", methods=["GET"])
    @blp.arguments(list_query(s.Decision), location="query")
    @blp.response(200, s.Decision(many=True))
    @requires(READ)
    def list_decisions(_: Any) -> Response:
        """Why each event did or did not become a message on each list: queued, grouped,
        inhibited, suppressed, sent; filter by eventId, listId, alertId, decision ..."""
        return list_response(map(resources.decision, app.decisions()), fields_of(s.Decision))

    return blp
