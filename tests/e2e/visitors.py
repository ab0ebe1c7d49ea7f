"""A generated export of visitors who browse before and after signing in, use two devices,
share one, carry placeholder ids, sign in with a key whose customer row arrives last, or never
sign in (SPEC §8). No manifest: entities by folder name."""

from __future__ import annotations

from pathlib import Path

from shared.core.mapping import derived_customer_id
from tests.e2e.export import _write_csv, event

ADA, BOB, CY, DEE = (derived_customer_id("RetailCustomers", k) for k in ("R-1", "R-2", "R-3", "R-4"))
CUSTOMERS = "CustomerRetailId,FullName,Email,City\nR-1,Ada,ada@example.com,Oslo\nR-2,Bob,bob@example.com,Leeds\nR-3,Cy,cy@example.com,Milan\n"
LATE_CUSTOMERS = "CustomerRetailId,FullName,Email,City\nR-4,Dee,dee@example.com,York\n"

FIRST = [
    event("a1", "2021-09-28T14:00:00Z", "ph-ada"),  # Ada's phone, before signing in
    event("a2", "2021-09-28T14:05:00Z", "ph-ada", "R-1"),  # she signs in
    event("a3", "2021-09-28T14:20:00Z", "ph-ada"),  # and browses on, signed out
    event("t1", "2021-09-28T14:30:00Z", "tv-home", "R-1"),  # Ada on the shared television
    event("p1", "2021-09-28T14:40:00Z", "anonymous", "R-3"),  # a placeholder visitor: Cy by key
    event("p2", "2021-09-28T14:41:00Z", "0"),  # a placeholder visitor alone: nobody
    event("g1", "2021-09-28T14:50:00Z", "ph-ghost"),  # never signs in
    event("d1", "2021-09-28T14:55:00Z", "ph-dee"),  # Dee, whose customer row comes last
]
SECOND = [
    event("l1", "2021-09-28T15:00:00Z", "lp-ada"),  # Ada's laptop, anonymous first
    event("l2", "2021-09-28T15:10:00Z", "lp-ada", "R-1"),
    event("t2", "2021-09-28T15:30:00Z", "tv-home", "R-2"),  # Bob signs in on the television
    event("t3", "2021-09-28T15:45:00Z", "tv-home"),  # the television, anonymous: latest is Bob
    event("d2", "2021-09-28T15:50:00Z", "ph-dee", "R-4"),
    event("g2", "2021-09-28T15:55:00Z", "ph-ghost", "guest"),  # a placeholder key: no link
]
FIRST_FILE = "EmailPromotion/2021/09/28/14/part-0001.csv"
SECOND_FILE = "EmailPromotion/2021/09/28/15/part-0002.csv"
CUSTOMERS_FILE = "RetailCustomers/customers.csv"
LATE_FILE = "RetailCustomers/late.csv"
# Who each event resolves to, and how, under onConflict latest.
EXPECTED = {
    "a1": (ADA, "visitor"), "a2": (ADA, "key"), "a3": (ADA, "visitor"), "t1": (ADA, "key"),
    "p1": (CY, "key"), "p2": (None, None), "g1": (None, None), "d1": (DEE, "visitor"),
    "l1": (ADA, "visitor"), "l2": (ADA, "key"), "t2": (BOB, "key"), "t3": (BOB, "visitor"),
    "d2": (DEE, "key"), "g2": (None, None),
}  # fmt: skip


def write_visitor_export(root: Path) -> dict[str, Path]:
    """The export's files, by role; ingest LATE_FILE last to have Dee's row arrive last."""
    _write_csv(root / FIRST_FILE, FIRST)
    _write_csv(root / SECOND_FILE, SECOND)
    (root / "RetailCustomers").mkdir(parents=True, exist_ok=True)
    (root / CUSTOMERS_FILE).write_text(CUSTOMERS, encoding="utf-8")
    (root / LATE_FILE).write_text(LATE_CUSTOMERS, encoding="utf-8")
    return {name: root / name for name in (FIRST_FILE, SECOND_FILE, CUSTOMERS_FILE, LATE_FILE)}
