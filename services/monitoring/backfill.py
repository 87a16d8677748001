"""The window summaries of windows closed before anything consumed them, published again
(``slactl backfill window-summaries``): an installation that adds analysis later
replays monitoring's outcomes log into it, with the same summaries as if analysis had run
from the start.

The relay of the outcomes log publishes a summary per series of each window it reaches
(``messaging.window_publications``). The windows behind its position — closed before this
release, or while no analysis queue was bound — went out once, or never; this publishes
them again, described by the same describer, under the same message ids
(``monitoring:<notification id>/<n>``), oldest first, a page at a time. Nothing is
recorded: a summary analysis already keeps is a duplicate there (by its message id and by
the summary's own id), so the command can be stopped and run again, and runs beside the
relay (what the relay publishes after its position, it publishes itself). The inventory
facts of each summary are the working set's when the command runs.
"""

from __future__ import annotations

from collections.abc import Callable

from services.monitoring.domain import EvaluatedWindow, WindowEvaluation
from shared.service import Runtime
from shared.store import topics_of

TOPICS = topics_of([EvaluatedWindow, WindowEvaluation])


def window_summaries(runtime: Runtime, batch: int = 500,
                     progress: Callable[[int, int], None] | None = None) -> int:
    """Publish the summaries of every window of the outcomes log up to its relay's
    position; returns how many messages were published. ``progress(done, total)``: log
    positions."""
    relay = runtime.relay  # the outcomes log's: its describer and message ids
    log = relay.app
    upto = log.published_position(relay.outbox)
    position = sent = 0
    while position < upto:
        page = log.recorder.select_notifications(start=position, limit=batch,
                                                 inclusive_of_start=False, topics=TOPICS,
                                                 stop=upto)
        if not page:
            break
        messages = [m for m in relay.page_messages(page)
                    if m.envelope.event_type == "WindowSummaryEvent"]
        if messages:
            runtime.transport.publish(messages)
        sent += len(messages)
        position = page[-1].id
        if progress is not None:
            progress(position, upto)
    return sent
