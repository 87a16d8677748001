"""JSON logs that carry the correlation id of the request or message being handled."""

from __future__ import annotations

import logging
import sys

import structlog

from shared import context


def _add_context(_: object, __: str, event_dict: dict) -> dict:
    for key, value in context.current().items():
        event_dict.setdefault(key, value)
    return event_dict


def configure(level: str = "INFO", json: bool = True, service: str | None = None) -> None:
    shared_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_context,
    ]
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    renderer = (structlog.processors.JSONRenderer() if json
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
        foreign_pre_chain=shared_processors,
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pika").setLevel("WARNING")
