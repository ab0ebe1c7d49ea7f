"""Hostile and broken input: each kind a small folder of its own, with the reason Footprint
must record for it and the good rows that must land anyway."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import random

import orjson

from tests.reliability.corpus import COLUMNS, PROMO

FIELD_10MB = 10 * 1024 * 1024
ENTITY = "EmailPromotion"


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    files: dict[str, bytes]  # relative to the kind's own folder
    target: str  # the file ingested, relative to the kind's folder
    status: str  # what the ledger must say: done, failed (permanently) or skipped
    reason: str  # found in the ledger's error or in a reject's reason ("" for none needed)
    good: tuple[str, ...] = ()  # SourceActivityIds that must land
    links: dict[str, str] = dataclasses.field(default_factory=dict)  # symlink -> target


def row(eid: str, time: str = "2021-09-29T10:00:00Z", uri: str = "https://shop.example.com/x",
        user: str = "R-001", title: str = "Offer") -> list[str]:  # fmt: skip
    return [eid, time, "PageAction", PROMO, uri, title, user, user]


def table(rows: list[list[str]], header: list[str] | tuple[str, ...] = COLUMNS,
          delimiter: str = ",") -> bytes:  # fmt: skip
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def goods(prefix: str, n: int = 3) -> list[list[str]]:
    return [row(f"{prefix}-good-{i}") for i in range(n)]


def ids(prefix: str, n: int = 3) -> tuple[str, ...]:
    return tuple(f"{prefix}-good-{i}" for i in range(n))


def jsonl(objects: list[object]) -> bytes:
    return b"".join(orjson.dumps(o) + b"\n" for o in objects)


def good_objects(prefix: str, n: int = 3) -> list[dict[str, str]]:
    return [dict(zip(COLUMNS, r, strict=True)) for r in goods(prefix, n)]


def manifest(entities: list[dict], subs: list[str] = ()) -> bytes:  # type: ignore[assignment]
    doc: dict[str, object] = {"jsonSchemaSemanticVersion": "1.0.0", "manifestName": "m", "entities": entities}
    if subs:
        doc["subManifests"] = [{"manifestName": s, "definition": s} for s in subs]
    return orjson.dumps(doc)


def entity(pattern: dict | None = None, partitions: list | None = None, path: str = "") -> dict:  # type: ignore[type-arg]
    decl: dict[str, object] = {"type": "LocalEntity", "entityName": ENTITY}
    if path:
        decl["entityPath"] = path
    if pattern:
        decl["dataPartitionPatterns"] = [{"rootLocation": ENTITY, **pattern}]
    if partitions:
        decl["dataPartitions"] = partitions
    return decl


def csv_trait(**arguments: str) -> list[dict]:  # type: ignore[type-arg]
    return [{"traitReference": "is.partition.format.CSV",
             "arguments": [{"name": k, "value": v} for k, v in arguments.items()]}]  # fmt: skip


DATA = f"{ENTITY}/2021/part.csv"


def _manifest_kind(name: str, manifest_doc: bytes, reason: str, data: bytes | None = None,
                   extra: dict[str, bytes] | None = None) -> Kind:  # fmt: skip
    files = {"m.manifest.cdm.json": manifest_doc, DATA: data or table(goods(name)), **(extra or {})}
    return Kind(name, files, DATA, "failed", reason)


def kinds() -> list[Kind]:
    rng = random.Random(7)
    big = table(goods("gz", 200))
    truncated = gzip.compress(big, mtime=0)
    found: list[Kind] = [
        Kind("truncated-gzip", {f"{ENTITY}/p.csv.gz": truncated[: len(truncated) * 2 // 3]},
             f"{ENTITY}/p.csv.gz", "failed", "truncated or corrupt gzip", ids("gz", 20)),
        Kind("not-gzip-at-all", {f"{ENTITY}/p.csv.gz": table(goods("ng"))}, f"{ENTITY}/p.csv.gz",
             "failed", "gzip"),
        Kind("binary-junk", {f"{ENTITY}/p.csv": rng.randbytes(64 * 1024)}, f"{ENTITY}/p.csv",
             "failed", "not a text file"),
        Kind("binary-junk-jsonl", {f"{ENTITY}/p.jsonl": rng.randbytes(64 * 1024)}, f"{ENTITY}/p.jsonl",
             "failed", "not a text file"),
        Kind("invalid-utf8", {f"{ENTITY}/p.csv": table(goods("u8"))
             + b"bad-1,2021-09-29T10:00:00Z,PageAction,Email promotion,\xff\xfe\xc3(,t,R-1,R-1\n"},
             f"{ENTITY}/p.csv", "done", "invalid utf-8 bytes", ids("u8")),
        Kind("nul-bytes", {f"{ENTITY}/p.csv": table(goods("nul"))
             + b"nul-1,2021-09-29T10:00:00Z,PageAction,Email promotion,x\x00y,t,R-1,R-1\n"},
             f"{ENTITY}/p.csv", "done", "NUL byte in row", ids("nul")),
        Kind("wrong-delimiter", {f"{ENTITY}/p.csv": table(goods("wd"), delimiter=";")},
             f"{ENTITY}/p.csv", "failed", "wrong delimiter"),
        Kind("ragged-rows", {f"{ENTITY}/p.csv": table(
             [*goods("rg"), ["r1", "2021-09-29T10:00:00Z"], [*row("r2"), "extra", "more"]])},
             f"{ENTITY}/p.csv", "done", "expected 8 fields", ids("rg")),
        Kind("10mb-field-mapped", {f"{ENTITY}/p.csv": table([*goods("big"), row("big-1", uri="https://x/" + "a" * FIELD_10MB)])},
             f"{ENTITY}/p.csv", "done", "longer than", ids("big")),
        Kind("10mb-field-unmapped", {f"{ENTITY}/p.csv": table(
             [[*r, "b" * FIELD_10MB] for r in goods("bu")], [*COLUMNS, "Signal.Device.Junk"])},
             f"{ENTITY}/p.csv", "done", "", ids("bu")),
        Kind("row-over-row-limit", {f"{ENTITY}/p.csv": table([*goods("rl"), row("rl-1", title="t" * (17 << 20))])},
             f"{ENTITY}/p.csv", "done", "row larger than", ids("rl")),
        Kind("duplicate-header-names", {f"{ENTITY}/p.csv": table(
             [[*r, r[0] + "-shadow"] for r in goods("dh")], [*COLUMNS, "Signal.Export.Id"])},
             f"{ENTITY}/p.csv", "done", "", ids("dh")),
        Kind("json-lines-not-objects", {f"{ENTITY}/p.jsonl": jsonl([*good_objects("jo"), [1, 2], 3, "s", None, True])},
             f"{ENTITY}/p.jsonl", "done", "not a JSON object", ids("jo")),
        Kind("nul-in-json-value", {f"{ENTITY}/p.jsonl": jsonl([*good_objects("jn"), {**good_objects("jn-x", 1)[0], "Signal.View.Title": "x\x00y"}])},
             f"{ENTITY}/p.jsonl", "done", "NUL character in a value", ids("jn")),
        Kind("invalid-json-lines", {f"{ENTITY}/p.jsonl": jsonl(good_objects("ij")) + b'{"a": \n{]\n'},
             f"{ENTITY}/p.jsonl", "done", "invalid JSON", ids("ij")),
        Kind("deeply-nested-json", {f"{ENTITY}/p.jsonl": jsonl(good_objects("dn"))
             + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n"},
             f"{ENTITY}/p.jsonl", "done", "invalid JSON", ids("dn")),
        Kind("nested-json-within-limit", {f"{ENTITY}/p.jsonl": jsonl(good_objects("nj"))
             + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"\n"},
             f"{ENTITY}/p.jsonl", "done", "", ids("nj")),
        Kind("zero-byte-file", {f"{ENTITY}/p.csv": b""}, f"{ENTITY}/p.csv", "done", ""),
        Kind("header-only", {f"{ENTITY}/p.csv": table([])}, f"{ENTITY}/p.csv", "done", ""),
        Kind("unknown-entity", {"Mystery/p.csv": table(goods("ue"))}, "Mystery/p.csv", "skipped",
             "feeds no configured activity"),
        Kind("too-many-columns", {f"{ENTITY}/p.csv": table([], [f"c{i}" for i in range(5000)])},
             f"{ENTITY}/p.csv", "failed", "more than 4096"),
        Kind("timestamps-out-of-range", {f"{ENTITY}/p.csv": table([*goods("ts"), row("ts-1", "9999-12-31T23:59:59-05:00"), row("ts-2", "0000-01-01T00:00:00Z"), row("ts-3", "2021-02-30T00:00:00Z"), row("ts-4", "1e308"), row("ts-5", "2021-09-29T25:00:00Z"), row("ts-6", "-2021-09-29"), row("ts-7", "2" * 70)])},
             f"{ENTITY}/p.csv", "done", "unparseable timestamp", ids("ts")),
        Kind("ids-of-absurd-length", {f"{ENTITY}/p.csv": table([*goods("al"), row("x" * 100000), row("al-fk", user="u" * 100000)])}, f"{ENTITY}/p.csv", "done", "longer than 1024", ids("al")),
        Kind("customer-key-of-absurd-length", {"RetailCustomers/c.csv": b"CustomerRetailId,FullName\n"
             + b"k" * 5000 + b",X\nR-900,Fine\n"}, "RetailCustomers/c.csv", "done", "customer key longer"),
        Kind("customer-attribute-of-10mb", {"RetailCustomers/c.csv": b"CustomerRetailId,FullName\nR-901,"
             + b"n" * FIELD_10MB + b"\nR-902,Fine\n"}, "RetailCustomers/c.csv", "done", "longer than"),
        Kind("quotes-and-odata-in-ids", {f"{ENTITY}/p.csv": table([
             row("q' or ''='", user="R' or PartitionKey ne '"), row("a/b\\c#d?e%f", user="k eq 'x'"),
             row("odd-\u00e9\u4e2d\U0001f600", user="\u00e9")])}, f"{ENTITY}/p.csv", "done", "",
             ("q' or ''='", "a/b\\c#d?e%f", "odd-\u00e9\u4e2d\U0001f600")),
        Kind("unterminated-quote", {f"{ENTITY}/p.csv": table(goods("uq"))
             + b'uq-1,2021-09-29T10:00:00Z,PageAction,Email promotion,"https://x,t,R-1,R-1\nuq-2,a,b\n'},
             f"{ENTITY}/p.csv", "done", "expected 8 fields", ids("uq")),
        Kind("cr-only-line-ends", {f"{ENTITY}/p.csv": table(goods("cr")).replace(b"\n", b"\r")},
             f"{ENTITY}/p.csv", "done", "", ids("cr")),
        Kind("gzip-bomb", {f"{ENTITY}/p.csv.gz": gzip.compress(table(goods("gb")) + b"a" * (64 << 20), mtime=0)},
             f"{ENTITY}/p.csv.gz", "done", "row larger than", ids("gb")),
        Kind("odd-file-name", {f"{ENTITY}/part #1?%20\u00e9.csv": table(goods("fn"))},
             f"{ENTITY}/part #1?%20\u00e9.csv", "done", "", ids("fn")),
        Kind("symlink-out-of-the-export", {}, f"{ENTITY}/p.csv", "failed", "outside the source folder",
             links={f"{ENTITY}/p.csv": "/etc/hostname"}),
        # Manifests and entity documents.
        _manifest_kind("manifest-cycle", manifest([entity({"globPattern": "/**/*.csv"})], ["a.manifest.cdm.json"]),
                       "cycle", extra={"a.manifest.cdm.json": manifest([], ["m.manifest.cdm.json"])}),
        _manifest_kind("submanifests-too-deep", manifest([entity({"globPattern": "/**/*.csv"})], ["s0.manifest.cdm.json"]),
                       "deeper than", extra={f"s{i}.manifest.cdm.json": manifest([], [f"s{i + 1}.manifest.cdm.json"])
                                             for i in range(40)}),
        _manifest_kind("partition-outside-the-export", manifest([entity(partitions=[{"location": "../../../../etc/p.csv"}])]),
                       "escapes the source root"),
        _manifest_kind("partition-in-another-adapter", manifest([entity(partitions=[{"location": "adls:/other/p.csv"}])]),
                       "points outside the export"),
        _manifest_kind("partition-at-a-url", manifest([entity(partitions=[{"location": "https://evil.example/p.csv"}])]),
                       "points outside the export"),
        _manifest_kind("entity-document-at-a-url", manifest([entity({"globPattern": "/**/*.csv"},
                       path="https://evil.example/e.cdm.json/EmailPromotion")]), "points outside the export"),
        _manifest_kind("submanifest-outside-the-export", manifest([], ["../../../../x.manifest.cdm.json"]),
                       "escapes the source root"),
        Kind("model-json-url-to-another-container", {"model.json": orjson.dumps({"name": "m", "version": "1.0",
             "entities": [{"$type": "LocalEntity", "name": ENTITY, "attributes": [{"name": c, "dataType": "string"} for c in COLUMNS],
                           "partitions": [{"name": "p", "location": f"https://a.dfs.core.windows.net/other/{DATA}"}]}]}),
             DATA: table(goods("mj"))}, DATA, "failed", "no entity"),
        _manifest_kind("regex-exponential", manifest([entity({"regularExpression": "/(a+)+$"})]), "exponential"),
        _manifest_kind("regex-polynomial", manifest([entity({"regularExpression": "/" + ".*" * 12 + "x"})]),
                       "regularExpression", data=None),
        _manifest_kind("glob-of-many-stars", manifest([entity({"globPattern": "/" + "*a" * 16 + "*b"})]),
                       "globPattern", data=None),
        _manifest_kind("broken-manifest-json", b'{"entities": [', "broken JSON"),
        _manifest_kind("manifest-not-an-object", b"[1, 2, 3]", "not a JSON object"),
        _manifest_kind("manifest-larger-than-32mib", b" " * (33 << 20) + b"{}", "larger than"),
        _manifest_kind("encoding-not-text", manifest([entity({"globPattern": "/**/*.csv",
                       "exhibitsTraits": csv_trait(encoding="base64")})]), "unusable CSV format"),
        _manifest_kind("encoding-without-error-handling", manifest([entity({"globPattern": "/**/*.csv",
                       "exhibitsTraits": csv_trait(encoding="idna")})]), "idna"),
        _manifest_kind("encoding-declared-wrong", manifest([entity({"globPattern": "/**/*.csv",
                       "exhibitsTraits": csv_trait(encoding="utf-32")})]), "utf-32"),
        _manifest_kind("delimiter-of-two-characters", manifest([entity({"globPattern": "/**/*.csv",
                       "exhibitsTraits": csv_trait(delimiter="||")})]), "unusable CSV format"),
        _manifest_kind("skip-lines-negative", manifest([entity({"globPattern": "/**/*.csv",
                       "exhibitsTraits": csv_trait(skipLines="-1")})]), "skipLines"),
    ]  # fmt: skip
    # A path long enough to make any ambiguous pattern backtrack for ever, if it were tried.
    long_path = f"{ENTITY}/" + "/".join(["a" * 200] * 3) + "/part.csv"
    for name in ("regex-polynomial", "glob-of-many-stars"):
        kind = next(k for k in found if k.name == name)
        files = {**kind.files, long_path: kind.files[DATA]}
        del files[DATA]
        found[found.index(kind)] = dataclasses.replace(kind, files=files, target=long_path)
    return found
