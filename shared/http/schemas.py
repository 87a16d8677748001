"""marshmallow schemas every service's API shares."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from shared.ids import CLIENT_ID_PATTERN, CLIENT_ID_RULE


class Strict(Schema):
    """Unknown fields are refused with a 400 naming them (marshmallow's default RAISE)."""


class Resource(Schema):
    """What every TMF resource representation carries."""

    id = fields.String(dump_only=True)
    href = fields.String(dump_only=True)
    type_ = fields.String(data_key="@type", dump_only=True)
    version = fields.Integer(dump_only=True, metadata={"description": "aggregate version; "
                                                                      "also the ETag"})


class ListQuery(Schema):
    """TMF630 list parameters; attribute filters (attr=, attr.gt= ...) are also accepted."""

    class Meta:
        unknown = "include"

    offset = fields.Integer(validate=validate.Range(min=0))
    limit = fields.Integer(validate=validate.Range(min=0, max=1000))
    fields_ = fields.String(data_key="fields", metadata={
        "description": "comma-separated attributes to return (id, href, @type always)"})
    sort = fields.String(metadata={"description": "attribute, or -attribute for descending"})


class _WholeMatch(validate.Regexp):
    """``Regexp`` that must match the whole value (``$`` alone lets a final newline by)."""

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def client_id(**kwargs: Any) -> fields.String:
    """A field for an id the client chooses: the suite's one rule (``shared.ids``), which
    the OpenAPI document shows as the field's ``pattern``."""
    description = kwargs.pop("description", "")
    return fields.String(
        validate=_WholeMatch(CLIENT_ID_PATTERN, error=f"not a valid id: {CLIENT_ID_RULE}"),
        metadata={"description": f"{description} ({CLIENT_ID_RULE})".strip(),
                  "example": "fibre-0001"},
        **kwargs)
