"""CDM manifests, model.json and partition patterns, against real CDM folders and made-up ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.local_files import LocalFileSource
from shared.core.cdm.catalog import (
    Attribute,
    Catalog,
    FileSchema,
    inspect,
    is_manifest_name,
    is_metadata,
    load_manifest,
    match_file,
    resolve_partitions,
)
from shared.core.errors import NotFound, PermanentError
from shared.core.reading.records import CsvFormat

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cdm"
PATTERN_FIXTURES = ("manifest-partition-globs", "manifest-incremental-patterns")
CSV_TRAIT = "is.partition.format.CSV"
INCREMENTAL = {
    "traitReference": "is.partition.incremental",
    "arguments": [{"name": "type", "value": "Upsert"}],
}


def expected_partitions() -> list[tuple[str, str, dict[str, list[str]]]]:
    cases = []
    for fixture in PATTERN_FIXTURES:
        expected = json.loads((FIXTURES / fixture / "expected-partitions.json").read_text())
        cases += [(fixture, entity, lists) for entity, lists in expected.items()]
    return cases


def write(root: Path, path: str, content: Any = "") -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    target.write_text(text, encoding="utf-8")
    return target


def csv_trait(**arguments: Any) -> dict:
    return {
        "traitReference": CSV_TRAIT,
        "arguments": [{"name": k, "value": v} for k, v in arguments.items()],
    }


def manifest(*entities: dict, subs: tuple[str, ...] = ()) -> dict:
    return {
        "manifestName": "test",
        "entities": list(entities),
        "subManifests": [{"definition": d} for d in subs],
    }


def entity(name: str, **fields: Any) -> dict:
    declared = {"type": "LocalEntity", "entityName": name, "entityPath": f"{name}.cdm.json/{name}"}
    return declared | fields


def by_name(document: dict) -> dict[str, dict]:
    return {e["name"]: e for e in document["entities"]}


def locations(record: dict, incremental: bool) -> list[str]:
    return [p["location"] for p in record["partitions"] if p["incremental"] is incremental]


class CountingSource(LocalFileSource):
    """A local source that counts what is opened, to see what a Catalog re-reads."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: list[str] = []

    def open(self, path: str):  # type: ignore[override]
        self.opened.append(path)
        return super().open(path)


# --- the object model's own test folders ---------------------------------------------------


@pytest.mark.parametrize(("fixture", "name", "expected"), expected_partitions())
def test_partition_patterns_resolve_like_the_cdm_object_model(
    fixture: str, name: str, expected: dict[str, list[str]]
) -> None:
    record = by_name(inspect(LocalFileSource(FIXTURES / fixture)))[name]

    assert locations(record, False) == [p.lstrip("/") for p in expected["partitions"]]
    assert locations(record, True) == [p.lstrip("/") for p in expected["incremental"]]


@pytest.mark.parametrize("fixture", PATTERN_FIXTURES)
def test_inspect_reports_exactly_the_entities_of_the_manifest(fixture: str) -> None:
    expected = json.loads((FIXTURES / fixture / "expected-partitions.json").read_text())

    names = [e["name"] for e in inspect(LocalFileSource(FIXTURES / fixture))["entities"]]

    assert sorted(names) == sorted(expected)


def test_a_missing_entity_document_leaves_the_entity_without_attributes() -> None:
    globs = inspect(LocalFileSource(FIXTURES / "manifest-partition-globs"))
    regexes = inspect(LocalFileSource(FIXTURES / "manifest-incremental-patterns"))

    assert {len(e["attributes"]) for e in globs["entities"]} == {0}
    assert by_name(regexes)["testEntity"]["attributes"] == []
    assert all(e["missingDocument"] for e in globs["entities"])  # and inspect says so


