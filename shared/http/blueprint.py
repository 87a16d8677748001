"""The blueprint every service's resources are served by: views are flask-smorest
``MethodView``s that return domain objects, ``@blp.response`` dumps them with the
resource's schema, and the TMF630 conventions are applied to what was dumped — so the
OpenAPI document and what is sent come from the same schema and cannot drift.

What the conventions add to flask-smorest's own response handling:

- a list (a schema with ``many=True``) is filtered by attribute (``attr=``, ``attr.gt=``
  …, on the wire names of the schema's fields), sorted (``sort=``), paged
  (``offset``/``limit``) and projected (``fields=``), with ``X-Total-Count`` and
  ``X-Result-Count``;
- a view that returns a stored read model's ``Listing`` (``shared/readmodel.py``) gets
  the same conventions from the database: only the page is read and dumped, and a
  filter matching more than ``COUNT_CAP`` items answers ``X-Total-Count-At-Least``
  instead of an exact ``X-Total-Count`` (which would mean reading every match);
- one resource is projected by ``fields=`` and answered with its ``version`` as the
  ``ETag``, and a 201 with its ``href`` as the ``Location``.

A view that needs another status or headers returns ``(obj, status)`` or
``(obj, status, headers)``, as flask-smorest allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any

import flask_smorest
from flask import Response, g, jsonify, request
from marshmallow import Schema

from shared.http.listing import page_of, requested_fields, select_fields
from shared.readmodel import AtLeast, Listing

#: A list's lower bound on its total, sent instead of ``X-Total-Count`` when a filter
#: matches more items than are counted (``shared.readmodel.COUNT_CAP``).
AT_LEAST = "X-Total-Count-At-Least"


def wire_names(schema: Schema) -> set[str]:
    """The attribute names of a representation on the wire: what lists filter and sort by."""
    return {f.data_key or name for name, f in schema.fields.items()}


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint with the suite's TMF630 list and resource conventions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.after_request(self._conventional_headers)

    def response(self, status_code: int, schema: Any = None, *, reserved: Iterable[str] = (),
                 filterable: Iterable[str] | None = None, etag: bool = True,
                 **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """``reserved``: query parameters of a list that are not attribute filters (the
        view reads them itself, e.g. a history's ``eventId``); ``filterable``: the
        attributes a list is filtered and sorted by (default every attribute of its
        schema; none for a list whose query names what is asked); ``etag``: False for a
        resource whose ``version`` names it rather than its state (no ``ETag``)."""
        decorate = super().response(status_code, schema, **kwargs)
        instance = schema() if isinstance(schema, type) else schema
        listing = None
        if isinstance(instance, Schema) and instance.many:
            names = wire_names(instance) if filterable is None else set(filterable)
            listing = (names, tuple(reserved))

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(func)
            def view(*args: Any, **kw: Any) -> Any:
                g.suite_listing, g.suite_etag = listing, etag
                result = func(*args, **kw)
                if listing is not None and isinstance(result, Listing):
                    return self._stored_page(result, instance, status_code, *listing)
                return result

            return decorate(view)

        return decorator

    @staticmethod
    def _stored_page(result: Listing, schema: Schema, status: int, allowed: set[str],
                     reserved: tuple[str, ...]) -> Response:
        """A stored read model's list: filtered, sorted and paged by its database, only
        the page dumped (flask-smorest passes a ``Response`` through as it is)."""
        g.pop("suite_listing", None)
        page, total = result.page(request.args, allowed, reserved, schema.dump)
        response = jsonify(page)
        response.status_code = status
        if isinstance(total, AtLeast):  # not counted to its end: no exact total claimed
            response.headers[AT_LEAST] = str(total.n)
        else:
            response.headers["X-Total-Count"] = str(total)
        response.headers["X-Result-Count"] = str(len(page))
        return response

    def _prepare_response_content(self, data: Any) -> Any:
        listing = g.pop("suite_listing", None)
        if listing is not None and isinstance(data, list):
            page, total = page_of(data, *listing)
            g.suite_counts = (total, len(page))
            return page
        if isinstance(data, Mapping):
            g.suite_resource = data
            return select_fields(data, requested_fields())
        return data

    @staticmethod
    def _conventional_headers(response: Response) -> Response:
        counts = g.pop("suite_counts", None)
        if counts is not None:
            response.headers.setdefault("X-Total-Count", str(counts[0]))
            response.headers.setdefault("X-Result-Count", str(counts[1]))
        resource = g.pop("suite_resource", None)
        etag = g.pop("suite_etag", True)
        if resource is not None and response.status_code < 300:
            if etag and isinstance(resource.get("version"), int) and \
                    "ETag" not in response.headers:
                response.headers["ETag"] = f'"{resource["version"]}"'
            if response.status_code == 201 and resource.get("href"):
                response.headers.setdefault("Location", str(resource["href"]))
        return response
