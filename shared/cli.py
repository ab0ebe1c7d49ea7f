"""The `footprint` command: the same services as the triggers, for a terminal."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from shared import bootstrap, cli_audiences, cli_erasure, cli_listing, cli_servers
from shared.bootstrap import STORE_URLS
from shared.cli_hints import reconcile_notes, timeline_command
from shared.cli_output import (
    Progress,
    emit,
    format_activities,
    format_card,
    format_conflicts,
    format_customers,
    format_export,
    format_fields,
    format_inspect,
    format_report,
    format_status,
    format_visitor,
    next_page,
)
from shared.core import queries
from shared.core.cdm.catalog import (
    Catalog,
    inspect,
    is_manifest_name,
    is_metadata,
    is_partition_folder,
)
from shared.core.errors import BadRequest, FootprintError, StorageFull
from shared.core.identity import views as identity_views
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import Ports, ingest_file
from shared.core.model import FAILED, QUARANTINED, IngestReport
from shared.core.paging import MAX_PAGE
from shared.settings import Settings

EXIT_BAD_INPUT = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the file in hand is let go at once (see ingest_file)."""


def _terminate(signum: int, frame: object) -> NoReturn:
    raise Terminated()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the message says what to fix.
        self.exit(EXIT_BAD_INPUT, f"footprint: {message} (see {self.prog} --help)\n")


def _context(args: argparse.Namespace, create: bool = False) -> tuple[Settings, Any, Any, Any]:
    """Settings, config, store and ledger; only commands that write `create` a store."""
    settings = Settings.from_env()
    config = bootstrap.load_config(args.config or settings.config_path)
    store, ledger = bootstrap.open_store(args.store or settings.store, settings, config, create=create)
    return settings, config, store, ledger


def _ingest_targets(paths: Sequence[str], root: str | None) -> list[tuple[Path, list[str]]]:
    """Group the command's paths by the export root they are read from, files relative to it,
    so that a file has one ledger path however the command is pointed at it."""
    targets: dict[Path, dict[str, None]] = {}  # an ordered set of files per root
    for raw in paths:
        path = Path(raw).resolve()
        if not (path.is_file() or path.is_dir()):
            raise FootprintError(f"no such file or folder: {raw}")
        base = Path(root).resolve() if root else _default_root(path)
        if base != path and base not in path.parents:
            raise FootprintError(f"{raw} is not inside --root {root}")
        found = sorted(path.rglob("*")) if path.is_dir() else [path]
        files = targets.setdefault(base, {})
        files.update(dict.fromkeys(p.relative_to(base).as_posix() for p in found if p.is_file()))
    return [(base, sorted(files, key=lambda f: not is_metadata(f))) for base, files in targets.items()]


def _default_root(path: Path) -> Path:
    """The export root of a file or folder: the nearest folder at or above it with a manifest
    (and above that, while the parent holds one too: a subManifest's folder is inside its
    parent's), else the folder above the entity folder of a date partition given or lying in
    it (2021/09/28/14), else the folder given."""
    folders = [path] if path.is_dir() else []
    folders += list(path.parents)
    with_manifest = [_has_manifest(f) for f in folders]
    if any(with_manifest):
        nearest = with_manifest.index(True)
        while nearest + 1 < len(folders) and with_manifest[nearest + 1]:
            nearest += 1
        return folders[nearest]
    if path.is_dir() and not is_partition_folder(path.name):
        return path
    for folder in folders:
        if not is_partition_folder(folder.name):
            return folder.parent
    return path.parent


def _has_manifest(folder: Path) -> bool:
    try:
        return any(is_manifest_name(p.name) for p in folder.iterdir() if p.is_file())
    except OSError:  # a folder above the export we may not read
        return False