def test_a_power_bi_model_json_loads_entities_attribute_types_and_partitions() -> None:
    source = LocalFileSource(FIXTURES / "model-json-orders-products")

    loaded = load_manifest(source, "model.json")
    report = by_name(inspect(source))

    assert loaded.kind == "model.json"
    assert [e.name for e in loaded.entities] == ["Orders", "Products"]
    orders = loaded.entities[0]
    assert orders.attributes[:3] == (
        Attribute("OrderID", "int64"),
        Attribute("CustomerID", "string"),
        Attribute("EmployeeID", "int64"),
    )
    assert Attribute("Freight", "decimal") in orders.attributes
    assert len(orders.attributes) == 14
    assert len(loaded.entities[1].attributes) == 68
    assert orders.partitions[0].location == "Orders.csv"
    assert orders.partitions[0].csv == CsvFormat(header=False)
    assert report["Products"]["partitions"] == [{"location": "Products.csv", "incremental": False}]
    assert report["Products"]["attributes"][5] == {"name": "price", "dataType": "double"}


def test_a_linked_model_json_keeps_its_reference_entities_without_schema() -> None:
    source = LocalFileSource(FIXTURES / "model-json-orders-products-customers")

    report = by_name(inspect(source))

    assert list(report) == ["Orders", "Products", "Customers"]
    assert report["Orders"]["attributes"] == [] and report["Orders"]["partitions"] == []
    customers = [a["name"] for a in report["Customers"]["attributes"]]
    assert customers[:3] == ["CustomerID", "CompanyName", "ContactName"]
    assert len(customers) == 11


def test_the_clickstream_manifest_follows_its_sub_manifest_and_resolves_attribute_groups() -> None:
    source = LocalFileSource(FIXTURES / "manifest-clickstream-schemas")

    report = by_name(inspect(source))

    assert {"ReverseIp", "Session", "UserAgent", "AggSession", "AggPurchase"} <= set(report)
    assert len(report) == 11
    session = [(a["name"], a["dataType"]) for a in report["Session"]["attributes"]]
    assert session[:6] == [
        ("dateId", "integer"),
        ("serverUtcDate", "dateTime"),
        ("clientUtcDate", "dateTime"),
        ("environmentId", "string"),
        ("userId", "string"),
        ("anonymousUserId", "string"),
    ]
    assert ("totalEventCount", "integer") in session
    assert ("sessionRevenue", "double") in session
    agg = [a["name"] for a in report["AggSession"]["attributes"]]
    assert agg[:5] == ["dateId", "clientUtcDate", "environmentId", "isSignedIn", "isCookieConsent"]
    assert agg[-2:] == ["sessionCount", "sessionRevenue"]


def test_a_sub_manifest_loaded_on_its_own_still_finds_the_imports_of_its_documents() -> None:
    source = LocalFileSource(FIXTURES / "manifest-clickstream-schemas")

    loaded = load_manifest(source, "aggregations/aggregations.manifest.cdm.json")

    purchase = next(e for e in loaded.entities if e.name == "AggPurchase")
    assert [a.name for a in purchase.attributes][-3:] == ["actionCount", "orderCount", "revenue"]


def test_an_entity_inherits_a_local_base_and_ignores_unknown_imports(tmp_path: Path) -> None:
    base = {"definitions": [{"entityName": "Base", "hasAttributes": [{"name": "Id"}]}]}
    child = {
        "imports": [
            {"corpusPath": "cdm:/foundations.cdm.json"},
            {"corpusPath": "/missing.cdm.json"},
            {"uri": "shared/Base.cdm.json"},
        ],
        "definitions": [
            {
                "entityName": "Child",
                "extendsEntity": "Base",
                "hasAttributes": [{"name": "Url", "dataType": {"dataTypeReference": "url"}}],
            }
        ],
    }
    write(tmp_path, "m.manifest.cdm.json", manifest(entity("Child")))
    write(tmp_path, "Child.cdm.json", child)
    write(tmp_path, "shared/Base.cdm.json", base)

    loaded = load_manifest(LocalFileSource(tmp_path), "m.manifest.cdm.json")

    assert loaded.entities[0].attributes == (Attribute("Id", None), Attribute("Url", "url"))


