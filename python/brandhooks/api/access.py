"""The routes' dependencies on who asks: the hub the app serves, the bearer token, and the access
rules (a brand's token or the admin token for a brand's routes, the admin token for the rest).
A route that reads a body declares it (inputs.RequestBody) before its access rule: the body's
limits (413) are checked first, as the publish route does."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .._core import Hub, Principal, UnauthorizedError
from .models import BrandId


async def app_hub(request: Request) -> Hub:
    """The Hub that create_app serves (async: fetched on the event loop, no thread hand-off)."""
    hub: Hub = request.app.state.hub
    return hub


AppHub = Annotated[Hub, Depends(app_hub)]


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


# The access rules, one dependency each.
BrandAccess = Annotated[str, Depends(brand_access)]
AdminAccess = Annotated[Principal, Depends(admin_access)]
