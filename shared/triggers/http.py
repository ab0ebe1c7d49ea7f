"""The HTTP API: customer cards, search, the activity preview, rejects, files, ledger health,
reprocessing."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func
import orjson

from shared import bootstrap
from shared.core import listings, queries
from shared.core.config_check import check_config
from shared.core.errors import BadRequest, ConfigError, NotFound, TransientError
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import ingest_file
from shared.core.model import FAILED, QUARANTINED, SKIPPED
from shared.core.paging import MAX_PAGE

log = logging.getLogger(__name__)
bp = func.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)
MAX_PATH = 1024
CONTINUATION_HEADER = "X-Continuation"
# GET /api/config/check opens at most this many files of an entity that no manifest describes.
CHECK_FILES_PER_ENTITY = 100


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        orjson.dumps(body), status_code=status, headers=headers, mimetype="application/json"
    )


def _listed(items: list[Any], continuation: str | None) -> func.HttpResponse:
    """A JSON array, as the route always returned; the next page's token in a header."""
    return _json(items, headers={CONTINUATION_HEADER: continuation} if continuation else None)


def json_errors(
    handler: Callable[[func.HttpRequest], Any],
) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Bad input becomes a 4xx JSON body; nothing else (no stack trace, no secrets) leaks out."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            result = handler(req)
            return result if isinstance(result, func.HttpResponse) else _json(result)
        except BadRequest as exc:
            return _json({"error": str(exc)}, 400)
        except NotFound as exc:
            return _json({"error": str(exc)}, 404)
        except (TransientError, ConfigError) as exc:
            log.error("%s failed: %s", req.url.split("?")[0], exc)
            return _json({"error": "the store is unavailable, try again"}, 503)
        except Exception:
            log.exception("%s failed", req.url.split("?")[0])
            return _json({"error": "internal error"}, 500)

    return wrapper


def _int(req: func.HttpRequest, name: str, maximum: int | None = None) -> int | None:
    """A whole-number parameter; the error gives the allowed range when there is one."""
    raw = req.params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:  # "²".isdigit(), int("²") fails
        allowed = f" from 1 to {maximum}" if maximum else ""
        raise BadRequest(f"{name} must be a whole number{allowed}, got {raw[:20]!r}")
    return int(raw)


query_int = _int  # for the other HTTP blueprints


def _limit(req: func.HttpRequest, maximum: int) -> int | None:
    return _int(req, "limit", maximum)


