"""The brand tree: place a brand under a parent (admin), and list the brands below one."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..._core import ValidationError
from ..access import AdminAccess, AppHub, BrandAccess
from ..envelope import error_answers, listed, ok
from ..inputs import RequestBody, request_fields
from ..models import BrandEnvelope, BrandId, BrandListEnvelope, BrandUpdate, json_body

router = APIRouter()


@router.put(
    "/brands/{brand}", tags=["brands"], openapi_extra=json_body(BrandUpdate),
    responses={200: {"model": BrandEnvelope}, **error_answers(400, 401, 403, 409, 413)},
)
def put_brand(brand: BrandId, body: RequestBody, admin: AdminAccess, hub: AppHub) -> JSONResponse:
    fields = request_fields(body, BrandUpdate)
    if "parent" not in fields:
        raise ValidationError("parent is required (a brand UUID, or null)")
    parent = fields["parent"]
    if parent is not None and not isinstance(parent, str):
        raise ValidationError("parent must be a string or null")
    return ok(hub.set_brand_parent(brand, parent).to_dict())


@router.get(
    "/brands/{brand}/descendants", tags=["brands"],
    responses={200: {"model": BrandListEnvelope}, **error_answers(400, 401, 403)},
)
def list_descendants(brand: BrandAccess, hub: AppHub) -> JSONResponse:
    """Every brand below this one in the brand tree (not itself), breadth first."""
    below = [b.to_dict() for b in hub.brand_descendants(brand)]
    return listed(below, len(below))
