"""The suite's one rule between Python's names and the API's: snake_case attributes,
lower camelCase on the wire and in the field paths refusals name. Plain Python, so domain
code may use it for the paths it reports."""

from __future__ import annotations


def camel(name: str) -> str:
    """``offering_group_id`` → ``offeringGroupId`` (a trailing ``_``, as in ``type_``, is
    dropped first; a name already in camelCase stays as it is)."""
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
