"""Receiver side: check that a request really comes from brandhooks.

    from brandhooks import verify, SignatureError

    try:
        scheme = verify(raw_body, request.headers, key)   # key: the webhook's 64-hex `key`
    except SignatureError:
        return 401

The comparison runs in the C++ core, in constant time. The Standard Webhooks scheme
(webhook-id / webhook-timestamp / webhook-signature) is preferred when its headers are present,
as it also guards against replays (timestamp tolerance, 5 minutes by default). Otherwise the
simple scheme (hex HMAC of the body in X-Webhook-Signature, or the configured name) is checked.
"""

from __future__ import annotations

from email.message import Message
from typing import Mapping, Optional, Union

from ._core import BrandhooksError, Config, verify_simple, verify_standard

DEFAULT_SIGNATURE_HEADER = Config().signature_header  # the core's default, one place


# A mapping of header names, or http.server's request headers (an email Message).
Headers = Union[Mapping[str, str], Message]


class SignatureError(BrandhooksError):
    """The request's signature is missing, wrong, or too old."""


def _header(headers: Headers, name: str) -> Optional[str]:
    if name in headers:
        return headers[name]
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def verify(
    body: Union[bytes, str],
    headers: Headers,
    key: str,
    *,
    tolerance: int = 300,
    signature_header: str = DEFAULT_SIGNATURE_HEADER,
    now: Optional[int] = None,
) -> str:
    """Check the signature of a delivery; returns "standard" or "simple", or raises SignatureError.

    ``body`` must be the raw bytes received (not re-serialized JSON). ``key`` is the webhook's
    key as 64 hex characters, or the ``whsec_...`` form.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if msg_id is not None and timestamp is not None and signatures is not None:
        if verify_standard(key, raw, msg_id, timestamp, signatures, now, tolerance):
            return "standard"
        raise SignatureError("webhook-signature does not match, or webhook-timestamp is outside the tolerance")
    simple = _header(headers, signature_header)
    if simple is not None:
        if verify_simple(key, raw, simple):
            return "simple"
        raise SignatureError(f"{signature_header} does not match the body")
    raise SignatureError("no signature headers")
