"""The web UI's static files: public, holding no data; every data call goes to the key routes."""

from __future__ import annotations

import functools
import importlib.resources

import azure.functions as func

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)

# The fixed list served; anything else is 404, so no path from a request ever reaches the disk.
FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "views.js": "text/javascript",
    "render.js": "text/javascript",
    "style.css": "text/css",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@functools.cache
def _read(name: str) -> bytes:
    return importlib.resources.files("shared").joinpath("ui", name).read_bytes()


def static_file(name: str) -> func.HttpResponse:
    """One of FILES with its content type and the security headers; 404 for any other name."""
    if name not in FILES:
        return func.HttpResponse(
            b"not found", status_code=404, mimetype="text/plain", headers=SECURITY_HEADERS
        )
    return func.HttpResponse(
        _read(name), mimetype=FILES[name], charset="utf-8", headers=SECURITY_HEADERS
    )


@bp.function_name("ui")
# The app's default auth level overrides a blueprint's, so the route says anonymous itself.
@bp.route(route="ui/{file?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ui(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("file") or ""
    if not name and not req.url.split("?")[0].endswith("/"):
        # /api/ui: the page's relative links need the trailing slash.
        return func.HttpResponse(status_code=302, headers={"Location": "ui/", **SECURITY_HEADERS})
    return static_file(name or "index.html")
