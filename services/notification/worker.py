"""The notification worker's roles (run by ``slactl worker``, or as threads embedded):
the ``scheduler`` (group flushes, repeats, escalations, when the timetable says they are
due) and the ``dispatcher`` (delivery attempts on a bounded thread pool). Both find due
work by the due-time columns of the stored read model the application keeps from its
log (``views.py``, ``shared.readmodel.StoredTimetable``), so a restarted worker resumes
where the last one stopped, and no worker holds every aggregate to know what is due."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from services.notification.application import NotificationService
from shared.service import Role, Wiring
from shared.wakeups import sleep

log = logging.getLogger(__name__)


def dispatcher(app: NotificationService, embedded: bool) -> Callable[[threading.Event], None]:
    def run(stop: threading.Event) -> None:
        in_flight: set[Any] = set()
        lock = threading.Lock()
        wake = app.wake.waiter()
        first = True

        def attempt(delivery_id: Any, resume: bool) -> None:
            try:
                app.attempt(delivery_id, resume=resume)
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
                    with app.index.reading():  # one catch-up for the pass's queries
                        due = app.due_deliveries(resume_all_sending=first and embedded)
                        first = False
                        for d in due:
                            with lock:
                                if d.id in in_flight:
                                    continue
                                in_flight.add(d.id)
                            pool.submit(attempt, d.id, d.status == "sending")
                        pause = app.dispatch.seconds_to_next(app.config.tick)
                except Exception:  # noqa: BLE001
                    log.exception("notification dispatcher failed")
                    stop.wait(1.0)
                    pause = app.config.tick
                if sleep(wake, stop, pause):
                    wake.clear()

    return run


def background(app: NotificationService, wiring: Wiring) -> dict[str, Role]:
    """In embedded mode the dispatcher resumes every delivery left ``sending`` at start
    (this process was the only sender); distributed, only those whose lease ran out.

    Both roles wait on ``app.wake``: set by the work they hand each other (an alert
    routed, a group flushed, an attempt ended) and, unless ``SLA_WAKE_ON_EVENTS`` is
    false, by every new event of the log (``app.recorded``: a save in this process, or
    another process's through PostgreSQL ``LISTEN``), so work recorded elsewhere — an
    acknowledgement over HTTP, an alert taken in by another worker — is seen at once;
    at the latest after ``SLA_NOTIFICATION_TICK`` seconds."""
    if wiring.platform.wake_on_events:
        app.recorded.remove(app.wake)
        app.recorded.add(app.wake)
    scheduler = app.scheduler()
    return {"scheduler": Role(scheduler.run, lambda: scheduler.last_error),
            "dispatcher": Role(dispatcher(app, wiring.platform.embedded))}
