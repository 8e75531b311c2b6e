"""How the core's errors appear in the REST API: one table, read by the API (to answer) and by
the Client (to raise the same exception on the other side)."""

from ._core import ConflictError, ForbiddenError, NotFoundError, UnauthorizedError, ValidationError

#: exception class -> (HTTP status, envelope code)
ERROR_STATUS = {
    ValidationError: (400, "Validation"),
    UnauthorizedError: (401, "UnauthorizedAccess"),
    ForbiddenError: (403, "AccessForbidden"),
    NotFoundError: (404, "ResourceNotFound"),
    ConflictError: (409, "Conflict"),
}
