"""brandhooks: signed, durable webhook delivery for multi-brand tenants.

The work happens in the compiled core (``brandhooks._core``, C++); this package adds the
REST API (:mod:`brandhooks.api`) and the command line (:mod:`brandhooks.cli`).
"""

from importlib import metadata as _metadata

from ._core import (
    TOPICS,
    Attempt,
    BadRequestError,
    Brand,
    BrandhooksError,
    Config,
    ConflictError,
    Delivery,
    DeliveryPage,
    ForbiddenError,
    Hub,
    IssuedToken,
    Migration,
    NotFoundError,
    PortalLink,
    Principal,
    PublishResult,
    RecoverResult,
    Stats,
    StorageError,
    TokenInfo,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
    Webhook,
    WebhookPage,
    standard_webhooks_secret,
)
from .client import Client, Records, to_frame
from .verify import SignatureError, verify

__version__ = _metadata.version("brandhooks")  # from the top-level VERSION file

__all__ = [
    "TOPICS",
    "Attempt",
    "BadRequestError",
    "Brand",
    "BrandhooksError",
    "Client",
    "Config",
    "ConflictError",
    "Delivery",
    "DeliveryPage",
    "ForbiddenError",
    "Hub",
    "IssuedToken",
    "Migration",
    "NotFoundError",
    "PortalLink",
    "Principal",
    "PublishResult",
    "Records",
    "RecoverResult",
    "Stats",
    "SignatureError",
    "StorageError",
    "TokenInfo",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
    "Webhook",
    "WebhookPage",
    "standard_webhooks_secret",
    "to_frame",
    "verify",
]