# --- a made-up export: manifests, traits, model.json, folders ------------------------------


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """web/: a manifest with a headerless ';' pattern; pbi/: a model.json; plain/: no manifest."""
    web_event = {
        "definitions": [
            {
                "entityName": "WebEvent",
                "hasAttributes": [
                    {"name": "Signal.Export.Id", "dataFormat": "Guid"},
                    {
                        "attributeGroupReference": {
                            "attributeGroupName": "when",
                            "members": [{"name": "Signal.Timestamp", "dataType": "dateTime"}],
                        }
                    },
                    {"attributeGroupReference": "user"},
                ],
            },
            {"attributeGroupName": "user", "members": [{"name": "Signal.User.Id"}]},
        ]
    }
    events = entity(
        "WebEvent",
        dataPartitions=[{"location": "extra/one.csv", "exhibitsTraits": [csv_trait()]}],
        dataPartitionPatterns=[
            {
                "rootLocation": "events",
                "globPattern": "/**/*.csv",
                "exhibitsTraits": [csv_trait(columnHeaders="false", delimiter=";", skipLines=1)],
            }
        ],
    )
    write(tmp_path, "web/web.manifest.cdm.json", manifest(events))
    write(tmp_path, "web/WebEvent.cdm.json", web_event)
    write(tmp_path, "web/events/2021/09/28/part-0001.csv")
    write(tmp_path, "web/extra/one.csv")
    write(tmp_path, "pbi/model.json", model_json())
    write(tmp_path, "pbi/Visits/part one.csv")
    write(tmp_path, "plain/EmailPromotion/2021/09/28/14/part-0001.csv")
    return tmp_path


def model_json() -> dict:
    base = "https://acct.dfs.core.windows.net/container/exports/pbi"
    return {
        "name": "pbi",
        "version": "1.0",
        "entities": [
            {
                "$type": "LocalEntity",
                "name": "Visits",
                "attributes": [{"name": "VisitId", "dataType": "string"}, {"name": "When"}],
                "partitions": [
                    {"name": "p1", "location": f"{base}/Visits/part%20one.csv?snapshot=1"},
                    {
                        "name": "p2",
                        "location": f"{base}/Visits/two.csv",
                        "fileFormatSettings": {
                            "$type": "CsvFormatSettings",
                            "columnHeaders": True,
                            "delimiter": "|",
                            "quoteStyle": "QuoteStyle.Csv",
                        },
                    },
                    {"name": "p3", "location": "https://acct.dfs.core.windows.net/other/x/y.csv"},
                ],
            }
        ],
    }


def test_a_pattern_with_a_headerless_semicolon_csv_trait_describes_the_file(export: Path) -> None:
    schema = Catalog(LocalFileSource(export)).describe("web/events/2021/09/28/part-0001.csv")

    assert schema == FileSchema(
        entity="WebEvent",
        columns=("Signal.Export.Id", "Signal.Timestamp", "Signal.User.Id"),
        csv=CsvFormat(header=False, delimiter=";", skip_lines=1),
        manifest="web/web.manifest.cdm.json",
    )


def test_an_explicit_partition_is_matched_before_patterns(export: Path) -> None:
    loaded = load_manifest(LocalFileSource(export), "web/web.manifest.cdm.json")

    found = match_file(loaded, "web/extra/one.csv")

    assert found is not None
    assert found[0].name == "WebEvent" and found[1] == CsvFormat()
    assert match_file(loaded, "web/elsewhere/one.csv") is None


def test_a_model_json_file_is_matched_by_the_decoded_url_path(export: Path) -> None:
    catalog = Catalog(LocalFileSource(export))
    write(export, "pbi/Visits/two.csv")

    one = catalog.describe("pbi/Visits/part one.csv")
    two = catalog.describe("pbi/Visits/two.csv")

    assert one == FileSchema(
        "Visits", ("VisitId", "When"), CsvFormat(header=False), "pbi/model.json"
    )
    assert two.csv == CsvFormat(header=True, delimiter="|")


def test_a_model_json_partition_in_another_folder_never_matches(export: Path) -> None:
    write(export, "pbi/x/y.csv")

    with pytest.raises(PermanentError, match=r"no entity in pbi/model\.json matches pbi/x/y\.csv"):
        Catalog(LocalFileSource(export)).describe("pbi/x/y.csv")


