"""HTTP entrypoint of the threshold-registry: thin views over the application's
commands and queries, in TMF630 style."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError
from flask import Response, g
from flask_smorest import Blueprint

from services.threshold_registry import resources
from services.threshold_registry import schemas as s
from services.threshold_registry.application import ThresholdRegistry
from shared.errors import InUse
from shared.http.errors import ApiError
from shared.http.listing import (
    created_response,
    expected_version,
    fields_of,
    list_response,
    one_response,
)
from shared.http.schemas import list_query
from shared.http.security import requires

READ, WRITE = "sla:read", "sla:write"


def _snake(data: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {mapping.get(k, k): v for k, v in data.items()}


def blueprint(runtime: Any) -> Blueprint:
    app: ThresholdRegistry = runtime.app
    blp = Blueprint("threshold-registry", __name__,
                    description="Offering groups, product offerings, SLA types, threshold "
                                "standards and the product offering inventory")

    # --- offering groups -----------------------------------------------------------------
    @blp.route("/offeringGroup", methods=["GET"])
    @blp.arguments(list_query(s.OfferingGroup), location="query")
    @blp.response(200, s.OfferingGroup(many=True))
    @requires(READ)
    def list_offering_groups(_: Any) -> Response:
        """List offering groups (groups of similar product offerings); deleted ones are
        gone (their history is in the audit log)."""
        return list_response(map(resources.offering_group,
                                 (g for g in app.offering_groups() if not g.is_retired)),
                             fields_of(s.OfferingGroup))

    @blp.route("/offeringGroup", methods=["POST"])
    @blp.arguments(s.OfferingGroupCreate)
    @blp.response(201, s.OfferingGroup)
    @requires(WRITE)
    def create_offering_group(body: dict[str, Any]) -> Response:
        """Create an offering group."""
        group = app.register_offering_group(body["name"], body.get("description"))
        return created_response(resources.offering_group(group), group.version)

    @blp.route("/offeringGroup/<uuid:group_id>", methods=["GET"])
    @blp.response(200, s.OfferingGroup)
    @requires(READ)
    def get_offering_group(group_id: UUID) -> Response:
        """Read an offering group; a deleted one is gone (404), its history is in the
        audit log."""
        group = app.offering_group(group_id)
        if group.is_retired:
            raise ApiError(404, f"offering group {group_id} was deleted; its history is in "
                                f"audit/aggregates/{group_id}/history")
        return one_response(resources.offering_group(group), group.version)

    @blp.route("/offeringGroup/<uuid:group_id>", methods=["PATCH"])
    @blp.arguments(s.OfferingGroupPatch)
    @blp.response(200, s.OfferingGroup)
    @requires(WRITE)
    def patch_offering_group(body: dict[str, Any], group_id: UUID) -> Response:
        """Change an offering group (merge-patch; If-Match honoured)."""
        group = app.update_offering_group(group_id, body, expected_version())
        return one_response(resources.offering_group(group), group.version)

    @blp.route("/offeringGroup/<uuid:group_id>", methods=["DELETE"])
    @blp.response(204)
    @blp.doc(responses={"409": {
        "description": "IN_USE: still used by offerings, standards or regimes (named in the "
                       "message, their ids by kind in details)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}})
    @requires(WRITE)
    def retire_offering_group(group_id: UUID) -> Response:
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
    offering_fields = {"lifecycleStatus": "lifecycle_status", "offeringGroupId": "group_id",
                       "moveReason": "move_reason"}

    @blp.route("/productOffering", methods=["GET"])
    @blp.arguments(list_query(s.ProductOffering), location="query")
    @blp.response(200, s.ProductOffering(many=True))
    @requires(READ)
    def list_offerings(_: Any) -> Response:
        """List product offerings; filter e.g. by offeringGroupId or lifecycleStatus."""
        return list_response(map(resources.product_offering, app.offerings()),
                             fields_of(s.ProductOffering))

    @blp.route("/productOffering", methods=["POST"])
    @blp.arguments(s.ProductOfferingCreate)
    @blp.response(201, s.ProductOffering)
    @requires(WRITE)
    def create_offering(body: dict[str, Any]) -> Response:
        """Create a product offering, optionally in an offering group."""
        offering = app.register_offering(**_snake(body, offering_fields))
        return created_response(resources.product_offering(offering), offering.version)

    @blp.route("/productOffering/<uuid:offering_id>", methods=["GET"])
    @blp.response(200, s.ProductOffering)
    @requires(READ)
    def get_offering(offering_id: UUID) -> Response:
        """Read a product offering."""
        offering = app.offering(offering_id)
        return one_response(resources.product_offering(offering), offering.version)

    @blp.route("/productOffering/<uuid:offering_id>", methods=["PATCH"])
    @blp.arguments(s.ProductOfferingPatch)
    @blp.response(200, s.ProductOffering)
    @requires(WRITE)
    def patch_offering(body: dict[str, Any], offering_id: UUID) -> Response:
        """Change a product offering: name, description, lifecycle, or move it to a group."""
        offering = app.update_offering(offering_id, _snake(body, offering_fields),
                                       expected_version())
        return one_response(resources.product_offering(offering), offering.version)

    @blp.route("/productOffering/<uuid:offering_id>/analysisLog", methods=["GET"])
    @blp.arguments(list_query(s.AnalysisResult), location="query")
    @blp.response(200, s.AnalysisResult(many=True))
    @requires(READ)
    def offering_analysis_log(_: Any, offering_id: UUID) -> Response:
        """Analysis results logged on this offering, oldest first."""
        return list_response(resources.analysis_log(app.offering(offering_id)),
                             fields_of(s.AnalysisResult))

    # --- SLA types -----------------------------------------------------------------------
    sla_fields = {"maintenanceAccounting": "maintenance_accounting",
                  "minimumNoticeDays": "minimum_notice_days",
                  "creditPercentPerBreachedPeriod": "credit_percent_per_breached_period",
                  "creditCapPercent": "credit_cap_percent", "timeZone": "time_zone",
                  "missingData": "missing_data", "noDataAfter": "no_data_after"}

    @blp.route("/slaType", methods=["GET"])
    @blp.arguments(list_query(s.SlaType), location="query")
    @blp.response(200, s.SlaType(many=True))
    @requires(READ)
    def list_sla_types(_: Any) -> Response:
        """List SLA types (gold, silver, bronze ...) with their commercial terms."""
        return list_response(map(resources.sla_type, app.sla_types()), fields_of(s.SlaType))

    @blp.route("/slaType", methods=["POST"])
    @blp.arguments(s.SlaTypeCreate)
    @blp.response(201, s.SlaType)
    @requires(WRITE)
    def create_sla_type(body: dict[str, Any]) -> Response:
        """Create an SLA type with its maintenance accounting, notice and credit rule."""
        terms = _snake(body, sla_fields)
        terms.setdefault("description", None)
        sla_type = app.register_sla_type(**terms)
        return created_response(resources.sla_type(sla_type), sla_type.version)

    @blp.route("/slaType/<uuid:sla_type_id>", methods=["GET"])
    @blp.response(200, s.SlaType)
    @requires(READ)
    def get_sla_type(sla_type_id: UUID) -> Response:
        """Read an SLA type."""
        sla_type = app.sla_type(sla_type_id)
        return one_response(resources.sla_type(sla_type), sla_type.version)

    @blp.route("/slaType/<uuid:sla_type_id>", methods=["PATCH"])
    @blp.arguments(s.SlaTypePatch)
    @blp.response(200, s.SlaType)
    @requires(WRITE)
    def patch_sla_type(body: dict[str, Any], sla_type_id: UUID) -> Response:
        """Change an SLA type's terms (validated as a whole)."""
        sla_type = app.change_sla_type_terms(sla_type_id, _snake(body, sla_fields),
                                             expected_version())
        return one_response(resources.sla_type(sla_type), sla_type.version)

    # --- threshold standards -------------------------------------------------------------
    standard_fields = {"productOfferingId": "offering_id",
                       "offeringGroupId": "offering_group_id", "slaTypeId": "sla_type_id",
                       "validFor": "valid_for"}

    @blp.route("/thresholdStandard", methods=["GET"])
    @blp.arguments(list_query(s.ThresholdStandard), location="query")
    @blp.response(200, s.ThresholdStandard(many=True))
    @requires(READ)
    def list_standards(_: Any) -> Response:
        """List threshold standards as their latest versions show them."""
        return list_response(map(resources.threshold_standard, app.standards()),
                             fields_of(s.ThresholdStandard))

    @blp.route("/thresholdStandard", methods=["POST"])
    @blp.arguments(s.ThresholdStandardCreate)
    @blp.response(201, s.ThresholdStandard)
    @requires(WRITE)
    def create_standard(body: dict[str, Any]) -> Response:
        """Create a threshold standard; version 1 starts as a draft."""
        fields = _snake(body, standard_fields)
        for key in ("offering_id", "offering_group_id", "sla_type_id", "description"):
            fields.setdefault(key, None)
        standard = app.register_standard(**fields)
        return created_response(resources.threshold_standard(standard), standard.version)

    @blp.route("/thresholdStandard/inForce", methods=["GET"])
    @blp.arguments(s.InForceQuery, location="query")
    @blp.response(200, s.InForce(many=True))
    @requires(READ)
    def standards_in_force(query: dict[str, Any]) -> Response:
        """Which standards are in force for an offering (and SLA type) at a time (``at``,
        business time), as the registry knows it now or as it knew it at ``asKnownAt``
        (record time): each approved version counts from its approval on, within its
        validity, so a later approval never rewrites what was in force before it."""
        found = app.standards_in_force(query["productOfferingId"], query.get("slaTypeId"),
                                       query.get("at") or datetime.now(UTC),
                                       query.get("asKnownAt"))
        body = [{"id": str(t.id), "href": resources.threshold_standard(t)["href"],
                 "@type": "ThresholdStandardInForce",
                 "thresholdStandard": resources.threshold_standard(t),
                 "inForceVersion": resources.standard_version(v)} for t, v in found]
        return list_response(body, allowed=(), extra_reserved=s.InForceQuery().fields)

    @blp.route("/thresholdStandard/<uuid:standard_id>", methods=["GET"])
    @blp.response(200, s.ThresholdStandard)
    @requires(READ)
    def get_standard(standard_id: UUID) -> Response:
        """Read a threshold standard (its latest version)."""
        standard = app.standard(standard_id)
        return one_response(resources.threshold_standard(standard), standard.version)

    @blp.route("/thresholdStandard/<uuid:standard_id>", methods=["PATCH"])
    @blp.arguments(s.ThresholdStandardPatch)
    @blp.response(200, s.ThresholdStandard)
    @requires(WRITE)
    def revise_standard(body: dict[str, Any], standard_id: UUID) -> Response:
        """Revise a standard: every change makes a new draft version; old ones stay."""
        reason = body.pop("changeReason", None)
        standard = app.revise_standard(standard_id, body, reason, expected_version())
        return one_response(resources.threshold_standard(standard), standard.version)

    @blp.route("/thresholdStandard/<uuid:standard_id>/version", methods=["GET"])
    @blp.arguments(list_query(s.StandardVersion), location="query")
    @blp.response(200, s.StandardVersion(many=True))
    @requires(READ)
    def list_standard_versions(_: Any, standard_id: UUID) -> Response:
        """Every version of a standard, oldest first."""
        standard = app.standard(standard_id)
        versions = [{"id": str(v["version"]),
                     "href": f"{resources.ROOT}/thresholdStandard/{standard_id}/version/"
                             f"{v['version']}",
                     "@type": "ThresholdStandardVersion", **resources.standard_version(v)}
                    for v in standard.versions]
        return list_response(versions, fields_of(s.StandardVersion))

    @blp.route("/thresholdStandard/<uuid:standard_id>/version/<int:number>", methods=["GET"])
    @blp.response(200, s.StandardVersion)
    @requires(READ)
    def get_standard_version(standard_id: UUID, number: int) -> Response:
        """One version of a standard, as it was approved (or drafted)."""
        standard = app.standard(standard_id)
        matching = [v for v in standard.versions if v["version"] == number]
        if not matching:
            raise ApiError(404, f"threshold standard {standard_id} has no version {number}")
        return one_response({"id": str(number),
                             "href": f"{resources.ROOT}/thresholdStandard/{standard_id}/"
                                     f"version/{number}",
                             "@type": "ThresholdStandardVersion",
                             **resources.standard_version(matching[0])})

    @blp.route("/thresholdStandard/<uuid:standard_id>/approve", methods=["POST"])
    @blp.arguments(s.Approval)
    @blp.response(200, s.ThresholdStandard)
    @requires(WRITE)
    def approve_standard(body: dict[str, Any], standard_id: UUID) -> Response:
        """Approve a draft version: from its validity start it is in force."""
        standard = app.approve_standard(standard_id, body["version"], g.principal.subject,
                                        expected_version())
        return one_response(resources.threshold_standard(standard), standard.version)

    @blp.route("/thresholdStandard/<uuid:standard_id>/retire", methods=["POST"])
    @blp.arguments(s.Retirement)
    @blp.response(200, s.ThresholdStandard)
    @requires(WRITE)
    def retire_standard(body: dict[str, Any], standard_id: UUID) -> Response:
        """Retire one version, or the whole standard."""
        standard = app.retire_standard(standard_id, body.get("version"), expected_version())
        return one_response(resources.threshold_standard(standard), standard.version)

    # --- product offering inventory ------------------------------------------------------
    inventory_fields = {"customerId": "customer_id", "customerGroup": "customer_group",
                        "productOfferingId": "offering_id", "slaTypeId": "sla_type_id",
                        "monthlyCharge": "monthly_charge", "startDate": "start_date",
                        "endDate": "end_date", "statusReason": "status_reason"}

    def inventory_item(item: Any) -> dict[str, Any]:
        return resources.purchased_offering(item, app.group_of(item.offering_id))

    @blp.route("/purchasedOffering", methods=["GET"])
    @blp.arguments(list_query(s.PurchasedOffering), location="query")
    @blp.response(200, s.PurchasedOffering(many=True))
    @requires(READ)
    def list_inventory(_: Any) -> Response:
        """The product offering inventory; filter by productOfferingId, offeringGroupId,
        customerId, customerGroup, slaTypeId, status ..."""
        return list_response(map(inventory_item, app.purchased_offerings()),
                             fields_of(s.PurchasedOffering))

    @blp.route("/purchasedOffering", methods=["POST"])
    @blp.arguments(s.PurchasedOfferingCreate)
    @blp.response(201, s.PurchasedOffering)
    @requires(WRITE)
    def create_inventory_item(body: dict[str, Any]) -> Response:
        """Record a purchased offering (fulfilment normally does this over the bus)."""
        fields = _snake(body, inventory_fields)
        product_id = fields.pop("id", None) or str(uuid4())
        if fields.get("currency"):
            fields["currency"] = fields["currency"].upper()
        for key in ("customer_group", "sla_type_id", "site", "monthly_charge", "currency",
                    "start_date", "end_date"):
            fields.setdefault(key, None)
        if fields["monthly_charge"] is not None:
            fields["monthly_charge"] = str(fields["monthly_charge"])
        try:
            item = app.create_purchased_offering(product_id=product_id, **fields)
        except IntegrityError:
            raise ApiError(409, f"purchased offering {product_id} already exists",
                           "ALREADY_EXISTS") from None
        return created_response(inventory_item(item), item.version)

    @blp.route("/purchasedOffering/<string:product_id>", methods=["GET"])
    @blp.response(200, s.PurchasedOffering)
    @requires(READ)
    def get_inventory_item(product_id: str) -> Response:
        """Read a purchased offering by its product id."""
        item = app.purchased_offering(product_id)
        return one_response(inventory_item(item), item.version)

    @blp.route("/purchasedOffering/<string:product_id>", methods=["PATCH"])
    @blp.arguments(s.PurchasedOfferingPatch)
    @blp.response(200, s.PurchasedOffering)
    @requires(WRITE)
    def patch_inventory_item(body: dict[str, Any], product_id: str) -> Response:
        """Change a purchased offering; a status change is recorded with its reason."""
        changes = _snake(body, inventory_fields)
        if changes.get("currency"):
            changes["currency"] = changes["currency"].upper()
        if changes.get("monthly_charge") is not None:
            changes["monthly_charge"] = str(changes["monthly_charge"])
        item = app.update_purchased_offering(product_id, changes, expected_version())
        return one_response(inventory_item(item), item.version)

    @blp.route("/purchasedOffering/<string:product_id>/analysisLog", methods=["GET"])
    @blp.arguments(list_query(s.AnalysisResult), location="query")
    @blp.response(200, s.AnalysisResult(many=True))
    @requires(READ)
    def inventory_analysis_log(_: Any, product_id: str) -> Response:
        """Analysis results logged on this purchased offering, oldest first."""
        return list_response(resources.analysis_log(app.purchased_offering(product_id)),
                             fields_of(s.AnalysisResult))

    return blp
