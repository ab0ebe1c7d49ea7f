"""Unknown to known through the Functions app on Azurite (SPEC §8): events in any order, the
card and the visitor route over HTTP."""

from __future__ import annotations

import random
from typing import Any

import azure.functions as func
import orjson
import pytest

from tests.e2e import test_function_app as app_tests
from tests.e2e import visitors
from tests.e2e.test_function_app import call, event, get, upload
from tests.e2e.visitors import ADA, DEE, EXPECTED

pytestmark = pytest.mark.azurite
container = app_tests.container  # the fixture: a container on Azurite, the app's settings on it


def _visitor(visitor_id: str, **params: str) -> tuple[int, Any]:
    req = func.HttpRequest("GET", f"http://localhost/api/visitors/{visitor_id}", params=params,
                           route_params={"id": visitor_id}, body=b"")  # fmt: skip
    response = call("get_visitor", req)
    return response.status_code, orjson.loads(response.get_body())


def _deliver(container, files, order) -> None:  # type: ignore[no-untyped-def]
    for name in order:
        data = upload(container, name, files[name].read_bytes())
        call("on_blob_created", event(container, name, data))


def test_events_in_any_order_stitch_visitors_onto_the_http_card(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = visitors.write_visitor_export(tmp_path / "export")
    order = [visitors.FIRST_FILE, visitors.SECOND_FILE, visitors.CUSTOMERS_FILE]
    random.Random(11).shuffle(order)
    _deliver(container, files, [*order, visitors.LATE_FILE])
    status, items = get("activities", limit="1000")
    assert status == 200
    assert {a["SourceActivityId"]: (a["CustomerId"], a["IdentityPath"]) for a in items} == EXPECTED
    seen, token = [], None
    while True:
        params = {"id": ADA, "limit": "4", **({"continuation": token} if token else {})}
        status, page = get("customers/{id}/activities", **params)
        assert status == 200
        seen += [a["SourceActivityId"] for a in page["activities"]]
        token = page["continuation"]
        if token is None:
            break
    assert seen == ["l2", "l1", "t1", "a3", "a2", "a1"]
    _, card = get("customers/{id}", id=ADA)
    assert sorted(v["VisitorId"] for v in card["Visitors"]) == ["lp-ada", "ph-ada"]
    assert card["ActivityCounts"] == {"EmailPromotionClicks": 6}
    _, dee = get("customers/{id}", id=DEE)
    assert [v["VisitorId"] for v in dee["Visitors"]] == ["ph-dee"]
    _, health = get("status")
    assert health["unmatched_now"] == 3


def test_the_visitor_route_shows_the_conflict_and_pages(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = visitors.write_visitor_export(tmp_path / "export")
    _deliver(container, files, [visitors.SECOND_FILE, visitors.FIRST_FILE, visitors.CUSTOMERS_FILE])
    status, view = _visitor("tv-home", limit="2")
    assert status == 200
    [standing] = view["visitor"]["Links"]
    assert (standing["Conflict"], standing["Key"]) == (True, "R-2")
    assert [a["SourceActivityId"] for a in view["activities"]] == ["t3", "t2"]
    _, rest = _visitor("tv-home", continuation=view["continuation"])
    assert [a["SourceActivityId"] for a in rest["activities"]] == ["t1"]
    assert _visitor("nobody-here")[0] == 404
    assert _visitor("tv-home", limit="0")[0] == 400
