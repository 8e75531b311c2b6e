"""The REST API of brandhooks (FastAPI).

Each route does three things: read and type-check its input, authorise the bearer token, and
call one Hub method. Everything else (validation of ids, topics and urls, storage, the
brand tree) lives in the C++ core so that C++ programs get the same behaviour.

Success: ``{"code": "OK", "data": ...}`` (lists add ``"info": {"count": N, "total": M}``).
Errors:  ``{"http": STATUS, "code": CODE, "message": TEXT}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Literal, Optional

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from . import __version__
from ._core import (
    BrandhooksError,
    Config,
    ConflictError,
    ForbiddenError,
    Hub,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)

log = logging.getLogger("brandhooks.api")

#: Largest request body accepted; larger ones get 413 PayloadTooLarge.
MAX_BODY_BYTES = 1 << 20

Topic = Literal["Deals", "Showings", "Contacts"]
ErrorCode = Literal[
    "Validation", "BadRequest", "UnauthorizedAccess", "AccessForbidden",
    "ResourceNotFound", "Conflict", "PayloadTooLarge", "InternalError",
]


# --- the shapes the API answers with (for OpenAPI; responses are built by the core) ------

class WebhookOut(BaseModel):
    id: str = Field(description="UUID v4")
    created_at: float = Field(description="Unix seconds with microseconds")
    updated_at: float = Field(description="Unix seconds with microseconds")
    deleted_at: Optional[float] = Field(description="null while the webhook is live")
    brand: str = Field(description="brand UUID (lowercase)")
    topic: Topic
    url: str = Field(description="exactly as registered")
    key: str = Field(description="HMAC-SHA256 key: 64 lowercase hex characters (32 bytes)")
    tags: Optional[List[str]]
    type: Literal["brand_webhook"]


class WebhookEnvelope(BaseModel):
    code: Literal["OK"]
    data: WebhookOut


class ListInfo(BaseModel):
    count: int = Field(description="records in data")
    total: int = Field(description="records matching the query, without paging")


class WebhookListEnvelope(BaseModel):
    code: Literal["OK"]
    data: List[WebhookOut]
    info: ListInfo


class BrandOut(BaseModel):
    id: str
    parent: Optional[str]


class BrandEnvelope(BaseModel):
    code: Literal["OK"]
    data: BrandOut


class Health(BaseModel):
    status: Literal["ok"]


class HealthEnvelope(BaseModel):
    code: Literal["OK"]
    data: Health


class ErrorEnvelope(BaseModel):
    http: int
    code: ErrorCode
    message: str


class AttemptOut(BaseModel):
    number: int
    started_at: float
    duration_ms: float
    status: Optional[int] = Field(description="HTTP status, null when no response was read")
    error: Optional[Literal["timeout", "dns", "blocked", "connect", "tls", "network", "protocol"]]
    detail: Optional[str]
    response: str = Field(description="the first 4 KiB of the response body")


class DeliveryOut(BaseModel):
    id: str = Field(description="delivery id: the webhook-id header, stable across retries")
    event: str = Field(description="event id")
    webhook: str
    brand: str
    topic: Topic
    event_type: str
    state: Literal["pending", "delivered", "failed", "cancelled"]
    attempt_count: int
    created_at: float
    updated_at: float
    next_attempt_at: Optional[float]
    attempts: List[AttemptOut]
    type: Literal["brand_webhook_delivery"]


class DeliveryListEnvelope(BaseModel):
    code: Literal["OK"]
    data: List[DeliveryOut]
    info: ListInfo


class Published(BaseModel):
    id: str = Field(description="event id")
    deliveries: int = Field(description="deliveries created: one per matching webhook")


class PublishedEnvelope(BaseModel):
    code: Literal["OK"]
    data: Published


class EventCreate(BaseModel):
    topic: Topic
    event: str = Field(description="what happened, e.g. Created")
    payload: Dict[str, Any]


class WebhookCreate(BaseModel):
    topic: Topic
    url: str = Field(max_length=2048, description="absolute http(s) URL")
    tags: Optional[List[str]] = None


class BrandUpdate(BaseModel):
    parent: Optional[str] = Field(description="parent brand UUID, or null for a root brand")


def _errors(*statuses: int) -> Dict[int, Dict[str, Any]]:
    return {status: {"model": ErrorEnvelope} for status in statuses}


def _json_body(model: type) -> Dict[str, Any]:
    schema = {"content": {"application/json": {"schema": model.model_json_schema()}}, "required": True}
    return {"requestBody": schema}


# --- errors ------------------------------------------------------------------------------

class ApiError(Exception):
    """An error answered as-is in the envelope (for what the core does not see: HTTP framing)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


