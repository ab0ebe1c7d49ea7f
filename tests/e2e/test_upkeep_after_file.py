"""Measures and segments are current after each file (SPEC §9 "kept current"), with no timer
run and no `segments refresh`: through `footprint ingest` on SQLite, and through the per-file
function on Azurite. A rewrite that drops a customer's qualifying rows makes them exit; a later
sign-in file that links an anonymous visitor makes its customer enter."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import azure.functions as func
import orjson
import pytest

from shared import bootstrap
from tests.e2e.export import _write_csv, event
from tests.e2e.test_cli_audiences import AUDIENCES, DEFAULTS, R1, R2
from tests.e2e.test_cli_ingest import footprint, ingest
from tests.e2e.test_function_app import call, upload
from tests.e2e.test_function_app import container as container  # the Functions app fixture
from tests.e2e.test_function_app import event as grid_event

CUSTOMERS = "RetailCustomers/customers.csv"
CLICKS = "EmailPromotion/clicks.csv"
BROWSING = "EmailPromotion/browsing.csv"
SIGN_IN = "EmailPromotion/sign-in.csv"
CONTENT: dict[str, list[Any]] = {
    CUSTOMERS: ["CustomerRetailId,FullName,Email,City", "R-1,Ada,ada@example.com,Seattle",
                "R-2,Bram,bram@example.com,Utrecht"],
    CLICKS: [event(f"c{n}", f"2021-09-28T14:0{n}:00Z", "ph-ada", "R-1") for n in range(3)],
    # R-1's clicks but one, rewritten
    "rewrite": [event("c0", "2021-09-28T14:00:00Z", "ph-ada", "R-1")],
    BROWSING: [event(f"b{n}", f"2021-09-28T15:0{n}:00Z", "ph-bram") for n in range(2)],  # anonymous
    SIGN_IN: [event("s0", "2021-09-28T16:00:00Z", "ph-bram", "R-2")],  # ph-bram is R-2's
}  # fmt: skip


def write(root: Path, path: str, content: str | None = None) -> Path:
    rows = CONTENT[content or path]
    target = root / path
    if path == CUSTOMERS:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(rows) + "\n", encoding="utf-8")
    else:
        _write_csv(target, rows)
    return target


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**json.loads(DEFAULTS.read_text()), **AUDIENCES}))
    return path


# -- footprint ingest on SQLite ----------------------------------------------------------------


def test_ingest_keeps_members_measures_and_the_feed_current_file_by_file(tmp_path: Path, config: Path) -> None:
    root, store = tmp_path / "export", tmp_path / "store.db"

    def land(path: str, content: str | None = None) -> None:
        done = footprint("ingest", "--json", "--config", str(config), str(write(root, path, content)), store=store)
        assert all(orjson.loads(line)["status"] == "done" for line in done.stdout.splitlines())

    def run(*args: str) -> Any:
        return orjson.loads(footprint(*args, "--json", "--config", str(config), store=store).stdout)

    def members(segment: str) -> list[str]:
        return [m["CustomerId"] for m in run("segments", "members", segment)["members"]]

    land(CUSTOMERS)
    land(CLICKS)
    assert members("Clickers") == [R1] and members("InSeattle") == [R1]
    customer = run("timeline", R1)["customer"]
    assert customer["Measures"]["Clicks"] == 3 and customer["Segments"] == ["Clickers", "InSeattle"]
    land(CLICKS, "rewrite")  # a new version with one click left
    assert members("Clickers") == [] and run("measures", R1)["Measures"]["Clicks"] == 1
    feed = run("segments", "changes", "Clickers")["changes"]
    assert [(c["CustomerId"], c["Change"]) for c in feed] == [(R1, "entered"), (R1, "exited")]
    land(BROWSING)
    assert members("Clickers") == []  # nobody's yet: an anonymous visitor
    land(SIGN_IN)
    assert members("Clickers") == [R2] and run("timeline", R2)["customer"]["Measures"]["Clicks"] == 3
    feed = run("segments", "changes", "Clickers")["changes"]
    assert [(c["CustomerId"], c["Change"]) for c in feed][-1] == (R2, "entered")


def test_without_measures_ingest_keeps_no_audiences(tmp_path: Path) -> None:
    root, store = tmp_path / "export", tmp_path / "store.db"
    ingest(store, write(root, CUSTOMERS), write(root, CLICKS))
    with sqlite3.connect(store) as conn:  # the upkeep's tables were never made
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "audience_state" not in tables


# -- the per-file function on Azurite ---------------------------------------------------------


@pytest.mark.azurite
def test_the_per_file_function_keeps_segments_current(container, tmp_path: Path, config: Path) -> None:  # type: ignore[no-untyped-def]
    bootstrap.use_settings(dataclasses.replace(bootstrap.runtime().settings, config_path=str(config)))
    root = tmp_path / "export"

    def land(path: str, content: str | None = None) -> None:
        data = write(root, path, content).read_bytes()
        call("on_blob_created", grid_event(container, path, upload(container, path, data)))

    def get(function: str, route: str, **route_params: str) -> Any:
        req = func.HttpRequest("GET", f"http://localhost/api/{route}", route_params=route_params, body=b"")
        response = call(function, req)
        assert response.status_code == 200
        return orjson.loads(response.get_body())

    def members(segment: str) -> list[str]:
        page = get("segment_members", f"segments/{segment}/members", name=segment)
        return [m["CustomerId"] for m in page["members"]]

    def changes(segment: str) -> list[tuple[str, str]]:
        feed = get("segment_changes", f"segments/{segment}/changes", name=segment)
        return [(c["CustomerId"], c["Change"]) for c in feed["changes"]]

    land(CUSTOMERS)
    land(CLICKS)
    assert members("Clickers") == [R1] and members("InSeattle") == [R1]
    profile = get("get_customer", f"customers/{R1}", id=R1)
    assert profile["Measures"]["Clicks"] == 3 and profile["Segments"] == ["Clickers", "InSeattle"]
    land(CLICKS, "rewrite")
    assert members("Clickers") == [] and changes("InSeattle") == [(R1, "entered"), (R1, "exited")]
    land(BROWSING)
    land(SIGN_IN)
    assert members("Clickers") == [R2] and changes("Clickers")[-1] == (R2, "entered")
    assert get("get_customer", f"customers/{R2}", id=R2)["Measures"]["Clicks"] == 3
