"""Receiver side: check that a request really comes from brandhooks.

    from brandhooks import verify, SignatureError

    try:
        verify(raw_body, request.headers, key)   # key: the webhook's 64-hex `key`
    except SignatureError:
        return 401

The comparison runs in the C++ core, in constant time. The scheme is the caller's choice, never
the request's: ``scheme="standard"`` (the default) checks the Standard Webhooks headers
(webhook-id / webhook-timestamp / webhook-signature), which also guard against replays
(timestamp tolerance, 5 minutes by default); a request without them is refused, so stripping
them cannot downgrade a check. ``scheme="simple"`` checks only the hex HMAC of the body in
X-Webhook-Signature (or the configured name): choose it only for receivers written for the
original system, knowing that a captured request then replays forever.
"""

from __future__ import annotations

from email.message import Message
from typing import Literal, Mapping, Optional, Union, get_args

from ._core import BrandhooksError, Config, verify_simple, verify_standard

DEFAULT_SIGNATURE_HEADER: str = Config().signature_header  # the core's default, one place

Scheme = Literal["standard", "simple"]
SCHEMES: tuple[Scheme, ...] = get_args(Scheme)  # the schemes, from their type


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
    scheme: Scheme = "standard",
    tolerance: int = 300,
    signature_header: str = DEFAULT_SIGNATURE_HEADER,
    now: Optional[int] = None,
) -> Scheme:
    """Check the signature of a delivery with ``scheme``; returns the scheme, or raises
    SignatureError (also when the scheme's headers are missing).

    ``body`` must be the raw bytes received (not re-serialized JSON). ``key`` is the webhook's
    key as 64 hex characters, or the ``whsec_...`` form. ``tolerance`` and ``now`` apply to the
    standard scheme, ``signature_header`` to the simple one.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    if scheme == "standard":
        msg_id = _header(headers, "webhook-id")
        timestamp = _header(headers, "webhook-timestamp")
        signatures = _header(headers, "webhook-signature")
        if msg_id is None or timestamp is None or signatures is None:
            raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header "
                                 "(scheme \"standard\")")
        if verify_standard(key, raw, msg_id, timestamp, signatures, now, tolerance):
            return "standard"
        raise SignatureError("webhook-signature does not match, or webhook-timestamp is outside the tolerance")
    if scheme == "simple":
        simple = _header(headers, signature_header)
        if simple is None:
            raise SignatureError(f"missing {signature_header} header (scheme \"simple\")")
        if verify_simple(key, raw, simple):
            return "simple"
        raise SignatureError(f"{signature_header} does not match the body")
    raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
