"""The webhooks of a brand: create, list, read, change, delete, their state, key rotation and
the test event."""

from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from ..._core import TOPICS, ValidationError
from ..access import AppHub, BrandAccess
from ..envelope import error_answers, listed, ok
from ..inputs import (RequestBody, bool_field, count_param, headers_field, int_field, rate_limit_field,
                      request_fields, string_field, tags_field)
from ..models import (COUNT_PATTERN, DeliveryEnvelope, RotateRequest, WebhookCreate, WebhookEnvelope, WebhookId,
                      WebhookListEnvelope, WebhookPatch, WebhookStateEnvelope, json_body)

router = APIRouter()


@router.post(
    "/brands/{brand}/webhooks", tags=["webhooks"], openapi_extra=json_body(WebhookCreate),
    responses={200: {"model": WebhookEnvelope}, **error_answers(400, 401, 403, 413)},
)
def create_webhook(body: RequestBody, brand: BrandAccess, hub: AppHub) -> JSONResponse:
    fields = request_fields(body, WebhookCreate)
    webhook = hub.create_webhook(
        brand, string_field(fields, "topic"), string_field(fields, "url"), tags_field(fields),
        ordered=bool_field(fields, "ordered") if "ordered" in fields else False,
        rate_limit=rate_limit_field(fields), headers=headers_field(fields),
    )
    return ok(webhook.to_dict())


@router.get(
    "/brands/{brand}/webhooks", tags=["webhooks"],
    responses={200: {"model": WebhookListEnvelope}, **error_answers(400, 401, 403)},
)
def list_webhooks(
    brand: BrandAccess,
    hub: AppHub,
    topic: Optional[str] = Query(None, description="only webhooks of this topic",
                                 json_schema_extra={"enum": list(TOPICS)}),
    start: Optional[str] = Query(None, description="records to skip (non-negative integer)",
                                 json_schema_extra={"pattern": COUNT_PATTERN}),
    limit: Optional[str] = Query(None, description="page size (non-negative integer)", json_schema_extra={"pattern": COUNT_PATTERN}),
) -> JSONResponse:
    page = hub.list_webhooks(brand, topic, count_param(start, "start") or 0, count_param(limit, "limit"))
    return listed([webhook.to_dict() for webhook in page.items], page.total)


@router.get(
    "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"],
    responses={200: {"model": WebhookEnvelope}, **error_answers(400, 401, 403, 404)},
)
def get_webhook(brand: BrandAccess, webhook_id: WebhookId, hub: AppHub) -> JSONResponse:
    return ok(hub.get_webhook(brand, webhook_id).to_dict())


@router.delete(
    "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"], status_code=204,
    response_class=Response, responses={204: {"description": "deleted"}, **error_answers(400, 401, 403, 404)},
)
def delete_webhook(brand: BrandAccess, webhook_id: WebhookId, hub: AppHub) -> Response:
    hub.delete_webhook(brand, webhook_id)
    return Response(status_code=204)


@router.patch(
    "/brands/{brand}/webhooks/{webhook_id}", tags=["webhooks"], openapi_extra=json_body(WebhookPatch),
    responses={200: {"model": WebhookEnvelope}, **error_answers(400, 401, 403, 404, 413)},
)
def update_webhook(webhook_id: WebhookId, body: RequestBody, brand: BrandAccess, hub: AppHub) -> JSONResponse:
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


@router.get(
    "/brands/{brand}/webhooks/{webhook_id}/state", tags=["webhooks"],
    responses={200: {"model": WebhookStateEnvelope}, **error_answers(400, 401, 403, 404)},
)
def get_webhook_state(brand: BrandAccess, webhook_id: WebhookId, hub: AppHub) -> JSONResponse:
    """Whether delivery is enabled, and why not (410 Gone, failing too long, an operator)."""
    return ok(hub.get_webhook(brand, webhook_id).state_dict())


@router.post(
    "/brands/{brand}/webhooks/{webhook_id}/rotate", tags=["webhooks"],
    openapi_extra=json_body(RotateRequest, required=False),
    responses={200: {"model": WebhookEnvelope}, **error_answers(400, 401, 403, 404, 413)},
)
def rotate_key(webhook_id: WebhookId, body: RequestBody, brand: BrandAccess, hub: AppHub) -> JSONResponse:
    """A new key; the old one keeps signing (Standard Webhooks) for grace_seconds."""
    grace = int_field(request_fields(body, RotateRequest, optional=True), "grace_seconds")
    return ok(hub.rotate_key(brand, webhook_id, grace).to_dict())


@router.post(
    "/brands/{brand}/webhooks/{webhook_id}/test", tags=["webhooks"], status_code=202,
    responses={202: {"model": DeliveryEnvelope}, **error_answers(400, 401, 403, 404, 409)},
)
def send_test_event(brand: BrandAccess, webhook_id: WebhookId, hub: AppHub) -> JSONResponse:
    """Publish a test event to this webhook only (event `Test`, the webhook's topic, payload
    `{"test": true, "message": ..., "webhook": <id>}`), delivered and signed as any event; answers
    its delivery. 409 when the webhook is disabled."""
    return ok(hub.send_test_event(brand, webhook_id).to_dict(), status=202)
