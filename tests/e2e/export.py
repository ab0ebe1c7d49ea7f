"""A generated engagement-insights export holding every tricky case the product must handle."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson

COLUMNS = (
    "Signal.Export.Id", "Signal.Timestamp", "Signal.Name", "Signal.Action.Name",
    "Signal.View.Uri", "Signal.View.Title", "Signal.User.Id", "Signal.User.AuthId",
)  # fmt: skip
PROMO = "Email promotion"


def _csv_line(values: tuple[str, ...], delimiter: str = ",") -> str:
    def quote(v: str) -> str:
        needs = any(ch in v for ch in (delimiter, '"', "\n", "\r"))
        return '"' + v.replace('"', '""') + '"' if needs else v

    return delimiter.join(quote(v) for v in values)


def _write_csv(path: Path, rows: list[tuple[str, ...]], *, header: bool = True, bom: bool = False,
               newline: str = "\n", delimiter: str = ",") -> None:  # fmt: skip
    lines = ([_csv_line(COLUMNS, delimiter)] if header else []) + [
        _csv_line(r, delimiter) for r in rows
    ]
    text = ("\ufeff" if bom else "") + newline.join(lines) + newline
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def _manifest() -> dict[str, object]:
    def csv_trait(headers: bool, delimiter: str = ",") -> dict[str, object]:
        return {"traitReference": "is.partition.format.CSV", "arguments": [
            {"name": "columnHeaders", "value": "true" if headers else "false"},
            {"name": "delimiter", "value": delimiter},
        ]}  # fmt: skip

    return {
        "jsonSchemaSemanticVersion": "1.0.0", "manifestName": "webevents",
        "entities": [
            {"type": "LocalEntity", "entityName": "RetailCustomers",
             "entityPath": "RetailCustomers.cdm.json/RetailCustomers",
             "dataPartitions": [
                 {"location": "RetailCustomers/customers.csv", "exhibitsTraits": [csv_trait(True)]},
                 {"location": "RetailCustomers/late.csv", "exhibitsTraits": [csv_trait(True)]},
             ]},
            {"type": "LocalEntity", "entityName": "EmailPromotion",
             "entityPath": "EmailPromotion.cdm.json/EmailPromotion",
             "dataPartitions": [{"location": "EmailPromotion/legacy/headerless.csv",
                                 "exhibitsTraits": [csv_trait(False, ";")]}],
             "dataPartitionPatterns": [{"rootLocation": "EmailPromotion", "globPattern": "/20*/**/*.csv",
                                        "exhibitsTraits": [csv_trait(True)]}]},
        ],
    }  # fmt: skip


def _entity_doc(name: str, columns: tuple[str, ...]) -> bytes:
    return orjson.dumps({"jsonSchemaSemanticVersion": "1.0.0", "definitions": [
        {"entityName": name, "hasAttributes": [{"name": c, "dataFormat": "String"} for c in columns]},
    ]})  # fmt: skip


def event(eid: str, time: str, user: str = "", auth: str = "", action: str = PROMO,
          title: str = "Offer", uri: str = "https://shop.example.com/offer") -> tuple[str, ...]:  # fmt: skip
    return (eid, time, "PageAction", action, uri, title, user, auth)


FIRST_HOUR = [
    event("e1", "2021-09-28T14:01:00Z", "sdk-1", "R-1"),  # matched by AuthId
    event("e2", "2021-09-28T14:02:00Z", "R-2", ""),  # AuthId missing: User.Id
    event("e3", "2021-09-28T14:03:00Z", "R-1", "R-1", action="Search"),  # filtered
    event("", "2021-09-28T14:04:00Z", "R-1", "R-1"),  # rejected: no id
    event("e5", "28/09/2021 14:05", "R-1", "R-1"),  # rejected: bad time
    event(
        "e6",
        "2021-09-28T14:06:00Z",
        "R-2",
        "R-2",
        title='Line one\nline "two", three',
        uri="https://shop.example.com/offer?a=1,b=2",
    ),  # quoted newline, comma
    event("e7", "2021-09-28T16:07:00+02:00", "R-1", "R-1"),  # offset -> 14:07Z
    event("e8", "2021-09-28T14:08:00Z", "U-999", ""),  # unknown customer
    event("", "bad", "R-1", "R-1", action="Search"),  # filtered, not rejected
]
SECOND_HOUR = [
    event("e1", "2021-09-28T14:01:00Z", "sdk-1", "R-1", title="Duplicate"),  # same event again
    event("e10", "2021-09-28T15:10:00Z", "R-3", "R-3"),  # customer comes later
]
HEADERLESS = [event("e11", "2021-09-28T13:00:00.250-01:00", "R-1", "R-1")]
CUSTOMERS = "CustomerRetailId,FullName,Email,City\nR-1,Ada Moreno,ada@example.com,Seattle\nR-2,Bram de Vries,bram@example.com,Utrecht\n"
LATE_CUSTOMERS = "CustomerRetailId,FullName,Email,City\nR-3,Chiara Rossi,chiara@example.com,Milan\n"

FIRST_FILE = "EmailPromotion/2021/09/28/14/part-0001.csv"
SECOND_FILE = "EmailPromotion/2021/09/28/15/part-0002.csv"
LATE_FILE = "RetailCustomers/late.csv"


def write_cdm_export(root: Path) -> Path:
    """A manifest folder: BOM + CRLF, quoted newlines, headerless ';' partition, duplicates."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "webevents.manifest.cdm.json").write_bytes(orjson.dumps(_manifest()))
    (root / "EmailPromotion.cdm.json").write_bytes(_entity_doc("EmailPromotion", COLUMNS))
    (root / "RetailCustomers.cdm.json").write_bytes(
        _entity_doc("RetailCustomers", ("CustomerRetailId", "FullName", "Email", "City"))
    )
    (root / "RetailCustomers").mkdir(exist_ok=True)
    (root / "RetailCustomers" / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    _write_csv(root / FIRST_FILE, FIRST_HOUR, bom=True, newline="\r\n")
    _write_csv(root / SECOND_FILE, SECOND_HOUR)
    _write_csv(
        root / "EmailPromotion/legacy/headerless.csv", HEADERLESS, header=False, delimiter=";"
    )
    return root


def write_late_customers(root: Path) -> Path:
    path = root / LATE_FILE
    path.write_text(LATE_CUSTOMERS, encoding="utf-8")
    return path


def rewrite_first_file(root: Path) -> Path:
    """The same file name written again: e7 is gone, e2 changed its page."""
    rows = [r for r in FIRST_HOUR if r[0] != "e7"]
    rows = [
        event("e2", r[1], "R-2", "", uri="https://shop.example.com/v2") if r[0] == "e2" else r
        for r in rows
    ]
    _write_csv(root / FIRST_FILE, rows, bom=True, newline="\r\n")
    return root / FIRST_FILE


def write_plain_export(root: Path) -> Path:
    """No manifest: entity by folder name; gzip CSV and JSON lines (nested, one broken line)."""
    gz = root / "EmailPromotion/2021/09/28/16/part-0003.csv.gz"
    gz.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(
        [_csv_line(COLUMNS), _csv_line(event("e12", "2021-09-28T16:12:00Z", "R-2", "R-2"))]
    )
    gz.write_bytes(gzip.compress((body + "\n").encode()))
    jl = root / "EmailPromotion/2021/09/28/17/part-0004.jsonl"
    jl.parent.mkdir(parents=True, exist_ok=True)
    nested = {"Signal": {"Export": {"Id": "e13"}, "Timestamp": "2021-09-28T17:13:00Z", "Name": "PageAction",
              "Action": {"Name": PROMO, "View": {"Uri": "https://shop.example.com/json"}},
              "User": {"Id": "R-1", "AuthId": None}}}  # fmt: skip
    jl.write_bytes(orjson.dumps(nested) + b"\n{not json\n" + orjson.dumps([1, 2]) + b"\n")
    return root
