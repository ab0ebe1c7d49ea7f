"""The Functions app on Azurite: events, the reconciler timer and the HTTP API, called as the
host would call the decorated functions."""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import orjson
import pytest
from azure.eventgrid import EventGridEvent
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient, ContainerClient

from function_app import app
from shared import bootstrap
from shared.core.mapping import derived_customer_id
from shared.core.paging import bind_token, encode_cursor, query_scope
from shared.settings import Settings
from tests.e2e import export

pytestmark = pytest.mark.azurite
FIXTURES = Path(__file__).parent.parent / "fixtures" / "eventgrid"
R1 = derived_customer_id("RetailCustomers", "R-1")
# A well-formed token of another customer's timeline.
OTHERS_TOKEN = bind_token(encode_cursor("2021-09-28T14:00:00.000Z", "0" * 32),
                          query_scope("timeline", "someone else", [], None, None))  # fmt: skip
FUNCTIONS = {f.get_function_name(): f for f in app.get_functions()}


def call(name: str, *args: Any) -> Any:
    return FUNCTIONS[name].get_user_function()(*args)


@pytest.fixture
def container(azurite, azurite_names) -> Iterator[ContainerClient]:  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(
        Settings.from_env({}),
        store="azure-tables:",
        storage_connection=azurite.connection_string,
        container=azurite_names.container,
        prefix="webevents",
        table_prefix=azurite_names.table_prefix,
        retry_base_seconds=0,
    )
    bootstrap.use_settings(settings)
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    created = client.create_container(azurite_names.container)
    yield created
    bootstrap.use_settings(None)


def upload(container: ContainerClient, path: str, data: bytes) -> dict[str, Any]:
    """Upload under the export prefix; returns the BlobCreated data Event Grid would send."""
    blob = container.get_blob_client(f"webevents/{path}").upload_blob(data, overwrite=True)
    return {"api": "PutBlockList", "eTag": blob["etag"], "contentLength": len(data), "blobType": "BlockBlob"}


def event(container: ContainerClient, path: str, data: dict[str, Any], *, name: str | None = None) -> func.EventGridEvent:
    """A BlobCreated event shaped like the Event Grid fixture, parsed with azure-eventgrid."""
    raw = copy.deepcopy(orjson.loads((FIXTURES / "blob-created.eventgrid.json").read_bytes())[0])
    blob = name or f"webevents/{path}"
    raw["subject"] = f"/blobServices/default/containers/{container.container_name}/blobs/{blob}"
    raw["data"].update(data)
    parsed = EventGridEvent.from_dict(raw)
    return func.EventGridEvent(
        id=parsed.id, data=parsed.data, topic=parsed.topic or "", subject=parsed.subject,
        event_type=parsed.event_type, event_time=parsed.event_time, data_version=parsed.data_version,
    )  # fmt: skip


def get(route: str, **params: str) -> tuple[int, Any]:
    status, body, _ = get_page(route, **params)
    return status, body


def get_page(route: str, **params: str) -> tuple[int, Any, str | None]:
    """Status, body and the X-Continuation header of one GET."""
    names = {
        "customers/{id}/activities": "get_timeline", "customers/{id}": "get_customer",
        "customers": "search_customers", "activities": "list_activities", "status": "get_status",
        "rejects": "list_rejects", "files": "list_files", "config/check": "check_config",
    }  # fmt: skip
    route_params = {"id": params.pop("id")} if "id" in params else {}
    req = func.HttpRequest("GET", f"http://localhost/api/{route}", params=params, route_params=route_params, body=b"")
    response = call(names[route], req)
    assert response.mimetype == "application/json"
    return response.status_code, orjson.loads(response.get_body()), response.headers.get("X-Continuation")


def post_reconcile(body: bytes) -> tuple[int, Any]:
    response = call("reconcile_now", func.HttpRequest("POST", "http://localhost/api/reconcile", body=body))
    assert response.mimetype == "application/json"
    return response.status_code, orjson.loads(response.get_body())


def post_reprocess(body: bytes) -> tuple[int, Any]:
    req = func.HttpRequest("POST", "http://localhost/api/reprocess", body=body)
    response = call("reprocess", req)
    return response.status_code, orjson.loads(response.get_body())


def cdm_files(tmp_path: Path) -> dict[str, bytes]:
    root = export.write_cdm_export(tmp_path / "export")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def activity_ids() -> list[str]:
    status, items = get("activities", limit="1000")
    assert status == 200
    return sorted(a["SourceActivityId"] for a in items)


