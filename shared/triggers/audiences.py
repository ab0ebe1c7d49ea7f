"""The HTTP API of segments (SPEC §9): sizes, members and the change feed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from shared import bootstrap
from shared.core.audiences import views
from shared.triggers.http import _int, json_errors

bp = func.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)


def _context() -> tuple[Any, Any, Any]:
    rt = bootstrap.runtime()
    return rt.ports.store, bootstrap.open_audiences(rt.ports.store), bootstrap.audiences_of(rt.config)


@bp.function_name("list_segments")
@bp.route(route="segments", methods=["GET"])
@json_errors
def list_segments(req: func.HttpRequest) -> Any:
    profiles, store, audiences = _context()
    at, now = views.as_of(req.params.get("asOf"), datetime.now(UTC), "asOf")
    return views.segment_list(profiles, store, audiences, at, now)


@bp.function_name("segment_members")
@bp.route(route="segments/{name}/members", methods=["GET"])
@json_errors
def segment_members(req: func.HttpRequest) -> Any:
    profiles, store, audiences = _context()
    at, now = views.as_of(req.params.get("asOf"), datetime.now(UTC), "asOf")
    return views.segment_members(profiles, store, audiences, req.route_params["name"], at, now,
                                 _int(req, "limit"), req.params.get("continuation"))  # fmt: skip


@bp.function_name("segment_changes")
@bp.route(route="segments/{name}/changes", methods=["GET"])
@json_errors
def segment_changes(req: func.HttpRequest) -> Any:
    _, store, audiences = _context()
    return views.segment_changes(store, audiences, req.route_params["name"], req.params.get("since"),
                                 _int(req, "limit"))  # fmt: skip
