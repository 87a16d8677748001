"""A notice part's recipients are what ``schemas.NoticeRecipient`` says they are, made
without the schema (``messaging.recipients_of``)."""

from __future__ import annotations

from services.outage_negotiation.messaging import recipients_of
from services.outage_negotiation.schemas import RECIPIENTS


def test_recipients_are_made_as_the_schema_dumps_them() -> None:
    customers = [
        {"customerId": "acme", "purchasedOfferingIds": ["po-2", "po-1"],
         "minimumNoticeDays": 10,
         "slaTypes": [{"id": "t-gold", "name": "gold", "minimumNoticeDays": 10},
                      {"id": "t-bronze", "name": "bronze", "minimumNoticeDays": 0},
                      {"id": "t-gold-2", "name": "gold", "minimumNoticeDays": 5}]},
        {"customerId": "globex", "purchasedOfferingIds": ["po-3"], "minimumNoticeDays": 0,
         "slaTypes": [{"id": "t-unnamed", "name": None, "minimumNoticeDays": 0}]},
        {"customerId": "initech", "purchasedOfferingIds": [], "minimumNoticeDays": 0,
         "slaTypes": []},
    ]
    assert recipients_of(customers) == RECIPIENTS.dump(customers)
    assert recipients_of(customers)[0]["slaTypeNames"] == ["bronze", "gold"]
    assert recipients_of(customers)[1]["slaTypeNames"] == ["t-unnamed"]
