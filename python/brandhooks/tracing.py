"""OpenTelemetry traces of the service, exported over OTLP/HTTP when the standard variables ask
for it (docs/operations.md, "Traces"): a span per REST request, and a span per delivery attempt
of an event that carried a W3C traceparent, as a child of the publisher's span.

Nothing here runs unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
is set. The OpenTelemetry SDK (``pip install brandhooks[otel]``) reads the other standard
variables itself: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG),
OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*, ...

The core never calls Python: it queues each finished attempt of a traced event (Hub.take_attempt_
spans), and a thread of this module drains that queue with a blocking call that releases the GIL.
The core chose each attempt's span id when it sent the attempt (the receiver's traceparent names
it as the parent), so the exported span carries exactly that id (AttemptSpanIds).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple, cast

from ._core import AttemptSpan, Hub

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import IdGenerator

log = logging.getLogger("brandhooks.tracing")

#: The instrumentation scope of every span brandhooks makes.
SCOPE = "brandhooks"
ATTEMPT_SPAN_NAME = "POST webhook"


class TracingError(Exception):
    """The environment asks for traces that this build cannot export (the message says why)."""


def endpoint() -> Optional[str]:
    """Where spans go, as the standard variables say (the traces endpoint first); None: no traces."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def shown_endpoint() -> str:
    """endpoint() for a banner: without user info (a password), which a URL may carry."""
    from urllib.parse import urlsplit

    value = endpoint() or ""
    parts = urlsplit(value)
    if "@" in parts.netloc:
        value = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
    return value


def wanted() -> bool:
    """Whether the environment asks for traces: an OTLP endpoint is set, and neither
    OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise."""
    if endpoint() is None or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() != "none"


def _check_environment() -> None:
    exporters = {e.strip().lower() for e in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if e.strip()}
    if exporters - {"otlp"}:
        raise TracingError(f"OTEL_TRACES_EXPORTER={os.environ['OTEL_TRACES_EXPORTER']}: brandhooks exports "
                           "traces over OTLP only (otlp, or none for no traces)")
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = os.environ.get(name, "").strip()
        if protocol:
            if protocol != "http/protobuf":
                raise TracingError(f"{name}={protocol}: brandhooks exports traces over OTLP/HTTP with "
                                   "protobuf only (http/protobuf)")
            break


class Tracing:
    """The tracer provider, the exporter of attempt spans and the middleware's tracer of one
    service. ``Tracing.start(hub)`` when wanted(); ``shutdown()`` after the Hub stopped
    delivering (the last attempts' spans are exported, then everything is flushed)."""

    def __init__(self, hub: Hub) -> None:
        _check_environment()
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import OTELResourceDetector, Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise TracingError(f"OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not "
                               f"installed ({exc.name}): pip install 'brandhooks[otel]'") from None
        from . import __version__

        # The standard variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) win over these defaults.
        resource = Resource.create({"service.name": "brandhooks", "service.version": __version__,
                                    "service.instance.id": hub.config.node_id}).merge(OTELResourceDetector().detect())
        self.ids = AttemptSpanIds()
        # AttemptSpanIds has IdGenerator's methods; it cannot derive from it at import time (the
        # SDK is an optional dependency, imported only here).
        self.provider: TracerProvider = TracerProvider(resource=resource, id_generator=cast("IdGenerator", self.ids),
                                                       shutdown_on_exit=False)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer(SCOPE, __version__)
        self.hub = hub
        self.stopping = threading.Event()
        hub.enable_attempt_spans()
        self.thread = threading.Thread(target=self._export_attempts, name="brandhooks-attempt-spans", daemon=True)
        self.thread.start()

    @classmethod
    def start(cls, hub: Hub) -> Optional["Tracing"]:
        """Tracing of `hub`'s service when the environment asks for it (wanted()), else None.
        Raises TracingError when it asks for what cannot be done (another exporter or protocol,
        the SDK not installed)."""
        return cls(hub) if wanted() else None

    def _export_attempts(self) -> None:
        # Blocking takes (the GIL released while waiting); after stop, what is left goes too.
        while not self.stopping.is_set():
            self._export_logged(self.hub.take_attempt_spans(512, 250))
        while True:
            spans = self.hub.take_attempt_spans(512, 0)
            if not spans:
                break
            self._export_logged(spans)

    def _export_logged(self, spans: List[AttemptSpan]) -> None:
        try:
            self.export(spans)
        except Exception:  # noqa: BLE001 (a bad batch is lost, not the thread: the next ones go on)
            log.exception("could not export %d attempt spans", len(spans))

    def export(self, spans: Iterable[AttemptSpan]) -> None:
        """Each finished attempt as a CLIENT span of the publisher's trace, with the span id the
        receiver got as its parent; the sampler (OTEL_TRACES_SAMPLER) decides as for any span."""
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

        for span in spans:
            parent = SpanContext(int(span.trace_id, 16), int(span.parent_span_id, 16), is_remote=True,
                                 trace_flags=TraceFlags(span.trace_flags),
                                 trace_state=TraceState.from_header([span.tracestate]) if span.tracestate else None)
            attempt = span.attempt
            start_ns = int(attempt.started_at * 1e9)
            self.ids.next(int(span.span_id, 16))
            made = self.tracer.start_span(ATTEMPT_SPAN_NAME, context=trace.set_span_in_context(NonRecordingSpan(parent)),
                                          kind=SpanKind.CLIENT, attributes=attempt_attributes(span),
                                          start_time=start_ns)
            if attempt.error is not None:
                made.set_status(Status(StatusCode.ERROR, attempt.detail or attempt.error))
            elif attempt.status is not None and not 200 <= attempt.status < 300:
                made.set_status(Status(StatusCode.ERROR, f"the receiver answered {attempt.status}"))
            made.end(end_time=start_ns + int(attempt.duration_ms * 1e6))

    def shutdown(self) -> None:
        """Exports what the Hub queued (call after hub.close()), then flushes and stops."""
        self.stopping.set()
        self.thread.join(timeout=30)
        self.provider.shutdown()


