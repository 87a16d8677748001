"""marshmallow schemas every service's API shares."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ListQuery(Schema):
    """TMF630 list parameters; attribute filters (attr=, attr.gt= ...) are also accepted."""

    class Meta:
        unknown = "include"

    offset = fields.Integer(validate=validate.Range(min=0))
    limit = fields.Integer(validate=validate.Range(min=0, max=1000))
    fields_ = fields.String(data_key="fields", metadata={
        "description": "comma-separated attributes to return (id, href, @type always)"})
    sort = fields.String(metadata={"description": "attribute, or -attribute for descending"})
