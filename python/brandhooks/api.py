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
import math
import re
from typing import Annotated, Any, Dict, List, Literal, Mapping, Optional, Set, Union

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import __version__
from ._core import TOPICS, BrandhooksError, Config, Hub, UnauthorizedError, ValidationError
from .database import redact
from .errors import ERROR_STATUS, RETRY_AFTER_S
from .metrics import exposition

log = logging.getLogger("brandhooks.api")

#: Largest request body accepted; larger ones get 413 PayloadTooLarge.
MAX_BODY_BYTES = 1 << 20

Topic = Literal["Deals", "Showings", "Contacts"]
ErrorCode = Literal[
    "Validation", "BadRequest", "UnauthorizedAccess", "AccessForbidden",
    "ResourceNotFound", "Conflict", "PayloadTooLarge", "InternalError", "Unavailable",
]

#: A path id: the server answers 400 Validation for anything but a UUID (checked by the core,
#: after the token, so a bad token is reported first); declared for the OpenAPI description.
BrandId = Annotated[str, Path(description="brand UUID", json_schema_extra={"format": "uuid"})]
WebhookId = Annotated[str, Path(description="webhook UUID", json_schema_extra={"format": "uuid"})]
DeliveryId = Annotated[str, Path(description="delivery UUID", json_schema_extra={"format": "uuid"})]
TokenId = Annotated[str, Path(description="token UUID", json_schema_extra={"format": "uuid"})]

# The input rules of the core, written for the OpenAPI description so that a schema-driven
# client (or fuzzer) finds exactly what the server accepts. Lengths count characters (code
# points), as the core does.
_PORT = r"0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
URL_PATTERN = (r"^[hH][tT][tT][pP][sS]?://"
               r"(?:\[[0-9a-fA-F:.]+\]|(?:[A-Za-z0-9._-]|[^\x00-\x7f])+)"
               rf"(?::(?:{_PORT})?)?"
               r"(?:[/?#][^\x00-\x20\x7f]*)?$")
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=URL_PATTERN,
                           description="absolute http(s) URL with a host, without credentials")]
Tag = Annotated[str, Field(min_length=1, max_length=128, pattern=PRINTABLE)]
Tags = Annotated[List[Tag], Field(max_length=64)]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
COUNT_PATTERN = r"^[0-9]{1,18}$"  # what count_param reads: ASCII digits that fit 64 bits


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
    event: str = Field(description="what happened, e.g. Created", min_length=1, max_length=128, pattern=PRINTABLE)
    payload: Dict[str, Any] = Field(description="a JSON object, nested at most 128 levels (itself included)")
    tags: Optional[Tags] = Field(None, description="webhooks with tags get only events sharing one")


class WebhookState(BaseModel):
    id: str
    enabled: bool
    disabled_at: Optional[float]
    disabled_reason: Optional[str]


class WebhookStateEnvelope(BaseModel):
    code: Literal["OK"]
    data: WebhookState


class WebhookPatch(BaseModel):
    # At least one of the four (other fields are ignored).
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": [name]} for name in
                                                           ("url", "topic", "tags", "enabled")]})

    url: Union[Url, SkipJsonSchema[None]] = None
    topic: Union[Topic, SkipJsonSchema[None]] = None
    tags: Optional[Tags] = Field(None, description="null removes the tags")
    enabled: Union[bool, SkipJsonSchema[None]] = Field(None, description="true re-enables and clears the failure state")


class RotateRequest(BaseModel):
    grace_seconds: int = Field(86400, ge=0, le=30 * 86400,
                               description="how long the old key keeps signing; 0: only the new key signs")


class RecoverRequest(BaseModel):
    since: float = Field(ge=0, le=1e11,
                         description="Unix seconds: failed deliveries created since then are queued again")
    limit: int = Field(100000, ge=1, le=100000, description="deliveries queued at most by this call")


class Recovered(BaseModel):
    queued: int
    deliveries: List[str]


class RecoveredEnvelope(BaseModel):
    code: Literal["OK"]
    data: Recovered


class DeliveryEnvelope(BaseModel):
    code: Literal["OK"]
    data: DeliveryOut


