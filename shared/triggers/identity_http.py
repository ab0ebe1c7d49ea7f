"""The HTTP API of identity: one visitor, its link or conflict and its activities (SPEC §8)."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared import bootstrap
from shared.core import queries
from shared.core.identity import views
from shared.triggers.http import json_errors, query_int

bp = func.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)


@bp.function_name("get_visitor")
@bp.route(route="visitors/{id}", methods=["GET"])
@json_errors
def get_visitor(req: func.HttpRequest) -> Any:
    p = req.params
    types = [t for t in (p.get("type") or "").split(",") if t]
    query = queries.timeline_query(
        types, p.get("from"), p.get("to"), query_int(req, "limit"), p.get("continuation")
    )
    rt = bootstrap.runtime()
    return views.visitor_view(
        rt.ports.store, req.route_params.get("id", ""), query, rt.config.conflict_rules()
    )
