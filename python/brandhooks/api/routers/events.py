"""Publishing events: one, or a batch. PublishFastPath (publish.py) answers this route before
routing; the route here documents it and answers the same way where the fast path is not
installed."""

from __future__ import annotations

from typing import Optional, Union

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from ..access import AppHub, bearer_token
from ..envelope import error_answers
from ..models import BrandId, EventCreate, PublishedEnvelope, PublishedListEnvelope, schema_ref
from ..publish import MAX_BATCH_EVENTS, PublishFastPath, check_size

router = APIRouter()
_EVENT = schema_ref(EventCreate)  # one named schema for both shapes of the body


@router.post(
    "/brands/{brand}/events", tags=["events"], status_code=202,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "anyOf": [_EVENT,
                  {"type": "array", "items": _EVENT, "minItems": 1,
                   "maxItems": MAX_BATCH_EVENTS, "title": "EventBatch"}]}}}}},
    responses={202: {"model": Union[PublishedEnvelope, PublishedListEnvelope],
                     "description": "accepted: the event's id, or one per event of a batch, in order"},
               **error_answers(400, 401, 403, 409, 413)},
)
async def publish_event(
    brand: BrandId, request: Request, hub: AppHub,
    idempotency_key: Optional[str] = Header(
        None, alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[!-~]+$", description=(
            "1 to 255 visible ASCII characters, per brand: the same key again within 24 h answers the "
            "first answer (the same event ids) and publishes nothing; with other events, 409 Conflict. "
            "It stands for the whole body (one event or a batch).")),
    traceparent: Optional[str] = Header(None, description=(
        "W3C Trace Context (https://www.w3.org/TR/trace-context/): every attempt of the events' deliveries "
        "sends it on, so the receivers' traces continue the publisher's. An invalid one is ignored, as the "
        "specification says (no error)."), examples=["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]),
    tracestate: Optional[str] = Header(None, description=(
        "W3C Trace Context vendor entries, sent on with the traceparent (an invalid one is dropped; at most "
        "512 characters kept).")),
) -> Response:
    """Accept an event, or a batch: a JSON array of 1 to 1000 events, validated all or nothing
    (a 400 names the first bad one, `events[i]: ...`) and committed in one transaction. The
    events and their deliveries are committed before the answer. (PublishFastPath answers
    this route before routing; this handler answers the same way.)"""
    body = await PublishFastPath.read_body(request.headers.get("content-length", "").encode("latin-1"),
                                           request.receive) or b""
    check_size(body)
    hub.authorize(bearer_token(request), brand)
    # Every line of each header, joined as HTTP reads them (the fast path does the same).
    trace = [",".join(request.headers.getlist(name)) or None for name in ("traceparent", "tracestate")]
    return Response(hub.publish_json(brand, body, idempotency_key, traceparent=trace[0], tracestate=trace[1]),
                    status_code=202, media_type="application/json")
