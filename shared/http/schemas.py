"""marshmallow schemas every service's API shares."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate

from shared.ids import CLIENT_ID_PATTERN, CLIENT_ID_RULE
from shared.inflection import camel


class Pattern(validate.Regexp):
    """A regular expression the whole value must match, as a JSON Schema ``pattern``
    anchored with ``^...$`` means it (Python's ``$`` alone would also take a final
    newline: ``"en\\n"`` for ``^[a-z]{2}$``)."""

    def __call__(self, value: str) -> str:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def _space_class() -> str:
    """The characters Python's ``str.strip`` removes, as escapes both Python and ECMA
    regular expressions read alike (their ``\\s`` differ)."""
    spaces = [c for c in map(chr, range(0x10000)) if c.isspace()]
    return "".join(f"\\u{ord(c):04x}" for c in spaces)


#: Text that is more than white space (what the domains ``strip()`` and then require).
NOT_BLANK = Pattern(f"^[\\s\\S]*[^{_space_class()}][\\s\\S]*$",
                            error="must contain more than white space")
#: An aggregate version a client names (``If-Match`` aside): 1 up to the largest integer a
#: JSON number carries exactly (2^53 - 1); larger integers reach the service as floats.
VERSION = validate.Range(min=1, max=2**53 - 1)
#: A name: 1 to 200 characters, not only white space.
NAME = [validate.Length(min=1, max=200), NOT_BLANK]


_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = ("(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}"
         "|[1-9][0-9]{0,3})")
#: An http(s) URL with a host name or IPv4 address, an optional port (1-65535) and path,
#: no credentials and no fragment: what a webhook may be sent to.
_HOST = f"(?:{_LABEL}(?:\\.{_LABEL})*|\\[[0-9A-Fa-f:.]{{2,45}}\\])"  # a name, IPv4 or [IPv6]
HTTP_URL = Pattern(
    f"^https?://{_HOST}(?::{_PORT})?(?:[/?][!\\x22$-?A-~]*)?$",
    error="an http or https URL such as https://hooks.example.com/sla (a host, a port "
          "1-65535, a path), without credentials or fragment")
#: An e-mail address (the usual dot-atom form).
EMAIL = Pattern(
    f"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\\.{_LABEL})+$",
    error="not a valid e-mail address")


class CamelSchema(Schema):
    """snake_case in Python, camelCase on the wire: every field's ``data_key`` is its
    attribute name in lower camel case unless the field names another. The one place the
    suite translates between the two, so a view passes what it loads straight to the
    application (``app.start_regime(**body)``) and returns the aggregate for dumping.
    Unknown fields are refused with a 400 naming them (marshmallow's default RAISE)."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        if field_obj.data_key is None:
            field_obj.data_key = camel(field_name)



class Computed(fields.String):
    """Text computed from the object and the schema (``href``, ``@type``): documented as a
    read-only string, dumped by ``compute(schema, obj)``."""

    def __init__(self, compute: Any, **kwargs: Any) -> None:
        super().__init__(dump_only=True, **kwargs)
        self.compute = compute

    def serialize(self, attr: str, obj: Any, accessor: Any = None, **kwargs: Any) -> Any:
        return self._serialize(self.compute(self.parent, obj), attr, obj, **kwargs)


class Resource(CamelSchema):
    """What every TMF resource representation carries: ``id``, ``href`` (``PATH`` plus the
    id), ``@type`` (``TYPE``) and ``version`` (the aggregate's, also its ETag). A subclass
    sets ``PATH`` (e.g. ``/monitoring/v1/monitoringRegime``) and ``TYPE``, and declares the
    resource's own fields; it dumps the aggregate (or any object with those attributes)."""

    PATH: ClassVar[str] = ""
    TYPE: ClassVar[str] = ""

    id = fields.String(dump_only=True)
    href = Computed(lambda schema, obj: f"{schema.PATH}/{_get(obj, 'id')}")
    type_ = Computed(lambda schema, obj: schema.TYPE, data_key="@type")
    version = fields.Integer(dump_only=True, metadata={"description": "aggregate version; "
                                                                      "also the ETag"})


def _get(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


class ListQuery(Schema):
    """TMF630 list parameters; attribute filters (attr=, attr.gt= ...) are also accepted."""

    class Meta:
        unknown = "include"

    offset = fields.Integer(validate=validate.Range(min=0))
    limit = fields.Integer(validate=validate.Range(min=0, max=1000))
    fields_ = fields.String(data_key="fields", metadata={
        "description": "comma-separated attributes to return (id, href, @type always)"})
    sort = fields.String(metadata={"description": "attribute, or -attribute for descending"})


def client_id(**kwargs: Any) -> fields.String:
    """A field for an id the client chooses: the suite's one rule (``shared.ids``), which
    the OpenAPI document shows as the field's ``pattern``."""
    description = kwargs.pop("description", "")
    return fields.String(
        validate=Pattern(CLIENT_ID_PATTERN, error=f"not a valid id: {CLIENT_ID_RULE}"),
        metadata={"description": f"{description} ({CLIENT_ID_RULE})".strip(),
                  "example": "fibre-0001"},
        **kwargs)


def list_query(representation: type[Schema]) -> type[ListQuery]:
    """ListQuery for a list of ``representation``: ``sort`` names its attributes (each
    optionally with ``-`` for descending), so the document says which sorts are valid."""
    names = sorted({f.data_key or name for name, f in representation().fields.items()})
    one = "[-+]?(" + "|".join(re.escape(n) for n in names) + ")"
    sort = fields.String(validate=Pattern(f"^{one}(,{one})*$", error=(
        "sort by one or more of: " + ", ".join(names) + " (-name for descending)")),
        metadata={"description": "comma-separated attributes (-attribute for descending): "
                                 + ", ".join(names)})
    return type(f"{representation.__name__}ListQuery", (ListQuery,), {"sort": sort})


def exactly_one_of(*names: str) -> dict:
    """JSON Schema (for ``class Meta: openapi``) of "exactly one of these fields is given
    and not null", a rule marshmallow states in a ``validates_schema``."""
    return {"oneOf": [{"required": [name], "properties": {name: {"not": {"enum": [None]}}}}
                      for name in names]}
