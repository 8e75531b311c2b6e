"""How the core's errors appear in the REST API: one table, read by the API (to answer) and by
the Client (to raise the same exception on the other side)."""

from typing import Dict, Tuple, Type

from ._core import (
    BadRequestError,
    BrandhooksError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)

#: exception class -> (HTTP status, envelope code); a subclass before its base (the first match wins)
ERROR_STATUS: Dict[Type[BrandhooksError], Tuple[int, str]] = {
    BadRequestError: (400, "BadRequest"),
    ValidationError: (400, "Validation"),
    UnauthorizedError: (401, "UnauthorizedAccess"),
    ForbiddenError: (403, "AccessForbidden"),
    NotFoundError: (404, "ResourceNotFound"),
    ConflictError: (409, "Conflict"),
    UnavailableError: (503, "Unavailable"),
}

#: Seconds an Unavailable answer asks the client to wait (its Retry-After header) when the
#: error does not say (UnavailableError.retry_after: how long the outage is likely to last).
RETRY_AFTER_S = 10
