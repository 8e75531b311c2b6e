"""create_app: the FastAPI application over a Hub, put together from the routers (one per
resource, routers/), the publish fast path (publish.py), the error envelope (envelope.py) and
the OpenAPI description as the server behaves."""

from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import FastAPI

from .. import __version__
from .._core import Config, Hub
from ..metrics import CountResponses, ResponseCounts
from ..tracing import RequestSpans, Tracing
from .envelope import install_error_handlers
from .models import REQUEST_MODELS
from .outgoing import webhooks_section
from .publish import PublishFastPath
from .routers import brands, deliveries, events, service, tokens, webhooks


def create_app(hub: Optional[Hub] = None, *, config: Optional[Config] = None,
               tracing: Optional[Tracing] = None) -> FastAPI:
    """The brandhooks REST API over ``hub`` (or a new Hub on ``config``, default settings); with
    ``tracing`` (brandhooks.tracing.Tracing.start), a span per request."""
    if hub is None:
        hub = Hub(config if config is not None else Config())
    app = FastAPI(
        title="brandhooks",
        version=__version__,
        description="Brand webhooks: register URLs per topic; events are delivered signed.",
        # operationId: the route's function name (create_webhook, publish_event, ...), which code
        # generators turn into their method names.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.hub = hub
    app.state.responses = ResponseCounts()  # for /metrics
    app.add_middleware(PublishFastPath, hub=hub)
    app.add_middleware(CountResponses, counts=app.state.responses)  # around the fast path: its answers count
    if tracing is not None:
        app.add_middleware(RequestSpans, tracing=tracing)  # added last: outermost
    install_error_handlers(app)
    _describe_as_served(app)
    for module in (service, webhooks, events, deliveries, tokens, brands):
        app.include_router(module.router)
    return app


def _describe_as_served(app: FastAPI) -> None:
    """The OpenAPI description as the server behaves: no 422 (request errors are answered 400
    in the envelope), the bearer token every route but /healthz needs, and the requests
    receivers get (OpenAPI 3.1 webhooks, with this server's signature header)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> Dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            for path, methods in schema["paths"].items():
                for operation in methods.values():
                    operation["responses"].pop("422", None)
                    if path != "/healthz":
                        operation["security"] = [{"bearer": []}]
            components = schema.setdefault("components", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.get("schemas", {}).pop(name, None)
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schemas = components.setdefault("schemas", {})
            for name, model in REQUEST_MODELS.items():
                schemas[name] = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schemas[name].pop("$defs", {}))
            outgoing = webhooks_section(app.state.hub.config.signature_header)
            schema["webhooks"] = outgoing["webhooks"]
            schemas.update(outgoing["schemas"])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