def test_model_json_partitions_are_located_at_the_files_their_urls_name(export: Path) -> None:
    source = LocalFileSource(export)

    resolved = resolve_partitions(source, load_manifest(source, "pbi/model.json"))
    report = by_name(inspect(source, "pbi"))

    assert "pbi/Visits/part one.csv" in [p.location for p in resolved["Visits"]]
    assert "Visits/part one.csv" in locations(report["Visits"], False)


@pytest.mark.parametrize(
    ("root", "path", "expected"),
    [
        ("plain", "plain/EmailPromotion/2021/09/28/14/part-0001.csv", "EmailPromotion"),
        ("plain/EmailPromotion", "plain/EmailPromotion/2021/09/part-0001.csv", "EmailPromotion"),
        ("", "Clicks/year=2021/month=09/data.jsonl", "Clicks"),
        ("", "exports/Clicks/2021/09/data.json.gz", "Clicks"),
        ("plain", "plain/PageViews_part0001.csv.gz", "PageViews"),
        ("", "Purchases-0007.json", "Purchases"),
    ],
)
def test_without_a_manifest_the_entity_comes_from_the_folder_or_file_name(
    tmp_path: Path, root: str, path: str, expected: str
) -> None:
    write(tmp_path, path)

    schema = Catalog(LocalFileSource(tmp_path), root=root).describe(path)

    assert schema == FileSchema(expected, None, None, None)


def test_the_nearest_manifest_wins_and_a_farther_one_catches_what_it_does_not_list(
    tmp_path: Path,
) -> None:
    outer = entity("Outer", dataPartitionPatterns=[{"rootLocation": "sales", "globPattern": "**"}])
    inner = entity("Inner", dataPartitions=[{"location": "a.csv"}])
    write(tmp_path, "top.manifest.cdm.json", manifest(outer))
    write(tmp_path, "sales/inner/default.cdm.json", manifest(inner))
    catalog = Catalog(LocalFileSource(tmp_path))

    assert catalog.describe("sales/inner/a.csv").entity == "Inner"
    assert catalog.describe("sales/inner/b.csv").entity == "Outer"
    assert catalog.describe("sales/inner/b.csv").manifest == "top.manifest.cdm.json"


def test_a_named_manifest_is_preferred_to_model_json_in_the_same_folder(tmp_path: Path) -> None:
    named = entity("FromManifest", dataPartitions=[{"location": "Visits/a.csv"}])
    write(tmp_path, "cdm/x.manifest.cdm.json", manifest(named))
    write(tmp_path, "cdm/model.json", model_json() | {"entities": [visits_entity("Visits/a.csv")]})

    schema = Catalog(LocalFileSource(tmp_path)).describe("cdm/Visits/a.csv")

    assert (schema.entity, schema.manifest) == ("FromManifest", "cdm/x.manifest.cdm.json")


def visits_entity(path: str) -> dict:
    url = f"https://acct.blob.core.windows.net/c/cdm/{path}"
    return {"$type": "LocalEntity", "name": "FromModel", "partitions": [{"location": url}]}


def test_a_file_that_no_entity_lists_is_a_permanent_error(export: Path) -> None:
    with pytest.raises(PermanentError, match=r"^no entity in web/web\.manifest\.cdm\.json matches"):
        Catalog(LocalFileSource(export)).describe("web/unlisted/file.csv")


def test_a_catalog_reads_an_unchanged_manifest_once_cached_or_not(export: Path) -> None:
    cached, fresh = CountingSource(export), CountingSource(export)
    path = "web/events/2021/09/28/part-0001.csv"

    catalog = Catalog(cached, cache=True)
    uncached = Catalog(fresh, cache=False)
    for _ in range(3):
        catalog.describe(path)
        uncached.describe(path)

    assert cached.opened.count("web/web.manifest.cdm.json") == 1
    # Uncached, it lists the folder each time, and reads the manifest again only at a new ETag.
    assert fresh.opened.count("web/web.manifest.cdm.json") == 1


