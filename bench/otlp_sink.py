"""A local OpenTelemetry collector for `make bench`'s traced run: an OTLP/HTTP endpoint that
decodes each ExportTraceServiceRequest, counts its spans and drops them. In a process of its own,
so that decoding takes no time from the process being measured.

    python bench/otlp_sink.py      # prints its port; GET /count answers the spans received
"""

from __future__ import annotations

import http.server
import sys
import threading

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)

ANSWER = ExportTraceServiceResponse().SerializeToString()


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    spans = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["content-length"])))
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with Sink.lock:
            Sink.spans += count
        self.answer(ANSWER, "application/x-protobuf")

    def do_GET(self) -> None:  # noqa: N802
        with Sink.lock:
            self.answer(str(Sink.spans).encode(), "text/plain")

    def answer(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
