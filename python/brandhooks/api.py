"""The REST API of brandhooks (FastAPI).

Each route does three things: read and type-check its input, authorise the bearer token, and
call one Hub method. Everything else (validation of ids, topics and urls, storage, the
brand tree) lives in the C++ core so that C++ programs get the same behaviour.

Success: ``{"code": "OK", "data": ...}`` (lists add ``"info": {"count": N, "total": M}``).
Errors:  ``{"http": STATUS, "code": CODE, "message": TEXT}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path as FilePath
from typing import Annotated, Any, Dict, List, Literal, Mapping, Optional, Set, Tuple, Union

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import __version__, records
from ._core import TOPICS, BrandhooksError, Config, Hub, Principal, UnauthorizedError, UnavailableError, ValidationError
from .database import redact
from .errors import ERROR_STATUS, RETRY_AFTER_S
from .metrics import exposition

log = logging.getLogger("brandhooks.api")

#: Largest request body accepted; larger ones get 413 PayloadTooLarge.
MAX_BODY_BYTES = 1 << 20
#: Largest body of a batch publish (a JSON array of up to MAX_BATCH_EVENTS events).
MAX_BATCH_BODY_BYTES = 16 << 20
MAX_BATCH_EVENTS = 1000

# The closed sets of the core's tables, for the request models (the answers' come with them).
Topic = Annotated[str, WithJsonSchema({"enum": list(records.values("webhook", "topic")), "type": "string"})]
DELIVERY_STATES = records.values("delivery", "state")
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


class _TokenIdConvertor(Convertor[str]):
    """A token id in a path: anything but "current". GET /tokens/current is a resource of its
    own, so DELETE /tokens/current is 405 (Allow: GET), not the revocation of a token "current"."""

    regex = "(?!current$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("token_id", _TokenIdConvertor())

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
# Derived from the core's field tables (records.py): the one definition of each record's shape.

WebhookEnvelope = records.envelope("webhook")
WebhookListEnvelope = records.envelope("webhook", listed=True)
WebhookStateEnvelope = records.envelope("webhook_state")
DeliveryEnvelope = records.envelope("delivery")
DeliveryListEnvelope = records.envelope("delivery", listed=True)
PublishedEnvelope = records.envelope("published")
PublishedListEnvelope = records.envelope("published", listed=True)  # a batch: one per event, in order
RecoveredEnvelope = records.envelope("recovered")
TokenEnvelope = records.envelope("new_token")
TokenListEnvelope = records.envelope("token", listed=True)
CurrentTokenEnvelope = records.envelope("token")
PortalLinkEnvelope = records.envelope("portal_link")
StatsEnvelope = records.envelope("stats")
DeliveryStatsEnvelope = records.envelope("delivery_stats")
BrandEnvelope = records.envelope("brand")
BrandListEnvelope = records.envelope("brand", listed=True)


class Health(BaseModel):
    status: Literal["ok"]


class HealthEnvelope(BaseModel):
    code: Literal["OK"]
    data: Health


class ErrorEnvelope(BaseModel):
    http: int
    code: ErrorCode
    message: str


class EventCreate(BaseModel):
    topic: Topic
    event: str = Field(description="what happened, e.g. Created", min_length=1, max_length=128, pattern=PRINTABLE)
    payload: Dict[str, Any] = Field(description="a JSON object, nested at most 128 levels (itself included)")
    tags: Optional[Tags] = Field(None, description="webhooks with tags get only events sharing one")


# The delivery controls of a webhook (the core checks them; these describe them).
RateLimit = Annotated[int, Field(ge=1, le=10000)]
HeaderMap = Annotated[Dict[str, str], Field(max_length=20)]
ORDERED = "deliveries one at a time, in publish order"
RATE_LIMIT = "at most this many deliveries per second"
HEADERS = ("sent with every attempt: at most 20, 8 KiB in all; names are tokens, values visible ASCII; "
           "Host, Content-Length, Transfer-Encoding, Connection, Content-Type, the signature headers, "
           "webhook-* and other framing or hop-by-hop names are refused")


class WebhookPatch(BaseModel):
    # At least one of the four (other fields are ignored).
    model_config = ConfigDict(json_schema_extra=lambda schema: schema.update(
        anyOf=[{"required": [name]} for name in schema["properties"]]))

    url: Union[Url, SkipJsonSchema[None]] = None
    topic: Union[Topic, SkipJsonSchema[None]] = None
    tags: Optional[Tags] = Field(None, description="null removes the tags")
    enabled: Union[bool, SkipJsonSchema[None]] = Field(None, description="true re-enables and clears the failure state")
    ordered: Union[bool, SkipJsonSchema[None]] = Field(None, description=ORDERED)
    rate_limit: Optional[RateLimit] = Field(None, description=RATE_LIMIT + "; null removes the limit")
    headers: Optional[HeaderMap] = Field(None, description=HEADERS + "; replaces them all, {} or null removes them")


class RotateRequest(BaseModel):
    grace_seconds: int = Field(86400, ge=0, le=30 * 86400,
                               description="how long the old key keeps signing; 0: only the new key signs")


class RecoverRequest(BaseModel):
    since: float = Field(ge=0, le=1e11,
                         description="Unix seconds: failed deliveries created since then are queued again")
    limit: int = Field(100000, ge=1, le=100000, description="deliveries queued at most by this call")


class TokenCreate(BaseModel):
    brand: Optional[Uuid] = Field(None, description="scope to this brand and its descendants; none: admin")
    label: str = ""
    expires_in: Optional[int] = Field(None, ge=60, le=30 * 86400,
                                      description="seconds until the token is refused (60 to 30 days); "
                                                  "null or absent: never")


class PortalLinkCreate(BaseModel):
    expires_in: int = Field(3600, ge=60, le=86400,
                            description="seconds until the link's token is refused (60 to 86400); never "
                                        "later than the caller's own token")


class WebhookCreate(BaseModel):
    topic: Topic
    url: Url
    tags: Optional[Tags] = None
    ordered: bool = Field(False, description=ORDERED)
    rate_limit: Optional[RateLimit] = Field(None, description=RATE_LIMIT)
    headers: Optional[HeaderMap] = Field(None, description=HEADERS + "; null or absent: none")


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
    if status == 503 and "Retry-After" not in (headers or {}):
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


def core_error_response(exc: BrandhooksError) -> JSONResponse:
    for cls, (status, code) in ERROR_STATUS.items():
        if isinstance(exc, cls):
            # An Unavailable error knows how long the outage is likely to last.
            headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, UnavailableError) else None
            return error_response(status, code, redact(str(exc)), headers)  # no database password, ever
    log.error("core error: %s", redact(str(exc)))  # StorageError and the like: details stay in the log
    return _internal_error()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BrandhooksError)
    async def core_error(_: Request, exc: BrandhooksError) -> JSONResponse:
        return core_error_response(exc)

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
    return bearer_from(request.headers.get("authorization", ""))


def bearer_from(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("missing bearer token (Authorization: Bearer <token>)")
    return token.strip()


def brand_access(brand: BrandId, request: Request) -> str:
    """The path's brand, once the bearer token is known to reach it: 401 for a bad token (first),
    400 for an id that is not a UUID, 403 for another brand's token."""
    request.app.state.hub.authorize(bearer_token(request), brand)
    return brand


