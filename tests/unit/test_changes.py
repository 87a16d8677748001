"""shared.changes: an aggregate's changed fields as one ``Updated`` event, recorded under
the aggregate's own topic (so aggregates that used to define the event themselves keep
the topic their logs hold)."""

from __future__ import annotations

from eventsourcing.application import Application
from eventsourcing.domain import event
from eventsourcing.utils import get_topic

from services.notification.domain import NotificationList
from shared.changes import Changeable


class Offer(Changeable):
    @event("Registered")
    def __init__(self, name: str, price: str) -> None:
        self.name, self.price = name, price


def test_changed_fields_are_one_event_under_the_aggregates_own_topic() -> None:
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    offer = Offer(name="Fibre", price="10")
    offer._record_changes({})  # nothing changed: nothing recorded
    offer._record_changes({"name": "Fibre 1G", "price": "12"})
    app.save(offer)
    assert [r.topic for r in app.recorder.select_notifications(start=1, limit=10)] == [
        f"{__name__}:Offer.Registered", f"{__name__}:Offer.Updated"]
    again = app.repository.get(offer.id)
    assert (again.name, again.price, again.version) == ("Fibre 1G", "12", 2)


def test_the_aggregates_that_share_it_keep_their_topics() -> None:
    assert get_topic(NotificationList.Updated) == \
        "services.notification.domain:NotificationList.Updated"
