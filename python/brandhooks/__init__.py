"""brandhooks: signed, durable webhook delivery for multi-brand tenants.

The work happens in the compiled core (``brandhooks._core``, C++); this package adds the
REST API (:mod:`brandhooks.api`) and the command line (:mod:`brandhooks.cli`).
"""

from ._core import (
    TOPICS,
    Brand,
    BrandhooksError,
    Config,
    ConflictError,
    ForbiddenError,
    Hub,
    IssuedToken,
    NotFoundError,
    Principal,
    StorageError,
    TokenInfo,
    UnauthorizedError,
    ValidationError,
    Webhook,
    WebhookPage,
)

__version__ = "0.1.0"

__all__ = [
    "TOPICS",
    "Brand",
    "BrandhooksError",
    "Config",
    "ConflictError",
    "ForbiddenError",
    "Hub",
    "IssuedToken",
    "NotFoundError",
    "Principal",
    "StorageError",
    "TokenInfo",
    "UnauthorizedError",
    "ValidationError",
    "Webhook",
    "WebhookPage",
]
