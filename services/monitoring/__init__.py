"""The monitoring service: regimes, window evaluation, crossings and error budgets
(docs/architecture.md, "From a measurement to a delivered message")."""