class TokenCreate(BaseModel):
    brand: Optional[Uuid] = Field(None, description="scope to this brand and its descendants; none: admin")
    label: str = ""


class TokenOut(BaseModel):
    id: str
    brand: Optional[str]
    label: str
    created_at: float
    token: Optional[str] = Field(None, description="the secret, only in the answer that created it")


class TokenEnvelope(BaseModel):
    code: Literal["OK"]
    data: TokenOut


class TokenListEnvelope(BaseModel):
    code: Literal["OK"]
    data: List[TokenOut]
    info: ListInfo


class StatsOut(BaseModel):
    webhooks: int
    disabled_webhooks: int
    events: int
    pending: int
    delivered: int
    failed: int
    cancelled: int
    due_now: int
    oldest_due_at: Optional[float]
    node: str = Field(description="the node that answered (its --node-id)")


class StatsEnvelope(BaseModel):
    code: Literal["OK"]
    data: StatsOut


class WebhookCreate(BaseModel):
    topic: Topic
    url: Url
    tags: Optional[Tags] = None


class BrandUpdate(BaseModel):
    parent: Optional[Uuid] = Field(description="parent brand UUID, or null for a root brand")


_RETRY_AFTER_HEADER = {"Retry-After": {"description": "seconds to wait before trying again",
                                       "schema": {"type": "integer"}}}


def _errors(*statuses: int) -> Dict[Union[int, str], Dict[str, Any]]:
    """The error answers of a route: the ones given, and 503 (storage full) that any route
    touching the database may answer."""
    answers: Dict[Union[int, str], Dict[str, Any]] = {status: {"model": ErrorEnvelope} for status in statuses}
    answers[503] = {"model": ErrorEnvelope, "headers": _RETRY_AFTER_HEADER,
                    "description": "storage is full or the database cannot be used now"}
    return answers


def _json_body(model: type[BaseModel], required: bool = True) -> Dict[str, Any]:
    schema = {"content": {"application/json": {"schema": model.model_json_schema()}}, "required": required}
    return {"requestBody": schema}


# --- errors ------------------------------------------------------------------------------

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
    if status == 503:
        headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse({"http": status, "code": code, "message": message}, status_code=status, headers=headers)


def _internal_error() -> JSONResponse:
    return error_response(500, "InternalError", "Internal Error")


def _allowed_methods(request: Request) -> Set[str]:
    methods: Set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return methods


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BrandhooksError)
    async def core_error(_: Request, exc: BrandhooksError) -> JSONResponse:
        for cls, (status, code) in ERROR_STATUS.items():
            if isinstance(exc, cls):
                return error_response(status, code, redact(str(exc)))
        log.error("core error: %s", redact(str(exc)))  # StorageError and the like: details stay in the log
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


def _describe_as_served(app: FastAPI) -> None:
    """The OpenAPI description as the server behaves: no 422 (request errors are answered 400
    in the envelope), and the bearer token every route but /healthz needs."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> Dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            for path, methods in schema["paths"].items():
                for operation in methods.values():
                    operation["responses"].pop("422", None)
                    if path != "/healthz":
                        operation["security"] = [{"bearer": []}]
            components = schema.setdefault("components", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.get("schemas", {}).pop(name, None)
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- input helpers -----------------------------------------------------------------------

async def request_body(request: Request) -> bytes:
    """The raw body, at most MAX_BODY_BYTES (read in the event loop, never unbounded)."""
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and int(length) > MAX_BODY_BYTES:
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


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(value: Any) -> None:
    """Every string in a parsed body (keys too) must be valid Unicode: JSON's "\\ud800" escape
    gives a lone UTF-16 surrogate, which has no UTF-8 form (paired escapes are joined by the
    parser, so any surrogate left is lone). Iterative: bodies may nest deeply."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise ValidationError("request body has a lone UTF-16 surrogate escape (such as \\ud800) "
                                      "in a string: not valid Unicode")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def json_object(body: bytes) -> Dict[str, Any]:
    try:
        value = json.loads(body)
    except RecursionError:
        raise ApiError(400, "BadRequest", "request body nests too deeply to parse") from None
    except ValueError:
        raise ApiError(400, "BadRequest", "request body must be valid JSON") from None
    if not isinstance(value, dict):
        raise ValidationError("request body must be a JSON object")
    _check_text(value)
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