def test_an_uncached_catalog_sees_a_rewritten_manifest(export: Path) -> None:
    catalog = Catalog(LocalFileSource(export), cache=False)
    path = "web/extra/one.csv"
    assert catalog.describe(path).entity == "WebEvent"

    renamed = entity("Renamed", dataPartitions=[{"location": "extra/one.csv"}])
    write(export, "web/web.manifest.cdm.json", manifest(renamed))

    assert catalog.describe(path).entity == "Renamed"


# --- resolution details the object model fixes ---------------------------------------------


def test_partitions_filed_in_the_wrong_list_are_dropped_like_the_object_model(
    tmp_path: Path,
) -> None:
    declared = entity(
        "E",
        dataPartitions=[
            {"location": "a.csv", "exhibitsTraits": [INCREMENTAL]},
            {"location": "b.csv"},
        ],
        incrementalPartitions=[{"location": "c.csv", "exhibitsTraits": [INCREMENTAL]}],
        incrementalPartitionPatterns=[{"rootLocation": "d", "globPattern": "*.csv"}],
    )
    write(tmp_path, "m.manifest.cdm.json", manifest(declared))
    write(tmp_path, "d/e.csv")

    record = by_name(inspect(LocalFileSource(tmp_path)))["E"]

    assert locations(record, False) == ["b.csv"]
    assert locations(record, True) == ["c.csv"]


def test_explicit_and_pattern_partitions_are_listed_once_and_sorted(tmp_path: Path) -> None:
    declared = entity(
        "E",
        dataPartitions=[{"location": "data/b.csv"}, {"location": "missing.csv"}],
        dataPartitionPatterns=[
            {"rootLocation": "data/", "globPattern": "*.csv"},
            {"rootLocation": "/data", "regularExpression": "/.*"},
        ],
        incrementalPartitionPatterns=[
            {"rootLocation": "data", "globPattern": "**", "exhibitsTraits": [INCREMENTAL]}
        ],
    )
    write(tmp_path, "m.manifest.cdm.json", manifest(declared))
    for name in ("data/b.csv", "data/a.csv", "data/sub/c.csv"):
        write(tmp_path, name)

    record = by_name(inspect(LocalFileSource(tmp_path)))["E"]

    assert locations(record, False) == ["data/a.csv", "data/b.csv", "data/sub/c.csv", "missing.csv"]
    assert locations(record, True) == ["data/a.csv", "data/b.csv", "data/sub/c.csv"]


def test_a_glob_keeps_regex_characters_other_than_the_dot_like_the_object_model(
    tmp_path: Path,
) -> None:
    declared = entity("E", dataPartitionPatterns=[{"rootLocation": "d", "globPattern": "x(1).csv"}])
    write(tmp_path, "m.manifest.cdm.json", manifest(declared))
    write(tmp_path, "d/x(1).csv")
    write(tmp_path, "d/x1.csv")

    assert locations(by_name(inspect(LocalFileSource(tmp_path)))["E"], False) == ["d/x1.csv"]


def test_a_pattern_rooted_at_slash_selects_no_file_like_the_object_model(tmp_path: Path) -> None:
    declared = entity("E", dataPartitionPatterns=[{"rootLocation": "/", "globPattern": "**"}])
    write(tmp_path, "m.manifest.cdm.json", manifest(declared))
    write(tmp_path, "d/x.csv")

    assert by_name(inspect(LocalFileSource(tmp_path)))["E"]["partitions"] == []


def test_sub_manifest_entities_are_listed_once_when_both_manifests_are_at_the_top(
    tmp_path: Path,
) -> None:
    write(tmp_path, "a.manifest.cdm.json", manifest(entity("A"), subs=("b.manifest.cdm.json",)))
    write(tmp_path, "b.manifest.cdm.json", manifest(entity("B")))
    write(tmp_path, "deeper/c.manifest.cdm.json", manifest(entity("C")))

    names = [e["name"] for e in inspect(LocalFileSource(tmp_path))["entities"]]

    assert names == ["A", "B"]


