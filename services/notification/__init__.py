"""Notification lists, subscriptions and reliable delivery (README: notification)."""
