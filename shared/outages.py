"""What a planned outage's status means to the services that consume
``PlannedOutageChangeEvent`` (monitoring excludes or counts its window, notification
suppresses the alerts inside it): one list, so the owner and its consumers cannot drift.

A window is in force once agreed, while in progress and after completion (a window
evaluated late is still judged with it); a cancelled, rejected or renegotiated outage's
window is not."""

from __future__ import annotations

IN_FORCE = ("agreed", "inProgress", "completed")
