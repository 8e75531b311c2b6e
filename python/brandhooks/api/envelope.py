"""The answer envelope: ``{"code": "OK", "data": ...}`` on success (ok, listed), and
``{"http": STATUS, "code": CODE, "message": TEXT}`` for every error (ApiError, the core's errors,
Starlette's and FastAPI's, anything unexpected), with its OpenAPI description."""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, Iterator, List, Literal, Mapping, Optional, Set, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from .._core import BrandhooksError, UnavailableError
from ..database import redact
from ..errors import ERROR_STATUS, RETRY_AFTER_S

log = logging.getLogger("brandhooks.api")

ErrorCode = Literal[
    "Validation", "BadRequest", "UnauthorizedAccess", "AccessForbidden",
    "ResourceNotFound", "Conflict", "PayloadTooLarge", "InternalError", "Unavailable",
]


class ErrorEnvelope(BaseModel):
    http: int
    code: ErrorCode
    message: str


_RETRY_AFTER_HEADER = {"Retry-After": {"description": "seconds to wait before trying again",
                                       "schema": {"type": "integer"}}}


def error_answers(*statuses: int) -> Dict[Union[int, str], Dict[str, Any]]:
    """The error answers of a route: the ones given, and 503 (storage full) that any route
    touching the database may answer."""
    answers: Dict[Union[int, str], Dict[str, Any]] = {status: {"model": ErrorEnvelope} for status in statuses}
    answers[503] = {"model": ErrorEnvelope, "headers": _RETRY_AFTER_HEADER,
                    "description": "storage is full or the database cannot be used now"}
    return answers


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"code": "OK", "data": data}, status_code=status)


def listed(items: List[Dict[str, Any]], total: int) -> JSONResponse:
    return JSONResponse({"code": "OK", "data": items, "info": {"count": len(items), "total": total}})


class ApiError(Exception):
    """An error answered as-is in the envelope (for what the core does not see: HTTP framing)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


_HTTP_CODES = {
    400: "BadRequest", 401: "UnauthorizedAccess", 403: "AccessForbidden",
    404: "ResourceNotFound", 409: "Conflict", 413: "PayloadTooLarge",
}


def error_response(status: int, code: str, message: str,
                   headers: Optional[Mapping[str, str]] = None) -> JSONResponse:
    if status == 503 and "Retry-After" not in (headers or {}):
        headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse({"http": status, "code": code, "message": message}, status_code=status, headers=headers)


def internal_error() -> JSONResponse:
    return error_response(500, "InternalError", "Internal Error")


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route of the app: recent FastAPI keeps an included router as one route (its
    original_router), older ones copy its routes into the app. The routers have no prefix, so
    their routes match the app's paths as they are."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is None:
            yield route
        else:
            yield from _routes(included.routes)


def _allowed_methods(request: Request) -> Set[str]:
    methods: Set[str] = set()
    for route in _routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return methods


def core_error_response(exc: BrandhooksError) -> JSONResponse:
    for cls, (status, code) in ERROR_STATUS.items():
        if isinstance(exc, cls):
            # An Unavailable error knows how long the outage is likely to last.
            headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, UnavailableError) else None
            return error_response(status, code, redact(str(exc)), headers)  # no database password, ever
    log.error("core error: %s", redact(str(exc)))  # StorageError and the like: details stay in the log
    return internal_error()


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BrandhooksError)
    async def core_error(_: Request, exc: BrandhooksError) -> JSONResponse:
        return core_error_response(exc)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code >= 500:
            return internal_error()
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names only the first route's methods; a path can have several routes.
            headers = {"Allow": ", ".join(sorted(_allowed_methods(request)))}
        code = _HTTP_CODES.get(exc.status_code, "BadRequest")
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def request_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(400, "Validation", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return internal_error()
