"""Files built to cost without bound: a gzip that expands past the size limit, a file of
garbage rows, a lone CR inside a field. Each ends with its reason and keeps the rows before."""

from __future__ import annotations

import gzip
from pathlib import Path

from shared.adapters.local_files import LocalFileSource
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from shared.core.model import DONE, FAILED
from shared.core.reading.records import Limits
from tests.reliability import summary
from tests.reliability.hostile import ENTITY, goods, ids, row, table
from tests.reliability.stores import CONFIG, Backend, Stopwatch


def _ingest(backend: Backend, root: Path, path: str, data: bytes, options: IngestOptions):  # type: ignore[no-untyped-def]
    """Ingest one file written at `path`; the report, the file's rejects and its landed ids."""
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(data)
    store, ledger = backend.fresh().open()
    try:
        report = ingest_file(Ports(LocalFileSource(root), store, ledger), CONFIG, path, options)
        entry = ledger.get(path, report.etag)
        rejects = [r for r in store.list_rejects(None) if r.file == path]
        activities = [a for a in store.list_activities(None, False, None) if a.source_file == path]
    finally:
        store.close()
    return report, entry, rejects, activities


def test_a_gzip_expanding_past_the_size_limit_fails_with_its_reason_and_keeps_the_rows_before(
    backend: Backend, tmp_path: Path
) -> None:
    # 8 MiB of filtered rows behind three good ones, compressed to a few kilobytes: the stored
    # size is far under the 1 MiB limit, what it expands to is not.
    filler = ["f-1", "2021-09-29T10:00:00Z", "PageAction", "Not a promotion", "u", "t", "k", "k"]
    body = table([*goods("bomb"), *[filler] * 80_000])
    path = f"{ENTITY}/2021/bomb.csv.gz"
    watch = Stopwatch()
    options = IngestOptions(limits=Limits(max_file_bytes=1 << 20))
    report, entry, _, activities = _ingest(
        backend, tmp_path, path, gzip.compress(body, mtime=0), options
    )
    landed = {a.source_activity_id for a in activities}
    ok = (
        report.status == FAILED
        and entry.permanent
        and "after decompression" in (report.error or "")
        and report.counts.rows < 80_000
    )
    lost = len(set(ids("bomb")) - landed)
    summary.record(f"bounds: gzip past the size limit / {backend.name}", ok and not lost, lost,
                   0, watch.seconds)  # fmt: skip
    assert ok, report
    assert not lost, landed


def test_a_file_of_garbage_rows_stops_at_the_reject_cap_and_keeps_the_rows_before(
    backend: Backend, tmp_path: Path
) -> None:
    garbage = [["", "2021-09-29T10:00:00Z", "PageAction", "Email promotion", "u", "t", "k", "k"]]
    body = table(goods("cap") + garbage * 20_000)
    path = f"{ENTITY}/2021/garbage.csv"
    watch = Stopwatch()
    options = IngestOptions(batch_size=500, max_rejects_per_file=300)
    report, entry, rejects, activities = _ingest(backend, tmp_path, path, body, options)
    landed = {a.source_activity_id for a in activities}
    ok = (
        report.status == FAILED
        and entry.permanent
        and "too many rejected rows (wrong mapping or not an export?)" in (report.error or "")
        and len(rejects) == 300
        and 300 < report.counts.rejected < 20_000
    )
    lost = len(set(ids("cap")) - landed)
    summary.record(f"bounds: rejects past the cap / {backend.name}", ok and not lost, lost, 0,
                   watch.seconds)  # fmt: skip
    assert ok, (report, len(rejects))
    assert not lost, landed


def test_a_lone_cr_inside_a_field_of_a_crlf_file_is_data(
    backend: Backend, tmp_path: Path
) -> None:
    rows = [*goods("cr"), row("cr-split", user="R-0\r01"), row("cr-after")]
    body = table(rows).replace(b"\n", b"\r\n").replace(b"R-0\r\r\n01", b"R-0\r01")
    assert body.count(b"\r") == body.count(b"\r\n") + 2  # the two foreign keys hold a lone CR
    path = f"{ENTITY}/2021/crlf.csv"
    watch = Stopwatch()
    report, _, rejects, activities = _ingest(backend, tmp_path, path, body, IngestOptions())
    keys = {a.source_activity_id: a.activity_foreign_key for a in activities}
    want = {**dict.fromkeys(ids("cr"), "R-001"), "cr-split": "R-0\r01", "cr-after": "R-001"}
    ok = report.status == DONE and not rejects and keys == want
    summary.record(f"parsing: lone CR in a CRLF file / {backend.name}", ok,
                   len(set(want) - set(keys)), 0, watch.seconds)  # fmt: skip
    assert ok, (report, [r.reason for r in rejects], keys)


def test_a_cr_only_file_still_reads_line_by_line(tmp_path: Path) -> None:
    body = table(goods("cro")).replace(b"\n", b"\r")
    path = f"{ENTITY}/2021/cr.csv"
    report, _, rejects, activities = _ingest(
        Backend("sqlite", tmp_path), tmp_path, path, body, IngestOptions()
    )
    assert report.status == DONE and not rejects
    assert {a.source_activity_id for a in activities} == set(ids("cro"))
