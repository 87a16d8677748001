"""The application factory every service uses: one Flask app per service, its blueprint
under its API root, the TMF630 error body, authentication, audit, health and metrics."""

from __future__ import annotations

import logging
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import marshmallow as ma
from eventsourcing.persistence import IntegrityError
from flask import Flask, Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api, Blueprint
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from werkzeug.exceptions import HTTPException

from shared import auth, context, errors
from shared.http.body import BodyLimit, StrictJSONParser
from shared.http.documents import MERGE_PATCH, SuiteConventions
from shared.http.errors import ApiError, error_body, error_response, flatten_messages
from shared.http.security import PUBLIC_ATTR, SCOPES_ATTR, public, requires
from shared.times import iso

log = logging.getLogger(__name__)

# Bodies are parsed as strict JSON; flask-smorest answers 422 by default, the suite's
# contract is 400 with field details.
Blueprint.ARGUMENTS_PARSER = StrictJSONParser()
Blueprint.ARGUMENTS_PARSER.DEFAULT_VALIDATION_STATUS = 400

# Every label takes its value from a bounded set, so no caller can grow the metrics: the
# method from the methods HTTP defines (anything else is "other"), the route from the URL
# rule that matched (not the path asked for; "unmatched" when none did), the status code.
REQUESTS = Counter("sla_http_requests_total", "HTTP requests",
                   ["service", "method", "route", "status"])
LATENCY = Histogram("sla_http_request_seconds", "HTTP request latency",
                    ["service", "method", "route"])
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

BODY_METHODS = {"POST", "PUT", "PATCH"}
PUBLIC_ENDPOINTS = {"api-docs.openapi_json"}  # the API description itself
JSON_TYPES = {"application/json"}


class SuiteJSONProvider(DefaultJSONProvider):
    """ISO 8601 times, string UUIDs and decimals, and the fields in the order given."""

    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return iso(o)
        if isinstance(o, date):
            return o.isoformat()
        if isinstance(o, UUID | Decimal):
            return str(o)
        return DefaultJSONProvider.default(o)


class ErrorSchema(ma.Schema):
    """TMF630 error body."""

    type_ = ma.fields.String(data_key="@type", required=True, metadata={"enum": ["Error"]})
    code = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    details = ma.fields.Dict(keys=ma.fields.String(),
                             values=ma.fields.List(ma.fields.String()),
                             metadata={"description": "per-field problems of a 400"})


class SuiteApi(Api):
    """flask-smorest's Api with the suite's error body."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        data = getattr(error, "data", None) or {}
        # werkzeug's own headers (405's Allow), less the HTML content type it would send
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        messages = data.get("messages") or data.get("errors")
        details = None
        if messages:
            details = {}
            for location, errors in (messages.items() if isinstance(messages, dict) else []):
                prefix = "" if location in {"json", "form"} else location
                details.update(flatten_messages(errors, prefix))
        status = error.code or 500
        message = data.get("message") or error.description or ""
        if status == 413:
            message = (f"the request body is larger than this service accepts "
                       f"({current_app.config['MAX_CONTENT_LENGTH']} bytes, "
                       f"SLA_MAX_BODY_BYTES)")
        if status == 400 and details:
            message = "the request is not valid: " + "; ".join(
                f"{k}: {' '.join(v)}" for k, v in list(details.items())[:5])
        body = error_body(status, message, details=details)
        return body, status, headers


def handler_of(view: Any) -> Any:
    """What declares the scopes of this request: the view function, or for a
    ``MethodView`` the method that answers the request's HTTP method."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    method = request.method.lower()
    handler = getattr(view_class, method, None)
    if handler is None and method == "head":
        handler = getattr(view_class, "get", None)
    return handler if handler is not None else view