def admin_access(request: Request) -> Principal:
    """The admin token's principal: 401 for a bad token, 403 for a brand's token."""
    principal: Principal = request.app.state.hub.authorize_admin(bearer_token(request))
    return principal


# The access rules, one dependency each. A route that reads a body declares it before its access
# rule: the body's limits (413) are checked first, as the publish route does.
BrandAccess = Annotated[str, Depends(brand_access)]
AdminAccess = Annotated[Principal, Depends(admin_access)]
RequestBody = Annotated[bytes, Depends(request_body)]


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


def bool_field(body: Dict[str, Any], name: str) -> bool:
    value = body[name]
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false")
    return value


def rate_limit_field(body: Dict[str, Any]) -> Optional[int]:
    value = body.get("rate_limit")
    # Beyond 64 bits the core could not take it: the core's own message for any number out of range.
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or abs(value) > 2**62):
        raise ValidationError("rate_limit must be null or an integer between 1 and 10000 (deliveries per second)")
    return value


def headers_field(body: Dict[str, Any]) -> Dict[str, str]:
    value = body.get("headers")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValidationError("headers must be an object of strings (header name: value)")
    return value


def tags_field(body: Dict[str, Any]) -> Optional[List[str]]:
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise ValidationError("tags must be null or a list of strings")
    return tags


