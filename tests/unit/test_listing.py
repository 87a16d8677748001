"""TMF630 list conventions over representations."""

from __future__ import annotations

from flask import Flask

from shared.http.errors import ApiError
from shared.http.listing import list_response

ITEMS = [
    {"id": "1", "href": "/x/1", "@type": "X", "name": "a", "n": 1, "at": "2026-01-01T00:00:00Z",
     "group": None, "ok": True},
    {"id": "2", "href": "/x/2", "@type": "X", "name": "b", "n": 5, "at": "2026-06-01T00:00:00Z",
     "group": "g", "ok": False},
    {"id": "3", "href": "/x/3", "@type": "X", "name": "c", "n": 10, "at": "2027-01-01T00:00:00Z",
     "group": "g", "ok": True},
]
app = Flask(__name__)


def query(qs: str) -> tuple[list[str], dict[str, str]]:
    with app.test_request_context(f"/?{qs}"):
        response = list_response(ITEMS, allowed={"name", "n", "at", "group", "ok"})
        return [i.get("id") for i in response.get_json()], dict(response.headers)


def test_filters_by_value_range_time_null_and_either() -> None:
    assert query("name=b")[0] == ["2"]
    assert query("name=a,c")[0] == ["1", "3"]
    assert query("n.gt=1&n.lte=10")[0] == ["2", "3"]
    assert query("at.gte=2026-06-01T00:00:00Z")[0] == ["2", "3"]
    assert query("group=null")[0] == ["1"]
    assert query("ok=false")[0] == ["2"]


def test_pages_sorts_and_projects() -> None:
    ids, headers = query("sort=-n&offset=1&limit=1&fields=name")
    assert ids == ["2"]
    assert headers["X-Total-Count"] == "3" and headers["X-Result-Count"] == "1"


def test_bad_filters_say_which_and_why() -> None:
    for qs in ("colour=red", "n.gt=abc", "limit=5000", "offset=-1", "sort=colour"):
        try:
            query(qs)
        except ApiError as exc:
            assert exc.status == 400 and exc.details
        else:
            raise AssertionError(f"{qs} was accepted")
