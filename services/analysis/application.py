"""The analysis application: the window summaries monitoring publishes and the replicas
of the registry's resources, kept from the bus, and the aggregate analysis over them.

Built with everything it uses (docs/architecture.md, "Adding a service"): its store's
environment. Analysis reads nothing synchronously from another service: the summaries
carry what monitoring measured and judged, the replicas the SLA types' credit terms and
the purchased offerings' charges. Aggregates are summed in SQL over the stored read
model (``views.py``, ``aggregates.py``), so an answer over a million summaries reads one
row per group, not a million aggregates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from services.analysis import aggregates
from services.analysis.domain import Replica, WindowSummary, stable_summary_id
from services.analysis.scheduling import Scheduling, due_items
from services.analysis.settings import AnalysisSettings
from services.analysis.views import AnalysisIndex
from shared import replica as replicas
from shared.readmodel import StoredTimetable
from shared.replica import Copy
from shared.scheduler import Clock, DueLoop, SystemClock, Wakeup
from shared.store import InboxGroup, ServiceApplication

#: Replicas read a query (ids in one ``IN``).
CHUNK = 500
#: PostgreSQL's memory for an aggregate's sorts and hashes (a million values sorted in
#: memory rather than on disk), for its transaction only.
WORK_MEM = "64MB"


class Analysis(ServiceApplication):
    """Window summaries and the registry facts they are read with."""

    name = "Analysis"
    snapshotting_intervals = {Replica: 50}  # noqa: RUF012

    def __init__(self, env: Mapping[str, str] | None = None, *,
                 settings: AnalysisSettings | None = None, clock: Clock | None = None) -> None:
        super().__init__(env)
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or AnalysisSettings()
        self.index = AnalysisIndex(self)
        self.wake = Wakeup()
        self.scheduling = Scheduling(self)
        self.timetable = StoredTimetable(self.index, due_items())

    def read_models(self) -> list[AnalysisIndex]:
        return [self.index]

    def close(self) -> None:
        self.index.close()
        super().close()

    # --- the clock (``scheduling.py``) ---------------------------------------------------
    def scheduler(self) -> DueLoop:
        """The loop that runs analysis's due work when it falls due."""
        return DueLoop(self.timetable, self.clock, self.scheduling.work(), self.wake,
                       idle=self.settings.tick)

    def tick(self) -> int:
        """Run the work due now; how many items were run."""
        return self.scheduler().run_due()

    # --- what the bus brings ------------------------------------------------------------
    def receive_replica(self, copy: Copy) -> None:
        """Keep a registry resource as its event told it (a newer version only)."""
        self.save(replicas.receive(self.repository, Replica, copy))

    def receive_summary(self, summary: dict[str, Any]) -> WindowSummary | None:
        """Keep a window summary once: one heard before (the same series and window,
        whatever message carried it: a redelivery, a backfill) changes nothing and
        returns None."""
        kept_id = stable_summary_id(str(summary["id"]))
        group = InboxGroup.current()
        known = group.find(kept_id) if group is not None else InboxGroup.UNSEEN
        if known is InboxGroup.UNSEEN:
            try:
                known = self.repository.get(kept_id)
            except AggregateNotFoundError:
                known = None
        if known is not None:
            return None
        kept = WindowSummary.of(summary)
        assert kept.id == kept_id  # the id is the summary's own
        self.save(kept)
        return kept

    # --- queries --------------------------------------------------------------------------
    def summary_count(self) -> int:
        """How many window summaries analysis keeps."""
        self.index.catch_up()
        return self.index.count(WindowSummary)

    def fact(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        found = self.index.get(Replica.create_id(kind, resource_id), Replica)
        return found.resource if isinstance(found, Replica) else None

    def facts(self, kind: str, resource_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The kept resources of one kind by id, read in a few queries (500 ids each)."""
        ids = sorted({str(Replica.create_id(kind, rid)) for rid in resource_ids})
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            for replica, _ in self.index.select(
                    Replica, conditions=[(f"id IN ({','.join('?' * len(chunk))})", chunk)]):
                found[replica.resource_id] = replica.resource
        return found

    def aggregate(self, query: aggregates.AggregateQuery) -> list[dict[str, Any]]:
        """The figures of a period, grouped as asked (``aggregates.py`` defines them)."""
        table = self.index.tables[WindowSummary]
        columns = {c.name: c for c in table.columns}
        postgres = self.index.postgres
        asked = aggregates.statements(query, self.index.sql_table(WindowSummary), columns,
                                      postgres=postgres)
        with self.index.reading():
            offerings = self.index.query(*asked["offerings"], work_mem=WORK_MEM)
            ranked = self.index.query(*asked["percentiles"], work_mem=WORK_MEM) \
                if offerings else []
            slas, pos = aggregates.credited(offerings)
            terms = self.facts("slaType", slas)
            charges = self.facts("purchasedOffering", pos)
        groups = aggregates.assemble(query, offerings, ranked, terms.get, charges.get,
                                     postgres=postgres)
        return aggregates.rows_of(groups)
