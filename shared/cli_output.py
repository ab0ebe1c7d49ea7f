"""What the footprint command prints: JSON for machines, short text for people."""

from __future__ import annotations

import argparse
import shlex
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
    note = r.error or r.reason
    tail = f"  ({printable(note)})" if note else ""
    return (
        f"{r.status:<11} {printable(r.file)}  entity={r.entity or '-'} rows={c.rows} activities={c.activities} "
        f"unmatched={c.unmatched} filtered={c.filtered} rejected={c.rejected} "
        f"customers={c.customers} suppressed={c.suppressed}{tail}"
    )


def format_fields(record: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in record.items())


# Control characters (C0, DEL, C1) and line separators would break a row or drive the terminal.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), *range(0x7F, 0xA0))}
_ESCAPES.update({9: "\\t", 10: "\\n", 13: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})
# Activity table columns: heading, record field(s), widest before an ellipsis (None: the rest).
_COLUMNS = (
    ("TIME", ("ActivityTime",), 24),
    ("TYPE", ("ActivityTypeDisplay",), 16),
    ("ACTIVITY", ("ActivityType",), 24),
    ("TITLE", ("Title", "ActivityName"), 32),
    ("CUSTOMER", ("CustomerId",), 34),
    ("URL", ("ExternalUrl",), None),
)


def printable(value: Any) -> str:
    """A value as one line of text: control characters shown escaped, never acted upon."""
    return "" if value is None else str(value).translate(_ESCAPES)


def _cell(record: dict[str, Any], fields: tuple[str, ...]) -> str:
    if fields == ("CustomerId",) and not record["CustomerId"]:
        return f"(unmatched {printable(record['ActivityForeignKey']) or '-'})"
    return next((printable(record[f]) for f in fields if record.get(f)), "")


