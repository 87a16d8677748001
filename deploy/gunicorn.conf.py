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
