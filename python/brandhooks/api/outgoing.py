"""The requests a receiver gets, described for OpenAPI 3.1's ``webhooks`` section: one operation
per topic, with the headers every attempt carries and the body of that topic's events, so that
a receiver can generate its types from /openapi.json as a client does (docs/api.md, "OpenAPI")."""

from __future__ import annotations

from typing import Any, Dict

from .. import records

HEX_SHA256 = r"^[0-9a-f]{64}$"
#: v1,<base64 HMAC-SHA256>, one per valid key during a rotation, separated by spaces.
STANDARD_SIGNATURES = r"^v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)*$"
TRACEPARENT = r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


def event_schema(topic: str) -> Dict[str, Any]:
    """The body of a delivery of a `topic` event: the same bytes on every attempt."""
    uuid = {"type": "string", "format": "uuid"}
    return {
        "title": f"{topic}Event",
        "type": "object",
        "description": f"A {topic} event as delivered: the original system's four keys first, then the event's id "
                       "and brand. The same bytes on every attempt; verify the signature over these raw bytes.",
        "required": ["topic", "event", "timestamp", "payload", "id", "brand"],
        "properties": {
            "topic": {"type": "string", "const": topic},
            "event": {"type": "string", "description": "what happened, as the publisher named it (e.g. Created); "
                                                       "\"Test\" for a test event sent on request"},
            "timestamp": {"type": "integer", "description": "when the event was published, milliseconds since the "
                                                            "Unix epoch (the same on every attempt)"},
            "payload": {"type": "object", "additionalProperties": True,
                        "description": "the publisher's JSON object, as published"},
            "id": {**uuid, "description": "the event's id (publish answered it)"},
            "brand": {**uuid, "description": "the brand that published: the webhook's own, or one of its descendants"},
        },
    }


def _header(name: str, description: str, required: bool = True, **schema: Any) -> Dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "description": description,
            "schema": {"type": "string", **schema}}


def webhooks_section(signature_header: str) -> Dict[str, Any]:
    """The ``webhooks`` section (one operation per topic) and the body schemas it refers to
    (for ``components/schemas``), as this server sends them (`signature_header` is its setting)."""
    parameters = [
        _header(signature_header, "hex HMAC-SHA256 of the raw body with the webhook's key (the 32 bytes its "
                "64 hex characters encode)", pattern=HEX_SHA256),
        _header("webhook-id", "Standard Webhooks: the delivery's id, the same on every attempt (deduplicate on it)",
                format="uuid"),
        _header("webhook-timestamp", "Standard Webhooks: Unix seconds of this attempt", pattern=r"^[0-9]+$"),
        _header("webhook-signature", "Standard Webhooks: v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-"
                "timestamp}.{body}\">, one per valid key during a key rotation, separated by spaces",
                pattern=STANDARD_SIGNATURES),
        _header("traceparent", "W3C Trace Context of the publish, when it carried one: continue the "
                "publisher's trace from it (its parent-id is this attempt's own span when the sender exports "
                "spans, else the publisher's)", required=False, pattern=TRACEPARENT),
        _header("tracestate", "W3C Trace Context vendor entries, with the traceparent", required=False),
    ]
    retry_after = {"Retry-After": {"description": "seconds (or an HTTP date) to wait before the next attempt; "
                                                  "honoured up to a day", "schema": {"type": "string"}}}
    responses = {
        "2XX": {"description": "delivered: the attempt succeeded and the delivery is done"},
        "410": {"description": "Gone: the delivery fails and the webhook is disabled (its pending deliveries "
                               "are cancelled)"},
        "429": {"description": "too many requests: retried, after Retry-After when given", "headers": retry_after},
        "503": {"description": "unavailable: retried, after Retry-After when given", "headers": retry_after},
        "default": {"description": "any other answer (redirects are not followed), a timeout or a connection "
                                   "error: the attempt failed and is retried on the schedule"},
    }
    section: Dict[str, Any] = {}
    schemas: Dict[str, Any] = {}
    for topic in records.values("webhook", "topic"):
        name = f"{topic}Event"
        schemas[name] = event_schema(topic)
        section[topic] = {"post": {
            "operationId": f"receive_{topic.lower()}_event",
            "tags": ["webhooks"],
            "summary": f"A {topic} event, delivered to a webhook of topic {topic}",
            "description": "POST to the webhook's URL, Content-Type application/json, on each attempt until a "
                           "2xx (at least once: deduplicate on webhook-id). The webhook's own headers, if any, "
                           "come too. Verify a signature before trusting the body.",
            "parameters": parameters,
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}},
            "responses": responses,
        }}
    return {"webhooks": section, "schemas": schemas}
