"""The deliveries of a brand's webhooks: list and read them, redeliver one, recover the failed
ones, and the delivery statistics."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from ..access import AppHub, BrandAccess
from ..envelope import error_answers, listed, ok
from ..inputs import RequestBody, count_param, int_field, number_field, request_fields
from ..models import (COUNT_PATTERN, DELIVERY_STATES, DeliveryEnvelope, DeliveryId, DeliveryListEnvelope,
                      DeliveryStatsEnvelope, RecoverRequest, RecoveredEnvelope, WebhookId, json_body)

router = APIRouter()


@router.post(
    "/brands/{brand}/webhooks/{webhook_id}/recover", tags=["deliveries"], status_code=202,
    openapi_extra=json_body(RecoverRequest),
    responses={202: {"model": RecoveredEnvelope}, **error_answers(400, 401, 403, 404, 409, 413)},
)
def recover(webhook_id: WebhookId, body: RequestBody, brand: BrandAccess, hub: AppHub) -> JSONResponse:
    """Queue again every failed delivery of the webhook created since `since`."""
    fields = request_fields(body, RecoverRequest)
    since, limit = number_field(fields, "since"), int_field(fields, "limit")
    return ok(hub.recover(brand, webhook_id, since, limit).to_dict(), status=202)


@router.get(
    "/brands/{brand}/deliveries/{delivery_id}", tags=["deliveries"],
    responses={200: {"model": DeliveryEnvelope}, **error_answers(400, 401, 403, 404)},
)
def get_delivery(brand: BrandAccess, delivery_id: DeliveryId, hub: AppHub) -> JSONResponse:
    return ok(hub.get_delivery(brand, delivery_id).to_dict())


@router.post(
    "/brands/{brand}/deliveries/{delivery_id}/redeliver", tags=["deliveries"], status_code=202,
    responses={202: {"model": DeliveryEnvelope}, **error_answers(400, 401, 403, 404, 409)},
)
def redeliver(brand: BrandAccess, delivery_id: DeliveryId, hub: AppHub) -> JSONResponse:
    """A new attempt now, whatever the delivery's state."""
    return ok(hub.redeliver(brand, delivery_id).to_dict(), status=202)


@router.get(
    "/brands/{brand}/delivery-stats", tags=["deliveries"],
    responses={200: {"model": DeliveryStatsEnvelope}, **error_answers(400, 401, 403)},
)
def delivery_stats(
    brand: BrandAccess,
    hub: AppHub,
    hours: Optional[str] = Query(None, description="the window in hours, an integer from 1 to 24 (default 24)",
                                 json_schema_extra={"pattern": r"^(?=[0-9]{1,18}$)0*(?:[1-9]|1[0-9]|2[0-4])$"}),
) -> JSONResponse:
    """Delivery attempts of the brand's live webhooks over the last `hours` whole minutes (the
    current one included): per minute by outcome, and per webhook with p50/p99 durations."""
    window = count_param(hours, "hours")
    return ok(hub.delivery_stats(brand, 24 if window is None else window).to_dict())


@router.get(
    "/brands/{brand}/webhooks/{webhook_id}/deliveries", tags=["deliveries"],
    responses={200: {"model": DeliveryListEnvelope}, **error_answers(400, 401, 403, 404)},
)
def list_deliveries(
    brand: BrandAccess,
    hub: AppHub,
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
