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
forwarded_allow_ips = os.environ.get("SLA_FORWARDED_ALLOW_IPS", "127.0.0.1")
