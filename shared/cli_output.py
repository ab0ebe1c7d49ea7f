"""What the footprint command prints: JSON for machines, short text for people."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import orjson

from shared.core.model import IngestReport


def emit(as_json: bool, value: Any, text: Callable[[Any], str]) -> None:
    """Print `value` as one JSON document, or as text for a person."""
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE))
    else:
        print(text(value))
    sys.stdout.flush()


class Progress:
    """A one-line progress bar on a terminal's stderr; silent elsewhere."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 1:
            return
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def format_report(r: IngestReport) -> str:
    c = r.counts
    tail = f"  ({r.error})" if r.error else ""
    return (
        f"{r.status:<11} {r.file}  entity={r.entity or '-'} rows={c.rows} activities={c.activities} "
        f"unmatched={c.unmatched} filtered={c.filtered} rejected={c.rejected} "
        f"customers={c.customers}{tail}"
    )


def format_fields(record: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in record.items())


def format_card(card: dict[str, Any]) -> str:
    c = card["customer"]
    keys = ", ".join(f"{k['Entity']}:{k['Key']}" for k in c["AlternateKeys"])
    attrs = "  ".join(f"{k}: {v}" for k, v in c["Attributes"].items() if v not in (None, ""))
    counts = ", ".join(f"{k} {v}" for k, v in c.get("ActivityCounts", {}).items())
    lines = [f"Customer {c['CustomerId']}  ({keys})", f"  {attrs}"]
    if counts:
        lines.append(f"  activities: {counts}")
    lines.append("")
    for a in card["activities"]:
        title = a["Title"] or a["ActivityName"] or ""
        lines.append(
            f"  {a['ActivityTime']}  {a['ActivityTypeDisplay']:<8} {title}  {a['ExternalUrl'] or ''}"
        )
    if not card["activities"]:
        lines.append("  (no activities on the timeline)")
    if card["continuation"]:
        lines.append(f"  more: --continuation {card['continuation']}")
    return "\n".join(lines)


def format_customers(customers: list[dict[str, Any]]) -> str:
    lines = [
        f"{c['CustomerId']}  " + "  ".join(str(v) for v in c["Attributes"].values() if v)
        for c in customers
    ]
    return "\n".join(lines) or "no customers match"


def format_activities(activities: list[dict[str, Any]]) -> str:
    lines = []
    for a in activities:
        who = a["CustomerId"] or f"(unmatched {a['ActivityForeignKey']})"
        lines.append(
            f"{a['ActivityTime']}  {a['ActivityType']}  {who}  "
            f"{a['ActivityName'] or ''}  {a['ExternalUrl'] or ''}"
        )
    return "\n".join(lines) or "no activities"


def format_status(s: dict[str, Any]) -> str:
    files = "  ".join(f"{k}={v}" for k, v in s["files"].items())
    totals = "  ".join(
        f"{k}={s[k]}"
        for k in ("rows", "activities", "unmatched", "filtered", "rejected", "customers")
    )
    lines = [f"files: {files}", f"rows:  {totals}", f"unmatched now: {s['unmatched_now']}"]
    if s["last_error"]:
        e = s["last_error"]
        lines.append(f"last error: {e['path']}: {e['error']} ({e['at']})")
    return "\n".join(lines)


def format_inspect(result: dict[str, Any]) -> str:
    lines = []
    for e in result["entities"]:
        lines.append(
            f"{e['name']}  ({len(e['attributes'])} attributes, {len(e['partitions'])} partitions)"
        )
        lines.extend(f"    {a['name']}: {a['dataType']}" for a in e["attributes"])
        lines.extend(
            f"  - {p['location']}{' (incremental)' if p['incremental'] else ''}"
            for p in e["partitions"]
        )
    return "\n".join(lines)


def format_export(receipts: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{r['entity']}: {r['rows']} rows in {len(r['partitions'])} partition(s)" for r in receipts
    )
