"""The footprint commands of measures and segments (SPEC §9): sizes, members, a customer's
measures, the change feed, and a forced re-evaluation."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from shared import bootstrap
from shared.cli_output import emit, format_fields
from shared.core.audiences import upkeep, views
from shared.core.errors import FootprintError
from shared.settings import Settings


def _open(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    settings = Settings.from_env()
    config = bootstrap.load_config(args.config or settings.config_path)
    store, _ = bootstrap.open_store(args.store or settings.store, settings)
    return store, bootstrap.open_audiences(store), bootstrap.audiences_of(config)


def cmd_segments(args: argparse.Namespace) -> int:
    profiles, store, audiences = _open(args)
    at, now = views.as_of(args.as_of, datetime.now(UTC))
    emit(args.json, views.segment_list(profiles, store, audiences, at, now), _format_segments)
    return 0


def cmd_members(args: argparse.Namespace) -> int:
    profiles, store, audiences = _open(args)
    at, now = views.as_of(args.as_of, datetime.now(UTC))
    page = views.segment_members(profiles, store, audiences, args.name, at, now, args.limit, args.continuation)
    emit(args.json, page, _format_members)
    return 0


def cmd_changes(args: argparse.Namespace) -> int:
    _, store, audiences = _open(args)
    emit(args.json, views.segment_changes(store, audiences, args.name, args.since, args.limit), _format_changes)
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    profiles, store, audiences = _open(args)
    if audiences.empty:
        raise FootprintError("the configuration has no measures and no segments to evaluate")
    emit(args.json, {"evaluated": upkeep.refresh_all(profiles, store, audiences, datetime.now(UTC))},
         format_fields)  # fmt: skip
    return 0


def cmd_measures(args: argparse.Namespace) -> int:
    profiles, store, audiences = _open(args)
    at, _ = views.as_of(args.as_of, datetime.now(UTC))
    emit(args.json, views.customer_measures(profiles, store, audiences, args.customer_id, at), _format_measures)
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser, parser_class: type, positive: Any) -> None:
    as_of = "evaluate at this time (ISO 8601) from the store as it is; default now"
    p = sub.add_parser("segments", parents=[common], help="segments and their members (SPEC §9)")
    p.add_argument("--as-of", help=as_of)
    p.set_defaults(run=cmd_segments)
    inner = p.add_subparsers(dest="segments_command", parser_class=parser_class)
    q = inner.add_parser("members", parents=[common], help="a segment's members, by CustomerId")
    q.add_argument("name", metavar="NAME", help="the segment's name, as in the config")
    q.add_argument("--as-of", help=as_of)
    q.add_argument("--limit", type=positive, help="members per page (default 100, at most 1000)")
    q.add_argument("--continuation", help="token printed by the previous page")
    q.set_defaults(run=cmd_members)
    q = inner.add_parser("changes", parents=[common], help="who entered and left a segment, in order")
    q.add_argument("name", metavar="NAME", help="the segment's name, as in the config")
    q.add_argument("--since", help="cursor printed by the previous read (default: from the start)")
    q.add_argument("--limit", type=positive, help="changes per read (default 100, at most 1000)")
    q.set_defaults(run=cmd_changes)
    q = inner.add_parser("refresh", parents=[common], help="evaluate every customer again now")
    q.set_defaults(run=cmd_refresh)

    p = sub.add_parser("measures", parents=[common], help="a customer's measures and segments")
    p.add_argument("customer_id", metavar="CUSTOMER_ID", help="the customer's CustomerId")
    p.add_argument("--as-of", help=as_of)
    p.set_defaults(run=cmd_measures)


def _format_segments(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no segments configured"
    width = max(len(i["Segment"]) for i in items)
    return "\n".join(f"{i['Segment']:<{width}}  {i['Members']:>8,}  {i['Description']}" for i in items)


def _format_members(page: dict[str, Any]) -> str:
    lines = [f"{page['segment']} as of {page['asOf']}: {len(page['members'])} member(s) on this page"]
    for m in page["members"]:
        keys = ", ".join(f"{k['Entity']}:{k['Key']}" for k in m["AlternateKeys"])
        lines.append(f"  {m['CustomerId']}  {keys}")
    if page["continuation"]:
        lines.append(f"more: --continuation {page['continuation']}")
    return "\n".join(lines)


def _format_changes(feed: dict[str, Any]) -> str:
    lines = [f"{c['At']}  {c['Change']:<7}  {c['CustomerId']}" for c in feed["changes"]]
    lines.append(f"cursor: {feed['cursor']}")
    return "\n".join(lines)


def _format_measures(found: dict[str, Any]) -> str:
    lines = [f"{found['CustomerId']} as of {found['asOf']}"]
    lines += [f"  {name}: {value}" for name, value in found["Measures"].items()]
    lines.append(f"  segments: {', '.join(found['Segments']) or '(none)'}")
    return "\n".join(lines)
