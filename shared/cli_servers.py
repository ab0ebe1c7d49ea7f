"""`footprint dev` and `footprint serve`: the Functions app's triggers served on this machine."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
from pathlib import Path

from shared import bootstrap
from shared.core.errors import FootprintError
from shared.settings import Settings


def cmd_dev(args: argparse.Namespace) -> int:
    from shared import devserver
    from shared.triggers import build_app

    settings = Settings.from_env()
    settings = dataclasses.replace(
        settings,
        store=args.store or settings.store,
        config_path=args.config or settings.config_path,
        storage_connection=args.connection
        or settings.storage_connection
        or "UseDevelopmentStorage=true",
        container=args.container or settings.container,
    )
    bootstrap.use_settings(settings)
    rt = bootstrap.runtime()
    rt.ports.source.ensure_container()  # type: ignore[attr-defined]
    period = args.reconcile_every or devserver.schedule_seconds(settings.reconcile_schedule)
    stop = threading.Event()
    try:
        devserver.run(build_app(), rt.ports.source, settings.container, settings.prefix, port=args.port,
                      poll_seconds=args.poll, reconcile_seconds=period, stop=stop,
                      key=settings.http_key or None)  # fmt: skip
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from shared import devserver
    from shared.triggers import build_app

    settings = Settings.from_env()
    settings = dataclasses.replace(settings, store=args.store or settings.store,
                                   config_path=args.config or settings.config_path)  # fmt: skip
    if args.source and not Path(args.source).is_dir():
        raise FootprintError(f"--source {args.source} is not a folder")
    bootstrap.use_settings(settings, source=args.source or "")
    bootstrap.runtime()  # a bad store or config: one line now, not on the first request
    try:
        server = devserver.serve_http(devserver.functions_by_name(build_app()), args.port,
                                      settings.http_key or None)  # fmt: skip
    except OSError as exc:
        raise FootprintError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    port = server.server_address[1]
    print(f"footprint serve: the UI on http://127.0.0.1:{port}/api/ui/ and the API on "
          f"http://127.0.0.1:{port}/api/ (Ctrl+C stops)", file=sys.stderr, flush=True)  # fmt: skip
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
    return 0
