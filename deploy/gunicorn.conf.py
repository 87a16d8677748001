"""gunicorn settings for one service's HTTP process (distributed mode)."""

import multiprocessing
import os

workers = int(os.environ.get("SLA_HTTP_WORKERS", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("SLA_HTTP_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None
limit_request_line = 8190  # room for an acknowledgement link's token, percent-encoded
forwarded_allow_ips = os.environ.get("SLA_FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """A control socket of this master's own (gunicorn's default path is one per user,
    and each master removes it on start): known only once the bind address is."""
    from shared.config import control_socket

    path = control_socket(os.environ, server.cfg.bind)
    if path is None:
        server.cfg.set("control_socket_disable", True)
    else:
        server.cfg.set("control_socket", path)
    _import_the_service(getattr(server.app, "app_uri", None) or "")


def _import_the_service(app_uri):
    """Import the service's code (not its app) once, here in the master, so every worker
    forks with it imported instead of importing it again: a worker then only builds its
    app (its own store connections, bus and cache, made after the fork). Importing was
    about a third of a start's CPU time per worker (measured: 1.2 CPU-s for the master
    and two workers to the first ``healthz``, 0.8 with this), which is what a restart on
    a busy machine waits for; the workers also share those pages."""
    import importlib

    package = app_uri.partition(":")[0].rpartition(".")[0]  # services.<name>.wsgi:app
    if not package:
        return
    try:
        importlib.import_module(f"{package}.service")
    except ImportError:  # not one of the suite's services: it imports its own
        return
    importlib.import_module("shared.wsgi")