class Fields(Dict[str, Any]):
    """A request body as a route reads it: only the fields its request model declares (reading
    another is a bug, answered 500), so the model that describes the body in /openapi.json lists
    every field a route reads, with the defaults and bounds the route applies."""

    def __init__(self, value: Dict[str, Any], model: type[BaseModel]) -> None:
        super().__init__(value)
        self.model = model

    def declared(self, name: str) -> FieldInfo:
        if name not in self.model.model_fields:
            raise LookupError(f"{self.model.__name__} does not declare the field {name!r} a route reads")
        return self.model.model_fields[name]

    def __getitem__(self, name: str) -> Any:
        self.declared(name)
        return super().__getitem__(name)

    def __contains__(self, name: object) -> bool:
        self.declared(str(name))
        return super().__contains__(name)

    def get(self, name: str, default: Any = None) -> Any:
        self.declared(name)
        return super().get(name, default)


def request_fields(body: bytes, model: type[BaseModel], *, optional: bool = False) -> Fields:
    """The JSON object of a request body described by `model` (an empty body, when `optional`, is {})."""
    return Fields({} if optional and not body.strip() else json_object(body), model)


def _bound(field: FieldInfo, name: str) -> Optional[float]:
    return next((getattr(rule, name) for rule in field.metadata if hasattr(rule, name)), None)


def number_field(body: Fields, name: str) -> float:
    """A finite JSON number within the bounds its model declares, or the model's default (JSON's
    NaN and Infinity are refused)."""
    field = body.declared(name)
    value = body.get(name, None if field.is_required() else field.default)
    if value is None:
        raise ValidationError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a number")
    low, high = _bound(field, "ge"), _bound(field, "le")
    if low is None or high is None:
        raise LookupError(f"{body.model.__name__}.{name} declares no bounds (ge=, le=)")
    if not low <= value <= high:
        raise ValidationError(f"{name} must be between {low:g} and {high:g}")
    return value


def int_field(body: Fields, name: str) -> int:
    value = number_field(body, name)
    if value != int(value):
        raise ValidationError(f"{name} must be a whole number")
    return int(value)


def integer_field(body: Fields, name: str) -> Optional[int]:
    """A JSON integer within the bounds its model declares (not 60.0, "60" or true), or the
    model's default; null only where the model allows it."""
    field = body.declared(name)
    value = body.get(name, None if field.is_required() else field.default)
    low, high = _bound(field, "ge"), _bound(field, "le")
    if low is None or high is None:
        raise LookupError(f"{body.model.__name__}.{name} declares no bounds (ge=, le=)")
    if value is None and not field.is_required() and field.default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be an integer between {low:g} and {high:g}")
    return value


def request_base(request: Request) -> str:
    """Where this request was sent: scheme://host[:port] (and the app's root path)."""
    return str(request.base_url)


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


# --- the publish hot path ------------------------------------------------------------------

_EVENTS_PATH = re.compile(r"/brands/([^/]+)/events")
_JSON_HEADERS = [(b"content-type", b"application/json")]


