"""Small builders of records for tests."""

from __future__ import annotations

from shared.core.mapping import activity_id, derived_customer_id
from shared.core.model import Activity, CustomerRow


def activity(
    key: str,
    time: str = "2021-09-28T14:00:00.000Z",
    fk: str | None = "R-1",
    file: str = "events/a.csv",
    row: int = 1,
    etag: str = "e1",
    kind: str = "Clicks",
    show: bool = True,
    name: str | None = "PageAction",
    display: str = "WebLog",
) -> Activity:
    return Activity(
        activity_id(kind, "Events", key), None, kind, display, name, time, f"title {key}",
        f"https://shop.example.com/{key}", "Events", key, fk, show, file, etag, row,
        "Customers" if fk is not None else None,
    )  # fmt: skip


def customer(
    key: str,
    file: str = "customers/c.csv",
    row: int = 1,
    etag: str = "c1",
    unified: str | None = None,
    entity: str = "Customers",
    **attributes: str,
) -> CustomerRow:
    customer_id = unified or derived_customer_id(entity, key)
    return CustomerRow(entity, key, customer_id, dict(attributes), file, etag, row)
