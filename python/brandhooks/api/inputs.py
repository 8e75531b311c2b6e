"""Reading a request's input: the body (bounded, read on the event loop), its JSON object and
fields as the request models (models.py) declare them, and the counts of query parameters.
Each bad input is a 400 (or 413) in the envelope before anything changes."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Dict, List, Optional

from fastapi import Depends, Request
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .._core import ValidationError
from .envelope import ApiError

#: Largest request body accepted; larger ones get 413 PayloadTooLarge.
MAX_BODY_BYTES = 1 << 20


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