def test_the_bindings_are_what_the_host_needs() -> None:
    triggers = {name: f.get_trigger() for name, f in FUNCTIONS.items()}
    assert triggers["on_blob_created"].get_binding_name() == "eventGridTrigger"
    timer = triggers["reconcile"].get_dict_repr()
    assert timer["type"] == "timerTrigger" and timer["runOnStartup"] is False
    assert timer["schedule"] == "%FOOTPRINT_RECONCILE_SCHEDULE%"
    export = triggers["export"].get_dict_repr()
    assert export["schedule"] == "%FOOTPRINT_EXPORT_SCHEDULE%" and export["runOnStartup"] is False
    http = {name: t.get_dict_repr() for name, t in triggers.items() if t.get_binding_name() == "httpTrigger"}
    assert {(d["route"], str(d["methods"][0].value)) for d in http.values()} == {
        ("customers/{id}", "GET"), ("customers/{id}/activities", "GET"), ("customers", "GET"),
        ("activities", "GET"), ("status", "GET"), ("reprocess", "POST"),
        ("segments", "GET"), ("segments/{name}/members", "GET"), ("segments/{name}/changes", "GET"),
        ("customers/{id}", "DELETE"), ("visitors/{id}", "GET"), ("rejects", "GET"), ("files", "GET"),
        ("reconcile", "POST"), ("config/check", "GET"), ("ui/{file?}", "GET"),
    }  # fmt: skip
    # Only the UI's static files are public; every data route wants the function key.
    assert {n: str(d["authLevel"].value) for n, d in http.items() if n != "ui"} == dict.fromkeys(
        set(http) - {"ui"}, "function"
    )
    assert str(http["ui"]["authLevel"].value) == "anonymous"


