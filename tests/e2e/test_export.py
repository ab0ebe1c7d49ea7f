"""`footprint export`: a CDM folder the official object model resolves, that `cdm inspect`
agrees with, whose UnifiedActivity ingests back into the same activities, and whose
CustomerMeasure and SegmentMembership hold the store's current measures and memberships."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e import export
from tests.e2e.test_cli_audiences import AUDIENCES, DEFAULTS
from tests.e2e.test_cli_ingest import activities, footprint, ingest

cdm = pytest.importorskip("cdm.objectmodel", reason="commondatamodel-objectmodel (requirements-dev.txt)")


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    store = tmp_path / "store.db"
    ingest(store, export.write_cdm_export(tmp_path / "export"), ok=False)
    footprint("export", str(tmp_path / "out"), "--partition-rows", "3", store=store)
    return store, tmp_path / "out"


def _object_model_view(root: Path) -> tuple[dict[str, Any], list[str]]:
    """What the official CDM object model resolves: per entity, its attributes with their
    formats and its partition locations; and every error it reported."""
    from cdm.enums import CdmStatusLevel
    from cdm.objectmodel import CdmCorpusDefinition
    from cdm.storage import CdmStandardsAdapter, LocalAdapter

    errors: list[str] = []
    corpus = CdmCorpusDefinition()
    corpus.set_event_callback(lambda level, message: errors.append(message), CdmStatusLevel.WARNING)
    corpus.storage.mount("local", LocalAdapter(str(root)))
    corpus.storage.mount("cdm", CdmStandardsAdapter())
    corpus.storage.default_namespace = "local"

    async def load() -> dict[str, Any]:
        manifest = await corpus.fetch_object_async("local:/footprint.manifest.cdm.json")
        assert manifest is not None, errors
        view = {}
        for declared in manifest.entities:
            entity = await corpus.fetch_object_async(declared.entity_path, manifest)
            resolved = await entity.create_resolved_entity_async(f"{entity.entity_name}Resolved")
            view[declared.entity_name] = {
                "attributes": [(a.name, str(a.data_format.value)) for a in resolved.attributes],
                "partitions": [p.location for p in declared.data_partitions],
            }
        return view

    return asyncio.run(load()), errors


def test_the_official_object_model_resolves_every_entity_attribute_and_partition(
    exported: tuple[Path, Path],
) -> None:
    store, root = exported
    view, errors = _object_model_view(root)
    assert errors == []
    assert sorted(view) == ["Customer", "CustomerMeasure", "SegmentMembership", "UnifiedActivity"]
    rows = {e: sum(len(_rows(root / p)) for p in v["partitions"]) for e, v in view.items()}
    acts = activities(store)
    assert rows["UnifiedActivity"] == len(acts) > 3  # more than one partition's worth
    assert len(view["UnifiedActivity"]["partitions"]) == -(-len(acts) // 3)
    assert all(len(_rows(root / p)) <= 3 for p in view["UnifiedActivity"]["partitions"])
    formats = dict(view["UnifiedActivity"]["attributes"])
    assert formats["ActivityTime"] == "DateTime" and formats["SourceRow"] == "Int32"
    assert formats["ShowInTimeline"] == "Boolean" and formats["ActivityId"] == "String"
    assert [a for a, _ in view["Customer"]["attributes"]] == ["CustomerId", "Attributes", "AlternateKeys", "UpdatedAt"]


def test_cdm_inspect_agrees_with_the_object_model(exported: tuple[Path, Path]) -> None:
    _assert_inspect_agrees(exported[1])


def test_an_export_read_by_forked_children_side_by_side_is_the_same_folder(
    exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQLite store's activities in parts, each read by a child of its own (as a large
    export is, one per core): the object model resolves every partition, and they hold the
    same rows, in the same order, as the one-reader export of the same store."""
    from shared import bootstrap
    from shared.adapters.local_files import LocalExportTarget
    from shared.core.export import folder
    from shared.core.export.profiles import AudienceExport, export_profiles
    from shared.settings import Settings

    monkeypatch.setattr(folder, "PROCESSES", 3)
    monkeypatch.setattr(folder, "PARALLEL_MIN_ROWS", 1)
    store, one_reader = exported
    profiles, _ = bootstrap.open_store(f"sqlite:///{store}", Settings.from_env({}))
    try:
        apart = tmp_path / "apart"
        export_profiles(profiles, AudienceExport(bootstrap.open_audiences(profiles), {}), LocalExportTarget(apart), 3)
    finally:
        profiles.close()
    view, errors = _object_model_view(apart)
    assert errors == []
    parts = view["UnifiedActivity"]["partitions"]
    assert len(parts) >= 3 and all(len(_rows(apart / p)) <= 3 for p in parts)
    expected = [r for p in _object_model_view(one_reader)[0]["UnifiedActivity"]["partitions"] for r in _rows(one_reader / p)]
    assert [r for p in parts for r in _rows(apart / p)] == expected
    _assert_inspect_agrees(apart)


def _assert_inspect_agrees(root: Path) -> None:
    view, _ = _object_model_view(root)
    ours = orjson.loads(footprint("cdm", "inspect", str(root), "--json").stdout)
    assert {e["name"]: [p["location"] for p in e["partitions"]] for e in ours["entities"]} == {
        name: v["partitions"] for name, v in view.items()
    }
    assert {e["name"]: [a["name"] for a in e["attributes"]] for e in ours["entities"]} == {
        name: [a for a, _ in v["attributes"]] for name, v in view.items()
    }


