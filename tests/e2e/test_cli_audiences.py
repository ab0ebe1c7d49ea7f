"""Measures and segments through the `footprint` command and the HTTP functions, on the
generated export: the --json shapes of SPEC §9, --as-of, the change feed, bad names."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from shared.core.mapping import derived_customer_id
from tests.e2e import export
from tests.e2e.test_cli_ingest import footprint, ingest

R1, R2 = (derived_customer_id("RetailCustomers", k) for k in ("R-1", "R-2"))
DEFAULTS = Path(__file__).parents[2] / "shared" / "default_config.json"
AUDIENCES = {
    "measures": [
        {"name": "Clicks", "activities": ["EmailPromotionClicks"], "aggregate": "count"},
        {"name": "LastVisit", "aggregate": "last", "of": "ActivityTime"},
        {"name": "TopPage", "aggregate": "mostFrequent", "of": "ExternalUrl"},
    ],
    "segments": [
        {"name": "Clickers", "description": "two or more clicks", "rule": {"measure": "Clicks", "op": ">=", "value": 2}},
        {"name": "InSeattle", "rule": {"all": [{"segment": "Clickers"},
                                                {"attribute": "City", "op": "=", "value": "Seattle"}]}},
    ],
}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads(DEFAULTS.read_text()), **AUDIENCES}))
    store = tmp_path / "store.db"
    ingest(store, export.write_cdm_export(tmp_path / "export"), ok=False)
    footprint("segments", "refresh", "--config", str(config), store=store)
    return store, config


def run(setup: tuple[Path, Path], *args: str) -> object:
    store, config = setup
    return orjson.loads(footprint(*args, "--json", "--config", str(config), store=store).stdout)


def test_segments_list_every_segment_with_its_members(setup) -> None:  # type: ignore[no-untyped-def]
    assert run(setup, "segments") == [
        {"Segment": "Clickers", "Description": "two or more clicks", "Members": 2},
        {"Segment": "InSeattle", "Description": "", "Members": 1},  # R-2 is in Utrecht
    ]


def test_members_page_by_customer_id_with_their_keys(setup) -> None:  # type: ignore[no-untyped-def]
    page = run(setup, "segments", "members", "InSeattle")
    assert page["segment"] == "InSeattle" and page["continuation"] is None
    assert page["members"] == [{"CustomerId": R1, "AlternateKeys": [{"Entity": "RetailCustomers", "Key": "R-1"}]}]
    first = run(setup, "segments", "members", "Clickers", "--limit", "1")
    rest = run(setup, "segments", "members", "Clickers", "--limit", "1", "--continuation", first["continuation"])
    assert [m["CustomerId"] for m in first["members"] + rest["members"]] == sorted([R1, R2])
    assert rest["continuation"] is None


def test_a_customers_measures_now_and_as_of_a_past_time(setup) -> None:  # type: ignore[no-untyped-def]
    now = run(setup, "measures", R1)
    assert now["Measures"]["Clicks"] == 3 and now["Segments"] == ["Clickers", "InSeattle"]
    assert now["Measures"]["LastVisit"] == "2021-09-28T14:07:00.000Z"
    before = run(setup, "measures", R1, "--as-of", "2021-09-28T14:01:30Z")
    assert before == {"CustomerId": R1, "asOf": "2021-09-28T14:01:30.000Z",
                      "Measures": {"Clicks": 2, "LastVisit": "2021-09-28T14:01:00.000Z",
                                   "TopPage": before["Measures"]["TopPage"]},
                      "Segments": ["Clickers", "InSeattle"]}  # fmt: skip
    earliest = run(setup, "segments", "--as-of", "2021-09-28T13:00:00Z")
    assert [s["Members"] for s in earliest] == [0, 0]


def test_the_customer_record_carries_its_current_measures_and_segments(setup) -> None:  # type: ignore[no-untyped-def]
    card = run(setup, "timeline", R1)
    assert card["customer"]["Segments"] == ["Clickers", "InSeattle"]
    assert card["customer"]["Measures"]["Clicks"] == 3
    assert run(setup, "timeline", R2)["customer"]["Segments"] == ["Clickers"]


def test_the_change_feed_continues_from_its_cursor(setup) -> None:  # type: ignore[no-untyped-def]
    feed = run(setup, "segments", "changes", "Clickers")
    assert sorted((c["Segment"], c["CustomerId"], c["Change"]) for c in feed["changes"]) == sorted(
        [("Clickers", R1, "entered"), ("Clickers", R2, "entered")]
    )
    again = run(setup, "segments", "changes", "Clickers", "--since", feed["cursor"])
    assert again["changes"] == [] and again["cursor"] == feed["cursor"]


def test_bad_names_and_cursors_get_one_line(setup) -> None:  # type: ignore[no-untyped-def]
    store, config = setup
    for args in (("segments", "members", "Nope"), ("segments", "changes", "Clickers", "--since", "garbage"),
                 ("measures", "nobody"), ("measures", R1, "--as-of", "yesterday")):  # fmt: skip
        done = footprint(*args, "--config", str(config), store=store, ok=False)
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
