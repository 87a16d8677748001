"""Message texts from Jinja2 templates (``templates/``): per event type and channel.

E-mail: ``message.subject.txt``, ``message.txt`` (plain) and ``message.html``; webhooks:
``message.json``. Each alert of a message is rendered by ``<EventType>.txt`` /
``<EventType>.json`` when present, else ``alert.txt`` / ``alert.json``. A customer's
notice of a planned outage has its own: ``notice.subject.txt``, ``notice.txt``,
``notice.html`` and ``notice.json``. A locale-specific variant (``message.fr.txt``) wins
over the default when present.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.exceptions import TemplateNotFound

from shared.durations import duration_seconds

TEMPLATES = Path(__file__).resolve().parent / "templates"


def headline(alert: dict[str, Any]) -> str:
    kind = alert.get("eventType")
    scope = f"{alert.get('scopeType')} {alert.get('scopeId')}"
    if kind == "ThresholdCrossingEvent":
        level = alert.get("level")
        what = {"breached": "breached", "warning": "warning", "cleared": "cleared",
                "noData": "sent no data"}.get(str(level), str(level))
        return f"{alert.get('parameter')} {what} on {scope}"
    if kind == "BurnRateAlertEvent":
        state = "resolved" if alert.get("level") == "resolved" else "burning fast"
        return f"error budget of {alert.get('parameter')} {state} on {scope}"
    if kind == "ServiceProblemChangeEvent":
        return f"offering-wide problem {alert.get('level')} on offering " \
               f"{alert.get('offeringId') or alert.get('scopeId')}"
    if kind == "PlannedOutageChangeEvent":
        return f"planned outage {alert.get('level')} for offering group " \
               f"{alert.get('offeringGroupId') or 'n/a'}"
    return f"{kind} on {scope}"


class _Undefined(StrictUndefined):
    """Missing alert attributes render empty (templates stay readable), but a typo in a
    top-level variable still fails loudly."""

    def __str__(self) -> str:
        return ""


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(enabled_extensions=("html",),
                                                   default_for_string=False),
                      keep_trailing_newline=False, trim_blocks=False,
                      # The templates are the package's own: read once, not checked
                      # on disk for every message.
                      auto_reload=False)
    env.globals["headline"] = headline
    return env


def _template(name: str, locale: str | None) -> Any:
    env = environment()
    stem, _, ext = name.rpartition(".")
    if locale:
        try:
            return env.get_template(f"{stem}.{locale}.{ext}")
        except TemplateNotFound:
            pass
    return env.get_template(name)


def _complete(alert: dict[str, Any]) -> dict[str, Any]:
    keys = ("measuredValue", "conformanceTarget", "thresholdTarget", "comparator", "burnRate",
            "longWindow", "shortWindow", "remainingBudget", "projectedExhaustion", "ackUrl",
            "offeringGroupId", "offeringId", "customerId", "windowStart", "windowEnd",
            "summary", "correlationId", "change", "since", "eventId", "incidentId",
            "alertId", "eventType", "level", "severity", "parameter", "scopeType", "scopeId",
            "detailsUrl", "raisedAt")
    return {**{k: None for k in keys}, **alert}


def render(channel: str, nlist: dict[str, Any], alerts: list[dict[str, Any]], reason: str,
           tier: int = 0, locale: str | None = None) -> dict[str, Any]:
    """The content of one message: subject/text/html for e-mail, body for webhooks."""
    context = {"nlist": nlist, "alerts": [_complete(a) for a in alerts], "reason": reason,
               "tier": tier, "locale": locale or "en"}
    subject = _template("message.subject.txt", locale).render(**context).strip()
    context["subject"] = subject
    if channel == "email":
        return {"subject": subject,
                "text": _template("message.txt", locale).render(**context),
                "html": _template("message.html", locale).render(**context)}
    body = json.loads(_template("message.json", locale).render(**context))
    return {"subject": subject, "body": body}


IMPACTS = {"fullOutage": "full outage: the services are unavailable during the window",
           "degraded": "degraded: the services work with reduced performance",
           "atRisk": "at risk: the services should work, but may be interrupted"}
NOTICE_KEYS = ("lead", "extension", "responseLink", "respondUrl")


def lead_text(lead: str | None) -> str:
    """``P7D`` -> ``7 days``, ``PT1H`` -> ``1 hour``: how a reminder says how soon."""
    if not lead:
        return ""
    seconds = duration_seconds(lead)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def render_notice(channel: str, nlist: dict[str, Any], notice: dict[str, Any],
                  recipient: dict[str, Any], respond_url: str | None,
                  locale: str | None = None) -> dict[str, Any]:
    """One customer's notice of a planned outage (``respond_url``: the placeholder of its
    response link, when the notice asks for an answer)."""
    notice = {**{k: None for k in NOTICE_KEYS}, **notice}
    context = {"nlist": nlist, "notice": notice, "recipient": recipient,
               "respond_url": respond_url, "locale": locale or "en",
               "lead_text": lead_text(notice.get("lead")),
               "impact_text": IMPACTS.get(str(notice["plannedOutage"].get("impact")),
                                          str(notice["plannedOutage"].get("impact")))}
    subject = _template("notice.subject.txt", locale).render(**context).strip()
    context["subject"] = subject
    if channel == "email":
        return {"subject": subject,
                "text": _template("notice.txt", locale).render(**context),
                "html": _template("notice.html", locale).render(**context)}
    return {"subject": subject,
            "body": json.loads(_template("notice.json", locale).render(**context))}
