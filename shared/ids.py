"""The one rule for ids that clients choose (a purchased offering's product id, a
measurement batch id): they end up in URLs, ``Location`` headers, log lines and message
ids, so they are limited to characters that are safe in all of them without escaping.

Letters, digits and ``- . _ ~ :``, starting with a letter or digit, at most 200 characters
(e.g. ``fibre-0001``, ``urn:acme:dsl.7``, a UUID). No spaces, slashes, control characters
(CR/LF would split a header) or anything that needs percent-encoding.
"""

from __future__ import annotations

import re
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
