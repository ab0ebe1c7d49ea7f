"""Segments over HTTP on Azure Tables (Azurite): the timer keeps them current, the routes give
SPEC §9's shapes, bad names and cursors get 4xx JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import azure.functions as func
import orjson
import pytest
from azure.functions.timer import TimerRequest

from shared import bootstrap
from tests.e2e.test_cli_audiences import AUDIENCES, DEFAULTS, R1, R2
from tests.e2e.test_function_app import call, cdm_files, event, upload
from tests.e2e.test_function_app import container as container  # the Functions app fixture

pytestmark = pytest.mark.azurite


@pytest.fixture
def landed(container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads(DEFAULTS.read_text()), **AUDIENCES}))
    bootstrap.use_settings(dataclasses.replace(bootstrap.runtime().settings, config_path=str(config)))
    for path, data in cdm_files(tmp_path).items():
        call("on_blob_created", event(container, path, upload(container, path, data)))
    call("reconcile", TimerRequest(past_due=False))


def get(name: str, route: str, segment: str | None = None, **params: str) -> tuple[int, Any]:
    req = func.HttpRequest("GET", f"http://localhost/api/{route}", params=params,
                           route_params={"name": segment} if segment else {}, body=b"")  # fmt: skip
    response = call(name, req)
    assert response.mimetype == "application/json"
    return response.status_code, orjson.loads(response.get_body())


def test_the_timer_keeps_segments_current_and_the_routes_show_them(landed) -> None:  # type: ignore[no-untyped-def]
    assert get("list_segments", "segments") == (200, [
        {"Segment": "Clickers", "Description": "two or more clicks", "Members": 2},
        {"Segment": "InSeattle", "Description": "", "Members": 1},
    ])  # fmt: skip
    status, page = get("segment_members", "segments/Clickers/members", "Clickers", limit="1")
    assert status == 200 and [m["CustomerId"] for m in page["members"]] == [min(R1, R2)]
    _, rest = get("segment_members", "segments/Clickers/members", "Clickers", continuation=page["continuation"])
    assert [m["CustomerId"] for m in rest["members"]] == [max(R1, R2)]
    _, feed = get("segment_changes", "segments/InSeattle/changes", "InSeattle")
    assert [(c["CustomerId"], c["Change"]) for c in feed["changes"]] == [(R1, "entered")]
    _, again = get("segment_changes", "segments/InSeattle/changes", "InSeattle", since=feed["cursor"])
    assert again["changes"] == []
    req = func.HttpRequest("GET", f"http://localhost/api/customers/{R1}", route_params={"id": R1}, body=b"")
    profile = orjson.loads(call("get_customer", req).get_body())
    assert profile["Segments"] == ["Clickers", "InSeattle"] and profile["Measures"]["Clicks"] == 3
    _, past = get("list_segments", "segments", asOf="2021-09-01T00:00:00Z")
    assert [s["Members"] for s in past] == [0, 0]


def test_bad_names_and_cursors_are_4xx_json(landed) -> None:  # type: ignore[no-untyped-def]
    assert get("segment_members", "segments/Nope/members", "Nope")[0] == 404
    assert get("segment_changes", "segments/Clickers/changes", "Clickers", since="x")[0] == 400
    _, feed = get("segment_changes", "segments/Clickers/changes", "Clickers")
    assert get("segment_changes", "segments/InSeattle/changes", "InSeattle", since=feed["cursor"])[0] == 400
    assert get("list_segments", "segments", asOf="soon")[0] == 400