def test_inspect_gives_locations_relative_to_the_inspected_folder(export: Path) -> None:
    report = by_name(inspect(LocalFileSource(export), "web"))

    assert locations(report["WebEvent"], False) == [
        "events/2021/09/28/part-0001.csv",
        "extra/one.csv",
    ]


def test_inspect_of_a_folder_without_manifest_is_a_permanent_error(export: Path) -> None:
    with pytest.raises(PermanentError, match=r"^no CDM manifest or model\.json in plain$"):
        inspect(LocalFileSource(export), "plain")


def test_loading_a_manifest_that_does_not_exist_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_manifest(LocalFileSource(tmp_path), "nothing.manifest.cdm.json")


@pytest.mark.parametrize(
    ("name", "manifest_name", "metadata"),
    [
        ("a/b/web.manifest.cdm.json", True, True),
        ("default.cdm.json", True, True),
        ("x/model.json", True, True),
        ("x/WebEvent.cdm.json", False, True),
        ("_allImports.cdm.json", False, True),
        ("x/events.json", False, False),
        ("x/part-0001.csv", False, False),
    ],
)
def test_manifest_and_metadata_names_are_recognised(
    name: str, manifest_name: bool, metadata: bool
) -> None:
    assert (is_manifest_name(name), is_metadata(name)) == (manifest_name, metadata)


# --- bad manifests are permanent errors naming the file ------------------------------------


@pytest.mark.parametrize(
    "subs",
    [
        {
            "a.manifest.cdm.json": ("b/b.manifest.cdm.json",),
            "b/b.manifest.cdm.json": ("../a.manifest.cdm.json",),
        },
        {"a.manifest.cdm.json": ("a.manifest.cdm.json",)},
    ],
)
def test_cyclic_sub_manifests_are_a_permanent_error(
    tmp_path: Path, subs: dict[str, tuple[str, ...]]
) -> None:
    for path, definitions in subs.items():
        write(tmp_path, path, manifest(subs=definitions))

    with pytest.raises(PermanentError, match=r"^a\.manifest\.cdm\.json: subManifests form a cycle"):
        load_manifest(LocalFileSource(tmp_path), "a.manifest.cdm.json")


def test_sub_manifests_nested_too_deep_are_a_permanent_error(tmp_path: Path) -> None:
    for level in range(40):
        write(
            tmp_path,
            f"m{level}.manifest.cdm.json",
            manifest(subs=(f"m{level + 1}.manifest.cdm.json",)),
        )
    write(tmp_path, "m40.manifest.cdm.json", manifest(entity("Deep")))

    with pytest.raises(PermanentError, match="nested deeper than 32"):
        load_manifest(LocalFileSource(tmp_path), "m0.manifest.cdm.json")


@pytest.mark.parametrize(
    ("content", "problem"),
    [('{"entities": [', "broken JSON"), ("[1, 2]", "not a JSON object")],
)
def test_a_manifest_that_is_not_a_json_object_is_a_permanent_error(
    tmp_path: Path, content: str, problem: str
) -> None:
    write(tmp_path, "web/web.manifest.cdm.json", content)
    write(tmp_path, "web/data.csv")

    with pytest.raises(PermanentError, match=rf"^web/web\.manifest\.cdm\.json: {problem}"):
        Catalog(LocalFileSource(tmp_path)).describe("web/data.csv")


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        (
            entity("E", dataPartitions=[{"location": "../../outside.csv"}]),
            "escapes the source root",
        ),
        (entity("E", dataPartitions=[{"location": "adls:/other/x.csv"}]), "points outside"),
        (
            entity(
                "E", dataPartitionPatterns=[{"rootLocation": "https://x/c", "globPattern": "*"}]
            ),
            "points outside",
        ),
        ({"entityName": "E", "entityPath": "abfss:/c/E.cdm.json/E"}, "points outside"),
        ({"entityName": "E", "entityPath": "/../../E.cdm.json/E"}, "escapes the source root"),
    ],
)
def test_locations_that_leave_the_export_are_a_permanent_error(
    tmp_path: Path, declared: dict, problem: str
) -> None:
    write(tmp_path, "cdm/m.manifest.cdm.json", manifest(declared))

    with pytest.raises(PermanentError, match=problem) as raised:
        load_manifest(LocalFileSource(tmp_path), "cdm/m.manifest.cdm.json")
    assert str(raised.value).startswith("cdm/m.manifest.cdm.json: ")


