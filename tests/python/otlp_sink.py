"""A real OTLP/HTTP endpoint for the tests: POST /v1/traces with an ExportTraceServiceRequest
(protobuf, gzip or not), decoded with opentelemetry-proto; every span is kept with its resource
and scope, as a collector would receive it."""

from __future__ import annotations

import gzip
import http.server
import threading
from dataclasses import dataclass
from typing import Any, Dict, List

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
UNSET, OK, ERROR = 0, 1, 2  # Status.StatusCode


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


@dataclass
class Span:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    trace_state: str
    flags: int
    start_ns: int
    end_ns: int
    attributes: Dict[str, Any]
    status: int
    status_message: str
    resource: Dict[str, Any]
    scope: str


class OtlpSink:
    def __init__(self) -> None:
        self.spans: List[Span] = []
        self.requests = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                sink.add(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        self.spans.append(Span(
                            name=s.name, kind=s.kind, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(), trace_state=s.trace_state, flags=s.flags,
                            start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                            attributes={a.key: value_of(a.value) for a in s.attributes},
                            status=s.status.code, status_message=s.status.message, resource=resource,
                            scope=scope_spans.scope.name))

    def received(self) -> List[Span]:
        with self.lock:
            return list(self.spans)

    def __enter__(self) -> "OtlpSink":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
