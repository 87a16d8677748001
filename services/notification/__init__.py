"""Notification lists, subscriptions and reliable delivery (README: notification; its
place in the suite: docs/architecture.md)."""

from shared.config import SERVICES

#: The service's API root: its resources' ``href``s and the links its messages carry
#: (details, acknowledgement) are under it.
ROOT = str(SERVICES["notification"]["root"])
