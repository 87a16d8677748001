"""WSGI entry points: one service (distributed mode) or the whole suite (embedded mode)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from flask import Flask

from shared import config, logs
from shared.bus.transport import InProcessTransport
from shared.http.errors import error_body
from shared.http.factory import create_app
from shared.service import Runtime, ServiceSpec


def service_app(spec: ServiceSpec, *, start_workers: bool = False) -> Flask:
    """The HTTP app of one service; its relay and inbox run in ``slactl worker``."""
    settings = config.load()
    logs.configure(settings.log_level, settings.log_json, spec.name)
    runtime = Runtime(spec, settings)
    if start_workers:
        runtime.start_workers()
    return create_app(runtime)


class Suite:
    """All services in one process: one in-process bus, the apps under their API roots."""

    def __init__(self, specs: Sequence[ServiceSpec], settings: config.Settings | None = None,
                 start_workers: bool = True,
                 clocks: Mapping[str, Callable[[], Any]] | None = None,
                 senders: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """``clocks``: by service name, the time source its application is built with
        (tests move time with it); the others keep the wall clock. ``senders``: by service
        name, the senders by channel it hands messages over with; the others use their
        own."""
        self.settings = settings or config.load()
        transport = InProcessTransport() if self.settings.embedded else None
        clocks, senders = clocks or {}, senders or {}
        self.runtimes = [Runtime(spec, self.settings, transport, clock=clocks.get(spec.name),
                                 senders=senders.get(spec.name))
                         for spec in specs]
        self.apps = {rt.spec.root: create_app(rt) for rt in self.runtimes}
        if start_workers:
            for rt in self.runtimes:
                rt.start_workers()

    def runtime(self, name: str) -> Runtime:
        return next(rt for rt in self.runtimes if rt.spec.name == name)

    def app(self, name: str) -> Flask:
        return self.apps[self.runtime(name).spec.root]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for root, app in self.apps.items():
            if path == root or path.startswith(root + "/"):
                return app(environ, start_response)
        return _not_found(environ, start_response, list(self.apps))

    def stop(self) -> None:
        for rt in self.runtimes:
            rt.stop()


def _not_found(environ: dict[str, Any], start_response: Callable[..., Any],
               roots: list[str]) -> Iterable[bytes]:
    import json

    body = error_body(404, f"no service at {environ.get('PATH_INFO')}; API roots: "
                           f"{', '.join(roots)}")
    data = json.dumps(body).encode()
    start_response("404 NOT FOUND", [("Content-Type", "application/json"),
                                     ("Content-Length", str(len(data)))])
    return [data]
