"""End to end through the `footprint` command on a generated export with every tricky case."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shared.adapters.sqlite.store import SqliteDatabase
from shared.core.mapping import derived_customer_id
from tests.e2e import export

R1, R2, R3 = (derived_customer_id("RetailCustomers", k) for k in ("R-1", "R-2", "R-3"))


def footprint(
    *args: str, store: Path | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    extra = ["--store", f"sqlite:///{store}"] if store else []
    command = [sys.executable, "-m", "shared", *args, *extra]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def ingest(store: Path, *paths: Path, ok: bool = True) -> dict[str, dict]:
    done = footprint("ingest", "--json", "--relative", *map(str, paths), store=store, ok=ok)
    return {r["file"]: r for r in map(orjson.loads, done.stdout.splitlines())}


def activities(store: Path) -> dict[str, dict]:
    return {
        a["SourceActivityId"]: a
        for a in orjson.loads(footprint("activities", "--json", store=store).stdout)
    }


def digest(store: Path) -> list[tuple]:
    """Everything a user can read back, minus processing times and lineage of the file version."""
    drop = {"SourceETag", "SourceFile"}
    acts = sorted(
        tuple(sorted((k, v) for k, v in a.items() if k not in drop))
        for a in activities(store).values()
    )
    return acts


@pytest.fixture
def cdm_export(tmp_path: Path) -> Path:
    return export.write_cdm_export(tmp_path / "export")


def test_a_cdm_export_lands_with_rejects_filters_and_unmatched_counted(
    cdm_export: Path, tmp_path: Path
) -> None:
    store = tmp_path / "fp.db"
    reports = ingest(store, cdm_export)
    expected_keys = {"file", "entity", "status", "rows", "activities", "unmatched", "filtered",
                     "rejected", "customers", "suppressed", "error", "reason"}  # fmt: skip
    assert all(set(r) == expected_keys for r in reports.values())
    first = reports[export.FIRST_FILE]
    assert (first["entity"], first["status"]) == ("EmailPromotion", "done")
    # Events land before their customers here: all five wait unmatched at first.
    assert {k: first[k] for k in ("rows", "activities", "filtered", "rejected", "unmatched")} == {
        "rows": 9,
        "activities": 5,
        "filtered": 2,
        "rejected": 2,
        "unmatched": 5,
    }
    assert reports["EmailPromotion/legacy/headerless.csv"]["activities"] == 1
    assert reports["RetailCustomers/customers.csv"]["customers"] == 2
    assert reports["webevents.manifest.cdm.json"]["status"] == "skipped"

    found = activities(store)
    assert sorted(found) == ["e1", "e10", "e11", "e2", "e6", "e7", "e8"]
    assert found["e1"]["SourceFile"] == export.SECOND_FILE  # the greater file wins the duplicate
    assert found["e1"]["CustomerId"] == R1
    assert found["e2"]["CustomerId"] == R2  # no AuthId: the SDK user id is the key
    assert found["e2"]["ActivityForeignKey"] == "R-2"
    assert found["e7"]["ActivityTime"] == "2021-09-28T14:07:00.000Z"
    assert found["e11"]["ActivityTime"] == "2021-09-28T14:00:00.250Z"
    assert found["e6"]["ExternalUrl"] == "https://shop.example.com/offer?a=1,b=2"
    assert found["e8"]["CustomerId"] is None and found["e10"]["CustomerId"] is None
    assert found["e1"]["ActivityTypeDisplay"] == "WebLog"

    status = orjson.loads(footprint("status", "--json", store=store).stdout)
    assert status["rejected"] == 2 and status["unmatched_now"] == 2
    assert status["files"]["done"] == 4


def test_a_customer_arriving_later_links_its_waiting_activities(
    cdm_export: Path, tmp_path: Path
) -> None:
    store = tmp_path / "fp.db"
    ingest(store, cdm_export)
    late = export.write_late_customers(cdm_export)
    report = ingest(store, late)
    assert next(iter(report.values()))["customers"] == 1
    assert activities(store)["e10"]["CustomerId"] == R3
    unmatched = orjson.loads(footprint("activities", "--json", "--unmatched", store=store).stdout)
    assert [a["SourceActivityId"] for a in unmatched] == ["e8"]


def test_the_timeline_is_the_customer_card_newest_first(cdm_export: Path, tmp_path: Path) -> None:
    store = tmp_path / "fp.db"
    ingest(store, cdm_export)
    card = orjson.loads(footprint("timeline", R1, "--json", store=store).stdout)
    assert set(card) == {"customer", "activities", "continuation"}
    assert card["customer"]["Attributes"] == {
        "FullName": "Ada Moreno",
        "Email": "ada@example.com",
        "City": "Seattle",
    }
    assert card["customer"]["AlternateKeys"] == [{"Entity": "RetailCustomers", "Key": "R-1"}]
    assert [a["SourceActivityId"] for a in card["activities"]] == ["e7", "e1", "e11"]
    page = orjson.loads(footprint("timeline", R1, "--json", "--limit", "2", store=store).stdout)
    assert len(page["activities"]) == 2 and page["continuation"]
    rest = orjson.loads(
        footprint(
            "timeline", R1, "--json", "--continuation", page["continuation"], store=store
        ).stdout
    )
    assert [a["SourceActivityId"] for a in rest["activities"]] == ["e11"]
    since = orjson.loads(
        footprint("timeline", R1, "--json", "--since", "2021-09-28T14:05:00Z", store=store).stdout
    )
    assert [a["SourceActivityId"] for a in since["activities"]] == ["e7"]
    text = footprint("timeline", R1, store=store).stdout
    assert "Ada Moreno" in text and "WebLog" in text


def test_type_takes_the_configured_type_or_the_activity_name(
    cdm_export: Path, tmp_path: Path
) -> None:
    store = tmp_path / "fp.db"
    ingest(store, cdm_export)
    for kind in ("WebLog", "EmailPromotionClicks"):
        card = orjson.loads(footprint("timeline", R1, "--json", "--type", kind, store=store).stdout)
        assert [a["SourceActivityId"] for a in card["activities"]] == ["e7", "e1", "e11"], kind
        listed = orjson.loads(footprint("activities", "--json", "--type", kind, store=store).stdout)
        assert len(listed) == len(activities(store)), kind
    assert "ActivityTypeDisplay" in footprint("timeline", "--help").stdout


def test_timeline_json_carries_the_customer_record_of_the_card_and_the_api(
    cdm_export: Path, tmp_path: Path
) -> None:
    store = tmp_path / "fp.db"
    ingest(store, cdm_export)
    card = orjson.loads(footprint("timeline", R1, "--json", store=store).stdout)
    assert card["customer"]["ActivityCounts"] == {"EmailPromotionClicks": 3}


def test_search_finds_customers_by_key_and_attribute(cdm_export: Path, tmp_path: Path) -> None:
    store = tmp_path / "fp.db"
    ingest(store, cdm_export)
    by_city = orjson.loads(footprint("search", "utrecht", "--json", store=store).stdout)
    assert [c["CustomerId"] for c in by_city] == [R2]
    by_key = orjson.loads(footprint("search", "R-1", "--json", store=store).stdout)
    assert [c["CustomerId"] for c in by_key] == [R1]


def test_a_rewritten_file_replaces_its_activities(cdm_export: Path, tmp_path: Path) -> None:
    store = tmp_path / "fp.db"
    ingest(store, cdm_export)
    rewritten = export.rewrite_first_file(cdm_export)
    later = rewritten.stat().st_mtime_ns + 10**9
    os.utime(rewritten, ns=(later, later))  # a new ETag whatever the clock's resolution
    [report] = ingest(store, rewritten).values()
    assert report["status"] == "done" and report["activities"] == 4
    found = activities(store)
    assert "e7" not in found
    assert found["e2"]["ExternalUrl"] == "https://shop.example.com/v2"
    assert sorted(found) == ["e1", "e10", "e11", "e2", "e6", "e8"]


def test_ingesting_again_changes_nothing(cdm_export: Path, tmp_path: Path) -> None:
    store = tmp_path / "fp.db"
    ingest(store, cdm_export)
    before = digest(store)
    again = ingest(store, cdm_export)
    assert {r["status"] for r in again.values()} == {"skipped"}
    assert digest(store) == before


def test_the_final_store_does_not_depend_on_file_order(cdm_export: Path, tmp_path: Path) -> None:
    forward, backward = tmp_path / "forward.db", tmp_path / "backward.db"
    files = sorted(p for p in cdm_export.rglob("*.csv"))
    for path in files:
        ingest(forward, path)
    for path in reversed(files):
        ingest(backward, path)
    assert digest(forward) == digest(backward)
    assert len(digest(forward)) == 7


def test_a_plain_export_uses_folder_names_gzip_and_json_lines(tmp_path: Path) -> None:
    store = tmp_path / "fp.db"
    root = export.write_plain_export(tmp_path / "plain")
    reports = ingest(store, root)
    gz = reports["EmailPromotion/2021/09/28/16/part-0003.csv.gz"]
    jl = reports["EmailPromotion/2021/09/28/17/part-0004.jsonl"]
    assert (gz["entity"], gz["activities"]) == ("EmailPromotion", 1)
    assert (jl["entity"], jl["rows"], jl["activities"], jl["rejected"]) == (
        "EmailPromotion",
        3,
        1,
        2,
    )
    found = activities(store)
    assert found["e13"]["ExternalUrl"] == "https://shop.example.com/json"
    assert found["e13"]["ActivityForeignKey"] == "R-1"


def test_cdm_inspect_prints_entities_and_partitions(cdm_export: Path) -> None:
    result = orjson.loads(footprint("cdm", "inspect", str(cdm_export), "--json").stdout)
    entities = {e["name"]: e for e in result["entities"]}
    assert [p["location"] for p in entities["EmailPromotion"]["partitions"]] == [
        "EmailPromotion/2021/09/28/14/part-0001.csv",
        "EmailPromotion/2021/09/28/15/part-0002.csv",
        "EmailPromotion/legacy/headerless.csv",
    ]
    assert entities["RetailCustomers"]["attributes"][0] == {
        "name": "CustomerRetailId",
        "dataType": "String",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["timeline", "nobody"], "no customer 'nobody'"),
        (["timeline", "x", "--since", "yesterday"], "--since must be an ISO 8601"),
        (["timeline", "x", "--limit", "501"], "--limit: must be between 1 and 500"),
        (["timeline", "x", "--continuation", "!!!"], "continuation token is not valid"),
        (["ingest", "/no/such/place"], "no such file or folder"),
        (["activities", "--store", "postgres://x"], "unknown store URL"),
        (["search", "   "], "search text must not be empty"),
        (["cdm", "inspect", "/no/such/place"], "is not a folder"),
        (["ingest"], "the following arguments are required"),
        (["timeline", "x", "--limit", "ten"], "is not a whole number"),
    ],
)
def test_bad_input_gets_one_clear_line_and_a_nonzero_exit(args, message, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = None if "--store" in args else tmp_path / "fp.db"
    if store is not None:  # an empty store: read commands refuse a missing one
        SqliteDatabase(store).close()
    done = footprint(*args, store=store, ok=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_broken_config_file_names_its_field(tmp_path: Path) -> None:
    bad = tmp_path / "cfg.json"
    bad.write_text('{"activities": [{"name": "x"}]}')
    done = footprint("status", "--config", str(bad), store=tmp_path / "fp.db", ok=False)
    assert done.returncode == 2
    assert "activities[0].entity: Field required" in done.stderr


def test_the_demo_prints_a_customer_card_with_weblog_activities(tmp_path: Path) -> None:
    done = footprint("demo", "--dir", str(tmp_path / "demo"))
    assert "Customer " in done.stdout and "WebLog" in done.stdout
    assert (tmp_path / "demo" / "footprint.db").exists()
    shutil.rmtree(tmp_path / "demo")


def test_reconcile_processes_what_the_ledger_has_not_done(cdm_export: Path, tmp_path: Path) -> None:
    store = tmp_path / "fp.db"
    ingest(store, cdm_export / export.FIRST_FILE)
    first = orjson.loads(
        footprint("reconcile", "--source", str(cdm_export), "--json", store=store).stdout
    )
    assert (first["listed"], first["done"], first["failed"]) == (7, 3, 0)
    again = orjson.loads(
        footprint("reconcile", "--source", str(cdm_export), "--json", store=store).stdout
    )
    assert again["processed"] == 0
    assert sorted(activities(store)) == ["e1", "e10", "e11", "e2", "e6", "e7", "e8"]


def _config_file(tmp_path: Path, name: str, change) -> Path:  # type: ignore[no-untyped-def]
    from shared.bootstrap import load_config

    raw = orjson.loads(orjson.dumps(load_config(None).model_dump()))
    change(raw["activities"][0])
    path = tmp_path / name
    path.write_bytes(orjson.dumps(raw))
    return path


def test_a_corrected_config_brings_a_failed_file_back(cdm_export: Path, tmp_path: Path) -> None:
    store = tmp_path / "fp.db"
    wrong = _config_file(tmp_path, "wrong.json", lambda a: a.update(primaryKey="Signal.Export.ID"))
    fixed = _config_file(tmp_path, "fixed.json", lambda a: None)
    first = footprint("ingest", "--json", "--relative", "--config", str(wrong),
                      str(cdm_export / export.FIRST_FILE), store=store, ok=False)  # fmt: skip
    assert first.returncode == 1 and orjson.loads(first.stdout)["status"] == "failed"
    again = footprint("ingest", "--json", "--relative", "--config", str(fixed),
                      str(cdm_export / export.FIRST_FILE), store=store)  # fmt: skip
    assert orjson.loads(again.stdout)["status"] == "done"
    # The reconciler, too, reads again what another mapping of the entity read.
    done = footprint("reconcile", "--json", "--source", str(cdm_export), "--config", str(wrong),
                     store=store, ok=False)  # fmt: skip
    assert orjson.loads(done.stdout)["failed"] == 3
    done = footprint("reconcile", "--json", "--source", str(cdm_export), "--config", str(fixed),
                     store=store)  # fmt: skip
    assert orjson.loads(done.stdout)["done"] == 3


def test_a_missing_timestamp_column_fails_the_file_naming_it(cdm_export: Path, tmp_path: Path) -> None:
    typo = _config_file(tmp_path, "typo.json", lambda a: a.update(timestamp="ViewedAtt"))
    done = footprint("ingest", "--json", "--config", str(typo), str(cdm_export / export.FIRST_FILE),
                     store=tmp_path / "fp.db", ok=False)  # fmt: skip
    report = orjson.loads(done.stdout)
    assert done.returncode == 1 and report["status"] == "failed" and report["rejected"] == 0
    assert "ViewedAtt" in report["error"] and "Signal.Timestamp" in report["error"]


def test_ingest_reports_this_runs_counts_and_a_reason_for_a_skip(cdm_export: Path, tmp_path: Path) -> None:
    store = tmp_path / "fp.db"
    first = ingest(store, cdm_export)
    again = ingest(store, cdm_export)
    skipped = again[export.FIRST_FILE]
    assert skipped["status"] == "skipped" and skipped["error"] is None
    assert skipped["reason"].startswith("already done at ETag ")
    assert all(again[f][k] == 0 for f in again for k in ("rows", "activities", "customers"))
    # Summing both runs' output counts each row once.
    assert sum(r["rows"] for r in [*first.values(), *again.values()]) == sum(
        r["rows"] for r in first.values()
    )
    text = footprint("ingest", str(cdm_export / export.FIRST_FILE), store=store).stdout
    assert "rows=0" in text and "already done at ETag" in text


@pytest.mark.parametrize("command", [["search", "R-1"], ["timeline", "x"], ["activities"], ["status"]])
def test_a_read_command_on_a_missing_store_fails_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "nowhere" / "footprnt.db"
    done = footprint(*command, store=missing, ok=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and str(missing) in done.stderr
    assert not missing.parent.exists()


def test_a_continuation_token_of_another_customer_is_refused(cdm_export: Path, tmp_path: Path) -> None:
    store = tmp_path / "fp.db"
    ingest(store, cdm_export)
    page = orjson.loads(footprint("timeline", R1, "--json", "--limit", "1", store=store).stdout)
    done = footprint("timeline", R2, "--continuation", page["continuation"], store=store, ok=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "another query" in done.stderr


@pytest.mark.parametrize(("flag", "other"), [("--since", "from"), ("--until", "to")])
def test_a_bad_time_names_the_flag_the_caller_used(tmp_path: Path, flag: str, other: str) -> None:
    store = tmp_path / "fp.db"
    ingest(store, export.write_cdm_export(tmp_path / "export"))
    done = footprint("timeline", R1, flag, "tuesday", store=store, ok=False)
    assert done.returncode == 2 and f"{flag} must be" in done.stderr
    assert f"{other} must" not in done.stderr
    done = footprint("timeline", R1, "--since", "2022-01-01", "--until", "2021-01-01", store=store,
                     ok=False)  # fmt: skip
    assert "--since must be earlier than --until" in done.stderr


def test_cdm_inspect_names_the_folder_given(cdm_export: Path) -> None:
    done = footprint("cdm", "inspect", str(cdm_export / "EmailPromotion"), ok=False)
    assert done.returncode == 2 and str(cdm_export / "EmailPromotion") in done.stderr


def test_cdm_inspect_says_an_entity_document_is_missing(cdm_export: Path) -> None:
    documents = [p for p in cdm_export.rglob("*.cdm.json") if "manifest" not in p.name]
    for doc in documents:
        doc.unlink()
    done = footprint("cdm", "inspect", str(cdm_export), ok=False)
    assert done.returncode == 1
    assert "missing" in done.stdout and documents[0].name in done.stdout


def test_every_config_error_is_a_line_of_its_own(tmp_path: Path) -> None:
    typo = _config_file(tmp_path, "typo.json", lambda a: a.update(timestmap=a.pop("timestamp")))
    done = footprint("ingest", "--config", str(typo), str(tmp_path), ok=False)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"footprint: {typo}: activities[0].timestamp: Field required",
        f"footprint: {typo}: activities[0].timestmap: Extra inputs are not permitted",
    ]
