"""Unknown to known through the `footprint` command (SPEC §8), on SQLite."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shared.bootstrap import load_config
from tests.e2e import visitors
from tests.e2e.test_cli_ingest import footprint, ingest
from tests.e2e.visitors import ADA, BOB, EXPECTED


def _load(tmp_path: Path, order: list[str], name: str = "store.db") -> tuple[Path, Path]:
    root = tmp_path / "export"
    files = visitors.write_visitor_export(root)
    store = tmp_path / name
    for role in order:
        reports = ingest(store, files[role])
        assert all(r["status"] == "done" for r in reports.values()), reports
    return root, store


def _json(*args: str, store: Path):  # type: ignore[no-untyped-def]
    return orjson.loads(footprint(*args, "--json", store=store).stdout)


def _resolved(store: Path) -> dict[str, tuple]:
    return {a["SourceActivityId"]: (a["CustomerId"], a["IdentityPath"])
            for a in _json("activities", store=store)}  # fmt: skip


EVENTS_FIRST = [visitors.SECOND_FILE, visitors.FIRST_FILE, visitors.CUSTOMERS_FILE,
                visitors.LATE_FILE]  # fmt: skip


def test_visitors_resolve_to_their_customers_in_any_order(tmp_path: Path) -> None:
    _, store = _load(tmp_path, EVENTS_FIRST)
    assert _resolved(store) == EXPECTED
    _, other = _load(tmp_path / "b", list(reversed(EVENTS_FIRST)))
    assert _resolved(other) == EXPECTED
    assert _json("status", store=store)["unmatched_now"] == 3


def test_a_card_shows_every_device_and_why(tmp_path: Path) -> None:
    _, store = _load(tmp_path, EVENTS_FIRST)
    card = _json("timeline", ADA, store=store)
    ids = [a["SourceActivityId"] for a in card["activities"]]
    assert ids == ["l2", "l1", "t1", "a3", "a2", "a1"]
    assert {a["VisitorId"] for a in card["activities"]} == {"ph-ada", "lp-ada", "tv-home"}
    seen = {v["VisitorId"]: v for v in card["customer"]["Visitors"]}
    assert sorted(seen) == ["lp-ada", "ph-ada"]  # the television went to Bob, latest
    assert seen["ph-ada"]["LinkedAt"] == "2021-09-28T14:05:00.000Z"
    assert seen["ph-ada"]["LinkSource"] == {"File": visitors.FIRST_FILE, "Row": 2}
    text = footprint("timeline", ADA, store=store).stdout
    assert "visitor ph-ada: signed in 2021-09-28T14:05:00.000Z" in text


def test_a_visitor_shows_its_conflict_and_its_activities_paged(tmp_path: Path) -> None:
    _, store = _load(tmp_path, EVENTS_FIRST)
    view = _json("visitor", "tv-home", "--limit", "2", store=store)
    [standing] = view["visitor"]["Links"]
    assert (standing["Conflict"], standing["Key"], standing["OnConflict"]) == (True, "R-2", "latest")
    assert [c["Key"] for c in standing["Candidates"]] == ["R-1", "R-2"]
    assert [a["SourceActivityId"] for a in view["activities"]] == ["t3", "t2"]
    rest = _json("visitor", "tv-home", "--continuation", view["continuation"], store=store)
    assert [a["SourceActivityId"] for a in rest["activities"]] == ["t1"]
    assert rest["continuation"] is None
    [conflict] = _json("identities", "--conflicts", store=store)
    assert (conflict["VisitorId"], conflict["Key"]) == ("tv-home", "R-2")
    assert "tv-home  RetailCustomers: R-2" in footprint("identities", "--conflicts", store=store).stdout


def test_an_unknown_visitor_is_a_clear_error(tmp_path: Path) -> None:
    _, store = _load(tmp_path, [visitors.FIRST_FILE])
    done = footprint("visitor", "nobody-here", store=store, ok=False)
    assert (done.returncode, done.stderr.strip()) == (2, "footprint: no visitor 'nobody-here'")


@pytest.mark.parametrize(("rule", "television"), [("first", ADA), ("none", None)])
def test_on_conflict_decides_who_the_shared_device_is(tmp_path: Path, rule: str, television) -> None:  # type: ignore[no-untyped-def]
    _, store = _load(tmp_path, EVENTS_FIRST)
    config = load_config(None).model_dump()
    config["activities"][0]["relationship"]["onConflict"] = rule
    path = tmp_path / "config.json"
    path.write_bytes(orjson.dumps(config))
    found = {a["SourceActivityId"]: a["CustomerId"]
             for a in _json("activities", "--config", str(path), store=store)}  # fmt: skip
    assert found["t3"] == television
    assert found["t2"] == BOB  # a signed-in visit stays with its key whatever the rule


def test_a_rewritten_file_takes_its_links_with_it(tmp_path: Path) -> None:
    root, store = _load(tmp_path, EVENTS_FIRST)
    kept = [r for r in visitors.SECOND if r[0] != "t2"]  # Bob never signed in on the television
    visitors._write_csv(root / visitors.SECOND_FILE, kept)
    ingest(store, root / visitors.SECOND_FILE)
    found = _resolved(store)
    assert found["t3"] == (ADA, "visitor")
    assert "t2" not in found
    assert _json("identities", "--conflicts", store=store) == []
