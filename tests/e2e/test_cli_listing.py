"""`footprint rejects`, `files`, `reconcile --retry-failed`, `config check` and the paging of
`activities` and `search`, through the command on a generated export into SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import shared
from tests.e2e import export


def footprint(
    *args: str, store: Path, code: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    command = [sys.executable, "-m", "shared", *args, "--store", f"sqlite:///{store}"]
    done = subprocess.run(command, capture_output=True, text=True, env={**clean, **(env or {})},
                          timeout=120)  # fmt: skip
    assert done.returncode == code, (done.stdout, done.stderr)
    return done


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[Path, Path]:
    """An export and a store it was ingested into."""
    root = export.write_cdm_export(tmp_path / "export")
    store = tmp_path / "fp.db"
    footprint("ingest", "--json", str(root), store=store)
    return root, store


def _pages(*args: str, store: Path) -> list[list[dict]]:
    """Every page of an array listing, following the token its --json run puts on stderr."""
    pages, token = [], None
    while True:
        more = ["--continuation", token] if token else []
        done = footprint(*args, "--json", *more, store=store)
        pages.append(orjson.loads(done.stdout))
        if not done.stderr:
            return pages
        token = orjson.loads(done.stderr)["continuation"]
        assert len(pages) < 20


def test_activities_and_search_page_with_tokens_and_keep_their_arrays(loaded) -> None:  # type: ignore[no-untyped-def]
    _, store = loaded
    every = orjson.loads(footprint("activities", "--json", store=store).stdout)
    pages = _pages("activities", "--limit", "3", store=store)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [a for p in pages for a in p] == every
    customers = _pages("search", "R-", "--limit", "1", store=store)
    ids = [c["CustomerId"] for p in customers for c in p]
    assert len(ids) == len(customers) == 2 and ids == sorted(ids)
    text = footprint("activities", "--limit", "2", "--type", "EmailPromotionClicks", store=store)
    hint = text.stderr.strip()
    assert hint.startswith("more: footprint activities --limit 2 --type EmailPromotionClicks --store ")
    token = hint.rsplit(" ", 1)[1]
    assert len(footprint("activities", "--limit", "2", "--type", "EmailPromotionClicks",
                         "--continuation", token, store=store).stdout.splitlines()[1:]) == 2  # fmt: skip
    other = footprint("activities", "--unmatched", "--continuation", token, store=store, code=2)
    assert other.stderr.startswith("footprint: continuation token belongs to another query")
    assert footprint("search", "R-", "--limit", "101", store=store, code=2).stderr.count("\n") == 1


def test_rejects_list_file_row_reason_and_excerpt_a_page_at_a_time(loaded) -> None:  # type: ignore[no-untyped-def]
    _, store = loaded
    page = orjson.loads(footprint("rejects", "--json", "--limit", "1", store=store).stdout)
    assert set(page) == {"rejects", "continuation"} and page["continuation"]
    [first] = page["rejects"]
    assert set(first) == {"File", "ETag", "Row", "Entity", "Reason", "Excerpt"}
    rest = orjson.loads(footprint("rejects", "--json", "--continuation", page["continuation"],
                                  store=store).stdout)  # fmt: skip
    every = [first, *rest["rejects"]]
    assert rest["continuation"] is None and len(every) == 2
    assert [(r["File"], r["Row"]) for r in every] == sorted((r["File"], r["Row"]) for r in every)
    assert {r["File"] for r in every} == {export.FIRST_FILE}
    of_file = orjson.loads(footprint("rejects", "--json", "--file", export.SECOND_FILE, store=store).stdout)
    assert of_file == {"rejects": [], "continuation": None}
    text = footprint("rejects", store=store).stdout.splitlines()
    assert len(text) == 2 and text[0].startswith(f"{export.FIRST_FILE}:{first['Row']}  ")


def test_files_show_each_file_with_status_attempts_counts_and_times(loaded) -> None:  # type: ignore[no-untyped-def]
    _, store = loaded
    listed = orjson.loads(footprint("files", "--json", "--limit", "500", store=store).stdout)
    files = {f["path"]: f for f in listed["files"]}
    assert len(files) == 7 and listed["continuation"] is None
    first = files[export.FIRST_FILE]
    assert (first["status"], first["attempts"], first["rows"], first["rejected"]) == ("done", 1, 9, 2)
    assert first["started_at"] <= first["finished_at"] == first["updated_at"]
    assert first["error"] is None and first["reason"] is None
    manifest = files["webevents.manifest.cdm.json"]
    assert manifest["status"] == "skipped" and manifest["reason"] and manifest["error"] is None
    done = orjson.loads(footprint("files", "--json", "--status", "done", store=store).stdout)
    assert len(done["files"]) == 4
    bad = footprint("files", "--status", "broken", store=store, code=2)
    assert bad.stderr.startswith(
        "footprint: status must be one of done, skipped, failed, quarantined, running, got 'broken'"
    ) and bad.stderr.count("\n") == 1
    text = footprint("files", "--status", "done", "--limit", "3", store=store)
    assert len(text.stdout.splitlines()) == 3 and text.stderr.startswith("more: footprint files ")


def test_retry_failed_runs_a_failed_file_again_now(tmp_path: Path) -> None:
    root = export.write_cdm_export(tmp_path / "export")
    store = tmp_path / "fp.db"
    small = {"FOOTPRINT_MAX_FILE_BYTES": "100"}
    footprint("ingest", str(root), store=store, code=1, env=small)
    failed = orjson.loads(footprint("files", "--json", "--status", "failed", store=store).stdout)
    assert len(failed["files"]) == 4 and "larger than 100 bytes" in failed["files"][0]["error"]
    # Raising the limit is no change of the file: the ledger alone would never retry it.
    plain = orjson.loads(footprint("reconcile", "--json", "--source", str(root), store=store).stdout)
    assert plain["processed"] == 0
    again = footprint("reconcile", "--json", "--retry-failed", "--source", str(root), store=store)
    assert orjson.loads(again.stdout)["done"] == 4
    assert orjson.loads(footprint("files", "--json", "--status", "failed", store=store).stdout)["files"] == []
    assert len(orjson.loads(footprint("activities", "--json", store=store).stdout)) == 7


def test_config_check_names_the_columns_an_export_lacks(tmp_path: Path) -> None:
    root = export.write_cdm_export(tmp_path / "export")
    store = tmp_path / "unused.db"
    good = footprint("config", "check", "--against", str(root), store=store)
    assert good.stdout.splitlines()[-1] == "config built-in: ok"
    config = orjson.loads((Path(shared.__file__).parent / "default_config.json").read_bytes())
    config["activities"][0]["timestamp"] = "ViewedAtt"
    config["customerSources"][0]["attributes"].append("Phone")
    path = tmp_path / "config.json"
    path.write_bytes(orjson.dumps(config))
    done = footprint("config", "check", "--config", str(path), "--against", str(root), "--json",
                     store=store, code=1)  # fmt: skip
    result = orjson.loads(done.stdout)
    assert (result["ok"], result["checked"], result["unreadable"]) == (False, True, [])
    activity, customers = result["checks"]
    assert (activity["kind"], activity["entity"], activity["files"]) == ("activity", "EmailPromotion", 3)
    assert [(m["field"], m["columns"], m["files"]) for m in activity["missing"]] == [
        ("timestamp", ["ViewedAtt"], 3)
    ]
    assert [m["field"] for m in customers["missing"]] == ["attributes.Phone"]
    text = footprint("config", "check", "--config", str(path), "--against", str(root), store=store, code=1)
    assert "timestamp: none of ViewedAtt in 3 of 3 files" in text.stdout
    path.write_text('{"activities": [{"name": "x"}]}')
    bad = footprint("config", "check", "--config", str(path), store=store, code=2)
    assert bad.stdout == "" and bad.stderr.startswith(f"footprint: {path}: activities[0]")
    assert not store.exists()
