"""Notification lists, subscriptions and reliable delivery (DESIGN.md §1)."""
