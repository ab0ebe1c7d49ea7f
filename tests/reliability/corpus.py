"""The export every reliability case loads: a CDM folder with duplicates, rejects and rewrites.

Small on purpose (a few hundred activities): the Azure Tables trials run against Azurite, and
the whole suite must stay within minutes. Every shape that makes order matter is in it:
the same event in two files, the same event twice in one file, a customer in two files, a
headerless partition the manifest describes, customers arriving after their activities,
and files written twice (the earlier version is in `earlier`).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
from pathlib import Path

import orjson

from shared.core.mapping import derived_customer_id

COLUMNS = (
    "Signal.Export.Id", "Signal.Timestamp", "Signal.Name", "Signal.Action.Name",
    "Signal.View.Uri", "Signal.View.Title", "Signal.User.Id", "Signal.User.AuthId",
)  # fmt: skip
CUSTOMER_COLUMNS = ("CustomerRetailId", "FullName", "Email", "City")
PROMO = "Email promotion"
EVENT_FILES = 6
CUSTOMERS = 30


@dataclasses.dataclass(frozen=True)
class Corpus:
    files: dict[str, bytes]  # the export as it finally is: path -> content
    earlier: dict[str, bytes]  # first versions of the files that were written twice
    customer_keys: tuple[str, ...]

    @property
    def customer_ids(self) -> list[str]:
        return sorted(derived_customer_id("RetailCustomers", k) for k in self.customer_keys)

    def write(self, root: Path, *, earlier: bool = False) -> Path:
        """The export as files under `root` (the earlier versions instead, if asked)."""
        for path, data in {**self.files, **(self.earlier if earlier else {})}.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return root


def _csv(rows: list[tuple[str, ...]], header: tuple[str, ...] | None, delimiter: str = ",") -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _event(eid: str, minute: int, user: str, auth: str = "", action: str = PROMO,
           title: str = "Offer", hour: int = 14) -> tuple[str, ...]:  # fmt: skip
    time = f"2021-09-29T{hour:02d}:{minute % 60:02d}:{minute * 7 % 60:02d}.{minute:03d}Z"
    return (eid, time, "PageAction", action, f"https://shop.example.com/{eid}", title, user, auth)


def _customer(n: int) -> str:
    return f"R-{n:03d}"


def _event_file(n: int, version: int = 2) -> list[tuple[str, ...]]:
    """30 events of its own, 4 repeated from the file before, a duplicate, 3 filtered, 2 bad."""
    rows = []
    for i in range(30):
        who = _customer((n * 7 + i) % (CUSTOMERS + 5) + 1)  # R-031..R-035: never a customer
        auth = who if i % 3 else ""  # AuthId missing: the User.Id column is the foreign key
        rows.append(_event(f"g{n}-{i}", n * 60 + i, who if not auth else f"sdk-{i}", auth,
                           title=f"Offer {n}.{i} v{version}", hour=10 + n))  # fmt: skip
    if n:
        rows += [_event(f"g{n - 1}-{i}", i, _customer(i + 1), title=f"again in {n}") for i in range(4)]
    rows.append(_event(f"g{n}-0", 59, _customer(2), title=f"later row of {n}"))
    rows += [_event(f"s{n}-{i}", i, _customer(1), action="Search") for i in range(3)]
    rows.append(_event("", 1, _customer(1)))  # rejected: no id
    rows.append((f"b{n}", "29/09/2021 14:05", *_event("", 1, _customer(1))[2:]))  # rejected: time
    if version == 1:
        rows += [_event(f"old{n}-{i}", i, _customer(3), title="only in the first version") for i in range(5)]
    return rows + _visitor_rows(n, version)


def _visitor_rows(n: int, version: int) -> list[tuple[str, ...]]:
    """Anonymous visitors web-N-i browse in file N and sign in one file later (the last file's
    never do); web-N-0 also signs in on a second key a file later still (a shared device);
    the first version of a file held a sign-in the final one has not."""
    rows = [_event(f"w{n}-{i}", 40 + i, f"web-{n}-{i}", title=f"anonymous {n}.{i}") for i in range(3)]
    if n:
        rows += [_event(f"ws{n}-{i}", 45 + i, f"web-{n - 1}-{i}", _customer(n * 3 + i),
                        title=f"signs in {n}.{i}") for i in range(3)]  # fmt: skip
    if n > 1:
        rows.append(_event(f"wx{n}", 50, f"web-{n - 2}-0", _customer(n * 3 + 9), title="shared"))
    if version == 1:
        rows.append(_event(f"wold{n}", 52, f"web-{n}-1", _customer(3), title="first version"))
    return rows


def _jsonl(rows: list[tuple[str, ...]]) -> bytes:
    lines = []
    for eid, time, name, action, uri, title, user, auth in rows:
        lines.append(orjson.dumps({"Signal": {
            "Export": {"Id": eid}, "Timestamp": time, "Name": name,
            "Action": {"Name": action, "View": {"Uri": uri}}, "View": {"Title": title},
            "User": {"Id": user, "AuthId": auth or None},
        }}))  # fmt: skip
    lines.append(b"[1, 2, 3]")  # rejected: not an object
    return b"\n".join(lines) + b"\n"


def _trait(headers: bool, delimiter: str = ",") -> dict[str, object]:
    return {"traitReference": "is.partition.format.CSV", "arguments": [
        {"name": "columnHeaders", "value": "true" if headers else "false"},
        {"name": "delimiter", "value": delimiter},
    ]}  # fmt: skip


def _manifest() -> bytes:
    return orjson.dumps({
        "jsonSchemaSemanticVersion": "1.0.0", "manifestName": "webevents",
        "entities": [
            {"type": "LocalEntity", "entityName": "RetailCustomers",
             "entityPath": "RetailCustomers.cdm.json/RetailCustomers",
             "dataPartitionPatterns": [{"rootLocation": "RetailCustomers", "globPattern": "/*.csv",
                                        "exhibitsTraits": [_trait(True)]}]},
            {"type": "LocalEntity", "entityName": "EmailPromotion",
             "entityPath": "EmailPromotion.cdm.json/EmailPromotion",
             "dataPartitions": [{"location": "EmailPromotion/legacy/headerless.csv",
                                 "exhibitsTraits": [_trait(False, ";")]}],
             "dataPartitionPatterns": [
                 {"rootLocation": "EmailPromotion", "globPattern": "/20*/**/*.csv",
                  "exhibitsTraits": [_trait(True)]},
                 {"rootLocation": "EmailPromotion", "regularExpression": r"/20\d\d/.*\.(jsonl|csv\.gz)"},
             ]},
        ],
    })  # fmt: skip


def _entity_doc(name: str, columns: tuple[str, ...]) -> bytes:
    return orjson.dumps({"jsonSchemaSemanticVersion": "1.0.0", "definitions": [
        {"entityName": name, "hasAttributes": [{"name": c, "dataFormat": "String"} for c in columns]},
    ]})  # fmt: skip


def _customers(numbers: range, city: str) -> list[tuple[str, ...]]:
    return [(_customer(n), f"Customer {n}", f"c{n}@example.com", city) for n in numbers]


def build() -> Corpus:
    files = {
        "webevents.manifest.cdm.json": _manifest(),
        "EmailPromotion.cdm.json": _entity_doc("EmailPromotion", COLUMNS),
        "RetailCustomers.cdm.json": _entity_doc("RetailCustomers", CUSTOMER_COLUMNS),
        # R-005 is in both files: the row of the greater file name wins.
        "RetailCustomers/customers-1.csv": _csv(_customers(range(1, 21), "Seattle"), CUSTOMER_COLUMNS),
        "RetailCustomers/customers-2.csv": _csv(_customers(range(21, 31), "Milan")
                                               + _customers(range(5, 6), "Utrecht"), CUSTOMER_COLUMNS),
        "EmailPromotion/legacy/headerless.csv": _csv(
            [_event(f"h-{i}", i, _customer(i + 1)) for i in range(3)], None, ";"),
        "EmailPromotion/2021/09/29/20/part-json.jsonl": _jsonl(
            [_event(f"j-{i}", i, _customer(i % 12 + 1), _customer(i % 12 + 1)) for i in range(20)]
            + [_event("g5-3", 3, _customer(4), title="also in JSON lines")]),
        "EmailPromotion/2021/09/29/21/part-gz.csv.gz": gzip.compress(_csv(
            [_event(f"z-{i}", i, _customer(i % 9 + 20), _customer(i % 9 + 20)) for i in range(20)],
            COLUMNS), mtime=0),
    }  # fmt: skip
    for n in range(EVENT_FILES):
        files[f"EmailPromotion/2021/09/29/{10 + n}/part-{n:04d}.csv"] = _csv(_event_file(n), COLUMNS)
    earlier = {
        "EmailPromotion/2021/09/29/11/part-0001.csv": _csv(_event_file(1, version=1), COLUMNS),
        "EmailPromotion/2021/09/29/13/part-0003.csv": _csv(_event_file(3, version=1), COLUMNS),
        "RetailCustomers/customers-2.csv": _csv(_customers(range(21, 31), "Rome"), CUSTOMER_COLUMNS),
    }
    keys = tuple(_customer(n) for n in range(1, CUSTOMERS + 1))
    return Corpus(files, earlier, keys)


CORPUS = build()
