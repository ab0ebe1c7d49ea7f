"""An erasure on Azure Tables cut short inside its removal of activities (no transaction spans
the activities and their index rows) leaves, once retried, no index row of an erased activity:
not even the one filed under another visitor (a shared device), which only the activity
named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.adapters.azure.table_layout import ACTIVITIES, KEYED, activity_where
from shared.adapters.azure.tables import open_tables
from shared.adapters.local_files import LocalFileSource
from shared.core.audiences.evaluator import Audiences
from shared.core.erasure.service import erase_customer
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import Ports
from tests.azurite import AzuriteNames
from tests.e2e import visitors as export

pytestmark = pytest.mark.azurite
CONFIG = bootstrap.load_config(None)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Crash(BaseException):
    """The process dying: no `except Exception` catches it."""


def _orphans(store: Any) -> list[str]:
    """Activity ids of index rows whose activity is gone."""
    ids = sorted({row["ActivityId"] for row in store.io.scan(KEYED)})
    return [i for i in ids if store.io.get(ACTIVITIES, *activity_where(i)) is None]


@pytest.mark.parametrize("deletes", range(1, 6))
def test_an_erasure_cut_short_between_deletes_leaves_no_orphan_index_row(azurite, tmp_path: Path, deletes: int) -> None:  # type: ignore[no-untyped-def]
    store, ledger = open_tables(azurite.connection_string, AzuriteNames.fresh().table_prefix)
    try:
        export.write_visitor_export(tmp_path / "export")
        ports = Ports(LocalFileSource(tmp_path / "export"), store, ledger, bootstrap.open_erasures(store))
        assert reconcile(ports, CONFIG).failed == 0
        assert _orphans(store) == []
        erasures = bootstrap.open_erasures(store)
        deleted = erasures._delete  # type: ignore[attr-defined]
        made: list[int] = []

        def dying(name: str, where: Any) -> None:  # dies after `deletes` single deletes
            for one in where:
                if len(made) == deletes:
                    raise Crash(name)
                deleted(name, [one])
                made.append(1)

        erasures._delete = dying  # type: ignore[attr-defined]
        with pytest.raises(Crash):
            erase_customer(store, erasures, bootstrap.open_audiences(store), Audiences([], []), export.ADA, NOW)
        erasures._delete = deleted  # type: ignore[attr-defined]
        erase_customer(store, erasures, bootstrap.open_audiences(store), Audiences([], []), export.ADA, NOW)
        assert store.get_customer(export.ADA) is None
        assert _orphans(store) == []
    finally:
        store.close()
