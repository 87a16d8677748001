"""HTTP entrypoint of the threshold-registry: one flask-smorest ``MethodView`` per resource,
thin over the application's commands and queries. A view passes what its schema loaded
straight to the application and returns the aggregate; ``@blp.response`` dumps it with
the resource's schema and applies the TMF630 conventions (``shared.http.blueprint``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError
from flask import Response, g
from flask.views import MethodView

from services.threshold_registry import schemas as s
from services.threshold_registry.application import ThresholdRegistry
from services.threshold_registry.domain import (
    OfferingGroup,
    Placed,
    ProductOffering,
    SlaType,
    ThresholdStandard,
)
from shared.errors import InUse
from shared.http.blueprint import Blueprint, wire_names
from shared.http.errors import ApiError
from shared.http.listing import expected_version, list_response
from shared.http.schemas import list_query
from shared.http.security import requires
from shared.readmodel import Listing

READ, WRITE = "sla:read", "sla:write"


def blueprint(runtime: Any) -> Blueprint:
    app: ThresholdRegistry = runtime.app
    blp = Blueprint("threshold-registry", __name__,
                    description="Offering groups, product offerings, SLA types, threshold "
                                "standards and the product offering inventory")

    # --- offering groups -----------------------------------------------------------------
    @blp.route("/offeringGroup")
    class OfferingGroups(MethodView):
        @blp.arguments(list_query(s.OfferingGroup), location="query")
        @blp.response(200, s.OfferingGroup(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """List offering groups (groups of similar product offerings); deleted ones are
            gone (their history is in the audit log)."""
            return app.offering_groups()

        @blp.arguments(s.OfferingGroupCreate)
        @blp.response(201, s.OfferingGroup)
        @requires(WRITE)
        def post(self, body: dict[str, Any]) -> OfferingGroup:
            """Create an offering group."""
            return app.register_offering_group(**body)

    @blp.route("/offeringGroup/<uuid:group_id>")
    class OneOfferingGroup(MethodView):
        @blp.response(200, s.OfferingGroup)
        @requires(READ)
        def get(self, group_id: UUID) -> OfferingGroup:
            """Read an offering group; a deleted one is gone (404), its history is in the
            audit log."""
            group = app.offering_group(group_id)
            if group.is_retired:
                raise ApiError(404, f"offering group {group_id} was deleted; its history is "
                                    f"in audit/aggregates/{group_id}/history")
            return group

        @blp.arguments(s.OfferingGroupPatch)
        @blp.response(200, s.OfferingGroup)
        @requires(WRITE)
        def patch(self, body: dict[str, Any], group_id: UUID) -> OfferingGroup:
            """Change an offering group (merge-patch; If-Match honoured)."""
            return app.update_offering_group(group_id, body, expected_version())

        @blp.response(204)
        @blp.doc(responses={"409": {
            "description": "IN_USE: still used by offerings, standards or regimes (named in "
                           "the message, their ids by kind in details)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}})
        @requires(WRITE)
        def delete(self, group_id: UUID) -> Response:
            """Retire an offering group (its history stays in the audit log). Refused (409
            `IN_USE`) while product offerings, threshold standards or monitoring regimes not
            stopped still use it: the message names them, `details` lists their ids by kind
            (`productOffering`, `thresholdStandard`, `monitoringRegime`)."""
            try:
                app.retire_offering_group(group_id, expected_version())
            except InUse as exc:
                raise ApiError(409, str(exc), "IN_USE", exc.users) from None
            return Response(status=204)

    # --- product offerings ---------------------------------------------------------------
    @blp.route("/productOffering")
    class ProductOfferings(MethodView):
        @blp.arguments(list_query(s.ProductOffering), location="query")
        @blp.response(200, s.ProductOffering(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """List product offerings; filter e.g. by offeringGroupId or lifecycleStatus."""
            return app.offerings()

        @blp.arguments(s.ProductOfferingCreate)
        @blp.response(201, s.ProductOffering)
        @requires(WRITE)
        def post(self, body: dict[str, Any]) -> ProductOffering:
            """Create a product offering, optionally in an offering group."""
            return app.register_offering(**body)

    @blp.route("/productOffering/<uuid:offering_id>")
    class OneProductOffering(MethodView):
        @blp.response(200, s.ProductOffering)
        @requires(READ)
        def get(self, offering_id: UUID) -> ProductOffering:
            """Read a product offering."""
            return app.offering(offering_id)

        @blp.arguments(s.ProductOfferingPatch)
        @blp.response(200, s.ProductOffering)
        @requires(WRITE)
        def patch(self, body: dict[str, Any], offering_id: UUID) -> ProductOffering:
            """Change a product offering: name, description, lifecycle, or move it to a group."""
            return app.update_offering(offering_id, body, expected_version())

    @blp.route("/productOffering/<uuid:offering_id>/analysisLog")
    class OfferingAnalysisLog(MethodView):
        @blp.arguments(list_query(s.AnalysisResult), location="query")
        @blp.response(200, s.AnalysisResult(many=True))
        @requires(READ)
        def get(self, _: Any, offering_id: UUID) -> Response:
            """Analysis results logged on this offering, oldest first."""
            return analysis_log(app.analysis_log(app.offering(offering_id)))

    # --- SLA types -----------------------------------------------------------------------
    @blp.route("/slaType")
    class SlaTypes(MethodView):
        @blp.arguments(list_query(s.SlaType), location="query")
        @blp.response(200, s.SlaType(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """List SLA types (gold, silver, bronze ...) with their commercial terms."""
            return app.sla_types()

        @blp.arguments(s.SlaTypeCreate)
        @blp.response(201, s.SlaType)
        @requires(WRITE)
        def post(self, body: dict[str, Any]) -> SlaType:
            """Create an SLA type with its maintenance accounting, notice and credit rule."""
            return app.register_sla_type(**body)

    @blp.route("/slaType/<uuid:sla_type_id>")
    class OneSlaType(MethodView):
        @blp.response(200, s.SlaType)
        @requires(READ)
        def get(self, sla_type_id: UUID) -> SlaType:
            """Read an SLA type."""
            return app.sla_type(sla_type_id)

        @blp.arguments(s.SlaTypePatch)
        @blp.response(200, s.SlaType)
        @requires(WRITE)
        def patch(self, body: dict[str, Any], sla_type_id: UUID) -> SlaType:
            """Change an SLA type's terms (validated as a whole)."""
            return app.change_sla_type_terms(sla_type_id, body, expected_version())

    # --- threshold standards -------------------------------------------------------------
    @blp.route("/thresholdStandard")
    class ThresholdStandards(MethodView):
        @blp.arguments(list_query(s.ThresholdStandard), location="query")
        @blp.response(200, s.ThresholdStandard(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """List threshold standards as their latest versions show them."""
            return app.standards()

        @blp.arguments(s.ThresholdStandardCreate)
        @blp.response(201, s.ThresholdStandard)
        @requires(WRITE)
        def post(self, body: dict[str, Any]) -> ThresholdStandard:
            """Create a threshold standard; version 1 starts as a draft."""
            return app.register_standard(**body)

    in_force_query = wire_names(s.InForceQuery())

    @blp.route("/thresholdStandard/inForce")
    class StandardsInForce(MethodView):
        @blp.arguments(s.InForceQuery, location="query")
        # Paged and projected, but not filtered: its query names what is asked.
        @blp.response(200, s.InForce(many=True), reserved=in_force_query, filterable=())
        @requires(READ)
        def get(self, query: dict[str, Any]) -> list[s.InForceAnswer]:
            """Which standards are in force for an offering (and SLA type) at a time (``at``,
            business time), as the registry knows it now or as it knew it at ``asKnownAt``
            (record time): each approved version counts from its approval on, within its
            validity, so a later approval never rewrites what was in force before it."""
            return [s.InForceAnswer(standard, s.VersionOf(standard.id, version))
                    for standard, version in app.standards_in_force(**query)]

    @blp.route("/thresholdStandard/<uuid:standard_id>")
    class OneThresholdStandard(MethodView):
        @blp.response(200, s.ThresholdStandard)
        @requires(READ)
        def get(self, standard_id: UUID) -> ThresholdStandard:
            """Read a threshold standard (its latest version)."""
            return app.standard(standard_id)

        @blp.arguments(s.ThresholdStandardPatch)
        @blp.response(200, s.ThresholdStandard)
        @requires(WRITE)
        def patch(self, body: dict[str, Any], standard_id: UUID) -> ThresholdStandard:
            """Revise a standard: every change makes a new draft version; old ones stay."""
            reason = body.pop("change_reason", None)
            return app.revise_standard(standard_id, body, reason, expected_version())

    @blp.route("/thresholdStandard/<uuid:standard_id>/version")
    class StandardVersions(MethodView):
        @blp.arguments(list_query(s.StandardVersion), location="query")
        @blp.response(200, s.StandardVersion(many=True))
        @requires(READ)
        def get(self, _: Any, standard_id: UUID) -> list[s.VersionOf]:
            """Every version of a standard, oldest first."""
            return s.versions_of(app.standard(standard_id))

    @blp.route("/thresholdStandard/<uuid:standard_id>/version/<int:number>")
    class OneStandardVersion(MethodView):
        # Without an ETag: a version's number names it, not its state (it can still be
        # approved, superseded or retired).
        @blp.response(200, s.StandardVersion, etag=False)
        @requires(READ)
        def get(self, standard_id: UUID, number: int) -> s.VersionOf:
            """One version of a standard, as it was approved (or drafted)."""
            matching = [v for v in s.versions_of(app.standard(standard_id))
                        if v.record["version"] == number]
            if not matching:
                raise ApiError(404, f"threshold standard {standard_id} has no version "
                                    f"{number}")
            return matching[0]

    @blp.route("/thresholdStandard/<uuid:standard_id>/approve", methods=["POST"])
    @blp.arguments(s.Approval)
    @blp.response(200, s.ThresholdStandard)
    @requires(WRITE)
    def approve_standard(body: dict[str, Any], standard_id: UUID) -> ThresholdStandard:
        """Approve a draft version: from its validity start it is in force."""
        return app.approve_standard(standard_id, body["version"], g.principal.subject,
                                    expected_version())

    @blp.route("/thresholdStandard/<uuid:standard_id>/retire", methods=["POST"])
    @blp.arguments(s.Retirement)
    @blp.response(200, s.ThresholdStandard)
    @requires(WRITE)
    def retire_standard(body: dict[str, Any], standard_id: UUID) -> ThresholdStandard:
        """Retire one version, or the whole standard."""
        return app.retire_standard(standard_id, body.get("version"), expected_version())

    # --- product offering inventory ------------------------------------------------------
    @blp.route("/purchasedOffering")
    class PurchasedOfferings(MethodView):
        @blp.arguments(list_query(s.PurchasedOffering), location="query")
        @blp.response(200, s.PurchasedOffering(many=True))
        @requires(READ)
        def get(self, _: Any) -> Listing:
            """The product offering inventory; filter by productOfferingId, offeringGroupId,
            customerId, customerGroup, slaTypeId, status ..."""
            return app.purchased_offerings()

        @blp.arguments(s.PurchasedOfferingCreate)
        @blp.response(201, s.PurchasedOffering)
        @requires(WRITE)
        def post(self, body: dict[str, Any]) -> Placed:
            """Record a purchased offering (fulfilment normally does this over the bus)."""
            product_id = body.pop("product_id", None) or str(uuid4())
            try:
                item = app.create_purchased_offering(product_id=product_id, **body)
            except IntegrityError:
                raise ApiError(409, f"purchased offering {product_id} already exists",
                               "ALREADY_EXISTS") from None
            return app.placed(item)

    @blp.route("/purchasedOffering/<string:product_id>")
    class OnePurchasedOffering(MethodView):
        @blp.response(200, s.PurchasedOffering)
        @requires(READ)
        def get(self, product_id: str) -> Placed:
            """Read a purchased offering by its product id."""
            return app.placed(app.purchased_offering(product_id))

        @blp.arguments(s.PurchasedOfferingPatch)
        @blp.response(200, s.PurchasedOffering)
        @requires(WRITE)
        def patch(self, body: dict[str, Any], product_id: str) -> Placed:
            """Change a purchased offering; a status change is recorded with its reason."""
            return app.placed(app.update_purchased_offering(product_id, body,
                                                            expected_version()))

    @blp.route("/purchasedOffering/<string:product_id>/analysisLog")
    class InventoryAnalysisLog(MethodView):
        @blp.arguments(list_query(s.AnalysisResult), location="query")
        @blp.response(200, s.AnalysisResult(many=True))
        @requires(READ)
        def get(self, _: Any, product_id: str) -> Response:
            """Analysis results logged on this purchased offering, oldest first."""
            return analysis_log(app.analysis_log(app.purchased_offering(product_id)))

    return blp


def analysis_log(results: Listing | list[dict[str, Any]]) -> Response | Listing:
    """The results as analysis sent them (listed, filtered, paged): in the database, or
    — with results an earlier release kept on the item itself — in memory."""
    if isinstance(results, Listing):
        return results
    return list_response(results, wire_names(s.AnalysisResult()))
