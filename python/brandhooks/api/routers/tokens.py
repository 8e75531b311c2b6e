"""API tokens (admin: create, list, revoke; any token: itself) and portal links, which sign the
brand portal in with a new token of a brand."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.convertors import Convertor, register_url_convertor

from ..._core import ValidationError
from ..access import AdminAccess, AppHub, BrandAccess, bearer_token
from ..envelope import error_answers, listed, ok
from ..inputs import RequestBody, integer_field, request_base, request_fields
from ..models import (CurrentTokenEnvelope, PortalLinkCreate, PortalLinkEnvelope, TokenCreate, TokenEnvelope,
                      TokenId, TokenListEnvelope, json_body)


class _TokenIdConvertor(Convertor[str]):
    """A token id in a path: anything but "current". GET /tokens/current is a resource of its
    own, so DELETE /tokens/current is 405 (Allow: GET), not the revocation of a token "current"."""

    regex = "(?!current$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("token_id", _TokenIdConvertor())

router = APIRouter()


@router.post("/tokens", tags=["tokens"], openapi_extra=json_body(TokenCreate, required=False),
             responses={200: {"model": TokenEnvelope}, **error_answers(400, 401, 403, 413)})
def create_token(body: RequestBody, admin: AdminAccess, hub: AppHub) -> JSONResponse:
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


@router.get("/tokens", tags=["tokens"],
            responses={200: {"model": TokenListEnvelope}, **error_answers(401, 403)})
def list_tokens(admin: AdminAccess, hub: AppHub) -> JSONResponse:
    tokens = [info.to_dict() for info in hub.list_tokens()]
    return listed(tokens, len(tokens))


@router.get("/tokens/current", tags=["tokens"],
            responses={200: {"model": CurrentTokenEnvelope}, **error_answers(401)})
def current_token(request: Request, hub: AppHub) -> JSONResponse:
    """The bearer's own token (any valid token): its brand (null: admin) and expiry."""
    return ok(hub.current_token(bearer_token(request)).to_dict())


@router.delete("/tokens/{token_id:token_id}", tags=["tokens"], status_code=204, response_class=Response,
               responses={204: {"description": "revoked"}, **error_answers(400, 401, 403, 404)})
def revoke_token(token_id: TokenId, admin: AdminAccess, hub: AppHub) -> Response:
    hub.revoke_token(token_id)
    return Response(status_code=204)


@router.post(
    "/brands/{brand}/portal-links", tags=["portal"], openapi_extra=json_body(PortalLinkCreate, required=False),
    responses={200: {"model": PortalLinkEnvelope}, **error_answers(400, 401, 403, 413)},
)
def create_portal_link(body: RequestBody, brand: BrandAccess, request: Request, hub: AppHub) -> JSONResponse:
    """A link that opens the portal signed in with a new token of this brand, expiring after
    expires_in seconds (default 3600) or with the caller's token, whichever comes first. It
    starts with the server's public_url, or else the address this request was sent to; the
    token is in its fragment (#token=...), which browsers never send to a server."""
    expires_in = integer_field(request_fields(body, PortalLinkCreate, optional=True), "expires_in")
    assert expires_in is not None  # its default is a number, so integer_field refuses null
    link = hub.create_portal_link(bearer_token(request), brand, expires_in, request_base(request))
    return ok(link.to_dict())