def cmd_ingest(args: argparse.Namespace) -> int:
    from shared.adapters.local_files import LocalFileSource

    targets = _ingest_targets(args.paths, args.root)  # a wrong path creates no store
    settings, config, store, ledger = _context(args, create=True)
    total = sum(len(files) for _, files in targets)
    progress, done, worst = Progress("ingest"), 0, 0
    for base, files in targets:
        ports = bootstrap.ports(LocalFileSource(base), store, ledger, config, settings.erasure_salt)
        options = bootstrap.ingest_options(settings, ports=ports)
        # One catalog per export root: its manifests and entity documents are read once a run.
        catalog = Catalog(ports.source, cache=True, metadata=options.metadata)
        for path in files:
            report = _ingest_one(ports, config, path, options, args.force, catalog)
            report.file = (base / path).as_posix() if not args.relative else path
            emit(args.json, report.to_record(), lambda _, r=report: format_report(r))
            worst = max(worst, 1 if report.status in (FAILED, QUARANTINED) else 0)
            done += 1
            progress(done, total)
            if report.halt:  # a full store: every file after this one would fail the same way
                left = f"; {total - done} files not tried" if total > done else ""
                print(f"footprint: stopped: {report.halt}{left}", file=sys.stderr)
                store.close()
                return 1
    store.close()
    return worst


def _ingest_one(ports: Ports, config: Any, path: str, options: Any, force: bool,
                catalog: Catalog) -> IngestReport:  # fmt: skip
    try:
        return ingest_file(ports, config, path, options, force=force,
                           catalog=None if is_metadata(path) else catalog)  # fmt: skip
    except StorageFull as exc:  # not even the claim fitted
        return IngestReport(path, None, FAILED, error=str(exc), retryable=True, halt=str(exc))


def cmd_reconcile(args: argparse.Namespace) -> int:
    settings, config, store, ledger = _context(args, create=True)
    source = bootstrap.open_source(args.source, settings)
    ports = bootstrap.ports(source, store, ledger, config, settings.erasure_salt)
    report = reconcile(
        ports, config, bootstrap.ingest_options(settings, ports=ports), prefix=args.prefix.strip("/"),
        budget_seconds=args.budget, progress=Progress("reconcile"), retry_failed=args.retry_failed,
    )  # fmt: skip
    store.close()
    emit(args.json, report.to_record(), format_fields)
    for note in reconcile_notes(report, config, args.source, args.prefix.strip("/")):
        print(f"footprint: {note}", file=sys.stderr)
    return 1 if report.failed or report.quarantined else 0


def cmd_timeline(args: argparse.Namespace) -> int:
    _, _, store, _ = _context(args)
    query = queries.timeline_query(
        args.type or (), args.since, args.until, args.limit, args.continuation,
        names=("--since", "--until"),
    )
    card = queries.customer_card(store, args.customer_id, query, bootstrap.open_audiences(store))
    emit(args.json, card, lambda c: format_card(c, timeline_command(args.customer_id, args)))
    return 0


def cmd_visitor(args: argparse.Namespace) -> int:
    _, config, store, _ = _context(args)
    query = queries.timeline_query(
        args.type or (), args.since, args.until, args.limit, args.continuation
    )
    view = identity_views.visitor_view(store, args.visitor_id, query, config.conflict_rules())
    emit(args.json, view, format_visitor)
    return 0


def cmd_identities(args: argparse.Namespace) -> int:
    _, config, store, _ = _context(args)
    found = identity_views.conflicts(store, config.conflict_rules(), args.limit)
    emit(args.json, found, format_conflicts)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    _, _, store, _ = _context(args)
    found, token = queries.search(store, args.text, args.limit, args.continuation)
    emit(args.json, found, lambda c: format_customers(c, args.text))
    next_page(args, token, carried=False)
    return 0


def cmd_activities(args: argparse.Namespace) -> int:
    _, _, store, _ = _context(args)
    items, token = queries.preview(store, args.type, args.unmatched, args.limit, args.continuation)
    emit(args.json, items, format_activities)
    next_page(args, token, carried=False)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _, _, store, ledger = _context(args)
    emit(args.json, queries.status(ledger, store), format_status)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from shared.core.export.profiles import export_profiles, receipt_records

    settings, config, store, _ = _context(args)
    target = bootstrap.open_export_target(args.dest, settings)
    try:
        audiences = bootstrap.audience_export(store, config)
        receipts = list(receipt_records(export_profiles(store, audiences, target, args.partition_rows)))
    finally:
        store.close()
    emit(args.json, receipts, format_export)
    return 0