def test_a_sub_manifest_on_another_storage_account_is_a_permanent_error(tmp_path: Path) -> None:
    remote = "https://other.dfs.core.windows.net/c/x.manifest.cdm.json"
    write(tmp_path, "m.manifest.cdm.json", manifest(subs=(remote,)))

    with pytest.raises(PermanentError, match=r"subManifest definition .* points outside"):
        load_manifest(LocalFileSource(tmp_path), "m.manifest.cdm.json")


@pytest.mark.parametrize("expression", ["/(a+)+$", "/(.*)*x", r"/((\d+)-?)*\.csv", "/(a|a)*x"])
def test_regular_expressions_that_may_take_exponential_time_are_refused(
    tmp_path: Path, expression: str
) -> None:
    declared = entity(
        "E", dataPartitionPatterns=[{"rootLocation": "d", "regularExpression": expression}]
    )
    write(tmp_path, "m.manifest.cdm.json", manifest(declared))

    with pytest.raises(PermanentError, match="may take exponential time"):
        load_manifest(LocalFileSource(tmp_path), "m.manifest.cdm.json")


def test_a_regular_expression_that_does_not_compile_is_a_permanent_error(tmp_path: Path) -> None:
    declared = entity(
        "E", dataPartitionPatterns=[{"rootLocation": "d", "regularExpression": "([a-"}]
    )
    write(tmp_path, "m.manifest.cdm.json", manifest(declared))

    with pytest.raises(
        PermanentError, match=r"^m\.manifest\.cdm\.json: regularExpression .* does not compile"
    ):
        load_manifest(LocalFileSource(tmp_path), "m.manifest.cdm.json")


def test_a_pattern_without_root_location_is_a_permanent_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        "m.manifest.cdm.json",
        manifest(entity("E", dataPartitionPatterns=[{"globPattern": "*"}])),
    )

    with pytest.raises(PermanentError, match="has no rootLocation"):
        load_manifest(LocalFileSource(tmp_path), "m.manifest.cdm.json")


def test_paths_longer_than_the_bound_are_never_matched_against_a_pattern(tmp_path: Path) -> None:
    declared = entity(
        "E", dataPartitionPatterns=[{"rootLocation": "d", "regularExpression": "/.*"}]
    )
    write(tmp_path, "m.manifest.cdm.json", manifest(declared))
    loaded = load_manifest(LocalFileSource(tmp_path), "m.manifest.cdm.json")

    assert match_file(loaded, "d/" + "a/" * 500 + "x.csv") is not None
    assert match_file(loaded, "d/" + "a/" * 520 + "x.csv") is None


def test_an_invalid_column_headers_value_is_a_permanent_error(tmp_path: Path) -> None:
    trait = csv_trait(columnHeaders="sometimes")
    declared = entity("E", dataPartitions=[{"location": "a.csv", "exhibitsTraits": [trait]}])
    write(tmp_path, "m.manifest.cdm.json", manifest(declared))

    with pytest.raises(PermanentError, match="columnHeaders 'sometimes'"):
        load_manifest(LocalFileSource(tmp_path), "m.manifest.cdm.json")


def test_every_csv_trait_argument_is_read(tmp_path: Path) -> None:
    trait = csv_trait(
        columnHeaders=True, delimiter="\t", quote="'", escape="\\", encoding="utf-16", skipLines="2"
    )
    declared = entity("E", dataPartitions=[{"location": "a.csv", "exhibitsTraits": [trait]}])
    write(tmp_path, "m.manifest.cdm.json", manifest(declared))

    loaded = load_manifest(LocalFileSource(tmp_path), "m.manifest.cdm.json")

    assert loaded.entities[0].partitions[0].csv == CsvFormat(
        header=True, delimiter="\t", quote="'", escape="\\", encoding="utf-16", skip_lines=2
    )
