"""Every store and ledger implementation runs the same contract tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.adapters.memory import MemoryLedger, MemoryStore
from shared.adapters.sqlite.ledger import SqliteLedger
from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
from tests.azurite import AzuriteNames

IMPLEMENTATIONS = ["memory", "sqlite", pytest.param("azure_tables", marks=pytest.mark.azurite)]


def _azure_tables(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A store and ledger on the session's Azurite, under table names no other test uses."""
    from shared.adapters.azure.tables import open_tables

    azurite = request.getfixturevalue("azurite")
    return open_tables(azurite.connection_string, AzuriteNames.fresh().table_prefix)


@pytest.fixture(params=IMPLEMENTATIONS)
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple]:  # type: ignore[no-untyped-def]
    if request.param == "memory":
        yield MemoryStore(), MemoryLedger()
    elif request.param == "sqlite":
        db = SqliteDatabase(tmp_path / "store.db")
        yield SqliteStore(db), SqliteLedger(db)
        db.close()
    elif request.param == "azure_tables":
        store, ledger = _azure_tables(request)
        yield store, ledger
        store.close()


@pytest.fixture
def store(backend):  # type: ignore[no-untyped-def]
    return backend[0]


@pytest.fixture
def ledger(backend):  # type: ignore[no-untyped-def]
    return backend[1]


@pytest.fixture
def backend_factory(request: pytest.FixtureRequest, backend, tmp_path):  # type: ignore[no-untyped-def]
    """Fresh, empty instances of the same implementation as `backend`."""
    made: list = []

    def make():  # type: ignore[no-untyped-def]
        if isinstance(backend[0], MemoryStore):
            return MemoryStore(), MemoryLedger()
        if isinstance(backend[0], SqliteStore):
            db = SqliteDatabase(tmp_path / f"extra{len(made)}.db")
            made.append(db)
            return SqliteStore(db), SqliteLedger(db)
        store, ledger = _azure_tables(request)
        made.append(store)
        return store, ledger

    yield make
    for resource in made:
        resource.close()
