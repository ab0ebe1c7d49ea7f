"""Small builders of records for tests."""

from __future__ import annotations

from shared.core.identity.links import Link
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
    visitor: str | None = None,
    display: str = "WebLog",
) -> Activity:
    return Activity(
        activity_id(kind, "Events", key), None, kind, display, name, time, f"title {key}",
        f"https://shop.example.com/{key}", "Events", key, fk, show, file, etag, row,
        "Customers" if fk is not None or visitor is not None else None, visitor,
    )  # fmt: skip


def link(
    visitor: str,
    key: str,
    time: str = "2021-09-28T14:00:00.000Z",
    file: str = "events/a.csv",
    row: int = 1,
    etag: str = "e1",
    last: tuple[str, int] | None = None,
) -> Link:
    """A link of one row, or of a span of rows (`last` = the latest row's time and number)."""
    last_time, last_row = last or (time, row)
    return Link("Customers", visitor, key, file, etag, time, row, last_time, last_row)


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