def create_app(runtime: Any) -> Flask:
    """Build the Flask app of one service from its runtime."""
    spec, settings = runtime.spec, runtime.settings
    root = spec.root
    app = Flask(spec.name)
    app.json_provider_class = SuiteJSONProvider
    app.json = SuiteJSONProvider(app)
    app.config.update(
        API_TITLE=spec.title or spec.name,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=root,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"info": {"description": spec.description},
                          "servers": [{"url": "/"}]},
        MAX_CONTENT_LENGTH=settings.max_content_length,
        JSON_SORT_KEYS=False,
    )
    app.extensions["sla_runtime"] = runtime
    app.wsgi_app = BodyLimit(app.wsgi_app,  # type: ignore[method-assign]
                             settings.max_content_length)
    api = SuiteApi(app, spec_kwargs={"extra_plugins": [SuiteConventions()]})
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})

    from shared.audit import audit_blueprint

    api.register_blueprint(spec.blueprint(runtime), url_prefix=root)
    api.register_blueprint(ops_blueprint(runtime), url_prefix=root)
    api.register_blueprint(audit_blueprint(runtime), url_prefix=f"{root}/audit")

    @app.before_request
    def _before() -> Response | None:
        g.started = time.perf_counter()
        g.ctx_tokens = [
            context.correlation_id.set(request.headers.get("X-Correlation-ID")
                                       or context.new_id()),
            context.causation_id.set(None),
        ]
        if request.endpoint is None:
            return None  # 404 / 405 answered by Flask
        view = handler_of(app.view_functions.get(request.endpoint))
        if request.endpoint in PUBLIC_ENDPOINTS or getattr(view, PUBLIC_ATTR, False):
            return None
        try:
            principal = auth.verify(settings.secret_key, request.headers.get("Authorization"))
        except auth.AuthError as exc:
            return error_response(exc.status, exc.message,
                                  headers={"WWW-Authenticate": 'Bearer realm="sla-suite"'})
        scopes = getattr(view, SCOPES_ATTR, ("admin",))
        if not principal.allows(scopes):
            return error_response(403, f"this operation needs the scope "
                                       f"{' or '.join(scopes)}", "INSUFFICIENT_SCOPE")
        g.principal = principal
        g.ctx_tokens.append(context.actor.set(principal.subject))
        if request.method in BODY_METHODS and request.content_length != 0 and (
                request.content_length or request.headers.get("Transfer-Encoding")):
            mimetype = request.mimetype
            allowed = {MERGE_PATCH} if request.method == "PATCH" else JSON_TYPES
            if mimetype not in allowed:
                return error_response(415, f"send the body as {' or '.join(sorted(allowed))}"
                                           f" (got {mimetype or 'no Content-Type'})")
        return None

    @app.after_request
    def _after(response: Response) -> Response:
        response.headers["X-Correlation-ID"] = context.correlation_id.get() or ""
        method, route = request_labels()
        status = response.status_code if 100 <= response.status_code <= 599 else 0
        REQUESTS.labels(spec.name, method, route, str(status)).inc()
        if hasattr(g, "started"):
            LATENCY.labels(spec.name, method, route).observe(time.perf_counter() - g.started)
        return response

    @app.teardown_request
    def _teardown(_: BaseException | None) -> None:
        for token in reversed(getattr(g, "ctx_tokens", [])):
            token.var.reset(token)
        g.ctx_tokens = []

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.code, exc.details)

    @app.errorhandler(errors.Invalid)
    def _invalid(exc: errors.Invalid) -> Response:
        summary = "; ".join(f"{k}: {' '.join(v)}" for k, v in list(exc.errors.items())[:5])
        return error_response(400, f"the request is not valid: {summary}", "INVALID_VALUE",
                              exc.errors)

    @app.errorhandler(errors.UnknownReference)
    def _unknown_reference(exc: errors.UnknownReference) -> Response:
        return error_response(409, f"the request names what does not exist: {exc}",
                              "UNKNOWN_REFERENCE", exc.errors)

    @app.errorhandler(errors.NotAllowed)
    def _not_allowed(exc: errors.NotAllowed) -> Response:
        return error_response(403, f"refused by policy: {exc}", "NOT_ALLOWED", exc.errors)

    @app.errorhandler(errors.RefusedNow)
    def _refused_now(exc: errors.RefusedNow) -> Response:
        return error_response(409, f"nothing in the request can be taken now: {exc}",
                              "REFUSED_IN_CURRENT_STATE", exc.errors)

    @app.errorhandler(errors.NotFound)
    def _not_found(exc: errors.NotFound) -> Response:
        return error_response(404, str(exc))

    @app.errorhandler(errors.StaleVersion)
    def _stale(exc: errors.StaleVersion) -> Response:
        return error_response(
            409, f"{exc}; read it again and retry with If-Match: \"{exc.current}\"",
            "STALE_VERSION", {"If-Match": [f"current ETag is \"{exc.current}\""]})

    @app.errorhandler(errors.Conflict)
    def _conflict(exc: errors.Conflict) -> Response:
        return error_response(409, str(exc), "INVALID_TRANSITION")

    @app.errorhandler(IntegrityError)
    def _concurrent(_: IntegrityError) -> Response:
        return error_response(409, "the resource was changed or created concurrently; read "
                                   "it again and retry", "CONFLICT")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            body, status, headers = api.handle_http_exception(exc)
            response = jsonify(body)
            response.status_code = status
            response.headers.extend(headers)
            return response
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "an unexpected error occurred; it has been logged "
                                   f"with correlation id {context.correlation_id.get()}")

    return app


def request_labels() -> tuple[str, str]:
    """The request's method and route as bounded metric labels."""
    method = request.method if request.method in KNOWN_METHODS else "other"
    rule = request.url_rule
    return method, (rule.rule if rule is not None else "unmatched")


class Health(ma.Schema):
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(["ok"]))
    service = ma.fields.String(required=True)


class Readiness(ma.Schema):
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(["ok", "down"]))
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(),
                            required=True, metadata={"description": "each dependency: ok, "
                                                                    "or what is wrong"})
    down = ma.fields.List(ma.fields.String(), required=True)


def ops_blueprint(runtime: Any) -> Blueprint:
    blp = Blueprint("ops", __name__, description="Liveness, readiness and metrics")

    @blp.route("/healthz", methods=["GET"])
    @blp.response(200, Health)
    @public
    def healthz() -> Response:
        """Alive: the process answers."""
        return jsonify({"status": "ok", "service": runtime.spec.name})

    @blp.route("/readyz", methods=["GET"])
    @blp.response(200, Readiness)
    @blp.alt_response(503, schema=Readiness, description="Something it needs is down")
    @public
    def readyz() -> Response:
        """Ready: the store, the bus and the cache can be reached (503 names what is down)."""
        # Anyone may ask: name what is down, not why (the error text goes to the log).
        checks = {}
        for name, state in runtime.readiness().items():
            checks[name] = state.split(":", 1)[0].strip() or "down"
            if state != "ok":
                log.warning("not ready: %s %s", name, state)
        down = sorted(k for k, v in checks.items() if v != "ok")
        response = jsonify({"status": "down" if down else "ok", "checks": checks,
                            "down": down})
        response.status_code = 503 if down else 200
        return response

    @blp.route("/metrics", methods=["GET"])
    @blp.response(200, {"type": "string"}, content_type="text/plain",
                  description="Prometheus text exposition format")
    @requires("sla:read", "audit:read")
    def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    return blp
