"""The small response page a customer opens from its link: what the outage is, its
windows, and a form to accept one or reject with a reason — plain HTML, no script, no
outside assets, so it works in any mail client's browser. Opening it answers nothing
(a mail scanner that fetches the link cannot answer in the customer's name); the form
POSTs the token back."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from flask import Response

from shared import times

_STYLE = "font-family:sans-serif;max-width:40em;margin:2em auto"


def page(title: str, paragraphs: Sequence[str], status: int, form: str = "") -> Response:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    text = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head><body style='{_STYLE}'><h1>{html.escape(title)}</h1>{body}"
            f"{form}</body></html>")
    return Response(text, status=status, mimetype="text/html",
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                             "Content-Security-Policy": "default-src 'none'; "
                                                        "style-src 'unsafe-inline'; "
                                                        "form-action 'self'"})


def answer_form(action: str, token: str, outage: Any, customer: dict[str, Any]) -> str:
    """Radio buttons, one per proposed window and one to reject, a reason, a button."""
    choices = "".join(
        f"<p><label><input type='radio' name='choice' value='accept:{n}'"
        f"{' checked' if n == 0 else ''}> Accept {html.escape(times.iso(w['start']))}"
        f" – {html.escape(times.iso(w['end']))}"
        f"</label></p>" for n, w in enumerate(outage.windows))
    return (f"<form method='post' action='{html.escape(action)}'>"
            f"<input type='hidden' name='token' value='{html.escape(token)}'>{choices}"
            "<p><label><input type='radio' name='choice' value='reject'> Reject</label></p>"
            "<p><label>Reason (needed to reject)<br><textarea name='reason' rows='3' "
            "cols='50'></textarea></label></p><p><button type='submit'>Send my answer"
            f"</button></p></form><p>{len(customer.get('purchasedOfferingIds') or [])} of "
            "your services are affected.</p>")
