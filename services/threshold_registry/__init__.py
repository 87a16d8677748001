"""The threshold-registry service: offerings and their groups, SLA types, threshold standards
and the purchased-offering inventory (docs/architecture.md, "Services")."""