def number_field(body: Dict[str, Any], name: str, default: Optional[float] = None,
                 low: float = 0, high: float = 1e11) -> float:
    """A finite JSON number in [low, high] (JSON's NaN and Infinity are refused)."""
    value = body.get(name, default)
    if value is None:
        raise ValidationError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a number")
    if not low <= value <= high:
        raise ValidationError(f"{name} must be between {low:g} and {high:g}")
    return value


def int_field(body: Dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = number_field(body, name, default, low, high)
    if value != int(value):
        raise ValidationError(f"{name} must be a whole number")
    return int(value)


def webhook_state(webhook: Any) -> Dict[str, Any]:
    return {"id": webhook.id, "enabled": webhook.disabled_at is None, "disabled_at": webhook.disabled_at,
            "disabled_reason": webhook.disabled_reason or None}


def count_param(value: Optional[str], name: str) -> Optional[int]:
    if value is None:
        return None
    # ASCII digits only ("²".isdigit() is true), and few enough to fit the core's 64-bit integers.
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
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
    _describe_as_served(app)

    @app.get("/", tags=["service"], include_in_schema=False)
    def index(request: Request) -> Response:
        """A browser goes to the interactive docs; other clients get where things are."""
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/docs", status_code=307)
        return ok({"name": "brandhooks", "version": __version__, "docs": "/docs",
                   "openapi": "/openapi.json", "health": "/healthz", "metrics": "/metrics"})

    @app.get("/healthz", tags=["service"], responses={200: {"model": HealthEnvelope}, **_errors(500)})
    def healthz() -> JSONResponse:
        """200 while the store can take writes; 503 Unavailable (storage full, or the database
        unreachable) or 500 otherwise."""
        hub.check_storage()
        return ok({"status": "ok"})

    @app.post(
        "/brands/{brand}/webhooks", tags=["webhooks"], openapi_extra=_json_body(WebhookCreate),
        responses={200: {"model": WebhookEnvelope}, **_errors(400, 401, 403, 413)},
    )
    def create_webhook(brand: BrandId, request: Request, body: bytes = Depends(request_body)) -> JSONResponse:
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
        brand: BrandId,
        request: Request,
        topic: Optional[str] = Query(None, description="only webhooks of this topic",
                                     json_schema_extra={"enum": list(TOPICS)}),
        start: Optional[str] = Query(None, description="records to skip (non-negative integer)",
                                     json_schema_extra={"pattern": COUNT_PATTERN}),
        limit: Optional[str] = Query(None, description="page size (non-negative integer)", json_schema_extra={"pattern": COUNT_PATTERN}),
    ) -> JSONResponse:
        hub.authorize(bearer_token(request), brand)
        page = hub.list_webhooks(brand, topic, count_param(start, "start") or 0, count_param(limit, "limit"))
        return listed([webhook.to_dict() for webhook in page.items], page.total)

    @app.get(
        "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"],
        responses={200: {"model": WebhookEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def get_webhook(brand: BrandId, webhook_id: WebhookId, request: Request) -> JSONResponse:
        hub.authorize(bearer_token(request), brand)
        return ok(hub.get_webhook(brand, webhook_id).to_dict())

    @app.delete(
        "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"], status_code=204,
        response_class=Response, responses={204: {"description": "deleted"}, **_errors(400, 401, 403, 404)},
    )
    def delete_webhook(brand: BrandId, webhook_id: WebhookId, request: Request) -> Response:
        hub.authorize(bearer_token(request), brand)
        hub.delete_webhook(brand, webhook_id)
        return Response(status_code=204)

    @app.post(
        "/brands/{brand}/events", tags=["events"], status_code=202, openapi_extra=_json_body(EventCreate),
        responses={202: {"model": PublishedEnvelope}, **_errors(400, 401, 403, 413)},
    )
    def publish_event(brand: BrandId, request: Request, body: bytes = Depends(request_body)) -> JSONResponse:
        """Accept an event: it and its deliveries are committed before the answer."""
        hub.authorize(bearer_token(request), brand)
        fields = json_object(body)
        payload = fields.get("payload")
        if not isinstance(payload, dict):
            raise ValidationError("payload must be a JSON object")
        result = hub.publish(brand, string_field(fields, "topic"), string_field(fields, "event"), payload,
                             tags_field(fields))
        return ok(result.to_dict(), status=202)

    @app.patch(
        "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"], openapi_extra=_json_body(WebhookPatch),
        responses={200: {"model": WebhookEnvelope}, **_errors(400, 401, 403, 404, 413)},
    )
    def update_webhook(brand: BrandId, webhook_id: WebhookId, request: Request,
                       body: bytes = Depends(request_body)) -> JSONResponse:
        """Change url, topic, tags or enabled; only the fields given change."""
        hub.authorize(bearer_token(request), brand)
        fields = json_object(body)
        changes: Dict[str, Any] = {}
        for name in ("url", "topic"):
            if name in fields:
                changes[name] = string_field(fields, name)
        if "tags" in fields:
            changes["tags"] = tags_field(fields)
        if "enabled" in fields:
            if not isinstance(fields["enabled"], bool):
                raise ValidationError("enabled must be true or false")
            changes["enabled"] = fields["enabled"]
        if not changes:
            raise ValidationError("give at least one of url, topic, tags, enabled")
        return ok(hub.update_webhook(brand, webhook_id, **changes).to_dict())

    @app.get(
        "/brands/{brand}/webhooks/{webhook_id}/state", tags=["webhooks"],
        responses={200: {"model": WebhookStateEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def get_webhook_state(brand: BrandId, webhook_id: WebhookId, request: Request) -> JSONResponse:
        """Whether delivery is enabled, and why not (410 Gone, failing too long, an operator)."""
        hub.authorize(bearer_token(request), brand)
        return ok(webhook_state(hub.get_webhook(brand, webhook_id)))

    @app.post(
        "/brands/{brand}/webhooks/{webhook_id}/rotate", tags=["webhooks"],
        openapi_extra=_json_body(RotateRequest, required=False),
        responses={200: {"model": WebhookEnvelope}, **_errors(400, 401, 403, 404, 413)},
    )
    def rotate_key(brand: BrandId, webhook_id: WebhookId, request: Request,
                   body: bytes = Depends(request_body)) -> JSONResponse:
        """A new key; the old one keeps signing (Standard Webhooks) for grace_seconds."""
        hub.authorize(bearer_token(request), brand)
        fields = json_object(body) if body.strip() else {}
        grace = int_field(fields, "grace_seconds", 86400, 0, 30 * 86400)
        return ok(hub.rotate_key(brand, webhook_id, grace).to_dict())

    @app.post(
        "/brands/{brand}/webhooks/{webhook_id}/recover", tags=["deliveries"], status_code=202,
        openapi_extra=_json_body(RecoverRequest),
        responses={202: {"model": RecoveredEnvelope}, **_errors(400, 401, 403, 404, 409, 413)},
    )
    def recover(brand: BrandId, webhook_id: WebhookId, request: Request, body: bytes = Depends(request_body)) -> JSONResponse:
        """Queue again every failed delivery of the webhook created since `since`."""
        hub.authorize(bearer_token(request), brand)
        fields = json_object(body)
        since = number_field(fields, "since")
        limit = int_field(fields, "limit", 100000, 1, 2**53)  # the core checks its own cap
        return ok(hub.recover(brand, webhook_id, since, limit).to_dict(), status=202)

    @app.get(
        "/brands/{brand}/deliveries/{delivery_id}", tags=["deliveries"],
        responses={200: {"model": DeliveryEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def get_delivery(brand: BrandId, delivery_id: DeliveryId, request: Request) -> JSONResponse:
        hub.authorize(bearer_token(request), brand)
        return ok(hub.get_delivery(brand, delivery_id).to_dict())

    @app.post(
        "/brands/{brand}/deliveries/{delivery_id}/redeliver", tags=["deliveries"], status_code=202,
        responses={202: {"model": DeliveryEnvelope}, **_errors(400, 401, 403, 404, 409)},
    )
    def redeliver(brand: BrandId, delivery_id: DeliveryId, request: Request) -> JSONResponse:
        """A new attempt now, whatever the delivery's state."""
        hub.authorize(bearer_token(request), brand)
        return ok(hub.redeliver(brand, delivery_id).to_dict(), status=202)

    @app.get("/stats", tags=["service"], responses={200: {"model": StatsEnvelope}, **_errors(401, 403)})
    def stats(request: Request) -> JSONResponse:
        hub.authorize_admin(bearer_token(request))
        return ok({**hub.stats().to_dict(), "node": hub.config.node_id})

    @app.get("/metrics", tags=["service"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
                        **_errors(401, 403)})
    def metrics(request: Request) -> Response:
        """Counters and histograms of the core, for Prometheus (admin token)."""
        hub.authorize_admin(bearer_token(request))
        return Response(exposition(hub), media_type=CONTENT_TYPE_LATEST)

    @app.post("/tokens", tags=["tokens"], openapi_extra=_json_body(TokenCreate, required=False),
              responses={200: {"model": TokenEnvelope}, **_errors(400, 401, 403, 413)})
    def create_token(request: Request, body: bytes = Depends(request_body)) -> JSONResponse:
        """A new API token; its secret is in this answer only. No body: an admin token."""
        hub.authorize_admin(bearer_token(request))
        fields = json_object(body) if body.strip() else {}
        brand = fields.get("brand")
        if brand is not None and not isinstance(brand, str):
            raise ValidationError("brand must be a string or null")
        label = fields.get("label", "")
        if not isinstance(label, str):
            raise ValidationError("label must be a string")
        return ok(hub.create_token(brand, label).to_dict())

    @app.get("/tokens", tags=["tokens"], responses={200: {"model": TokenListEnvelope}, **_errors(401, 403)})
    def list_tokens(request: Request) -> JSONResponse:
        hub.authorize_admin(bearer_token(request))
        tokens = [info.to_dict() for info in hub.list_tokens()]
        return listed(tokens, len(tokens))

    @app.delete("/tokens/{token_id}", tags=["tokens"], status_code=204, response_class=Response,
                responses={204: {"description": "revoked"}, **_errors(400, 401, 403, 404)})
    def revoke_token(token_id: TokenId, request: Request) -> Response:
        hub.authorize_admin(bearer_token(request))
        hub.revoke_token(token_id)
        return Response(status_code=204)

    @app.get(
        "/brands/{brand}/webhooks/{webhook_id}/deliveries", tags=["deliveries"],
        responses={200: {"model": DeliveryListEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def list_deliveries(
        brand: BrandId,
        webhook_id: WebhookId,
        request: Request,
        status: Optional[str] = Query(None, description="pending, delivered, failed or cancelled",
                                      json_schema_extra={"enum": ["pending", "delivered", "failed", "cancelled"]}),
        start: Optional[str] = Query(None, description="records to skip (non-negative integer)",
                                     json_schema_extra={"pattern": COUNT_PATTERN}),
        limit: Optional[str] = Query(None, description="page size, at most 1000 (default 100)",
                                     json_schema_extra={"pattern": r"^(?=[0-9]{1,18}$)0*(?:1000|[0-9]{1,3})$"}),
    ) -> JSONResponse:
        """A webhook's deliveries, newest first, each with its attempts."""
        hub.authorize(bearer_token(request), brand)
        page_size = count_param(limit, "limit")
        page = hub.list_deliveries(
            brand, webhook_id, status, count_param(start, "start") or 0, 100 if page_size is None else page_size,
        )
        return listed([delivery.to_dict() for delivery in page.items], page.total)

    @app.put(
        "/brands/{brand}", tags=["brands"], openapi_extra=_json_body(BrandUpdate),
        responses={200: {"model": BrandEnvelope}, **_errors(400, 401, 403, 409, 413)},
    )
    def put_brand(brand: BrandId, request: Request, body: bytes = Depends(request_body)) -> JSONResponse:
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