def _fit(text: str, width: int | None) -> str:
    if width is None:
        return text
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def format_activity_table(activities: list[dict[str, Any]], with_customer: bool = True) -> list[str]:
    """Rows of activities under a heading, columns aligned, long values cut with an ellipsis."""
    columns = [c for c in _COLUMNS if with_customer or c[0] != "CUSTOMER"]
    cells = [[_cell(a, fields) for _, fields, _ in columns] for a in activities]
    widths = [
        None if cap is None else min(cap, max(len(name), *(len(r[i]) for r in cells)))
        for i, (name, _, cap) in enumerate(columns)
    ]  # fmt: skip
    rows = [[name for name, _, _ in columns], *cells]
    return ["  ".join(_fit(v, w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_card(card: dict[str, Any], more: str = "footprint timeline ID") -> str:
    """The customer card; `more` is the command that continues it, short of --continuation."""
    c = card["customer"]
    keys = ", ".join(f"{printable(k['Entity'])}:{printable(k['Key'])}" for k in c["AlternateKeys"])
    attrs = "  ".join(
        f"{printable(k)}: {printable(v)}" for k, v in c["Attributes"].items() if v not in (None, "")
    )
    counts = ", ".join(f"{printable(k)} {v}" for k, v in c.get("ActivityCounts", {}).items())
    lines = [f"Customer {printable(c['CustomerId'])}  ({keys})", f"  {attrs}"]
    if counts:
        lines.append(f"  activities: {counts}")
    for v in c.get("Visitors", []):
        source = v["LinkSource"]
        lines.append(f"  visitor {v['VisitorId']}: signed in {v['LinkedAt']} "
                     f"({source['File']} row {source['Row']})")  # fmt: skip
    lines.append("")
    if card["activities"]:
        lines.extend("  " + row for row in format_activity_table(card["activities"], False))
    else:
        lines.append("  (no activities on the timeline)")
    if card["continuation"]:
        lines.append(f"  more: {more} --continuation {card['continuation']}")
    return "\n".join(lines)


def format_customers(customers: list[dict[str, Any]], text: str = "") -> str:
    """One line a customer: id, the keys that matched `text` (else all keys), attributes."""
    lines = []
    for c in customers:
        keys = [f"{k['Entity']}:{k['Key']}" for k in c["AlternateKeys"]]
        matched = [k for k in keys if text.lower() in k.split(":", 1)[1].lower()] or keys
        values = [str(v) for v in c["Attributes"].values() if v not in (None, "")]
        lines.append("  ".join(printable(v) for v in (c["CustomerId"], ", ".join(matched), *values)))
    return "\n".join(lines) or "no customers match"


def format_activities(activities: list[dict[str, Any]]) -> str:
    return "\n".join(format_activity_table(activities)) if activities else "no activities"


def format_status(s: dict[str, Any]) -> str:
    files = "  ".join(f"{k}={v}" for k, v in s["files"].items())
    totals = "  ".join(f"{k}={v}" for k, v in s["counts_when_loaded"].items())
    by_activity = ", ".join(f"{k} {v}" for k, v in s["unmatched_now_by_activity"].items())
    lines = [
        f"files: {files}",
        f"counted when each file was loaded (summed over files): {totals}",
        f"unmatched activities now: {s['unmatched_now']}" + (f" ({by_activity})" if by_activity else ""),
    ]
    lines += [f"running: {r['path']} by {r['holder']}, claim until {r['lease_until']}"
              for r in s.get("running", [])]  # fmt: skip
    if s["last_error"]:
        e = s["last_error"]
        lines.append(f"last error: {printable(e['path'])}: {printable(e['error'])} ({e['at']})")
    return "\n".join(lines)


def next_page(args: argparse.Namespace, token: str | None, carried: bool) -> None:
    """Say on stderr how to get the next page, if any: the command to run in text mode; in
    JSON mode `{"continuation": TOKEN}`, unless the JSON on stdout `carried` it already."""
    if token is None:
        return
    if not args.json:
        argv, skip = [], False
        for arg in getattr(args, "argv", []):
            if not skip and not arg.startswith("--continuation"):
                argv.append(arg)
            skip = arg == "--continuation" and not skip
        print(f"more: {shlex.join(['footprint', *argv, '--continuation', token])}", file=sys.stderr)
    elif not carried:
        sys.stderr.buffer.write(orjson.dumps({"continuation": token}, option=orjson.OPT_APPEND_NEWLINE))
        sys.stderr.flush()


def _printable(value: Any) -> str:
    """One line whatever a value holds: control characters as escapes."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(value))


def format_rejects(page: dict[str, Any]) -> str:
    lines = [
        f"{r['File']}:{r['Row']}  {_printable(r['Reason'])}  {_printable(r['Excerpt'])}"
        for r in page["rejects"]
    ]
    return "\n".join(lines) or "no rejects"


def format_files(page: dict[str, Any]) -> str:
    lines = []
    for f in page["files"]:
        why = f["error"] or f["reason"]
        counts = f"rows={f['rows']} activities={f['activities']} rejected={f['rejected']}"
        lines.append(
            f"{f['status']:<11} {f['path']}  attempts={f['attempts']} {counts}  "
            f"updated={f['updated_at'] or '-'}" + (f"  ({_printable(why)})" if why else "")
        )
    return "\n".join(lines) or "no files"


def format_check(result: dict[str, Any]) -> str:
    lines = []
    for c in result["checks"]:
        head = f"{c['kind']} {c['name']} (entity {c['entity']})"
        if not result["checked"]:
            lines.append(f"{head}: valid")
        elif not c["files"]:
            lines.append(f"{head}: no files of this entity in the export")
        elif not c["missing"]:
            lines.append(f"{head}: {_files(c['files'])}, every configured column found")
        for m in c["missing"] if result["checked"] else ():
            lines.append(
                f"{head}: {m['field']}: none of {', '.join(m['columns'])} in {m['files']} of "
                f"{_files(c['files'])} (e.g. {m['examples'][0]})"
            )
    lines += [f"unreadable: {u['file']}: {u['error']}" for u in result["unreadable"]]
    lines.append(f"config {result['config']}: " + ("ok" if result["ok"] else "problems found, see above"))
    return "\n".join(lines)


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def format_inspect(result: dict[str, Any]) -> str:
    lines = []
    for e in result["entities"]:
        missing = e.get("missingDocument")
        attributes = (
            f"entity document {missing} is missing" if missing
            else f"{len(e['attributes'])} attributes"
        )  # fmt: skip
        lines.append(f"{e['name']}  ({attributes}, {len(e['partitions'])} partitions)")
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


def _standing(link: dict[str, Any]) -> str:
    spans = ", ".join(f"{c['Key']} {c['FirstLinkedAt']}..{c['LastLinkedAt']}"
                      for c in link["Candidates"])  # fmt: skip
    won = link["Key"] or "nobody"
    return f"{link['Entity']}: {won} (onConflict {link['OnConflict']}; linked to {spans})"


def format_visitor(view: dict[str, Any]) -> str:
    v = view["visitor"]
    lines = [f"Visitor {v['VisitorId']}"]
    lines += [f"  {_standing(link)}" for link in v["Links"]] or ["  linked to no key"]
    lines.append("")
    for a in view["activities"]:
        who = a["CustomerId"] or "(unmatched)"
        lines.append(f"  {a['ActivityTime']}  {a['ActivityType']}  {who}  "
                     f"{a['Title'] or a['ActivityName'] or ''}  {a['ExternalUrl'] or ''}")  # fmt: skip
    if not view["activities"]:
        lines.append("  (no activities)")
    if view["continuation"]:
        lines.append(f"  more: --continuation {view['continuation']}")
    return "\n".join(lines)


def format_conflicts(found: list[dict[str, Any]]) -> str:
    return "\n".join(f"{c['VisitorId']}  {_standing(c)}" for c in found) or "no conflicts"
