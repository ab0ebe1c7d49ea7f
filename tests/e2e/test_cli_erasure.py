"""`footprint erase` and `DELETE /api/customers/{id}` on the generated export."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import azure.functions as func
import orjson
import pytest

from tests.e2e import export
from tests.e2e.test_cli_ingest import R1, R2, activities, footprint, ingest
from tests.e2e.test_function_app import call, cdm_files, event, get, upload
from tests.e2e.test_function_app import container as container  # the Functions app fixture
from tests.e2e.visitors import ADA, SECOND_FILE, write_visitor_export


def test_erase_removes_the_customer_and_gives_a_receipt_without_personal_data(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    ingest(store, export.write_cdm_export(tmp_path / "export"), ok=False)
    before = activities(store)
    receipt = orjson.loads(footprint("erase", R1, "--json", store=store).stdout)
    assert receipt["CustomerId"] == R1 and receipt["Removed"]["customerRows"] == 1
    assert receipt["Removed"]["activities"] == sum(a["CustomerId"] == R1 for a in before.values())
    after = activities(store)
    assert all(a["CustomerId"] != R1 and a["ActivityForeignKey"] != "R-1" for a in after.values())
    assert {k: v for k, v in before.items() if v["CustomerId"] == R2} == {k: v for k, v in after.items() if v["CustomerId"] == R2}
    assert footprint("timeline", R1, store=store, ok=False).returncode != 0
    log = orjson.loads(footprint("erasures", "--json", store=store).stdout)
    assert log == [receipt] and "Ada" not in str(log) and "R-1" not in str(log)
    again = orjson.loads(footprint("erase", R1, "--json", store=store).stdout)
    assert again == receipt  # idempotent
    unknown = footprint("erase", "c-nobody", store=store, ok=False)
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1


@pytest.mark.azurite
def test_delete_over_http_erases_on_azure_tables(container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for path, data in cdm_files(tmp_path).items():
        call("on_blob_created", event(container, path, upload(container, path, data)))
    delete = func.HttpRequest("DELETE", f"http://localhost/api/customers/{R1}", route_params={"id": R1}, body=b"")
    response = call("erase_customer", delete)
    assert response.status_code == 200 and orjson.loads(response.get_body())["CustomerId"] == R1
    assert get("customers/{id}", id=R1)[0] == 404
    _, preview = get("activities", limit="1000")
    assert preview and all(a["ActivityForeignKey"] != "R-1" for a in preview)
    gone = func.HttpRequest("DELETE", "http://localhost/api/customers/c-nobody", route_params={"id": "c-nobody"}, body=b"")
    assert call("erase_customer", gone).status_code == 404


def test_later_ingests_skip_an_erased_customer_and_count_the_rows_suppressed(tmp_path: Path) -> None:
    store, root = tmp_path / "store.db", tmp_path / "export"
    write_visitor_export(root)
    ingest(store, root)
    receipt = orjson.loads(footprint("erase", ADA, "--json", store=store).stdout)
    assert receipt["Removed"]["visitors"] == 2
    again = footprint("ingest", "--json", "--force", str(root), store=store).stdout
    assert sum(r["suppressed"] for r in map(orjson.loads, again.splitlines())) == 7
    left = activities(store).values()
    assert left and all(a["CustomerId"] != ADA and a["VisitorId"] not in ("ph-ada", "lp-ada") for a in left)
    status = orjson.loads(footprint("status", "--json", store=store).stdout)
    assert status["counts_when_loaded"]["suppressed"] == 7
    assert "suppressed=7" in footprint("status", store=store).stdout
    text = footprint("ingest", "--force", str(root / SECOND_FILE), store=store).stdout
    assert "suppressed=2" in text


def _run(*args: str, store: Path, salt: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    env.update({"FOOTPRINT_ERASURE_SALT": salt} if salt is not None else {})
    command = [sys.executable, "-m", "shared", *args, "--store", f"sqlite:///{store}"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_a_salt_from_the_settings_is_used_checked_and_never_stored(tmp_path: Path) -> None:
    store, root = tmp_path / "store.db", tmp_path / "export"
    write_visitor_export(root)
    salt = "s3cret-salt-from-a-key-vault-reference-0123"
    assert _run("ingest", str(root), store=store, salt=salt).returncode == 0
    assert _run("erase", ADA, "--json", store=store, salt=salt).returncode == 0
    kept = sqlite3.connect(store).execute("SELECT salt FROM erasure_salt").fetchall()
    assert len(kept) == 1 and salt not in kept[0][0]  # a check of it, not the salt
    again = _run("ingest", "--json", "--force", str(root), store=store, salt=salt)
    assert sum(r["suppressed"] for r in map(orjson.loads, again.stdout.splitlines())) == 7
    # Another salt, or none, would let the erased ids in: the files fail instead, named why.
    for other in ("another-salt-that-is-long-enough-too-0123", None):
        refused = _run("ingest", "--json", "--force", str(root), store=store, salt=other)
        reports = list(map(orjson.loads, refused.stdout.splitlines()))
        assert reports and all(r["status"] == "failed" and "FOOTPRINT_ERASURE_SALT" in r["error"] for r in reports)
    assert all(a["CustomerId"] != ADA for a in activities(store).values())
    short = _run("ingest", str(root), store=store, salt="short")
    assert short.returncode == 2 and short.stderr.strip().splitlines() == [
        "footprint: setting FOOTPRINT_ERASURE_SALT: 5 characters, want at least 32"
    ]
