"""Request bodies as every service reads them: bounded in size however they are framed,
and parsed as strict JSON, so that hostile input is a 400 or a 413 and never reaches the
views, the store or the bus.

Strict means what RFC 8259 allows and what the suite can store and send on: valid UTF-8
without lone surrogates (escaped or not), no ``NaN``/``Infinity`` and no number that
overflows a double, and nesting at most ``MAX_DEPTH`` levels deep (no resource is deeper
than a handful; an unbounded depth exhausts the interpreter's stack further down).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

import flask
import marshmallow as ma
import orjson
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.wsgi import get_content_length

MAX_DEPTH = 32


class InvalidBody(ValueError):
    """The body is not JSON the suite accepts; the message says why."""


def parse_json(data: bytes) -> Any:
    """The JSON document in ``data``, or InvalidBody naming what is wrong with it."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "number is infinity" not in str(exc):
            raise InvalidBody(f"not valid JSON: {exc}") from None
        document = _parse_with_big_numbers(data)  # valid JSON; the fields judge the values
    _check_depth(document)
    return document


def _refuse_constant(name: str) -> Any:
    raise InvalidBody(f"not valid JSON: {name} is not a JSON number")


def _parse_with_big_numbers(data: bytes) -> Any:
    """A document with numbers beyond a double (``10**400``, ``1e400``): Python's reader
    keeps big integers exact and reads the rest as infinity, for the fields to refuse."""
    try:
        document = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidBody(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise InvalidBody(f"not valid JSON: {exc}") from None
    pending = [document]
    while pending:
        value = pending.pop()
        texts = list(value) if isinstance(value, dict) else [value]
        for text in texts:
            if isinstance(text, str) and any("\ud800" <= c <= "\udfff" for c in text):
                raise InvalidBody("not valid JSON: a lone surrogate in a string")
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return document


def _check_depth(document: Any) -> None:
    """Walk containers without recursion; refuse the first one nested too deeply."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Iterable[Any] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise InvalidBody(f"nested deeper than {MAX_DEPTH} levels")
        pending.extend((child, depth + 1) for child in children
                       if isinstance(child, dict | list))


class StrictJSONParser(FlaskParser):
    """webargs' Flask parser reading bodies with :func:`parse_json`, holding them to the
    JSON types their schema documents (marshmallow alone would take ``"5"`` or ``2.5`` for
    an integer, ``1`` for a boolean), and refusing a ``PATCH`` without a body."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        try:
            return parse_json(data)
        except InvalidBody as exc:
            abort(400, exc=exc, messages={"json": {"(body)": [str(exc)]}})

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        data = super().load_json(req, schema)
        if data is core.missing and req.method == "PATCH":
            abort(400, messages={"json": {"(body)": [
                "a merge-patch body is required (an object of the fields to change)"]}})
        return data

    def pre_load(self, location_data: Any, *, schema: ma.Schema, req: flask.Request,
                 location: str) -> Any:
        if location == "json":
            errors = json_type_errors(location_data, schema)
            if errors:
                raise ma.ValidationError(errors)
        return location_data


def _json_type(field: ma.fields.Field) -> tuple[type | tuple[type, ...], str] | None:
    """The JSON type a field takes, as Python types from the parser and a name."""
    f = ma.fields
    if isinstance(field, f.Boolean):
        return bool, "a boolean"
    if isinstance(field, f.Integer):
        return int, "an integer"
    if isinstance(field, f.Number):
        return (int, float), "a number"
    if isinstance(field, f.String | f.UUID | f.DateTime | f.Date | f.Time | f.TimeDelta):
        return str, "a string"
    if isinstance(field, f.List | f.Tuple):
        return list, "an array"
    if isinstance(field, f.Dict):
        return dict, "an object"
    if isinstance(field, f.Nested):
        return (list, "an array") if field.many else (dict, "an object")
    return None


def json_type_errors(data: Any, schema: ma.Schema) -> dict[str, Any]:
    """Per-field messages for values of the wrong JSON type, nested like marshmallow's."""
    if not isinstance(data, dict):
        return {}  # marshmallow says "Invalid input type" for the whole body
    errors: dict[str, Any] = {}
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        key = field.data_key or name
        if key in data:
            problem = _value_errors(data[key], field)
            if problem:
                errors[key] = problem
    return errors


def _value_errors(value: Any, field: ma.fields.Field) -> Any:
    if value is None:
        return None  # allow_none is marshmallow's to judge
    expected = _json_type(field)
    if expected is None:
        return None
    types, name = expected
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple)
                                                else (types,)):
        return [f"must be {name}, not a boolean"]
    if not isinstance(value, types):
        return [f"must be {name}"]
    if isinstance(field, ma.fields.List) and field.inner is not None:
        nested = {str(i): e for i, v in enumerate(value)
                  if (e := _value_errors(v, field.inner))}
        return nested or None
    if isinstance(field, ma.fields.Dict) and field.value_field is not None:
        nested = {str(k): e for k, v in value.items()
                  if (e := _value_errors(v, field.value_field))}
        return nested or None
    if isinstance(field, ma.fields.Nested):
        inner = field.schema
        if field.many:
            nested = {str(i): e for i, v in enumerate(value)
                      if (e := json_type_errors(v, inner))}
            return nested or None
        return json_type_errors(value, inner) or None
    return None


class BodyLimit:
    """WSGI middleware: a body the server frames itself (chunked, no ``Content-Length``)
    is read up to one byte past ``limit`` and handed on as if it had a Content-Length, so
    one over the limit is refused with 413 like any other instead of being cut short at
    the limit and parsed."""

    def __init__(self, app: Callable[..., Any], limit: int) -> None:
        self.app, self.limit = app, limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if get_content_length(environ) is None and environ.get("wsgi.input_terminated"):
            stream = environ["wsgi.input"]
            chunks, size = [], 0
            while size <= self.limit:
                chunk = stream.read(min(65536, self.limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
            environ["CONTENT_LENGTH"] = str(size)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)
