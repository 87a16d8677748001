"""monitoring's own settings, read from the environment and validated at start (a bad
value stops the process naming the variable, as the platform's settings do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import seconds, whole_number


@dataclass(frozen=True)
class MonitoringSettings:
    # How often each evaluator checkpoints its state (a restart replays only what came
    # after): SLA_CHECKPOINT_SECONDS.
    checkpoint_seconds: int = 10
    # Evaluators the regimes are split over, one role each: SLA_EVALUATOR_PARTITIONS.
    evaluator_partitions: int = 1
    # Window evaluations of each series kept in memory for the queries:
    # SLA_EVALUATIONS_KEPT (older ones stay in the log).
    evaluations_kept: int = 1000
    # The evaluator wakes when the intake log gets new events; at the latest after this
    # many seconds (the fallback should a wake-up be lost): SLA_EVALUATOR_POLL_INTERVAL.
    evaluator_poll_interval: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MonitoringSettings:
        return cls(
            checkpoint_seconds=whole_number(env, "SLA_CHECKPOINT_SECONDS", 10, 1),
            evaluator_partitions=whole_number(env, "SLA_EVALUATOR_PARTITIONS", 1, 1),
            evaluations_kept=whole_number(env, "SLA_EVALUATIONS_KEPT", 1000, 1),
            evaluator_poll_interval=seconds(env, "SLA_EVALUATOR_POLL_INTERVAL", 1.0, 0.001,
                                            60),
        )
