"""The notification worker's roles (run by ``slactl worker``, or as threads embedded):
the ``scheduler`` (group flushes, repeats, escalations) and the ``dispatcher`` (delivery
attempts on a bounded thread pool). Both read due work from the event-sourced read model, so a
restarted worker resumes where the last one stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from services.notification.application import NotificationService
from services.notification.delivery import webhook_session
from shared.service import Role, Wiring

log = logging.getLogger(__name__)


def scheduler(app: NotificationService) -> Callable[[threading.Event], None]:
    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                app.tick()
            except Exception:  # noqa: BLE001 - keep scheduling after any failure
                log.exception("notification scheduler tick failed")
                stop.wait(1.0)
            stop.wait(app.config.tick)

    return run


def dispatcher(app: NotificationService, embedded: bool) -> Callable[[threading.Event], None]:
    def run(stop: threading.Event) -> None:
        in_flight: set[Any] = set()
        lock = threading.Lock()
        local = threading.local()
        first = True

        def attempt(delivery_id: Any, resume: bool) -> None:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = webhook_session()
            try:
                app.attempt(delivery_id, resume=resume, session=session)
            except Exception:  # noqa: BLE001 - the delivery stays due and is picked again
                log.exception("delivery %s could not be attempted", delivery_id)
            finally:
                with lock:
                    in_flight.discard(delivery_id)
                app.wake.set()

        with ThreadPoolExecutor(max_workers=app.config.concurrency,
                                thread_name_prefix="notification-send") as pool:
            while not stop.is_set():
                try:
                    due = app.due_deliveries(resume_all_sending=first and embedded)
                    first = False
                    for d in due:
                        with lock:
                            if d.id in in_flight:
                                continue
                            in_flight.add(d.id)
                        pool.submit(attempt, d.id, d.status == "sending")
                except Exception:  # noqa: BLE001
                    log.exception("notification dispatcher failed")
                    stop.wait(1.0)
                app.wake.wait(app.config.tick)
                app.wake.clear()

    return run


def background(app: NotificationService, wiring: Wiring) -> dict[str, Role]:
    """In embedded mode the dispatcher resumes every delivery left ``sending`` at start
    (this process was the only sender); distributed, only those whose lease ran out."""
    return {"scheduler": Role(scheduler(app)),
            "dispatcher": Role(dispatcher(app, wiring.platform.embedded))}