def _flag(req: func.HttpRequest, name: str) -> bool:
    raw = (req.params.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest(f"{name} must be true or false")
    return raw in ("true", "1")


@bp.function_name("get_customer")
@bp.route(route="customers/{id}", methods=["GET"])
@json_errors
def get_customer(req: func.HttpRequest) -> Any:
    store = bootstrap.runtime().ports.store
    return queries.customer_profile(store, req.route_params.get("id", ""), bootstrap.open_audiences(store))


@bp.function_name("get_timeline")
@bp.route(route="customers/{id}/activities", methods=["GET"])
@json_errors
def get_timeline(req: func.HttpRequest) -> Any:
    p = req.params
    types = [t for t in (p.get("type") or "").split(",") if t]
    query = queries.timeline_query(
        types, p.get("from"), p.get("to"), _limit(req, MAX_PAGE), p.get("continuation")
    )
    store = bootstrap.runtime().ports.store
    return queries.customer_card(store, req.route_params.get("id", ""), query, bootstrap.open_audiences(store))


@bp.function_name("search_customers")
@bp.route(route="customers", methods=["GET"])
@json_errors
def search_customers(req: func.HttpRequest) -> Any:
    found, token = queries.search(
        bootstrap.runtime().ports.store, req.params.get("q", ""), _limit(req, queries.MAX_SEARCH_RESULTS),
        req.params.get("continuation"),
    )  # fmt: skip
    return _listed(found, token)


@bp.function_name("list_activities")
@bp.route(route="activities", methods=["GET"])
@json_errors
def list_activities(req: func.HttpRequest) -> Any:
    store = bootstrap.runtime().ports.store
    limit = _limit(req, queries.MAX_PREVIEW)
    limit = 100 if limit is None else limit  # limit=0 is refused, not taken for the default
    items, token = queries.preview(
        store, req.params.get("type") or None, _flag(req, "unmatched"), limit,
        req.params.get("continuation"),
    )  # fmt: skip
    return _listed(items, token)


@bp.function_name("list_rejects")
@bp.route(route="rejects", methods=["GET"])
@json_errors
def list_rejects(req: func.HttpRequest) -> Any:
    p = req.params
    return listings.rejects(
        bootstrap.runtime().ports.store, p.get("file") or None, _int(req, "limit"),
        p.get("continuation"),
    )  # fmt: skip


@bp.function_name("list_files")
@bp.route(route="files", methods=["GET"])
@json_errors
def list_files(req: func.HttpRequest) -> Any:
    p = req.params
    return listings.files(
        bootstrap.runtime().ports.ledger, p.get("status") or None, _int(req, "limit"),
        p.get("continuation"),
    )  # fmt: skip


@bp.function_name("get_status")
@bp.route(route="status", methods=["GET"])
@json_errors
def get_status(req: func.HttpRequest) -> Any:
    rt = bootstrap.runtime()
    return queries.status(rt.ports.ledger, rt.ports.store)


@bp.function_name("reconcile_now")
@bp.route(route="reconcile", methods=["POST"])
@json_errors
def reconcile_now(req: func.HttpRequest) -> Any:
    """A reconciler pass now, as the timer runs it; `retryFailed` also runs failed and
    quarantined files again, back-off or not."""
    retry, prefix = _reconcile_body(req)
    rt = bootstrap.runtime()
    report = reconcile(rt.ports, rt.config, rt.options, prefix=prefix, retry_failed=retry,
                       budget_seconds=rt.settings.reconcile_budget_seconds)  # fmt: skip
    return report.to_record()


@bp.function_name("check_config")
@bp.route(route="config/check", methods=["GET"])
@json_errors
def check_config_now(req: func.HttpRequest) -> Any:
    """The app's configuration against the export container, as `footprint config check`."""
    rt = bootstrap.runtime()
    return check_config(rt.config, rt.ports.source, files_per_entity=CHECK_FILES_PER_ENTITY)


@bp.function_name("reprocess")
@bp.route(route="reprocess", methods=["POST"])
@json_errors
def reprocess(req: func.HttpRequest) -> Any:
    rt = bootstrap.runtime()
    path = _export_path(req)
    if rt.ports.source is None:
        raise BadRequest("this server reads no export: start footprint serve with --source FOLDER")
    report = ingest_file(rt.ports, rt.config, path, rt.options, force=True)
    if report.status == SKIPPED and report.etag is None:
        raise NotFound(f"no file {path!r} in the export container")
    if report.retryable:
        raise TransientError(f"reprocess {path}: {report.error}")
    if report.status in (FAILED, QUARANTINED):
        # The file, not the request, is at fault: say why, as the ledger has it.
        return _json({**report.to_record(), "error": report.error or report.status}, 422)
    return report.to_record()


def _export_path(req: func.HttpRequest) -> str:
    """The body's path, which may only name a file inside the export container and prefix."""
    try:
        body = orjson.loads(req.get_body() or b"null")
    except orjson.JSONDecodeError:
        raise BadRequest('body must be JSON like {"path": "Entity/2021/part.csv"}') from None
    path = body.get("path") if isinstance(body, dict) else None
    if not isinstance(path, str) or not path.strip():
        raise BadRequest('body must be JSON like {"path": "Entity/2021/part.csv"}')
    parts = path.split("/")
    if (
        len(path) > MAX_PATH or path.startswith("/") or "\\" in path or ":" in parts[0]
        or any(p in ("", ".", "..") for p in parts) or any(ord(c) < 32 for c in path)
    ):  # fmt: skip
        raise BadRequest("path must be relative to the export container, without '..'")
    return path


def _reconcile_body(req: func.HttpRequest) -> tuple[bool, str]:
    """retryFailed and prefix of a POST /api/reconcile body; no body is a plain pass."""
    example = '{"retryFailed": true, "prefix": "Entity/2021"}'
    try:
        body = orjson.loads(req.get_body() or b"{}")
    except orjson.JSONDecodeError:
        raise BadRequest(f"body must be JSON like {example}") from None
    if not isinstance(body, dict) or set(body) - {"retryFailed", "prefix"}:
        raise BadRequest(f"body must be JSON like {example}")
    retry, prefix = body.get("retryFailed", False), body.get("prefix") or ""
    if not isinstance(retry, bool):
        raise BadRequest("retryFailed must be true or false")
    if not isinstance(prefix, str):
        raise BadRequest("prefix must be a string")
    parts = prefix.strip("/").split("/")
    if (
        len(prefix) > MAX_PATH or any(p in (".", "..") or ":" in p or "\\" in p for p in parts)
        or any(ord(c) < 32 for c in prefix)
    ):  # fmt: skip
        raise BadRequest("prefix must be a folder of the export container, without '..'")
    return retry, prefix.strip("/")
