"""The footprint command as a newcomer reads it: rows that stay rows, hints to copy, plain reasons."""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

import orjson
import pytest

from shared.core.mapping import derived_customer_id
from tests.e2e import export
from tests.e2e.test_cli_ingest import footprint, ingest

R1 = derived_customer_id("RetailCustomers", "R-1")


def write_rows(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    store = tmp_path / "f.db"
    ingest(store, export.write_cdm_export(tmp_path / "export"))
    return store


def test_text_output_escapes_control_characters_so_a_value_cannot_split_a_row(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write_rows(root / "RetailCustomers" / "c.csv", ("CustomerRetailId", "FullName", "Email", "City"),
               [("R-1", "Ada\nMoreno", "ada@example.com", "Sea\x1b[2Jttle")])  # fmt: skip
    write_rows(root / "EmailPromotion" / "p.csv", export.COLUMNS,
               [export.event("e1", "2021-09-28T14:01:00Z", "R-1", "R-1", uri="https://x.example/a\nb",
                             title="line\r\nbreak")])  # fmt: skip
    store = tmp_path / "f.db"
    ingest(store, root)
    rows = footprint("activities", store=store).stdout.splitlines()
    assert len(rows) == 2 and rows[1].endswith("https://x.example/a\\nb")
    card = footprint("timeline", R1, store=store).stdout
    assert "https://x.example/a\\nb" in card and "Ada\\nMoreno" in card
    assert "\x1b" not in card and "Sea\\x1b[2Jttle" in card
    assert footprint("search", "R-1", store=store).stdout.count("\n") == 1


def test_status_tells_unmatched_now_by_activity_from_counts_at_load(loaded: Path) -> None:
    status = orjson.loads(footprint("status", "--json", store=loaded).stdout)
    assert status["unmatched_now"] == 2
    assert status["unmatched_now_by_activity"] == {"EmailPromotionClicks": 2}
    assert status["counts_when_loaded"]["unmatched"] == status["unmatched"]
    text = footprint("status", store=loaded).stdout
    assert "unmatched activities now: 2 (EmailPromotionClicks 2)" in text
    assert f"counted when each file was loaded (summed over files): rows={status['rows']}" in text


def test_the_next_page_hint_is_the_whole_command_to_copy(loaded: Path) -> None:
    first = footprint("timeline", R1, "--limit", "1", store=loaded).stdout
    hint = first.splitlines()[-1].removeprefix("  more: ")
    words = shlex.split(hint)
    assert words[:3] == ["footprint", "timeline", R1]
    assert ["--store", f"sqlite:///{loaded}"] == words[3:5] and "--continuation" in words
    second = footprint(*words[1:]).stdout

    def first_row(card: str) -> str:  # the row after the timeline's heading
        lines = card.splitlines()
        return lines[next(i for i, line in enumerate(lines) if line.strip().startswith("TIME")) + 1]

    assert first_row(second) != first_row(first)


def test_the_demo_hint_names_the_customer_and_the_store(tmp_path: Path) -> None:
    out = footprint("demo", "--dir", str(tmp_path / "demo")).stdout
    words = shlex.split(out.splitlines()[-1].removeprefix("  more: "))
    assert words[4] == f"sqlite:///{tmp_path / 'demo' / 'footprint.db'}"
    assert footprint(*words[1:]).stdout.startswith(f"Customer {words[2]} ")


def test_search_shows_the_key_that_matched(loaded: Path) -> None:
    [line] = footprint("search", "R-1", store=loaded).stdout.splitlines()
    assert line.startswith(f"{R1}  RetailCustomers:R-1  Ada Moreno")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("timeline", "x", "--limit", "501"), "500, got 501 (see footprint timeline --help)"),
        (("search", "x", "--limit", "101"), "100, got 101 (see footprint search --help)"),
        (("activities", "--limit", "10001"), "10000, got 10001 (see footprint activities --help)"),
        (("activities", "--limit", "0"), "--limit: must be between 1 and 10000, got 0"),
        (("reconcile", "--source", ".", "--budget", "-5"), "--budget: -5 must be more than 0"),
        (("reconcile", "--source", ".", "--budget", "0"), "see footprint reconcile --help"),
    ],
)
def test_limits_and_budgets_out_of_range_point_to_the_subcommands_help(args, message, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = footprint(*args, store=tmp_path / "f.db", ok=False)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_reconcile_of_an_entity_folder_says_why_nothing_ran(tmp_path: Path) -> None:
    from shared.demo import write_demo_export

    root = write_demo_export(tmp_path / "demo")
    done = footprint("reconcile", "--source", str(root / "EmailPromotion"), store=tmp_path / "f.db")
    assert "skipped=14" in done.stdout
    assert "14 of 14 files skipped: entity 'part-0001' feeds no configured activity" in done.stderr
    assert "looks like the entity folder 'EmailPromotion'" in done.stderr
    done = footprint("reconcile", "--source", str(root), "--prefix", "Email", store=tmp_path / "f.db")
    assert "0 files found" in done.stderr and "--prefix 'Email'" in done.stderr
    footprint("reconcile", "--source", str(root), store=tmp_path / "f.db")
    done = footprint("reconcile", "--source", str(root), store=tmp_path / "f.db")
    assert "nothing due" in done.stderr
