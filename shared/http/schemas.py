"""marshmallow schemas every service's API shares."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


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
