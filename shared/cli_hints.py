"""What the footprint command tells a person beside its output: the next command, why nothing ran."""

from __future__ import annotations

import argparse
import shlex
from collections import Counter
from pathlib import PurePosixPath

from shared.core.config import Config
from shared.core.ingest.reconciler import ReconcileReport
from shared.core.model import SKIPPED


def timeline_command(customer_id: str, args: argparse.Namespace) -> str:
    """The `footprint timeline` command that asked for this page, to continue it by copying."""
    words = ["footprint", "timeline", customer_id]
    for flag, value in (("--store", args.store), ("--config", args.config)):
        if value:
            words += [flag, value]
    for kind in getattr(args, "type", None) or ():
        words += ["--type", kind]
    for flag in ("since", "until", "limit"):
        value = getattr(args, flag, None)
        if value is not None:
            words += [f"--{flag}", str(value)]
    return shlex.join(words)


def reconcile_notes(
    report: ReconcileReport, config: Config, source: str, prefix: str
) -> list[str]:
    """Why a reconcile pass loaded nothing, for a person: what was found and what to change."""
    where = f"{source} under --prefix {prefix!r}" if prefix else source
    notes = []
    if report.listed == 0:
        notes.append(f"0 files found in {where}")
        if prefix:
            notes.append("--prefix is a folder of the source, named whole (e.g. EmailPromotion)")
    elif report.processed == 0:
        notes.append(f"nothing due: the ledger has all {report.listed} files of {where} at their "
                     "current ETag (done, failed for good, or waiting to retry)")  # fmt: skip
    elif report.done == 0:
        skips = Counter(r.reason or r.error for r in report.reports if r.status == SKIPPED and (r.reason or r.error))
        for reason, count in skips.most_common(3):
            notes.append(f"{count} of {report.processed} files skipped: {reason}")
    folder = _root_name(source)
    entities = {a.entity for a in config.activities} | {s.entity for s in config.customerSources}
    if report.done == 0 and folder in entities:
        notes.append(f"{source} looks like the entity folder {folder!r}, not an export root: "
                     f"give the folder above it as --source, and {folder} as --prefix")  # fmt: skip
    return notes


def _root_name(source: str) -> str:
    location = source.removeprefix("blob:").rstrip("/") if source.startswith("blob:") else source
    return PurePosixPath(location.replace("\\", "/").rstrip("/")).name
