"""HTTP entrypoint of monitoring: regimes, measurement intake, and the queries over
evaluations, crossings, burn alerts and current status."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from flask import Response, g
from flask.views import MethodView

from services.monitoring import resources
from services.monitoring import schemas as s
from services.monitoring.application import Monitoring
from services.monitoring.domain import BatchConflict, Regime
from shared.http.blueprint import Blueprint
from shared.http.errors import ApiError
from shared.http.listing import (
    expected_version,
    fields_of,
    list_response,
    one_response,
)
from shared.http.schemas import list_query
from shared.http.security import requires

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
        def get(self, _: Any) -> list[Regime]:
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
    @blp.route("/measurementBatch", methods=["POST"])
    @blp.arguments(s.MeasurementBatchIn)
    @blp.response(201, s.MeasurementBatchOut)
    @requires(INGEST)
    def ingest(body: dict[str, Any]) -> Response:
        """Send a batch of samples. Bad samples are refused one by one with their reason
        (the rest is accepted); a batch id sent again with the same samples is not counted
        twice (200, duplicate), with other samples it is refused (409)."""
        batch_id = body.get("batchId") or str(uuid4())
        try:
            outcome = app.ingest(batch_id, f"http:{g.principal.subject}", body["samples"])
        except BatchConflict as exc:
            raise ApiError(409, str(exc), "BATCH_ID_REUSED") from None
        rep = resources.batch(outcome.aggregate)
        rep["duplicate"] = outcome.duplicate
        return one_response(rep, status=200 if outcome.duplicate else 201,
                            location=rep["href"])

    @blp.route("/measurementBatch/<string:batch_id>", methods=["GET"])
    @blp.response(200, s.MeasurementBatchOut)
    @requires(READ, INGEST)
    def get_batch(batch_id: str) -> Response:
        """What became of a batch: how many samples were accepted, which were refused."""
        batch = app.batch(batch_id)
        if batch is None:
            raise ApiError(404, f"no measurement batch {batch_id}")
        return one_response(resources.batch(batch))

    # --- queries -----------------------------------------------------------------------
    @blp.route("/crossing", methods=["GET"])
    @blp.arguments(list_query(s.Crossing), location="query")
    @blp.response(200, s.Crossing(many=True))
    @requires(READ)
    def list_crossings(_: Any) -> Response:
        """Crossing history; filter by regimeId, parameter, level, scopeType, scopeId,
        open, raisedAt.gte ..."""
        return list_response(map(resources.crossing, app.crossings()), fields_of(s.Crossing))

    @blp.route("/crossing/<uuid:crossing_id>", methods=["GET"])
    @blp.response(200, s.Crossing)
    @requires(READ)
    def get_crossing(crossing_id: UUID) -> Response:
        """One crossing with its history and the evidence behind each step."""
        crossing = app.crossing(crossing_id)
        return one_response(resources.crossing(crossing), crossing.version)

    @blp.route("/burnAlert", methods=["GET"])
    @blp.arguments(list_query(s.BurnAlert), location="query")
    @blp.response(200, s.BurnAlert(many=True))
    @requires(READ)
    def list_burn_alerts(_: Any) -> Response:
        """Error-budget burn-rate alerts (page, ticket)."""
        return list_response(map(resources.burn_alert, app.burn_alerts()),
                             fields_of(s.BurnAlert))

    @blp.route("/windowEvaluation", methods=["GET"])
    @blp.arguments(list_query(s.WindowEvaluation), location="query")
    @blp.response(200, s.WindowEvaluation(many=True))
    @requires(READ)
    def list_evaluations(_: Any) -> Response:
        """The evaluated windows of a series, for charts: filter by regimeId, parameter,
        scopeType, scopeId, windowStart.gte/lt; sort=windowStart."""
        return list_response(map(resources.evaluation, app.evaluations()),
                             fields_of(s.WindowEvaluation))

    @blp.route("/status", methods=["GET"])
    @blp.arguments(list_query(s.SeriesStatus), location="query")
    @blp.response(200, s.SeriesStatus(many=True))
    @requires(READ)
    def status(_: Any) -> Response:
        """Current status of every series: per regime, group, offering and purchased
        offering — level, last value, remaining error budget, burn alert."""
        return list_response(map(resources.status_row, app.status()),
                             fields_of(s.SeriesStatus))

    # --- quarantine --------------------------------------------------------------------
    def quarantine_rep(q: Any) -> dict[str, Any]:
        return resources.quarantine(q, app.release_requested(q.id) if not q.released else None)

    @blp.route("/quarantine", methods=["GET"])
    @blp.arguments(list_query(s.Quarantine), location="query")
    @blp.response(200, s.Quarantine(many=True))
    @requires(READ)
    def list_quarantines(_: Any) -> Response:
        """What the evaluator set aside because evaluating it failed: a series (a regime's
        parameter) until it is released, or one batch; with the reason. Filter by kind,
        status, regimeId, parameter ..."""
        return list_response(map(quarantine_rep, app.quarantines()), fields_of(s.Quarantine))

    @blp.route("/quarantine/<uuid:quarantine_id>", methods=["GET"])
    @blp.response(200, s.Quarantine)
    @requires(READ)
    def get_quarantine(quarantine_id: UUID) -> Response:
        """One quarantined series or batch."""
        q = app.quarantine(quarantine_id)
        return one_response(quarantine_rep(q), q.version)

    @blp.route("/quarantine/<uuid:quarantine_id>/release", methods=["POST"])
    @blp.arguments(s.QuarantineRelease)
    @blp.response(202, s.Quarantine)
    @requires(WRITE)
    def release_quarantine(body: dict[str, Any], quarantine_id: UUID) -> Response:
        """Evaluate a quarantined series again, from the next sample on (once the cause is
        fixed). Recorded and audited; the evaluator resumes the series at this point of
        the intake log, so the status turns from releaseRequested to released. A
        quarantined batch cannot be released (409): send its samples in a new batch."""
        q = app.release_quarantine(quarantine_id, body.get("reason"), g.principal.subject)
        return one_response(quarantine_rep(q), q.version, status=202)

    return blp
