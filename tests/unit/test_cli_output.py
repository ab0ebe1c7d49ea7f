"""What the footprint command prints for people: tables, escapes, help texts."""

from __future__ import annotations

import argparse

from shared.bootstrap import STORE_URLS
from shared.cli import build_parser
from shared.cli_output import format_activities, format_card, printable
from tests.builders import activity


def records(*items):  # type: ignore[no-untyped-def]
    return [a.to_record() for a in items]


def test_control_characters_are_shown_escaped_never_printed_raw() -> None:
    assert printable("a\nb\r\tc\x1b[31m\x00\x7f\x9b\u2028") == "a\\nb\\r\\tc\\x1b[31m\\x00\\x7f\\x9b\\u2028"
    assert printable("Ümit – ok") == "Ümit – ok"
    assert printable(None) == ""


def test_the_activity_table_stays_aligned_and_cuts_long_values_with_an_ellipsis() -> None:
    long = activity("k2")._replace(title="T" * 80, activity_type="Clicks" * 10)
    lines = format_activities(records(activity("k1"), long)).splitlines()
    assert len(lines) == 3
    assert all(line.index("https://") == lines[1].index("https://") for line in lines[1:])
    assert lines[0].index("URL") == lines[1].index("https://")
    assert "T" * 31 + "…" in lines[2] and "T" * 32 not in lines[2]


def test_timeline_and_activities_show_the_same_columns() -> None:
    items = records(activity("k1"))
    card = {"customer": {"CustomerId": "c-1", "Attributes": {}, "AlternateKeys": []},
            "activities": items, "continuation": None}  # fmt: skip
    timeline_heading = format_card(card).splitlines()[3].split()
    activities_heading = format_activities(items).splitlines()[0].split()
    assert timeline_heading == [h for h in activities_heading if h != "CUSTOMER"]
    assert timeline_heading == ["TIME", "TYPE", "ACTIVITY", "TITLE", "URL"]


def _parsers(parser: argparse.ArgumentParser):  # type: ignore[no-untyped-def]
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_option_and_argument_has_help_text() -> None:
    missing = [
        f"{parser.prog} {action.dest}"
        for parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


def test_the_store_help_names_every_store_url() -> None:
    timeline = next(p for p in _parsers(build_parser()) if p.prog == "footprint timeline")
    [store] = [a for a in timeline._actions if a.dest == "store"]
    assert all(url in store.help for url in STORE_URLS.split(", "))