_CORE_ERRORS = {
    ValidationError: (400, "Validation"),
    UnauthorizedError: (401, "UnauthorizedAccess"),
    ForbiddenError: (403, "AccessForbidden"),
    NotFoundError: (404, "ResourceNotFound"),
    ConflictError: (409, "Conflict"),
}

_HTTP_CODES = {
    400: "BadRequest", 401: "UnauthorizedAccess", 403: "AccessForbidden",
    404: "ResourceNotFound", 409: "Conflict", 413: "PayloadTooLarge",
}


def error_response(status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"http": status, "code": code, "message": message}, status_code=status, headers=headers)


def _internal_error() -> JSONResponse:
    return error_response(500, "InternalError", "Internal Error")


def _allowed_methods(request: Request) -> set:
    methods: set = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return methods


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BrandhooksError)
    async def core_error(_: Request, exc: BrandhooksError) -> JSONResponse:
        for cls, (status, code) in _CORE_ERRORS.items():
            if isinstance(exc, cls):
                return error_response(status, code, str(exc))
        log.error("core error: %s", exc)  # StorageError and the like: details stay in the log
        return _internal_error()

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code >= 500:
            return _internal_error()
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
        return _internal_error()


# --- input helpers -----------------------------------------------------------------------

async def request_body(request: Request) -> bytes:
    """The raw body, at most MAX_BODY_BYTES (read in the event loop, never unbounded)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiError(413, "PayloadTooLarge", f"request body exceeds {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "PayloadTooLarge", f"request body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("missing bearer token (Authorization: Bearer <token>)")
    return token.strip()


def json_object(body: bytes) -> Dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise ApiError(400, "BadRequest", "request body must be valid JSON") from None
    if not isinstance(value, dict):
        raise ValidationError("request body must be a JSON object")
    return value


def string_field(body: Dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise ValidationError(f"{name} is required")
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    return value


def tags_field(body: Dict[str, Any]) -> Optional[List[str]]:
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise ValidationError("tags must be null or a list of strings")
    return tags


def count_param(value: Optional[str], name: str) -> Optional[int]:
    if value is None:
        return None
    if not value.isdigit():
        raise ValidationError(f"{name} must be a non-negative integer")
    return int(value)


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"code": "OK", "data": data}, status_code=status)


def listed(items: List[Dict[str, Any]], total: int) -> JSONResponse:
    return JSONResponse({"code": "OK", "data": items, "info": {"count": len(items), "total": total}})


# --- the app -----------------------------------------------------------------------------

def create_app(hub: Optional[Hub] = None, *, config: Optional[Config] = None) -> FastAPI:
    """The brandhooks REST API over ``hub`` (or a new Hub on ``config``, default settings)."""
    if hub is None:
        hub = Hub(config if config is not None else Config())
    app = FastAPI(
        title="brandhooks",
        version=__version__,
        description="Brand webhooks: register URLs per topic; events are delivered signed.",
    )
    app.state.hub = hub
    _install_error_handlers(app)

    @app.get("/healthz", tags=["service"], responses={200: {"model": HealthEnvelope}, **_errors(500)})
    def healthz() -> JSONResponse:
        hub.has_tokens()  # proves the database answers
        return ok({"status": "ok"})

    @app.post(
        "/brands/{brand}/webhooks", tags=["webhooks"], openapi_extra=_json_body(WebhookCreate),
        responses={200: {"model": WebhookEnvelope}, **_errors(400, 401, 403, 413)},
    )
    def create_webhook(brand: str, request: Request, body: bytes = Depends(request_body)) -> JSONResponse:
        hub.authorize(bearer_token(request), brand)
        fields = json_object(body)
        webhook = hub.create_webhook(
            brand, string_field(fields, "topic"), string_field(fields, "url"), tags_field(fields)
        )
        return ok(webhook.to_dict())

    @app.get(
        "/brands/{brand}/webhooks", tags=["webhooks"],
        responses={200: {"model": WebhookListEnvelope}, **_errors(400, 401, 403)},
    )
    def list_webhooks(
        brand: str,
        request: Request,
        topic: Optional[str] = Query(None, description="only webhooks of this topic"),
        start: Optional[str] = Query(None, description="records to skip (non-negative integer)"),
        limit: Optional[str] = Query(None, description="page size (non-negative integer)"),
    ) -> JSONResponse:
        hub.authorize(bearer_token(request), brand)
        page = hub.list_webhooks(brand, topic, count_param(start, "start") or 0, count_param(limit, "limit"))
        return listed([webhook.to_dict() for webhook in page.items], page.total)

    @app.get(
        "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"],
        responses={200: {"model": WebhookEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def get_webhook(brand: str, webhook_id: str, request: Request) -> JSONResponse:
        hub.authorize(bearer_token(request), brand)
        return ok(hub.get_webhook(brand, webhook_id).to_dict())

    @app.delete(
        "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"], status_code=204,
        response_class=Response, responses={204: {"description": "deleted"}, **_errors(400, 401, 403, 404)},
    )
    def delete_webhook(brand: str, webhook_id: str, request: Request) -> Response:
        hub.authorize(bearer_token(request), brand)
        hub.delete_webhook(brand, webhook_id)
        return Response(status_code=204)

    @app.post(
        "/brands/{brand}/events", tags=["events"], status_code=202, openapi_extra=_json_body(EventCreate),
        responses={202: {"model": PublishedEnvelope}, **_errors(400, 401, 403, 413)},
    )
    def publish_event(brand: str, request: Request, body: bytes = Depends(request_body)) -> JSONResponse:
        """Accept an event: it and its deliveries are committed before the answer."""
        hub.authorize(bearer_token(request), brand)
        fields = json_object(body)
        payload = fields.get("payload")
        if not isinstance(payload, dict):
            raise ValidationError("payload must be a JSON object")
        result = hub.publish(brand, string_field(fields, "topic"), string_field(fields, "event"), payload)
        return ok({"id": result.event_id, "deliveries": result.deliveries}, status=202)

    @app.get(
        "/brands/{brand}/webhooks/{webhook_id}/deliveries", tags=["deliveries"],
        responses={200: {"model": DeliveryListEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def list_deliveries(
        brand: str,
        webhook_id: str,
        request: Request,
        status: Optional[str] = Query(None, description="pending, delivered, failed or cancelled"),
        start: Optional[str] = Query(None, description="records to skip (non-negative integer)"),
        limit: Optional[str] = Query(None, description="page size, at most 1000 (default 100)"),
    ) -> JSONResponse:
        """A webhook's deliveries, newest first, each with its attempts."""
        hub.authorize(bearer_token(request), brand)
        page = hub.list_deliveries(
            brand, webhook_id, status, count_param(start, "start") or 0,
            100 if limit is None else count_param(limit, "limit"),
        )
        return listed([delivery.to_dict() for delivery in page.items], page.total)

    @app.put(
        "/brands/{brand}", tags=["brands"], openapi_extra=_json_body(BrandUpdate),
        responses={200: {"model": BrandEnvelope}, **_errors(400, 401, 403, 409, 413)},
    )
    def put_brand(brand: str, request: Request, body: bytes = Depends(request_body)) -> JSONResponse:
        hub.authorize_admin(bearer_token(request))
        fields = json_object(body)
        if "parent" not in fields:
            raise ValidationError("parent is required (a brand UUID, or null)")
        parent = fields["parent"]
        if parent is not None and not isinstance(parent, str):
            raise ValidationError("parent must be a string or null")
        updated = hub.set_brand_parent(brand, parent)
        return ok({"id": updated.id, "parent": updated.parent})

    return app
