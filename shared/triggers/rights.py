"""The HTTP API of data rights (SPEC §11): erase a customer, behind the function key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from shared import bootstrap
from shared.core.erasure.service import erase_customer
from shared.core.queries import check_id
from shared.triggers.http import json_errors

bp = func.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)


@bp.function_name("erase_customer")
@bp.route(route="customers/{id}", methods=["DELETE"])
@json_errors
def erase_customer_route(req: func.HttpRequest) -> Any:
    rt = bootstrap.runtime()
    store = rt.ports.store
    return erase_customer(store, bootstrap.open_erasures(store, rt.settings.erasure_salt), bootstrap.open_audiences(store),
                          bootstrap.audiences_of(rt.config), check_id(req.route_params.get("id", "")),
                          datetime.now(UTC))  # fmt: skip
