"""The one rule for ids that clients choose (a purchased offering's product id, a
measurement batch id): they end up in URLs, ``Location`` headers, log lines and message
ids, so they are limited to characters that are safe in all of them without escaping.

Letters, digits and ``- . _ ~ :``, starting with a letter or digit, at most 200 characters
(e.g. ``fibre-0001``, ``urn:acme:dsl.7``, a UUID). No spaces, slashes, control characters
(CR/LF would split a header) or anything that needs percent-encoding.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

CLIENT_ID_MAX = 200
CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,199}$"
CLIENT_ID_RULE = ("letters, digits and - . _ ~ : only, starting with a letter or digit, "
                  f"at most {CLIENT_ID_MAX} characters")
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)


def client_id_problem(value: Any) -> str | None:
    """Why ``value`` is not an acceptable client-chosen id, or None when it is."""
    if not isinstance(value, str) or not value:
        return "an id is required (non-empty text)"
    if _CLIENT_ID.fullmatch(value) is None:  # fullmatch: "$" alone would allow a final \n
        return f"{value[:40]!r} is not a valid id: {CLIENT_ID_RULE}"
    return None


def stable_id(*key: object) -> uuid.UUID:
    """The same UUID for the same natural key, in every process and after every replay:
    ``uuid5(URL, "urn:sla-suite:" + ":".join(key))``, e.g. ``stable_id("monitoring",
    "window", regime, parameter, scope, start)``. Used where an aggregate is identified by
    what it is about (a window of a series, a replica of a resource, a delivery of a
    message to a recipient), so that a redelivered message or a concurrent writer finds
    the aggregate instead of creating a second one."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "urn:sla-suite:" + ":".join(map(str, key)))
