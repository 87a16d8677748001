"""The monitoring service: regimes, window evaluation, crossings and error budgets."""