def cmd_cdm_inspect(args: argparse.Namespace) -> int:
    from shared.adapters.local_files import LocalFileSource

    if not Path(args.path).is_dir():
        raise FootprintError(f"{args.path} is not a folder")
    result = inspect(LocalFileSource(args.path), label=args.path)
    emit(args.json, result, format_inspect)
    # A manifest naming entity documents the export lacks describes less than it claims.
    return 1 if any(e["missingDocument"] for e in result["entities"]) else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from shared.demo import run_demo

    return run_demo(args)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _limit(maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be between 1 and {maximum}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


_TYPE_HELP = (
    "an activity's name (ActivityType, e.g. EmailPromotionClicks) or its configured "
    "activityType (ActivityTypeDisplay, e.g. WebLog)"
)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--store", help=f"store URL ({STORE_URLS}); default FOOTPRINT_STORE")
    common.add_argument("--config", help="configuration file; default FOOTPRINT_CONFIG or built-in")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="log each step; -vv logs the Azure SDK's HTTP requests too",
    )  # fmt: skip
    parser = _Parser(
        prog="footprint", description="Web events from CDM exports into customer activities."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "demo", parents=[common], help="write a sample export, ingest it, show a card"
    )
    p.add_argument("--dir", default="demo", help="where to write the sample export and store")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("ingest", parents=[common], help="ingest files or folders")
    p.add_argument("paths", nargs="+", metavar="PATH", help="export files or folders to read")
    p.add_argument("--root", help="export root the paths lie in (default: each folder given)")
    p.add_argument("--force", action="store_true", help="process again even if done at this ETag")
    p.add_argument("--relative", action="store_true", help="print paths relative to their root")
    p.set_defaults(run=cmd_ingest)

    p = sub.add_parser("reconcile", parents=[common], help="process what the ledger has not done")
    p.add_argument(
        "--source", required=True, help="local export folder, or blob:CONTAINER[/PREFIX]"
    )
    p.add_argument("--prefix", default="", help="only files under this folder of the source")
    p.add_argument(
        "--budget", type=_seconds, help="stop starting new files after this many seconds (> 0)"
    )
    p.add_argument("--retry-failed", action="store_true",
                   help="also run failed and quarantined files again now, back-off or not")  # fmt: skip
    p.set_defaults(run=cmd_reconcile)

    p = sub.add_parser("timeline", parents=[common], help="a customer card: profile and activities")
    p.add_argument("customer_id", metavar="CUSTOMER_ID", help="the customer's CustomerId")
    p.add_argument("--type", action="append", help=_TYPE_HELP + " (repeatable)")
    p.add_argument("--since", help="from this time (ISO 8601), inclusive")
    p.add_argument("--until", help="up to this time (ISO 8601), exclusive")
    p.add_argument("--limit", type=_limit(MAX_PAGE), help=f"activities per page, 1 to {MAX_PAGE} (default 50)")
    p.add_argument("--continuation", help="token printed by the previous page")
    p.set_defaults(run=cmd_timeline)

    p = sub.add_parser("visitor", parents=[common], help="a visitor: its link or conflict, activities")
    p.add_argument("visitor_id", metavar="VISITOR_ID", help="the visitor key's value (SDK user id)")
    p.add_argument("--type", action="append", help="activity type (repeatable)")
    p.add_argument("--since", help="from this time (ISO 8601), inclusive")
    p.add_argument("--until", help="up to this time (ISO 8601), exclusive")
    p.add_argument("--limit", type=_positive, help="activities per page (default 50, at most 500)")
    p.add_argument("--continuation", help="token printed by the previous page")
    p.set_defaults(run=cmd_visitor)

    p = sub.add_parser("identities", parents=[common], help="visitors linked to several keys")
    p.add_argument("--conflicts", action="store_true", required=True,
                   help="list visitors linked to more than one key, with the winner")  # fmt: skip
    p.add_argument("--limit", type=_positive, help="at most this many visitors")
    p.set_defaults(run=cmd_identities)

    p = sub.add_parser("search", parents=[common], help="customers whose key or attribute matches")
    p.add_argument("text", metavar="TEXT", help="part of a customer key, CustomerId or attribute")
    p.add_argument(
        "--limit", type=_limit(queries.MAX_SEARCH_RESULTS),
        help=f"customers to show, 1 to {queries.MAX_SEARCH_RESULTS} (default 20)",
    )  # fmt: skip
    p.add_argument("--continuation", help="token printed by the previous page (on stderr)")
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("activities", parents=[common], help="UnifiedActivity preview")
    p.add_argument("--type", help=_TYPE_HELP)
    p.add_argument("--unmatched", action="store_true", help="only activities with no customer yet")
    p.add_argument(
        "--limit", type=_limit(queries.MAX_PREVIEW),
        help=f"activities to show, 1 to {queries.MAX_PREVIEW} (default all)",
    )  # fmt: skip
    p.add_argument("--continuation", help="token printed by the previous page (on stderr)")
    p.set_defaults(run=cmd_activities)

    p = sub.add_parser("status", parents=[common], help="ledger health")
    p.set_defaults(run=cmd_status)
    cli_listing.add_commands(sub, common, _limit(MAX_PAGE), _Parser)

    p = sub.add_parser(
        "dev", parents=[common], help="run the Functions app locally against Azurite"
    )
    p.add_argument(
        "--connection", help="storage connection string (default: settings, else Azurite)"
    )
    p.add_argument("--container", help="export container to watch (default FOOTPRINT_CONTAINER)")
    p.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071)")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between container listings")
    p.add_argument("--reconcile-every", type=float, help="seconds between reconciler runs")
    p.set_defaults(run=cli_servers.cmd_dev)

    p = sub.add_parser("export", parents=[common], help="write customers, activities, measures and segments as a CDM folder")
    p.add_argument("dest", help="a local folder, or blob:CONTAINER[/PREFIX]")
    p.add_argument("--partition-rows", type=_positive, default=1_000_000,
                   help="rows per CSV partition at most (default 1,000,000)")
    p.set_defaults(run=cmd_export)

    cli_audiences.add_parsers(sub, common, _Parser, _positive)
    cli_erasure.add_parsers(sub, common)

    p = sub.add_parser(
        "serve", parents=[common], help="the HTTP API and web UI over a store, on 127.0.0.1"
    )
    p.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071; 0: any free)")
    p.add_argument("--source", help="local export folder that POST /api/reprocess reads")
    p.set_defaults(run=cli_servers.cmd_serve)

    cdm = sub.add_parser("cdm", help="Common Data Model folders")
    cdm_sub = cdm.add_subparsers(dest="cdm_command", required=True, parser_class=_Parser)
    p = cdm_sub.add_parser("inspect", parents=[common], help="entities, attributes and partitions")
    p.add_argument("path", metavar="PATH", help="a CDM folder (manifest or model.json)")
    p.set_defaults(run=cmd_cdm_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to print the next page's command
    verbose = getattr(args, "verbose", 0)
    # `dev` is a server: one line per file by default. The SDK's request logs only with -vv.
    level = logging.INFO if verbose or args.command == "dev" else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        logging.getLogger("azure").setLevel(logging.WARNING)
    if threading.current_thread() is threading.main_thread():  # where signals are handled
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except BadRequest as exc:
        command = " ".join(filter(None, (args.command, getattr(args, "cdm_command", None))))
        print(f"footprint: {exc} (see footprint {command} --help)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FootprintError as exc:
        for line in str(exc).splitlines() or [""]:  # a config's errors come one per line
            print(f"footprint: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:  # the file in hand was let go, due again
        terminated = isinstance(exc, Terminated)
        print(f"footprint: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