ROUND_TRIP = {
    "customerSources": [{"entity": "RetailCustomers", "key": "CustomerRetailId"}],
    "activities": [{
        "name": "Exported", "entity": "UnifiedActivity", "primaryKey": "ActivityId",
        "timestamp": "ActivityTime", "event": "ActivityName", "details": "Title",
        "webAddress": "ExternalUrl", "activityType": "WebLog",
        "relationship": {"name": "Back", "foreignKey": "ActivityForeignKey",
                         "customerEntity": "RetailCustomers", "customerKey": "CustomerRetailId"},
    }],
}
SAME = ("ActivityName", "ActivityTime", "Title", "ExternalUrl", "ActivityForeignKey", "ActivityTypeDisplay")


def test_the_exported_activities_ingest_back_into_the_same_records(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    store, root = exported
    config = tmp_path / "round-trip.json"
    config.write_bytes(orjson.dumps(ROUND_TRIP))
    again = tmp_path / "again.db"
    reports = footprint("ingest", "--json", str(root), "--config", str(config), store=again).stdout
    assert all(orjson.loads(line)["status"] in ("done", "skipped") for line in reports.splitlines())
    back = orjson.loads(footprint("activities", "--json", "--config", str(config), store=again).stdout)
    original = activities(store).values()
    assert sorted(tuple(a[f] for f in SAME) for a in back) == sorted(tuple(a[f] for f in SAME) for a in original)
    assert {a["SourceActivityId"] for a in back} == {a["ActivityId"] for a in original}


def test_a_failed_export_leaves_no_manifest_and_no_half_file(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    ingest(store, export.write_cdm_export(tmp_path / "export"), ok=False)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "Customer").write_text("a file where the export wants a folder")
    done = footprint("export", str(dest), store=store, ok=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (dest / "footprint.manifest.cdm.json").exists()
    assert not list(dest.rglob("*.part"))


def _rows(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()[1:]


def test_with_no_measures_configured_the_audience_entities_are_header_only(exported: tuple[Path, Path]) -> None:
    _, root = exported  # the default config: no measures, no segments
    view, errors = _object_model_view(root)
    assert errors == []
    for name, header in (("CustomerMeasure", "CustomerId,Measure,Kind,NumberValue,TimeValue,TextValue"),
                         ("SegmentMembership", "CustomerId,Segment,EnteredAt")):  # fmt: skip
        assert view[name]["partitions"] == [f"{name}/part-00001.csv"]
        assert (root / name / "part-00001.csv").read_bytes() == (header + "\r\n").encode()


@pytest.fixture
def exported_audiences(tmp_path: Path) -> tuple[Path, Path, Path]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads(DEFAULTS.read_text()), **AUDIENCES}))
    store = tmp_path / "store.db"
    ingest(store, export.write_cdm_export(tmp_path / "export"), ok=False)
    footprint("segments", "refresh", "--config", str(config), store=store)
    footprint("export", str(tmp_path / "out"), "--partition-rows", "3", "--config", str(config), store=store)
    return store, config, tmp_path / "out"


def _records(root: Path, partitions: list[str]) -> list[dict[str, str]]:
    found = []
    for location in partitions:
        with (root / location).open(encoding="utf-8", newline="") as f:
            found += list(csv.DictReader(f))
    return found


def test_measures_and_memberships_are_exported_as_the_store_holds_them(exported_audiences) -> None:  # type: ignore[no-untyped-def]
    store, config, root = exported_audiences
    view, errors = _object_model_view(root)
    assert errors == []
    assert dict(view["CustomerMeasure"]["attributes"]) == {
        "CustomerId": "String", "Measure": "String", "Kind": "String",
        "NumberValue": "Int64", "TimeValue": "DateTime", "TextValue": "String",
    }  # fmt: skip
    assert dict(view["SegmentMembership"]["attributes"]) == {"CustomerId": "String", "Segment": "String", "EnteredAt": "DateTime"}

    def cli(*args: str) -> Any:
        return orjson.loads(footprint(*args, "--json", "--config", str(config), store=store).stdout)

    customers = [r["CustomerId"] for r in _records(root, view["Customer"]["partitions"])]
    measures = _records(root, view["CustomerMeasure"]["partitions"])
    assert len(view["CustomerMeasure"]["partitions"]) == -(-len(measures) // 3) > 1
    exported: dict[str, dict[str, Any]] = {}
    for r in measures:
        value = {"number": int(r["NumberValue"] or 0), "time": r["TimeValue"], "text": r["TextValue"]}[r["Kind"]]
        exported.setdefault(r["CustomerId"], {})[r["Measure"]] = value if any(
            r[c] for c in ("NumberValue", "TimeValue", "TextValue")) else None  # fmt: skip
    assert exported == {c: cli("measures", c)["Measures"] for c in customers}
    assert {r["Kind"] for r in measures} == {"number", "time", "text"}

    members = _records(root, view["SegmentMembership"]["partitions"])
    expected = set()
    for segment in ("Clickers", "InSeattle"):
        entered = {c["CustomerId"]: c["At"] for c in cli("segments", "changes", segment)["changes"]
                   if c["Change"] == "entered"}  # fmt: skip
        for m in cli("segments", "members", segment)["members"]:
            expected.add((m["CustomerId"], segment, entered[m["CustomerId"]]))
    assert {(r["CustomerId"], r["Segment"], r["EnteredAt"]) for r in members} == expected
    assert len(expected) == 3  # click; R-1 is in Seattle
    _assert_inspect_agrees(root)