def check_size(body: bytes) -> None:
    """POST /brands/{brand}/events: a body over MAX_BODY_BYTES is refused unless it is a batch."""
    if len(body) > MAX_BODY_BYTES and body.lstrip()[:1] != b"[":
        raise ApiError(413, "PayloadTooLarge", f"request body exceeds {MAX_BODY_BYTES} bytes")


# token, brand, body, Idempotency-Key, the answer
Waiting = Tuple[str, str, bytes, Optional[str], "asyncio.Future[bytes]"]


class GroupCommit:
    """Publishes that arrive together commit together. Each request waits on a future; one
    Hub.publish_json_each call takes all that are waiting, authorises and checks each on its own
    (a bad one gets its own error) and commits the valid ones in one transaction, which costs
    far less than a transaction each. The call runs on a thread of its own (the GIL released),
    so the event loop meanwhile reads the next requests (the next group) and serves reads; one
    commit runs at a time, as the store has one writer. One client alone waits for nothing."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.waiting: List[Waiting] = []
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="brandhooks-publish")
        self.busy = False  # a commit is under way, or scheduled

    def publish(self, token: str, brand: str, body: bytes, key: Optional[str] = None) -> "asyncio.Future[bytes]":
        loop = asyncio.get_running_loop()
        answer: "asyncio.Future[bytes]" = loop.create_future()
        self.waiting.append((token, brand, body, key, answer))
        if not self.busy:
            self.busy = True
            loop.call_soon(self._commit, loop)  # after the other requests that are ready now
        return answer

    def _commit(self, loop: asyncio.AbstractEventLoop) -> None:
        # At most MAX_BATCH_BODY_BYTES of bodies per transaction (at least one request).
        size, count = 0, 0
        for _, _, body, _, _ in self.waiting:
            size += len(body)
            if count and size > MAX_BATCH_BODY_BYTES:
                break
            count += 1
        group, self.waiting = self.waiting[:count], self.waiting[count:]
        requests: List[Tuple[Optional[str], str, bytes, Optional[str]]] = [
            (token, brand, body, key) for token, brand, body, key, _ in group]
        done = loop.run_in_executor(self.thread, self.hub.publish_json_each, requests)
        done.add_done_callback(lambda _: self._answer(loop, group, done))

    def _answer(self, loop: asyncio.AbstractEventLoop, group: List[Waiting],
                done: "asyncio.Future[List[Any]]") -> None:
        error = done.exception()  # every request of the group gets it
        answers: List[Any] = [error] * len(group) if error else done.result()
        for (_, _, _, _, future), answer in zip(group, answers):
            if future.done():
                continue  # cancelled: the client went away
            if isinstance(answer, bytes):
                future.set_result(answer)
            else:
                future.set_exception(answer)
        if self.waiting:
            loop.call_soon(self._commit, loop)
        else:
            self.busy = False


class PublishFastPath:
    """ASGI middleware that answers POST /brands/{brand}/events itself: the raw body goes to the
    core once (the core parses, validates, commits and writes the answer), with no routing,
    dependency injection, thread hand-off per request or JSON round trip in Python, and
    concurrent requests share a commit (GroupCommit). Every other request goes to the app. The route in create_app
    documents the same operation and answers it the same way."""

    def __init__(self, app: Any, hub: Hub) -> None:
        self.app, self.hub, self.group = app, hub, GroupCommit(hub)

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        match = _EVENTS_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        authorization, length, key = "", b"", None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                length = value
            elif name == b"idempotency-key":
                key = value.decode("latin-1")  # the core checks it (visible ASCII)
        try:
            body = await self._body(length, receive)
            if body is None:
                return  # the client went away
            check_size(body)
            answer = await self.group.publish(bearer_from(authorization), match[1], body, key)
        except BrandhooksError as exc:
            await core_error_response(exc)(scope, receive, send)
            return
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message)(scope, receive, send)
            return
        except Exception as exc:  # noqa: BLE001 (a 500 in the envelope, details in the log)
            log.exception("unexpected error", exc_info=exc)
            await _internal_error()(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 202,
                    "headers": [*_JSON_HEADERS, (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    @staticmethod
    async def _body(length: bytes, receive: Any) -> Optional[bytes]:
        """The body, at most MAX_BATCH_BODY_BYTES; None when the client disconnected."""
        too_large = ApiError(413, "PayloadTooLarge", f"request body exceeds {MAX_BODY_BYTES} bytes "
                                                     f"({MAX_BATCH_BODY_BYTES} for a batch)")
        if length.isdigit() and int(length) > MAX_BATCH_BODY_BYTES:
            raise too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BATCH_BODY_BYTES:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# --- the portal: static files of the package (python/brandhooks/portal) ---------------------

PORTAL_DIR = FilePath(__file__).with_name("portal")
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
    app.add_middleware(PublishFastPath, hub=hub)
    _install_error_handlers(app)
    _describe_as_served(app)

    @app.get("/", tags=["service"], include_in_schema=False)
    def index(request: Request) -> Response:
        """A browser goes to the interactive docs; other clients get where things are."""
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/docs", status_code=307)
        return ok({"name": "brandhooks", "version": __version__, "docs": "/docs",
                   "openapi": "/openapi.json", "health": "/healthz", "metrics": "/metrics",
                   "portal": "/portal"})

    @app.get("/portal", include_in_schema=False)
    def portal() -> Response:
        """The brand portal: a page over this same API (docs/portal.md)."""
        return portal_file("index.html")

    @app.get("/portal/{name}", include_in_schema=False)
    def portal_asset(name: str) -> Response:
        return portal_file(name)

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
    def create_webhook(body: RequestBody, brand: BrandAccess) -> JSONResponse:
        fields = request_fields(body, WebhookCreate)
        webhook = hub.create_webhook(
            brand, string_field(fields, "topic"), string_field(fields, "url"), tags_field(fields),
            ordered=bool_field(fields, "ordered") if "ordered" in fields else False,
            rate_limit=rate_limit_field(fields), headers=headers_field(fields),
        )
        return ok(webhook.to_dict())

    @app.get(
        "/brands/{brand}/webhooks", tags=["webhooks"],
        responses={200: {"model": WebhookListEnvelope}, **_errors(400, 401, 403)},
    )
    def list_webhooks(
        brand: BrandAccess,
        topic: Optional[str] = Query(None, description="only webhooks of this topic",
                                     json_schema_extra={"enum": list(TOPICS)}),
        start: Optional[str] = Query(None, description="records to skip (non-negative integer)",
                                     json_schema_extra={"pattern": COUNT_PATTERN}),
        limit: Optional[str] = Query(None, description="page size (non-negative integer)", json_schema_extra={"pattern": COUNT_PATTERN}),
    ) -> JSONResponse:
        page = hub.list_webhooks(brand, topic, count_param(start, "start") or 0, count_param(limit, "limit"))
        return listed([webhook.to_dict() for webhook in page.items], page.total)

    @app.get(
        "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"],
        responses={200: {"model": WebhookEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def get_webhook(brand: BrandAccess, webhook_id: WebhookId) -> JSONResponse:
        return ok(hub.get_webhook(brand, webhook_id).to_dict())

    @app.delete(
        "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"], status_code=204,
        response_class=Response, responses={204: {"description": "deleted"}, **_errors(400, 401, 403, 404)},
    )
    def delete_webhook(brand: BrandAccess, webhook_id: WebhookId) -> Response:
        hub.delete_webhook(brand, webhook_id)
        return Response(status_code=204)

    @app.post(
        "/brands/{brand}/events", tags=["events"], status_code=202,
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
            "anyOf": [EventCreate.model_json_schema(),
                      {"type": "array", "items": EventCreate.model_json_schema(), "minItems": 1,
                       "maxItems": MAX_BATCH_EVENTS, "title": "EventBatch"}]}}}}},
        responses={202: {"model": Union[PublishedEnvelope, PublishedListEnvelope],
                         "description": "accepted: the event's id, or one per event of a batch, in order"},
                   **_errors(400, 401, 403, 409, 413)},
    )
    async def publish_event(
        brand: BrandId, request: Request,
        idempotency_key: Optional[str] = Header(
            None, alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[!-~]+$", description=(
                "1 to 255 visible ASCII characters, per brand: the same key again within 24 h answers the "
                "first answer (the same event ids) and publishes nothing; with other events, 409 Conflict. "
                "It stands for the whole body (one event or a batch).")),
    ) -> Response:
        """Accept an event, or a batch: a JSON array of 1 to 1000 events, validated all or nothing
        (a 400 names the first bad one, `events[i]: ...`) and committed in one transaction. The
        events and their deliveries are committed before the answer. (PublishFastPath answers
        this route before routing; this handler answers the same way.)"""
        body = await PublishFastPath._body(request.headers.get("content-length", "").encode("latin-1"),
                                           request.receive) or b""
        check_size(body)
        hub.authorize(bearer_token(request), brand)
        return Response(hub.publish_json(brand, body, idempotency_key), status_code=202,
                        media_type="application/json")

    @app.patch(
        "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"], openapi_extra=_json_body(WebhookPatch),
        responses={200: {"model": WebhookEnvelope}, **_errors(400, 401, 403, 404, 413)},
    )
    def update_webhook(webhook_id: WebhookId, body: RequestBody, brand: BrandAccess) -> JSONResponse:
        """Change url, topic, tags, enabled, ordered, rate_limit or headers; only the fields given change."""
        fields = request_fields(body, WebhookPatch)
        changes: Dict[str, Any] = {}
        for name in ("url", "topic"):
            if name in fields:
                changes[name] = string_field(fields, name)
        if "tags" in fields:
            changes["tags"] = tags_field(fields)
        for name in ("enabled", "ordered"):
            if name in fields:
                changes[name] = bool_field(fields, name)
        if "rate_limit" in fields:
            changes["rate_limit"] = rate_limit_field(fields)
        if "headers" in fields:
            changes["headers"] = headers_field(fields)
        if not changes:
            raise ValidationError("give at least one of " + ", ".join(WebhookPatch.model_fields))
        return ok(hub.update_webhook(brand, webhook_id, **changes).to_dict())

    @app.get(
        "/brands/{brand}/webhooks/{webhook_id}/state", tags=["webhooks"],
        responses={200: {"model": WebhookStateEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def get_webhook_state(brand: BrandAccess, webhook_id: WebhookId) -> JSONResponse:
        """Whether delivery is enabled, and why not (410 Gone, failing too long, an operator)."""
        return ok(hub.get_webhook(brand, webhook_id).state_dict())

    @app.post(
        "/brands/{brand}/webhooks/{webhook_id}/rotate", tags=["webhooks"],
        openapi_extra=_json_body(RotateRequest, required=False),
        responses={200: {"model": WebhookEnvelope}, **_errors(400, 401, 403, 404, 413)},
    )
    def rotate_key(webhook_id: WebhookId, body: RequestBody, brand: BrandAccess) -> JSONResponse:
        """A new key; the old one keeps signing (Standard Webhooks) for grace_seconds."""
        grace = int_field(request_fields(body, RotateRequest, optional=True), "grace_seconds")
        return ok(hub.rotate_key(brand, webhook_id, grace).to_dict())

    @app.post(
        "/brands/{brand}/webhooks/{webhook_id}/recover", tags=["deliveries"], status_code=202,
        openapi_extra=_json_body(RecoverRequest),
        responses={202: {"model": RecoveredEnvelope}, **_errors(400, 401, 403, 404, 409, 413)},
    )
    def recover(webhook_id: WebhookId, body: RequestBody, brand: BrandAccess) -> JSONResponse:
        """Queue again every failed delivery of the webhook created since `since`."""
        fields = request_fields(body, RecoverRequest)
        since, limit = number_field(fields, "since"), int_field(fields, "limit")
        return ok(hub.recover(brand, webhook_id, since, limit).to_dict(), status=202)

    @app.get(
        "/brands/{brand}/deliveries/{delivery_id}", tags=["deliveries"],
        responses={200: {"model": DeliveryEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def get_delivery(brand: BrandAccess, delivery_id: DeliveryId) -> JSONResponse:
        return ok(hub.get_delivery(brand, delivery_id).to_dict())

    @app.post(
        "/brands/{brand}/deliveries/{delivery_id}/redeliver", tags=["deliveries"], status_code=202,
        responses={202: {"model": DeliveryEnvelope}, **_errors(400, 401, 403, 404, 409)},
    )
    def redeliver(brand: BrandAccess, delivery_id: DeliveryId) -> JSONResponse:
        """A new attempt now, whatever the delivery's state."""
        return ok(hub.redeliver(brand, delivery_id).to_dict(), status=202)

    @app.post(
        "/brands/{brand}/webhooks/{webhook_id}/test", tags=["webhooks"], status_code=202,
        responses={202: {"model": DeliveryEnvelope}, **_errors(400, 401, 403, 404, 409)},
    )
    def send_test_event(brand: BrandAccess, webhook_id: WebhookId) -> JSONResponse:
        """Publish a test event to this webhook only (event `Test`, the webhook's topic, payload
        `{"test": true, "message": ..., "webhook": <id>}`), delivered and signed as any event; answers
        its delivery. 409 when the webhook is disabled."""
        return ok(hub.send_test_event(brand, webhook_id).to_dict(), status=202)

    @app.get(
        "/brands/{brand}/delivery-stats", tags=["deliveries"],
        responses={200: {"model": DeliveryStatsEnvelope}, **_errors(400, 401, 403)},
    )
    def delivery_stats(
        brand: BrandAccess,
        hours: Optional[str] = Query(None, description="the window in hours, an integer from 1 to 24 (default 24)",
                                     json_schema_extra={"pattern": r"^(?=[0-9]{1,18}$)0*(?:[1-9]|1[0-9]|2[0-4])$"}),
    ) -> JSONResponse:
        """Delivery attempts of the brand's live webhooks over the last `hours` whole minutes (the
        current one included): per minute by outcome, and per webhook with p50/p99 durations."""
        window = count_param(hours, "hours")
        return ok(hub.delivery_stats(brand, 24 if window is None else window).to_dict())

    @app.get("/stats", tags=["service"], responses={200: {"model": StatsEnvelope}, **_errors(401, 403)})
    def stats(admin: AdminAccess) -> JSONResponse:
        return ok(hub.stats().to_dict())

    @app.get("/metrics", tags=["service"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
                        **_errors(401, 403)})
    def metrics(admin: AdminAccess) -> Response:
        """Counters and histograms of the core, for Prometheus (admin token)."""
        return Response(exposition(hub), media_type=CONTENT_TYPE_LATEST)

    @app.post("/tokens", tags=["tokens"], openapi_extra=_json_body(TokenCreate, required=False),
              responses={200: {"model": TokenEnvelope}, **_errors(400, 401, 403, 413)})
    def create_token(body: RequestBody, admin: AdminAccess) -> JSONResponse:
        """A new API token; its secret is in this answer only. No body: an admin token."""
        fields = request_fields(body, TokenCreate, optional=True)
        brand = fields.get("brand")
        if brand is not None and not isinstance(brand, str):
            raise ValidationError("brand must be a string or null")
        label = fields.get("label", "")
        if not isinstance(label, str):
            raise ValidationError("label must be a string")
        expires_in = integer_field(fields, "expires_in")
        return ok(hub.create_token(brand, label, expires_in=expires_in).to_dict())

    @app.get("/tokens", tags=["tokens"], responses={200: {"model": TokenListEnvelope}, **_errors(401, 403)})
    def list_tokens(admin: AdminAccess) -> JSONResponse:
        tokens = [info.to_dict() for info in hub.list_tokens()]
        return listed(tokens, len(tokens))

    @app.get("/tokens/current", tags=["tokens"], responses={200: {"model": CurrentTokenEnvelope}, **_errors(401)})
    def current_token(request: Request) -> JSONResponse:
        """The bearer's own token (any valid token): its brand (null: admin) and expiry."""
        return ok(hub.current_token(bearer_token(request)).to_dict())

    @app.delete("/tokens/{token_id:token_id}", tags=["tokens"], status_code=204, response_class=Response,
                responses={204: {"description": "revoked"}, **_errors(400, 401, 403, 404)})
    def revoke_token(token_id: TokenId, admin: AdminAccess) -> Response:
        hub.revoke_token(token_id)
        return Response(status_code=204)

    @app.get(
        "/brands/{brand}/webhooks/{webhook_id}/deliveries", tags=["deliveries"],
        responses={200: {"model": DeliveryListEnvelope}, **_errors(400, 401, 403, 404)},
    )
    def list_deliveries(
        brand: BrandAccess,
        webhook_id: WebhookId,
        status: Optional[str] = Query(None, description=", ".join(DELIVERY_STATES[:-1]) + " or " + DELIVERY_STATES[-1],
                                      json_schema_extra={"enum": list(DELIVERY_STATES)}),
        start: Optional[str] = Query(None, description="records to skip (non-negative integer)",
                                     json_schema_extra={"pattern": COUNT_PATTERN}),
        limit: Optional[str] = Query(None, description="page size, at most 1000 (default 100)",
                                     json_schema_extra={"pattern": r"^(?=[0-9]{1,18}$)0*(?:1000|[0-9]{1,3})$"}),
    ) -> JSONResponse:
        """A webhook's deliveries, newest first, each with its attempts."""
        page_size = count_param(limit, "limit")
        page = hub.list_deliveries(
            brand, webhook_id, status, count_param(start, "start") or 0, 100 if page_size is None else page_size,
        )
        return listed([delivery.to_dict() for delivery in page.items], page.total)

    @app.put(
        "/brands/{brand}", tags=["brands"], openapi_extra=_json_body(BrandUpdate),
        responses={200: {"model": BrandEnvelope}, **_errors(400, 401, 403, 409, 413)},
    )
    def put_brand(brand: BrandId, body: RequestBody, admin: AdminAccess) -> JSONResponse:
        fields = request_fields(body, BrandUpdate)
        if "parent" not in fields:
            raise ValidationError("parent is required (a brand UUID, or null)")
        parent = fields["parent"]
        if parent is not None and not isinstance(parent, str):
            raise ValidationError("parent must be a string or null")
        return ok(hub.set_brand_parent(brand, parent).to_dict())

    @app.get(
        "/brands/{brand}/descendants", tags=["brands"],
        responses={200: {"model": BrandListEnvelope}, **_errors(400, 401, 403)},
    )
    def list_descendants(brand: BrandAccess) -> JSONResponse:
        """Every brand below this one in the brand tree (not itself), breadth first."""
        below = [b.to_dict() for b in hub.brand_descendants(brand)]
        return listed(below, len(below))

    @app.post(
        "/brands/{brand}/portal-links", tags=["portal"], openapi_extra=_json_body(PortalLinkCreate, required=False),
        responses={200: {"model": PortalLinkEnvelope}, **_errors(400, 401, 403, 413)},
    )
    def create_portal_link(body: RequestBody, brand: BrandAccess, request: Request) -> JSONResponse:
        """A link that opens the portal signed in with a new token of this brand, expiring after
        expires_in seconds (default 3600) or with the caller's token, whichever comes first. It
        starts with the server's public_url, or else the address this request was sent to; the
        token is in its fragment (#token=...), which browsers never send to a server."""
        expires_in = integer_field(request_fields(body, PortalLinkCreate, optional=True), "expires_in")
        assert expires_in is not None  # its default is a number, so integer_field refuses null
        link = hub.create_portal_link(bearer_token(request), brand, expires_in, request_base(request))
        return ok(link.to_dict())

    return app
