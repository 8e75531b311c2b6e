"""The shapes of the API for its OpenAPI description: the path ids, the input rules of the core,
the request bodies (pydantic models) and the answers' envelopes (from the core's field tables).
The routes read bodies themselves (inputs.py); these models describe what they read."""

from __future__ import annotations

from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema

from .. import records

# The closed sets of the core's tables, for the request models (the answers' come with them).
Topic = Annotated[str, WithJsonSchema({"enum": list(records.values("webhook", "topic")), "type": "string"})]
DELIVERY_STATES = records.values("delivery", "state")

#: A path id: the server answers 400 Validation for anything but a UUID (checked by the core,
#: after the token, so a bad token is reported first); declared for the OpenAPI description.
BrandId = Annotated[str, Path(description="brand UUID", json_schema_extra={"format": "uuid"})]
WebhookId = Annotated[str, Path(description="webhook UUID", json_schema_extra={"format": "uuid"})]
DeliveryId = Annotated[str, Path(description="delivery UUID", json_schema_extra={"format": "uuid"})]
TokenId = Annotated[str, Path(description="token UUID", json_schema_extra={"format": "uuid"})]

# The input rules of the core, written for the OpenAPI description so that a schema-driven
# client (or fuzzer) finds exactly what the server accepts. Lengths count characters (code
# points), as the core does.
_PORT = r"0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
URL_PATTERN = (r"^[hH][tT][tT][pP][sS]?://"
               r"(?:\[[0-9a-fA-F:.]+\]|(?:[A-Za-z0-9._-]|[^\x00-\x7f])+)"
               rf"(?::(?:{_PORT})?)?"
               r"(?:[/?#][^\x00-\x20\x7f]*)?$")
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=URL_PATTERN,
                           description="absolute http(s) URL with a host, without credentials")]
Tag = Annotated[str, Field(min_length=1, max_length=128, pattern=PRINTABLE)]
Tags = Annotated[List[Tag], Field(max_length=64)]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
COUNT_PATTERN = r"^[0-9]{1,18}$"  # what count_param reads: ASCII digits that fit 64 bits


# --- the shapes the API answers with (for OpenAPI; responses are built by the core) ------
# Derived from the core's field tables (records.py): the one definition of each record's shape.

WebhookEnvelope = records.envelope("webhook")
WebhookListEnvelope = records.envelope("webhook", listed=True)
WebhookStateEnvelope = records.envelope("webhook_state")
DeliveryEnvelope = records.envelope("delivery")
DeliveryListEnvelope = records.envelope("delivery", listed=True)
PublishedEnvelope = records.envelope("published")
PublishedListEnvelope = records.envelope("published", listed=True)  # a batch: one per event, in order
RecoveredEnvelope = records.envelope("recovered")
TokenEnvelope = records.envelope("new_token")
TokenListEnvelope = records.envelope("token", listed=True)
CurrentTokenEnvelope = records.envelope("token")
PortalLinkEnvelope = records.envelope("portal_link")
StatsEnvelope = records.envelope("stats")
DeliveryStatsEnvelope = records.envelope("delivery_stats")
BrandEnvelope = records.envelope("brand")
BrandListEnvelope = records.envelope("brand", listed=True)


class Health(BaseModel):
    status: Literal["ok"]


class HealthEnvelope(BaseModel):
    code: Literal["OK"]
    data: Health


class EventCreate(BaseModel):
    topic: Topic
    event: str = Field(description="what happened, e.g. Created", min_length=1, max_length=128, pattern=PRINTABLE)
    payload: Dict[str, Any] = Field(description="a JSON object, nested at most 128 levels (itself included)")
    tags: Optional[Tags] = Field(None, description="webhooks with tags get only events sharing one")


# The delivery controls of a webhook (the core checks them; these describe them).
RateLimit = Annotated[int, Field(ge=1, le=10000)]
HeaderMap = Annotated[Dict[str, str], Field(max_length=20)]
ORDERED = "deliveries one at a time, in publish order"
RATE_LIMIT = "at most this many deliveries per second"
HEADERS = ("sent with every attempt: at most 20, 8 KiB in all; names are tokens, values visible ASCII; "
           "Host, Content-Length, Transfer-Encoding, Connection, Content-Type, the signature headers, "
           "webhook-* and other framing or hop-by-hop names are refused")


def _patch_schema(schema: Dict[str, Any]) -> None:
    """At least one field; none has a default (an absent field is left as it is)."""
    schema["anyOf"] = [{"required": [name]} for name in schema["properties"]]
    for field in schema["properties"].values():
        field.pop("default", None)


class WebhookPatch(BaseModel):
    # At least one of the fields (other fields are ignored).
    model_config = ConfigDict(json_schema_extra=_patch_schema)

    url: Union[Url, SkipJsonSchema[None]] = None
    topic: Union[Topic, SkipJsonSchema[None]] = None
    tags: Optional[Tags] = Field(None, description="null removes the tags")
    enabled: Union[bool, SkipJsonSchema[None]] = Field(None, description="true re-enables and clears the failure state")
    ordered: Union[bool, SkipJsonSchema[None]] = Field(None, description=ORDERED)
    rate_limit: Optional[RateLimit] = Field(None, description=RATE_LIMIT + "; null removes the limit")
    headers: Optional[HeaderMap] = Field(None, description=HEADERS + "; replaces them all, {} or null removes them")


class RotateRequest(BaseModel):
    grace_seconds: int = Field(86400, ge=0, le=30 * 86400,
                               description="how long the old key keeps signing; 0: only the new key signs")


class RecoverRequest(BaseModel):
    since: float = Field(ge=0, le=1e11,
                         description="Unix seconds: failed deliveries created since then are queued again")
    limit: int = Field(100000, ge=1, le=100000, description="deliveries queued at most by this call")


class TokenCreate(BaseModel):
    brand: Optional[Uuid] = Field(None, description="scope to this brand and its descendants; none: admin")
    label: str = ""
    expires_in: Optional[int] = Field(None, ge=60, le=30 * 86400,
                                      description="seconds until the token is refused (60 to 30 days); "
                                                  "null or absent: never")


class PortalLinkCreate(BaseModel):
    expires_in: int = Field(3600, ge=60, le=86400,
                            description="seconds until the link's token is refused (60 to 86400); never "
                                        "later than the caller's own token")


class WebhookCreate(BaseModel):
    topic: Topic
    url: Url
    tags: Optional[Tags] = None
    ordered: bool = Field(False, description=ORDERED)
    rate_limit: Optional[RateLimit] = Field(None, description=RATE_LIMIT)
    headers: Optional[HeaderMap] = Field(None, description=HEADERS + "; null or absent: none")


class BrandUpdate(BaseModel):
    parent: Optional[Uuid] = Field(description="parent brand UUID, or null for a root brand")


#: The request models the routes read, by name: create_app puts their schemas in the OpenAPI
#: document's components, so that code generators name their types as the API does.
REQUEST_MODELS: Dict[str, type[BaseModel]] = {}


def schema_ref(model: type[BaseModel]) -> Dict[str, str]:
    """A reference to `model`'s schema in the components (registered in REQUEST_MODELS)."""
    REQUEST_MODELS[model.__name__] = model
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def json_body(model: type[BaseModel], required: bool = True) -> Dict[str, Any]:
    """The OpenAPI request body of a route that reads `model` (for openapi_extra=)."""
    schema = {"content": {"application/json": {"schema": schema_ref(model)}}, "required": required}
    return {"requestBody": schema}
