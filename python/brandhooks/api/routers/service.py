"""The service's own routes: where things are (/), health, stats and metrics, and the brand
portal's static files (python/brandhooks/portal)."""

from __future__ import annotations

import re
from pathlib import Path as FilePath

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ... import __version__
from ...metrics import exposition
from ..access import AdminAccess, AppHub
from ..envelope import ApiError, error_answers, ok
from ..models import HealthEnvelope, StatsEnvelope

PORTAL_DIR = FilePath(__file__).parents[2] / "portal"
PORTAL_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
#: Every portal answer: nothing but this server's own files runs or loads (no inline script or
#: style, no framing, no form posting anywhere), and no URL leaks to another site.
PORTAL_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Small files that change with the package: the browser asks again each time.
    "Cache-Control": "no-cache",
}


def portal_file(name: str) -> Response:
    """One file of the portal by its bare name; only the package's own files exist (no path)."""
    path = PORTAL_DIR / name
    if not re.fullmatch(r"[a-z][a-z0-9_-]*\.[a-z]+", name) or path.suffix not in PORTAL_TYPES or not path.is_file():
        raise ApiError(404, "ResourceNotFound", "no such portal file")
    return Response(path.read_bytes(), media_type=PORTAL_TYPES[path.suffix], headers=PORTAL_HEADERS)


router = APIRouter()


@router.get("/", tags=["service"], include_in_schema=False)
def index(request: Request) -> Response:
    """A browser goes to the interactive docs; other clients get where things are."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/docs", status_code=307)
    return ok({"name": "brandhooks", "version": __version__, "docs": "/docs",
               "openapi": "/openapi.json", "health": "/healthz", "metrics": "/metrics",
               "portal": "/portal"})


@router.get("/portal", include_in_schema=False)
def portal() -> Response:
    """The brand portal: a page over this same API (docs/portal.md)."""
    return portal_file("index.html")


@router.get("/portal/{name}", include_in_schema=False)
def portal_asset(name: str) -> Response:
    return portal_file(name)


@router.get("/healthz", tags=["service"],
            responses={200: {"model": HealthEnvelope}, **error_answers(500)})
def healthz(hub: AppHub) -> JSONResponse:
    """200 while the store can take writes; 503 Unavailable (storage full, or the database
    unreachable) or 500 otherwise."""
    hub.check_storage()
    return ok({"status": "ok"})


@router.get("/stats", tags=["service"],
            responses={200: {"model": StatsEnvelope}, **error_answers(401, 403)})
def stats(admin: AdminAccess, hub: AppHub) -> JSONResponse:
    return ok(hub.stats().to_dict())


@router.get("/metrics", tags=["service"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
                       **error_answers(401, 403)})
def metrics(admin: AdminAccess, hub: AppHub) -> Response:
    """Counters and histograms of the core, for Prometheus (admin token)."""
    return Response(exposition(hub), media_type=CONTENT_TYPE_LATEST)
