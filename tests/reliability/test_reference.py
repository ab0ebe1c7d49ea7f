"""The reference every case compares with: a clean single run, the same on every store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from shared import bootstrap
from shared.core.audiences import upkeep
from tests.reliability.corpus import CORPUS
from tests.reliability.digest import Snapshot
from tests.reliability.stores import CONFIG, Backend, load_clean


def test_every_store_leaves_the_same_clean_store(backend: Backend, clean: Snapshot, tmp_path: Path) -> None:
    store = Backend("sqlite", tmp_path).fresh()
    on_sqlite = load_clean(store, CORPUS, tmp_path / "export")
    assert on_sqlite.snapshot.digest == clean.digest
    # What the upkeep kept file by file is a fresh evaluation of everyone, and fills segments.
    profile, _ = store.open()
    try:
        audiences = bootstrap.audiences_of(CONFIG)
        upkeep.refresh_all(profile, bootstrap.open_audiences(profile), audiences, datetime.now(UTC))
        assert Snapshot.of(profile, CORPUS.customer_ids).audiences == clean.audiences
    finally:
        profile.close()
    members = {row[0]: row[1] for row in clean.audiences if row[0] in ("Clickers", "Browsers")}
    assert members.keys() == {"Clickers", "Browsers"} and all(members.values())
    # The corpus holds what the cases are about: activities, customers, rejects and unmatched.
    assert len(clean.activities) > 200 and len(clean.rejects) > 10
    assert all(clean.customers) and any(a["CustomerId"] is None for a in clean.activities)
    # Visitors who sign in later, share a device, or never sign in: links prove themselves.
    paths = {a["IdentityPath"] for a in clean.activities}
    assert paths == {"key", "visitor", None} and len(clean.links) > 10
    assert any(c["Visitors"] for c in clean.customers)
