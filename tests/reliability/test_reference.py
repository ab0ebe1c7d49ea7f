"""The reference every case compares with: a clean single run, the same on every store."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.corpus import CORPUS
from tests.reliability.digest import Snapshot
from tests.reliability.stores import Backend, load_clean


def test_every_store_leaves_the_same_clean_store(backend: Backend, clean: Snapshot, tmp_path: Path) -> None:
    on_sqlite = load_clean(Backend("sqlite", tmp_path).fresh(), CORPUS, tmp_path / "export")
    assert on_sqlite.snapshot.digest == clean.digest
    # The corpus holds what the cases are about: activities, customers, rejects and unmatched.
    assert len(clean.activities) > 200 and len(clean.rejects) > 10
    assert all(clean.customers) and any(a["CustomerId"] is None for a in clean.activities)
    # Visitors who sign in later, share a device, or never sign in: links prove themselves.
    paths = {a["IdentityPath"] for a in clean.activities}
    assert paths == {"key", "visitor", None} and len(clean.links) > 10
    assert any(c["Visitors"] for c in clean.customers)
