"""The footprint commands of data rights (SPEC §11): erase a customer, list the receipts."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from shared import bootstrap
from shared.cli_output import emit
from shared.core.erasure.service import erase_customer
from shared.core.errors import NotFound
from shared.settings import Settings

EXIT_UNKNOWN = 1


def cmd_erase(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    config = bootstrap.load_config(args.config or settings.config_path)
    store, _ = bootstrap.open_store(args.store or settings.store, settings)
    try:
        receipt = erase_customer(
            store, bootstrap.open_erasures(store, settings.erasure_salt), bootstrap.open_audiences(store),
            bootstrap.audiences_of(config), args.customer_id, datetime.now(UTC),
        )  # fmt: skip
    except NotFound as exc:
        print(f"footprint: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN
    finally:
        store.close()
    emit(args.json, receipt, _format_receipt)
    return 0


def cmd_erasures(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    store, _ = bootstrap.open_store(args.store or settings.store, settings)
    emit(args.json, bootstrap.open_erasures(store).erasures(), lambda rs: "\n".join(map(_format_receipt, rs)) or "no erasures")
    return 0


def _format_receipt(receipt: dict[str, Any]) -> str:
    removed = ", ".join(f"{kind} {n}" for kind, n in receipt["Removed"].items())
    return f"{receipt['ErasedAt']}  {receipt['CustomerId']}  removed: {removed}"


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("erase", parents=[common], help="remove everything held about a customer")
    p.add_argument("customer_id", metavar="CUSTOMER_ID", help="the CustomerId to erase")
    p.set_defaults(run=cmd_erase)
    p = sub.add_parser("erasures", parents=[common], help="the erasure log: one receipt per erasure")
    p.set_defaults(run=cmd_erasures)
