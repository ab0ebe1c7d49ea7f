"""A file's outcome depends on the file and on the mapping that read it: a file done, failed
or skipped under another mapping of its entity is due again; other config changes read nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.adapters.local_files import LocalFileSource
from shared.adapters.memory import MemoryLedger, MemoryStore
from shared.bootstrap import load_config
from shared.core.config import Config, mapping_fingerprint, parse_config
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import Ports, ingest_file
from shared.core.model import DONE, FAILED, SKIPPED
from tests.e2e import export

CONFIG = load_config(None)


def _config(change) -> Config:  # type: ignore[no-untyped-def]
    raw: dict[str, Any] = orjson.loads(orjson.dumps(CONFIG.model_dump()))
    change(raw)
    return parse_config(orjson.dumps(raw))


def _wrong_key(c: dict[str, Any]) -> None:
    c["activities"][0]["primaryKey"] = ["Signal.Export.ID"]


def _other_entity(c: dict[str, Any]) -> None:
    c["activities"].append({**c["activities"][0], "name": "Other", "entity": "Elsewhere"})


@pytest.fixture
def ports(tmp_path: Path) -> Ports:
    root = export.write_cdm_export(tmp_path / "export")
    return Ports(LocalFileSource(root), MemoryStore(), MemoryLedger())


def test_the_fingerprint_covers_only_what_reads_the_entity() -> None:
    same = mapping_fingerprint(CONFIG, "EmailPromotion")
    assert mapping_fingerprint(_config(_other_entity), "EmailPromotion") == same
    assert mapping_fingerprint(_config(_wrong_key), "EmailPromotion") != same
    assert mapping_fingerprint(_config(_wrong_key), "RetailCustomers") == mapping_fingerprint(
        CONFIG, "RetailCustomers"
    )
    assert mapping_fingerprint(CONFIG, "Unmapped") == mapping_fingerprint(
        _config(_wrong_key), "Unmapped"
    )


def test_the_fingerprint_ignores_the_order_of_activities_and_keys() -> None:
    def reordered(c: dict[str, Any]) -> None:
        c["activities"].insert(0, {**c["activities"][0], "name": "Second"})
        c["activities"][1] = dict(reversed(list(c["activities"][1].items())))

    def appended(c: dict[str, Any]) -> None:
        c["activities"].append({**c["activities"][0], "name": "Second"})

    assert mapping_fingerprint(_config(reordered), "EmailPromotion") == mapping_fingerprint(
        _config(appended), "EmailPromotion"
    )


def test_a_file_failed_under_a_wrong_mapping_is_read_again_once_it_is_fixed(ports: Ports) -> None:
    failed = ingest_file(ports, _config(_wrong_key), export.FIRST_FILE)
    assert failed.status == FAILED and "Signal.Export.ID" in (failed.error or "")
    fixed = ingest_file(ports, CONFIG, export.FIRST_FILE)
    assert (fixed.status, fixed.counts.activities) == (DONE, 5)
    entry = ports.ledger.get(export.FIRST_FILE, fixed.etag)
    assert entry.mapping == mapping_fingerprint(CONFIG, "EmailPromotion")


def test_the_reconciler_reads_again_what_another_mapping_read(ports: Ports) -> None:
    first = reconcile(ports, _config(_wrong_key))
    assert first.failed == 3
    second = reconcile(ports, CONFIG)
    assert (second.processed, second.done, second.failed) == (3, 3, 0)
    # A file done under one mapping is due again under another, too.
    assert reconcile(ports, _config(_wrong_key)).failed == 3


def test_a_change_elsewhere_in_the_config_reads_nothing_again(ports: Ports) -> None:
    assert reconcile(ports, CONFIG).done == 4
    assert reconcile(ports, _config(_other_entity)).processed == 0
    again = ingest_file(ports, _config(_other_entity), export.FIRST_FILE)
    assert again.status == SKIPPED
    assert ports.ledger.get(export.FIRST_FILE, again.etag).attempts == 1


def test_a_file_skipped_as_unmapped_is_due_again_only_when_its_entity_gets_a_mapping(
    ports: Ports,
) -> None:
    customers_only = parse_config(orjson.dumps({"customerSources": CONFIG.model_dump()["customerSources"]}))
    first = reconcile(ports, customers_only)
    assert (first.done, first.skipped) == (1, 6)  # three data files, three CDM documents

    def other_attributes(c: dict[str, Any]) -> None:
        c["customerSources"][0]["attributes"] = ["FullName"]

    changed = reconcile(ports, parse_config(orjson.dumps({
        "customerSources": _config(other_attributes).model_dump()["customerSources"]
    })))  # fmt: skip
    assert (changed.processed, changed.done) == (1, 1)  # the customers file only
    mapped = reconcile(ports, CONFIG)
    assert (mapped.processed, mapped.done) == (4, 4)


def test_a_missing_timestamp_column_fails_the_file_and_the_fix_reads_it(ports: Ports) -> None:
    def misnamed(c: dict[str, Any]) -> None:
        c["activities"][0]["timestamp"] = "Signal.Timestampp"

    failed = ingest_file(ports, _config(misnamed), export.FIRST_FILE)
    assert failed.status == FAILED and "Signal.Timestampp" in (failed.error or "")
    assert failed.counts.rejected == 0 and ports.store.list_rejects(None) == []
    fixed = ingest_file(ports, CONFIG, export.FIRST_FILE)
    assert (fixed.status, fixed.counts.activities) == (DONE, 5)
