"""HTTP entrypoint of monitoring: regimes, measurement intake, and the queries over
evaluations, crossings, burn alerts and current status. Regimes, crossings, burn alerts
and quarantines are ``Listing``s of the stored read models, paged in the database."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from flask import g
from flask.views import MethodView

from services.monitoring import schemas as s
from services.monitoring.application import (
    Monitoring,
    QuarantineStatus,
    Receipt,
    SeriesStatus,
)
from services.monitoring.domain import (
    BatchConflict,
    Crossing,
    MeasurementBatch,
    Regime,
    WindowEvaluation,
)
from shared.http.blueprint import Blueprint
from shared.http.errors import ApiError
from shared.http.listing import expected_version
from shared.http.schemas import list_query
from shared.http.security import requires
from shared.readmodel import Listing

READ, WRITE, INGEST = "sla:read", "sla:write", "ingest"


def blueprint(runtime: Any) -> Blueprint:
    app: Monitoring = runtime.app
    blp = Blueprint("monitoring", __name__,
                    description="Proactive monitoring regimes over groups of purchased "
                                "offerings: measurements in, crossings and burn alerts out")

    # --- regimes -----------------------------------------------------------------------
    @blp.route("/monitoringRegime")
    class Regimes(MethodView):
        @blp.arguments(list_query(s.Regime), location="query")
        @blp.response(200, s.Regime(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """Monitoring regimes; filter by status, offeringGroupId ..."""
            return app.regimes()

        @blp.arguments(s.RegimeCreate)
        @blp.response(201, s.Regime)
        @requires(WRITE)
        def post(self, body: dict[str, Any]) -> Regime:
            """Start a regime over an offering group (or one offering)."""
            return app.start_regime(**body)

    @blp.route("/monitoringRegime/<uuid:regime_id>")
    class OneRegime(MethodView):
        @blp.response(200, s.Regime)
        @requires(READ)
        def get(self, regime_id: UUID) -> Regime:
            """Read a regime."""
            return app.regime(regime_id)

        @blp.arguments(s.RegimePatch)
        @blp.response(200, s.Regime)
        @requires(WRITE)
        def patch(self, body: dict[str, Any], regime_id: UUID) -> Regime:
            """Change a regime's name, parameters, lateness or clearing (merge-patch)."""
            return app.change_regime(regime_id, body, expected_version())

    def action(name: str, summary: str) -> None:
        @blp.route(f"/monitoringRegime/<uuid:regime_id>/{name}", methods=["POST"],
                   endpoint=f"{name}_regime")
        @blp.arguments(s.RegimeAction)
        @blp.response(200, s.Regime)
        @requires(WRITE)
        def act(body: dict[str, Any], regime_id: UUID) -> Regime:
            return app.set_regime_status(regime_id, name, body.get("reason"),
                                         expected_version())

        act.__doc__ = summary

    action("pause", "Pause a regime: samples for it are refused until it resumes.")
    action("resume", "Resume a paused regime.")
    action("stop", "Stop a regime for good.")

    # --- measurements ------------------------------------------------------------------
    @blp.route("/measurementBatch")
    class Batches(MethodView):
        @blp.arguments(s.MeasurementBatchIn)
        @blp.response(201, s.MeasurementBatchOut)
        @requires(INGEST)
        def post(self, body: dict[str, Any]) -> tuple[Receipt, int, dict[str, str]]:
            """Send a batch of samples. Bad samples are refused one by one with their reason
            (the rest is accepted); a batch id sent again with the same samples is not counted
            twice (200, duplicate), with other samples it is refused (409)."""
            batch_id = body.get("batch_id") or str(uuid4())
            try:
                outcome = app.ingest(batch_id, f"http:{g.principal.subject}", body["samples"])
            except BatchConflict as exc:
                raise ApiError(409, str(exc), "BATCH_ID_REUSED") from None
            href = f"{s.MeasurementBatchOut.PATH}/{batch_id}"
            return outcome.receipt, 200 if outcome.duplicate else 201, {"Location": href}

    @blp.route("/measurementBatch/<string:batch_id>")
    class OneBatch(MethodView):
        @blp.response(200, s.MeasurementBatchOut)
        @requires(READ, INGEST)
        def get(self, batch_id: str) -> MeasurementBatch:
            """What became of a batch: how many samples were accepted, which were refused."""
            batch = app.batch(batch_id)
            if batch is None:
                raise ApiError(404, f"no measurement batch {batch_id}")
            return batch

    # --- queries -----------------------------------------------------------------------
    @blp.route("/crossing")
    class Crossings(MethodView):
        @blp.arguments(list_query(s.Crossing), location="query")
        @blp.response(200, s.Crossing(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """Crossing history; filter by regimeId, parameter, level, scopeType, scopeId,
            open, raisedAt.gte ..."""
            return app.crossings()

    @blp.route("/crossing/<uuid:crossing_id>")
    class OneCrossing(MethodView):
        @blp.response(200, s.Crossing)
        @requires(READ)
        def get(self, crossing_id: UUID) -> Crossing:
            """One crossing with its history and the evidence behind each step."""
            return app.crossing(crossing_id)

    @blp.route("/burnAlert")
    class BurnAlerts(MethodView):
        @blp.arguments(list_query(s.BurnAlert), location="query")
        @blp.response(200, s.BurnAlert(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """Error-budget burn-rate alerts (page, ticket)."""
            return app.burn_alerts()

    @blp.route("/windowEvaluation")
    class WindowEvaluations(MethodView):
        @blp.arguments(list_query(s.WindowEvaluation), location="query")
        @blp.response(200, s.WindowEvaluation(many=True))
        @requires(READ)
        def get(self, _: Any) -> list[WindowEvaluation]:
            """The evaluated windows of a series, for charts: filter by regimeId, parameter,
            scopeType, scopeId, windowStart.gte/lt; sort=windowStart."""
            return app.evaluations()

    @blp.route("/status")
    class Status(MethodView):
        @blp.arguments(list_query(s.SeriesStatus), location="query")
        @blp.response(200, s.SeriesStatus(many=True))
        @requires(READ)
        def get(self, _: Any) -> list[SeriesStatus]:
            """Current status of every series: per regime, group, offering and purchased
            offering — level, last value, remaining error budget, burn alert."""
            return app.status()

    # --- quarantine --------------------------------------------------------------------
    @blp.route("/quarantine")
    class Quarantines(MethodView):
        @blp.arguments(list_query(s.Quarantine), location="query")
        @blp.response(200, s.Quarantine(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """What the evaluator set aside because evaluating it failed: a series (a regime's
            parameter) until it is released, or one batch; with the reason. Filter by kind,
            status, regimeId, parameter ..."""
            return app.quarantine_statuses()

    @blp.route("/quarantine/<uuid:quarantine_id>")
    class OneQuarantine(MethodView):
        @blp.response(200, s.Quarantine)
        @requires(READ)
        def get(self, quarantine_id: UUID) -> QuarantineStatus:
            """One quarantined series or batch."""
            return app.quarantine_status(quarantine_id)

    @blp.route("/quarantine/<uuid:quarantine_id>/release")
    class QuarantineRelease(MethodView):
        @blp.arguments(s.QuarantineRelease)
        @blp.response(202, s.Quarantine)
        @requires(WRITE)
        def post(self, body: dict[str, Any], quarantine_id: UUID) -> QuarantineStatus:
            """Evaluate a quarantined series again, from the next sample on (once the cause is
            fixed). Recorded and audited; the evaluator resumes the series at this point of
            the intake log, so the status turns from releaseRequested to released. A
            quarantined batch cannot be released (409): send its samples in a new batch."""
            return app.release_quarantine(quarantine_id, body.get("reason"),
                                          g.principal.subject)

    return blp
