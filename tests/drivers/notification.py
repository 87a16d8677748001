"""The notification service as its tests speak of it: lists and members, hub
subscriptions, deliveries and their history, decisions, incidents and acknowledgement —
over HTTP in-process (service tests) or on the network (end-to-end tests).

Each command asserts the answer it expects (a 2xx unless ``expect`` says otherwise) and
returns the parsed body; ``wait_for_*`` poll with a timeout (tests never sleep to assert).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from tests.drivers.http import Answer, Http
from tests.helpers import eventually

ROOT = "/notification/v1"


class NotificationDriver:
    def __init__(self, http: Http) -> None:
        self.http = http

    # --- plumbing ----------------------------------------------------------------------
    def call(self, method: str, path: str, *, expect: int | tuple[int, ...] | None = None,
             body: Any = None, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, anonymous: bool = False) -> Answer:
        answer = self.http.request(method, path, json_body=body, form=form, headers=headers,
                                   anonymous=anonymous)
        wanted = (expect,) if isinstance(expect, int) else expect
        ok = answer.status in wanted if wanted else 200 <= answer.status < 300
        assert ok, (method, path, answer.status, answer.body)
        return answer

    @staticmethod
    def _query(path: str, filters: dict[str, Any]) -> str:
        return f"{path}?{urlencode(filters)}" if filters else path

    def _list(self, path: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self.call("GET", self._query(path, filters)).body

    # --- notification lists ------------------------------------------------------------
    def create_list(self, name: str, members: list[dict[str, Any]] | None = None, *,
                    expect: int | None = None, **fields: Any) -> dict[str, Any]:
        """A list (topics default to major threshold crossings); the body as answered,
        members' webhook secrets included."""
        body = {"name": name, "purpose": "tests", "owner": "noc", "members": members or [],
                "topics": [{"eventTypes": ["Threshold*"], "minSeverity": "major"}], **fields}
        return self.call("POST", "/notificationList", body=body, expect=expect or 201).body

    def notification_list(self, list_id: str, expect: int | None = None) -> dict[str, Any]:
        return self.call("GET", f"/notificationList/{list_id}", expect=expect).body

    def lists(self, **filters: Any) -> list[dict[str, Any]]:
        return self._list("/notificationList", filters)

    def change_list(self, list_id: str, version: int | None = None,
                    expect: int | None = None, **changes: Any) -> dict[str, Any]:
        headers = {"If-Match": f'"{version}"'} if version is not None else None
        return self.call("PATCH", f"/notificationList/{list_id}", body=changes,
                         headers=headers, expect=expect).body

    def delete_list(self, list_id: str, expect: int = 204) -> None:
        self.call("DELETE", f"/notificationList/{list_id}", expect=expect)

    def add_member(self, list_id: str, name: str, channel: str, address: str,
                   expect: int = 201, **more: Any) -> dict[str, Any]:
        return self.call("POST", f"/notificationList/{list_id}/member", expect=expect, body={
            "name": name, "channel": channel, "address": address, **more}).body

    def remove_member(self, list_id: str, member_id: str, expect: int = 204) -> None:
        self.call("DELETE", f"/notificationList/{list_id}/member/{member_id}", expect=expect)

    # --- hub ---------------------------------------------------------------------------
    def subscribe_hub(self, callback: str, query: str | None = None,
                      expect: int = 201) -> dict[str, Any]:
        """A hub subscription; its signing secret is in the answer, once."""
        body: dict[str, Any] = {"callback": callback}
        if query is not None:
            body["query"] = query
        return self.call("POST", "/hub", body=body, expect=expect).body

    def hub(self, hub_id: str, expect: int | None = None) -> dict[str, Any]:
        return self.call("GET", f"/hub/{hub_id}", expect=expect).body

    def hubs(self, **filters: Any) -> list[dict[str, Any]]:
        return self._list("/hub", filters)

    def unsubscribe_hub(self, hub_id: str, expect: int = 204) -> None:
        self.call("DELETE", f"/hub/{hub_id}", expect=expect)

    # --- deliveries, history, decisions --------------------------------------------------
    def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        """The delivery history, filtered (listId=, status=, eventId= ...)."""
        return self._list("/delivery", filters)

    def delivery(self, delivery_id: str) -> dict[str, Any]:
        return self.call("GET", f"/delivery/{delivery_id}").body

    def wait_for_delivery(self, status: str | None = None, *,
                          where: Callable[[dict[str, Any]], bool] | None = None,
                          timeout: float = 10, **filters: Any) -> dict[str, Any]:
        """The first delivery of the history (so filtered) with that status and for which
        ``where`` holds, once there is one."""
        def found() -> dict[str, Any] | None:
            for d in self.deliveries(**filters):
                if (status is None or d["status"] == status) and (where is None or where(d)):
                    return d
            return None

        return eventually(found, timeout=timeout)

    def wait_until_delivered(self, delivery_id: str, timeout: float = 10) -> dict[str, Any]:
        """The delivery with its content, once it is delivered."""
        return eventually(lambda: (lambda d: d["status"] == "delivered" and d)(
            self.delivery(delivery_id)), timeout=timeout)

    def dead_letters(self, **filters: Any) -> list[dict[str, Any]]:
        return self._list("/delivery/deadLetter", filters)

    def retry(self, delivery_id: str, expect: int = 200) -> dict[str, Any]:
        return self.call("POST", f"/delivery/{delivery_id}/retry", expect=expect).body

    def export(self, **filters: Any) -> list[dict[str, str]]:
        """The history as the CSV export gives it, one dict a row."""
        answer = self.call("GET", self._query("/delivery/export", filters))
        assert answer.headers.get("Content-Type", "").startswith("text/csv")
        return list(csv.DictReader(io.StringIO(answer.text)))

    def decisions(self, **filters: Any) -> list[dict[str, Any]]:
        return self._list("/decision", filters)

    def wait_for_decision(self, timeout: float = 15, **filters: Any) -> dict[str, Any]:
        return eventually(lambda: (self.decisions(**filters) or [None])[0], timeout=timeout)

    # --- incidents and acknowledgement ---------------------------------------------------
    def incidents(self, **filters: Any) -> list[dict[str, Any]]:
        return self._list("/incident", filters)

    def incident(self, alert_id: str) -> dict[str, Any]:
        """The incident of an upstream alert (crossing or burn alert id)."""
        found = self.incidents(alertId=alert_id)
        assert len(found) == 1, found
        return found[0]

    def acknowledge(self, incident_id: str, expect: int = 200) -> dict[str, Any]:
        """Acknowledged through the API, in the token's name."""
        return self.call("POST", f"/incident/{incident_id}/acknowledge", body={},
                         expect=expect).body

    def open_ack_link(self, link_or_token: str) -> Answer:
        """What the recipient sees opening the link (a page; acknowledges nothing)."""
        return self.http.request("GET", self._ack_path(link_or_token), anonymous=True)

    def confirm_ack_link(self, link_or_token: str) -> Answer:
        """The confirmation the link's page POSTs, anonymously (the token is the proof)."""
        return self.http.request("POST", f"{ROOT}/acknowledge",
                                 form={"token": self.token_of(link_or_token)},
                                 anonymous=True)

    @staticmethod
    def token_of(link_or_token: str) -> str:
        if "token=" not in link_or_token:
            return link_or_token
        return parse_qs(urlparse(link_or_token).query)["token"][0]

    def _ack_path(self, link_or_token: str) -> str:
        return f"{ROOT}/acknowledge?{urlencode({'token': self.token_of(link_or_token)})}"
