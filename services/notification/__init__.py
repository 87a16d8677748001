"""Notification lists, subscriptions and reliable delivery (README: notification; its
place in the suite: docs/architecture.md)."""
