"""A file written again replaces what its earlier version wrote; what other files hold stays.

Open defect, kept visible here: the stores keep only the winning copy of an activity (or a
customer row), so when the file holding that copy is rewritten without it, the copy another
file still holds is not brought back: the record is lost until that other file is read again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.adapters.local_files import LocalFileSource
from shared.core.services import Ports, ingest_file
from tests.reliability.stores import CONFIG, Backend

HEADER = "Signal.Export.Id,Signal.Timestamp,Signal.Action.Name,Signal.User.Id\n"
CUSTOMERS = "CustomerRetailId,FullName\n"


def _write(path: Path, text: str, version: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(version * 10**9, version * 10**9))  # a new ETag for each version


@pytest.mark.xfail(strict=True, reason="open defect: stores keep no copy of an activity or "
                   "customer row shadowed by another file's, so a rewrite cannot fall back to it")
def test_a_rewrite_dropping_a_shared_event_keeps_the_other_files_copy(backend: Backend, tmp_path: Path) -> None:
    event = "x,2021-09-29T10:00:00Z,Email promotion,R-001\n"
    _write(tmp_path / "EmailPromotion/a.csv", HEADER + event, 1)
    _write(tmp_path / "EmailPromotion/b.csv", HEADER + event + event.replace("x,", "y,"), 1)
    _write(tmp_path / "RetailCustomers/a.csv", CUSTOMERS + "R-001,Ada\n", 1)
    _write(tmp_path / "RetailCustomers/b.csv", CUSTOMERS + "R-001,Ada B\nR-002,Bram\n", 1)
    store, ledger = backend.fresh().open()
    ports = Ports(LocalFileSource(tmp_path), store, ledger)
    try:
        for path in ("EmailPromotion/a.csv", "EmailPromotion/b.csv", "RetailCustomers/a.csv", "RetailCustomers/b.csv"):
            assert ingest_file(ports, CONFIG, path).status == "done"
        _write(tmp_path / "EmailPromotion/b.csv", HEADER + event.replace("x,", "y,"), 2)
        _write(tmp_path / "RetailCustomers/b.csv", CUSTOMERS + "R-002,Bram\n", 2)
        for path in ("EmailPromotion/b.csv", "RetailCustomers/b.csv"):
            assert ingest_file(ports, CONFIG, path).status == "done"
        events = sorted(a.source_activity_id for a in store.list_activities(None, False, None))
        names = [c.attributes.get("FullName") for c in store.search_customers("R-001", 10)]
        # A clean run over a.csv and the new b.csv has x (from a.csv) and R-001 (from a.csv).
        assert (events, names) == (["x", "y"], ["Ada"])
    finally:
        store.close()