def attempt_attributes(span: AttemptSpan) -> Dict[str, Any]:
    """An attempt span's attributes: OpenTelemetry's HTTP client conventions, and brandhooks'
    own names for what identifies the delivery."""
    attempt = span.attempt
    attributes: Dict[str, Any] = {
        "http.request.method": "POST",
        "brandhooks.webhook.id": span.webhook_id,
        "brandhooks.brand.id": span.brand,
        "brandhooks.delivery.id": span.delivery_id,
        "brandhooks.attempt.number": attempt.number,
        "brandhooks.delivery.state": span.state,
    }
    if attempt.status is not None:
        attributes["http.response.status_code"] = attempt.status
        if not 200 <= attempt.status < 300:
            attributes["error.type"] = str(attempt.status)
    if attempt.error is not None:
        attributes["error.type"] = attempt.error  # timeout, dns, blocked, connect, tls, network, protocol
    return attributes


class AttemptSpanIds:
    """The SDK's id generator, except for the next span the exporter thread makes of an attempt:
    that one gets the id the core already sent to the receiver (next())."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        self.random = RandomIdGenerator()
        self.chosen = threading.local()

    def next(self, span_id: int) -> None:
        self.chosen.span_id = span_id

    def generate_span_id(self) -> int:
        span_id: Optional[int] = getattr(self.chosen, "span_id", None)
        if span_id is None:
            return self.random.generate_span_id()
        self.chosen.span_id = None
        return span_id

    def generate_trace_id(self) -> int:
        return self.random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return self.random.is_trace_id_random()


class RequestSpans:
    """ASGI middleware: a SERVER span per HTTP request, named "METHOD route", the child of the
    caller's traceparent (OTEL_PROPAGATORS: W3C Trace Context by default), with the route, the
    brand of the path and the answer's status. Installed outermost, so the publish fast path's
    requests are spans too."""

    def __init__(self, app: Any, tracing: Tracing) -> None:
        self.app, self.tracer = app, tracing.tracer

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import propagate, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        carrier: Dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1")
            # Repeated lines join with a comma, as HTTP reads them (a repeated traceparent is then invalid).
            carrier[key] = f"{carrier[key]},{value.decode('latin-1')}" if key in carrier else value.decode("latin-1")
        method = scope["method"]
        span = self.tracer.start_span(method, context=propagate.extract(carrier), kind=SpanKind.SERVER,
                                      attributes={"http.request.method": method, "url.path": scope["path"]})
        status = 500

        async def send_status(message: Dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with trace.use_span(span, end_on_exit=False, record_exception=True, set_status_on_exception=True):
                await self.app(scope, receive, send_status)
        finally:
            route, params = _route_of(scope)
            if route is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            if "brand" in params:
                span.set_attribute("brandhooks.brand.id", str(params["brand"]))
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
            span.end()


def _route_of(scope: Dict[str, Any]) -> Tuple[Optional[str], Dict[str, Any]]:
    """The path template of the route that answered and its path parameters (routing puts them
    in the scope; the publish fast path answers before routing, so it is matched here)."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", None), scope.get("path_params", {})
    from starlette.routing import Match

    from .api.envelope import _routes

    app = scope.get("app")
    routes: List[Any] = list(_routes(app.router.routes)) if app is not None else []
    for candidate in routes:
        match, child = candidate.matches(scope)
        if match == Match.FULL:
            return getattr(candidate, "path", None), child.get("path_params", {})
    return None, {}