def test_events_in_any_order_put_the_export_on_the_http_timeline(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = cdm_files(tmp_path)
    events = [event(container, path, upload(container, path, data)) for path, data in files.items()]
    random.Random(3).shuffle(events)
    for e in events:
        call("on_blob_created", e)
    status, card = get("customers/{id}/activities", id=R1)
    assert status == 200
    assert [a["SourceActivityId"] for a in card["activities"]] == ["e7", "e1", "e11"]
    assert card["customer"]["Attributes"]["FullName"] == "Ada Moreno"
    _, profile = get("customers/{id}", id=R1)
    assert profile["ActivityCounts"] == {"EmailPromotionClicks": 3}
    assert card["customer"] == profile  # one customer record everywhere
    _, by_type = get("customers/{id}/activities", id=R1, type="WebLog")
    assert [a["SourceActivityId"] for a in by_type["activities"]] == ["e7", "e1", "e11"]
    _, listed = get("activities", type="WebLog")
    assert len(listed) == len(activity_ids())


def test_a_file_that_never_got_an_event_is_picked_up_by_the_timer(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for path, data in cdm_files(tmp_path).items():
        upload(container, path, data)
    assert activity_ids() == []
    call("reconcile", TimerRequest(past_due=False))
    assert activity_ids() == ["e1", "e10", "e11", "e2", "e6", "e7", "e8"]
    _, health = get("status")
    assert health["files"]["done"] == 4 and health["files"]["failed"] == 0


def test_duplicate_stale_and_foreign_events_change_nothing(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = cdm_files(tmp_path)
    sent = {path: upload(container, path, data) for path, data in files.items()}
    for path, data in sent.items():
        call("on_blob_created", event(container, path, data))
    before = get("activities", limit="1000")
    status_before = get("status")[1]["files"]
    first = export.FIRST_FILE
    noise = [
        event(container, first, sent[first]),                                   # redelivered
        event(container, first, {**sent[first], "eTag": "0x8D0000000000000"}),  # stale ETag
        event(container, first, {**sent[first], "api": "PutBlock"}),             # unfinished write
        event(container, first, {**sent[first], "api": "CreateFile"}),
        event(container, first, {**sent[first], "contentLength": 0}),            # empty
        event(container, first, sent[first], name=f"elsewhere/{first}"),        # outside the prefix
        event(container, "notes/readme.txt", sent[first]),                       # no such blob
    ]  # fmt: skip
    for e in noise:
        call("on_blob_created", e)
    assert get("activities", limit="1000") == before
    assert get("status")[1]["files"] == status_before


def test_a_manifest_arriving_after_its_data_makes_the_data_readable(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = cdm_files(tmp_path)
    headerless = "EmailPromotion/legacy/headerless.csv"
    data = upload(container, headerless, files[headerless])
    call("on_blob_created", event(container, headerless, data))
    assert activity_ids() == []  # no manifest yet: entity "legacy", headers guessed
    for path in ("EmailPromotion.cdm.json", "webevents.manifest.cdm.json"):
        call("on_blob_created", event(container, path, upload(container, path, files[path])))
    assert activity_ids() == ["e11"]
    assert get("status")[1]["files"]["failed"] == 0


def test_reprocess_reads_a_file_again_and_stays_inside_the_container(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = cdm_files(tmp_path)
    for path, data in files.items():
        upload(container, path, data)
    status, report = post_reprocess(orjson.dumps({"path": export.SECOND_FILE}))
    assert status == 200 and report["status"] == "done" and report["activities"] == 2
    for bad in ("../other/x.csv", "/webevents/x.csv", "https://evil.example/x.csv", "a/./b.csv", "a\\b.csv"):
        status, body = post_reprocess(orjson.dumps({"path": bad}))
        assert status == 400 and "path" in body["error"], bad
    assert post_reprocess(b"not json")[0] == 400
    assert post_reprocess(orjson.dumps({"path": 7}))[0] == 400
    status, body = post_reprocess(orjson.dumps({"path": "EmailPromotion/none.csv"}))
    assert status == 404 and "no file" in body["error"]


def test_an_event_for_a_file_of_an_unknown_kind_fails_it_at_once(container) -> None:  # type: ignore[no-untyped-def]
    data = upload(container, "EmailPromotion/x.parquet", b"PAR1 not really")
    call("on_blob_created", event(container, "EmailPromotion/x.parquet", data))
    _, health = get("status")
    assert health["files"]["failed"] == 1
    assert health["last_error"]["path"] == "EmailPromotion/x.parquet"


def test_reprocessing_a_file_that_fails_answers_422_with_the_ledger_reason(container) -> None:  # type: ignore[no-untyped-def]
    upload(container, "EmailPromotion/x.parquet", b"PAR1 not really")
    status, body = post_reprocess(orjson.dumps({"path": "EmailPromotion/x.parquet"}))
    assert status == 422 and body["status"] == "failed"
    _, health = get("status")
    assert body["error"] == health["last_error"]["error"]
    assert "not a CSV or JSON lines file" in body["error"]


@pytest.mark.parametrize(
    ("route", "params", "status", "message"),
    [
        ("customers/{id}", {"id": "nobody"}, 404, "no customer"),
        ("customers/{id}", {"id": "x" * 2000}, 400, "customer id"),
        ("customers/{id}/activities", {"id": R1, "limit": "0"}, 400, "limit"),
        ("customers/{id}/activities", {"id": R1, "limit": "abc"}, 400, "limit"),
        ("customers/{id}/activities", {"id": R1, "limit": "-1"}, 400, "from 1 to 500"),
        ("customers", {"q": "R", "limit": "-1"}, 400, "from 1 to 100"),
        ("activities", {"limit": "-1"}, 400, "from 1 to 10000"),
        ("customers/{id}/activities", {"id": R1, "from": "tuesday"}, 400, "from"),
        ("customers/{id}/activities", {"id": R1, "continuation": "%%%"}, 400, "continuation"),
        ("customers/{id}/activities", {"id": R1, "continuation": OTHERS_TOKEN}, 400, "another query"),
        ("customers", {"q": ""}, 400, "search text"),
        ("activities", {"unmatched": "perhaps"}, 400, "unmatched"),
        ("activities", {"continuation": "%%%"}, 400, "continuation"),
        ("customers", {"q": "R", "continuation": "AAAA"}, 400, "continuation"),
        ("rejects", {"limit": "501"}, 400, "limit"),
        ("rejects", {"file": "a\x00"}, 400, "file"),
        ("rejects", {"continuation": "%%%"}, 400, "continuation"),
        ("files", {"status": "broken"}, 400, "done, skipped, failed, quarantined, running"),
        ("files", {"limit": "0"}, 400, "limit"),
        ("files", {"continuation": "x" * 5000}, 400, "continuation"),
    ],
)
def test_bad_http_input_gets_a_4xx_json_error(container, route, params, status, message) -> None:  # type: ignore[no-untyped-def]
    got, body = get(route, **params)
    assert got == status and message in body["error"]


def _every_page(route: str, **params: str) -> list[list[Any]]:
    """Each page of a listing, following its tokens (in the body, else in the header)."""
    pages, token = [], None
    while True:
        status, body, header = get_page(route, **params, **({"continuation": token} if token else {}))
        assert status == 200, body
        items, token = (body, header) if isinstance(body, list) else (body[route], body["continuation"])
        pages.append(items)
        if token is None:
            return pages
        assert len(pages) < 50


def _flat(pages: list[list[Any]]) -> list[Any]:
    return [item for page in pages for item in page]


def test_activities_customers_rejects_and_files_page_over_http(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for path, data in cdm_files(tmp_path).items():
        upload(container, path, data)
    call("reconcile", TimerRequest(past_due=False))
    _, every, none = get_page("activities", limit="1000")
    pages = _every_page("activities", limit="3")
    assert [len(p) for p in pages] == [3, 3, 1] and _flat(pages) == every and none is None
    unmatched = _every_page("activities", limit="1", unmatched="true")
    assert [a["CustomerId"] for a in _flat(unmatched)] == [None, None]
    customers = _every_page("customers", q="R-", limit="1")
    ids = [c["CustomerId"] for page in customers for c in page]
    assert len(customers) == len(ids) >= 2 and ids == sorted(set(ids))
    rejects = _flat(_every_page("rejects", limit="1"))
    assert [(r["File"], r["Row"]) for r in rejects] == sorted((r["File"], r["Row"]) for r in rejects)
    assert len(rejects) >= 2 and any("primary key" in r["Reason"] for r in rejects)
    one = rejects[0]["File"]
    assert get("rejects", file=one)[1]["rejects"] == [r for r in rejects if r["File"] == one]
    files = _flat(_every_page("files", limit="2"))
    assert [f["path"] for f in files] == sorted(f["path"] for f in files)
    done = get("files", status="done")[1]["files"]
    assert len(done) == 4 and all(f["attempts"] == 1 and f["rows"] and f["updated_at"] for f in done)
    assert {f["status"] for f in files} == {"done", "skipped"}
    _, _, token = get_page("activities", limit="1")
    status, body = get("activities", limit="1", type="EmailPromotionClicks", continuation=token)
    assert status == 400 and "another query" in body["error"]
    assert get("files", continuation=token)[0] == 400


def test_reconcile_over_http_retries_failed_files_when_asked(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = bootstrap.runtime().settings
    bootstrap.use_settings(dataclasses.replace(settings, max_file_bytes=100))
    for path, data in cdm_files(tmp_path).items():
        upload(container, path, data)
    status, first = post_reconcile(b"")
    assert status == 200 and (first["failed"], first["done"]) == (4, 0)
    bootstrap.use_settings(settings)  # the limit raised: the files themselves did not change
    assert post_reconcile(b"{}")[1]["processed"] == 0
    status, again = post_reconcile(orjson.dumps({"retryFailed": True, "prefix": "EmailPromotion"}))
    assert status == 200 and (again["processed"], again["done"]) == (3, 3)
    assert get("files", status="failed")[1]["files"][0]["path"] == "RetailCustomers/customers.csv"
    for bad in (b"[]", b"nope", b'{"retryFailed": "yes"}', b'{"prefix": "../x"}', b'{"prefix": 7}',
                b'{"retry": true}'):  # fmt: skip
        status, body = post_reconcile(bad)
        assert status == 400 and body["error"], bad


def test_the_config_check_route_names_the_columns_the_container_lacks(container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for path, data in cdm_files(tmp_path).items():
        upload(container, path, data)
    status, result = get("config/check")
    assert status == 200 and result["ok"] and [c["files"] for c in result["checks"]] == [3, 1]
    config = orjson.loads(Path(bootstrap.__file__).with_name("default_config.json").read_bytes())
    config["activities"][0]["event"] = ["Signal.Event", "Signal.EventName"]
    (tmp_path / "config.json").write_bytes(orjson.dumps(config))
    settings = bootstrap.runtime().settings
    bootstrap.use_settings(dataclasses.replace(settings, config_path=str(tmp_path / "config.json")))
    status, result = get("config/check")
    assert status == 200 and not result["ok"]
    assert [(m["field"], m["files"]) for m in result["checks"][0]["missing"]] == [("event", 3)]
