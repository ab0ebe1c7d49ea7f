"""The footprint commands that list what a run left behind and check a config before one:
`rejects`, `files` and `config check`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared import bootstrap
from shared.cli_output import emit, format_check, format_files, format_rejects, next_page
from shared.core import listings
from shared.core.config_check import check_config
from shared.core.errors import FootprintError
from shared.core.model import STATUSES
from shared.settings import Settings

EXIT_MISSING = 1


def cmd_rejects(args: argparse.Namespace) -> int:
    store, _ = _open(args)
    page = listings.rejects(store, args.file, args.limit, args.continuation)
    store.close()
    emit(args.json, page, format_rejects)
    next_page(args, page["continuation"], carried=True)
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    store, ledger = _open(args)
    page = listings.files(ledger, args.status, args.limit, args.continuation)
    store.close()
    emit(args.json, page, format_files)
    next_page(args, page["continuation"], carried=True)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from shared.adapters.local_files import LocalFileSource

    path = args.config or Settings.from_env().config_path
    config = bootstrap.load_config(path)  # a bad config: ConfigError, exit 2, as at start-up
    source = None
    if args.against is not None:
        if not Path(args.against).is_dir():
            raise FootprintError(f"--against {args.against} is not a folder")
        source = LocalFileSource(args.against)
    result = {"config": path or "built-in", **check_config(config, source)}
    emit(args.json, result, format_check)
    return 0 if result["ok"] else EXIT_MISSING


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    settings = Settings.from_env()
    return bootstrap.open_store(args.store or settings.store, settings)


def add_commands(
    sub: Any, common: argparse.ArgumentParser, limit: Callable[[str], int], parser_class: type
) -> None:
    """Register the commands of this module on the footprint parser."""
    p = sub.add_parser("rejects", parents=[common], help="rejected rows: file, row, reason, excerpt")
    p.add_argument("--file", help="only the rejects of this file (its path in the export)")
    p.add_argument("--limit", type=limit, help="rejects per page (default 50, at most 500)")
    p.add_argument("--continuation", help="token printed by the previous page")
    p.set_defaults(run=cmd_rejects)

    p = sub.add_parser("files", parents=[common], help="files in the ledger, each at its latest version")
    p.add_argument("--status", help=f"only files with this status: {', '.join(STATUSES)}")
    p.add_argument("--limit", type=limit, help="files per page (default 50, at most 500)")
    p.add_argument("--continuation", help="token printed by the previous page")
    p.set_defaults(run=cmd_files)

    config = sub.add_parser("config", help="the configuration file")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=parser_class)
    p = config_sub.add_parser(
        "check", parents=[common], help="validate a config; with --against, the columns it needs"
    )
    p.add_argument("--against", metavar="EXPORT", help="local export folder to check the columns of")
    p.set_defaults(run=cmd_config_check)
