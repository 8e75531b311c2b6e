"""W3C Trace Context from publish to receiver, and OpenTelemetry spans exported over OTLP/HTTP to a
real endpoint (otlp_sink.py) by `brandhooks serve` (docs/operations.md, "Traces")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import httpx
import pytest

import brandhooks
from conftest import NewDatabase, Server, backend_server, brandhooks_cmd, free_port
from otlp_sink import CLIENT, ERROR, SERVER, UNSET, OtlpSink
from receivers import Received, Receiver, wait_until

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PUBLISHER_SPAN = "00f067aa0ba902b7"
PARENT = f"00-{TRACE_ID}-{PUBLISHER_SPAN}-01"
FAST_RETRIES = ["--allow-private", "--retry-schedule", "0,0.2,0.2", "--retry-jitter", "0"]


def header(request: Received, name: str) -> Optional[str]:
    """A header of what the receiver got, by its name in any case."""
    return next((value for key, value in request.headers.items() if key.lower() == name), None)


def parts(traceparent: Optional[str]) -> List[str]:
    assert traceparent is not None
    return traceparent.split("-")


# --- spans on: brandhooks serve with OpenTelemetry's variables -------------------------------


def test_a_publish_and_each_attempt_are_spans_of_the_publishers_trace(new_database: NewDatabase, tmp_path: Path,
                                                                      brand: str) -> None:
    """A traced publish whose delivery fails once then succeeds: the collector gets the publish
    span and one span per attempt, each a child of the publisher's span, with the ids the receiver
    got as its parent; the SDK reads OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the sampler."""
    with OtlpSink() as sink, Receiver(lambda n: 500 if n == 1 else 200) as receiver:
        server = backend_server(new_database, tmp_path, "traced", *FAST_RETRIES, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
            "OTEL_SERVICE_NAME": "hooks-under-test",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test,team=hooks",
            # Only spans whose parent is sampled: a request without a traceparent makes none.
            "OTEL_TRACES_SAMPLER": "parentbased_always_off",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }).start()
        try:
            assert "OpenTelemetry spans over OTLP/HTTP to " + sink.url in server.output  # the banner says so
            with server.client() as api:
                hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url()}).json()["data"]
                published = api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}},
                                     headers={"traceparent": PARENT, "tracestate": "vendor=abc,other=1"})
                assert published.status_code == 202
                traced = receiver.wait_for(2)  # 500, then 200 on the retry
                unsampled = f"00-{'a' * 32}-{'b' * 16}-00"
                api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Quiet", "payload": {}},
                         headers={"traceparent": unsampled})
                api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Untraced", "payload": {}})
                later = receiver.wait_for(4)[2:]
                path = f"/brands/{brand}/webhooks/{hook['id']}/deliveries"
                wait_until(lambda: api.get(path).json()["info"]["total"] == 3
                           and all(d["state"] == "delivered" for d in api.get(path).json()["data"]))
                delivery = next(d for d in api.get(path).json()["data"] if d["event_type"] == "Created")
        finally:
            server.stop()  # a clean stop exports what is left: every span is at the sink now
        spans = sink.received()

    # The receiver continues the publisher's trace, from the attempt's own span.
    sent = [parts(header(r, "traceparent")) for r in traced]
    assert [(p[0], p[1], p[3]) for p in sent] == [("00", TRACE_ID, "01")] * 2
    attempt_ids = [p[2] for p in sent]
    assert len(set(attempt_ids)) == 2 and PUBLISHER_SPAN not in attempt_ids
    assert all(header(r, "tracestate") == "vendor=abc,other=1" for r in traced)
    quiet, untraced = sorted(later, key=lambda r: json.loads(r.body)["event"])
    assert parts(header(quiet, "traceparent"))[1::2] == ["a" * 32, "00"]  # not sampled: passed on all the same
    assert header(untraced, "traceparent") is None and header(untraced, "tracestate") is None  # none invented

    # The publish span: the REST request, a child of the publisher's span.
    [publish] = [s for s in spans if s.kind == SERVER]  # the webhook's creation had no sampled parent: no span
    assert publish.name == "POST /brands/{brand}/events"
    assert (publish.trace_id, publish.parent_span_id) == (TRACE_ID, PUBLISHER_SPAN)
    assert publish.attributes["http.route"] == "/brands/{brand}/events"
    assert publish.attributes["http.request.method"] == "POST"
    assert publish.attributes["http.response.status_code"] == 202
    assert publish.attributes["brandhooks.brand.id"] == brand
    assert publish.status == UNSET
    assert publish.trace_state == "vendor=abc,other=1"

    # One span per attempt, children of the publisher's span too, with the ids the receiver got.
    attempts = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.attributes["brandhooks.attempt.number"])
    assert [s.span_id for s in attempts] == attempt_ids
    assert {(s.trace_id, s.parent_span_id, s.name) for s in attempts} == {(TRACE_ID, PUBLISHER_SPAN, "POST webhook")}
    for span, number, status, state in zip(attempts, (1, 2), (500, 200), ("pending", "delivered")):
        assert span.attributes["brandhooks.attempt.number"] == number
        assert span.attributes["http.response.status_code"] == status
        assert span.attributes["brandhooks.delivery.state"] == state
        assert span.attributes["brandhooks.webhook.id"] == hook["id"]
        assert span.attributes["brandhooks.brand.id"] == brand
        assert span.attributes["brandhooks.delivery.id"] == delivery["id"]
        assert span.attributes["http.request.method"] == "POST"
        # Its times are the attempt's, as the API shows it.
        recorded = delivery["attempts"][number - 1]
        assert abs(span.start_ns / 1e9 - recorded["started_at"]) < 1e-5
        assert abs((span.end_ns - span.start_ns) / 1e6 - recorded["duration_ms"]) < 0.01
        assert span.trace_state == "vendor=abc,other=1"
    assert attempts[0].status == ERROR and attempts[0].attributes["error.type"] == "500"
    assert attempts[1].status == UNSET and "error.type" not in attempts[1].attributes

    # Nothing of the unsampled trace, nothing made up for the untraced event.
    assert {s.trace_id for s in spans} == {TRACE_ID}
    for span in spans:
        assert span.resource["service.name"] == "hooks-under-test"
        assert span.resource["deployment.environment.name"] == "test" and span.resource["team"] == "hooks"
        assert span.scope == "brandhooks"


def test_an_attempt_that_gets_no_answer_is_an_error_span_of_its_kind(tmp_path: Path, brand: str) -> None:
    """No response (the port refuses connections): the span's error.type is the attempt's error."""
    with OtlpSink() as sink:
        server = Server(tmp_path / "refused.db", "--allow-private", "--retry-schedule", "0", env={
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink.url + "/v1/traces", "OTEL_BSP_SCHEDULE_DELAY": "50"}).start()
        try:
            with server.client() as api:
                hook = api.post(f"/brands/{brand}/webhooks",
                                json={"topic": "Deals", "url": f"http://127.0.0.1:{free_port()}/closed"}).json()["data"]
                api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}},
                         headers={"traceparent": PARENT})
                path = f"/brands/{brand}/webhooks/{hook['id']}/deliveries"
                wait_until(lambda: api.get(path).json()["data"][0]["state"] == "failed")
            wait_until(lambda: any(s.kind == CLIENT for s in sink.received()))
        finally:
            server.stop()
        [attempt] = [s for s in sink.received() if s.kind == CLIENT]
        # Without a sampler variable every request is a span (the default: parent-based, always on).
        routes = {s.attributes.get("http.route") for s in sink.received() if s.kind == SERVER}
    assert {"/brands/{brand}/webhooks", "/brands/{brand}/events"} <= routes
    assert attempt.status == ERROR and attempt.attributes["error.type"] == "connect"
    assert "http.response.status_code" not in attempt.attributes
    assert attempt.attributes["brandhooks.delivery.state"] == "failed"
    assert attempt.status_message  # the attempt's detail


@pytest.mark.parametrize("env, message", [
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER=zipkin"),
], ids=["grpc", "zipkin"])
def test_serve_refuses_traces_it_cannot_export(tmp_path: Path, env: Dict[str, str], message: str) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "BRANDHOOKS_"))}
    environment.update(env, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
    out = subprocess.run(brandhooks_cmd("serve", "--db", str(tmp_path / "x.db"), "--port", str(free_port())),
                         env=environment, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert message in out.stderr and "brandhooks exports traces over OTLP" in out.stderr


def test_without_an_endpoint_there_is_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    from brandhooks import tracing

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED",
                 "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.wanted()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:pw@collector:4318")
    assert tracing.wanted() and tracing.shown_endpoint() == "http://***@collector:4318"
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.wanted()
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not tracing.wanted()


# --- spans off: the publisher's context passes through unchanged ------------------------------


def test_rest_publish_passes_the_trace_context_through_unchanged(tmp_path: Path, brand: str) -> None:
    """Spans off: each attempt sends the publisher's context as it came; the JSON delivery log
    names the trace of the attempts that have one."""
    with Receiver() as receiver:
        server = Server(tmp_path / "plain.db", *FAST_RETRIES, "--log-level", "info", "--log-format", "json").start()
        try:
            with server.client() as api:
                api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url()})
                event = {"topic": "Deals", "event": "Created", "payload": {}}
                sends = [
                    ({"traceparent": PARENT, "tracestate": "a=1"}, event),
                    ({"traceparent": "00-" + TRACE_ID.upper() + "-00f067aa0ba902b7-01"}, event),  # invalid: ignored
                    ({"tracestate": "a=1"}, event),  # no traceparent: nothing
                    ({"traceparent": PARENT, "tracestate": "Bad Key=1"}, event),  # a bad tracestate goes alone
                    ({"traceparent": PARENT}, [event, event]),  # a batch: each event carries the request's
                ]
                for headers, body in sends:
                    answer = api.post(f"/brands/{brand}/events", json=body, headers=headers)
                    assert answer.status_code == 202, answer.text  # never an error for a bad context
                # A traceparent sent twice is invalid; tracestate lines add up.
                twice = [("traceparent", PARENT), ("traceparent", PARENT), ("content-type", "application/json"),
                         ("authorization", api.headers["authorization"])]
                assert httpx.post(f"{server.url}/brands/{brand}/events", headers=twice,
                                  content=json.dumps(event)).status_code == 202
                lines = [("traceparent", PARENT), ("tracestate", "a=1"), ("tracestate", "b=2"),
                         ("content-type", "application/json"), ("authorization", api.headers["authorization"])]
                assert httpx.post(f"{server.url}/brands/{brand}/events", headers=lines,
                                  content=json.dumps(event)).status_code == 202
                got = receiver.wait_for(8)
        finally:
            server.stop()
    contexts = [(header(r, "traceparent"), header(r, "tracestate")) for r in got]
    assert sorted(contexts, key=str) == sorted([
        (PARENT, "a=1"), (None, None), (None, None), (PARENT, None), (PARENT, None), (PARENT, None),
        (None, None), (PARENT, "a=1,b=2")], key=str)
    lines = [json.loads(line) for line in server.output.splitlines() if line.startswith("{")]
    delivered = [line for line in lines if line["msg"] == "delivered"]
    assert len(delivered) == 8
    assert sorted(line.get("trace_id", "") for line in delivered) == [""] * 3 + [TRACE_ID] * 5


@pytest.fixture()
def delivering_hub(tmp_path: Path):
    hub = brandhooks.Hub(str(tmp_path / "hub.db"), deliver=True, allow_private=True)
    yield hub
    hub.close()


def test_python_publishes_carry_the_context_they_are_given(delivering_hub: brandhooks.Hub, brand: str) -> None:
    hub = delivering_hub
    with Receiver() as receiver:
        hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "One", {}, traceparent=PARENT, tracestate="v=1")
        hub.publish_many([{"brand": brand, "topic": "Deals", "event": "Many", "payload": {}, "traceparent": PARENT},
                          (brand, "Deals", "Tuple", {})])
        hub.publish_json(brand, json.dumps([{"topic": "Deals", "event": "Json", "payload": {}}] * 2).encode(),
                         traceparent=PARENT)
        hub.publish(brand, "Deals", "Bad", {}, traceparent="not a traceparent", tracestate="v=1")
        got = receiver.wait_for(6)
    seen = sorted((json.loads(r.body)["event"], header(r, "traceparent"), header(r, "tracestate")) for r in got)
    assert seen == [("Bad", None, None), ("Json", PARENT, None), ("Json", PARENT, None), ("Many", PARENT, None),
                    ("One", PARENT, "v=1"), ("Tuple", None, None)]


def test_retries_and_redeliveries_send_the_events_context_again(delivering_hub: brandhooks.Hub, brand: str) -> None:
    """The context is the event's: stored with it, so a retry (or a redelivery, or another node)
    sends it again without the publisher."""
    hub = delivering_hub
    with Receiver(lambda n: 500 if n == 1 else 200) as receiver:
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {}, traceparent=PARENT)
        wait_until(lambda: hub.list_deliveries(brand, hook.id).items[0].state == "pending"
                   and hub.list_deliveries(brand, hook.id).items[0].attempt_count == 1)
        delivery = hub.list_deliveries(brand, hook.id).items[0]
        hub.redeliver(brand, delivery.id)
        got = receiver.wait_for(2)
    assert [header(r, "traceparent") for r in got] == [PARENT, PARENT]


# --- the core's queue of attempt spans ----------------------------------------------------------


def test_attempt_spans_queue_waits_without_the_gil_and_drops_when_full(delivering_hub: brandhooks.Hub,
                                                                      brand: str) -> None:
    hub = delivering_hub
    # A take that waits lets Python run meanwhile (the GIL is released).
    taker = threading.Thread(target=hub.take_attempt_spans, kwargs={"max": 1, "wait_ms": 1500})
    taker.start()
    time.sleep(0.1)
    started = time.monotonic()
    while time.monotonic() - started < 0.3:
        pass
    assert taker.is_alive()  # this thread ran while the other waited
    taker.join()

    hub.enable_attempt_spans(capacity=2)
    with Receiver() as receiver:
        hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish_many([{"brand": brand, "topic": "Deals", "event": "E", "payload": {"i": i}, "traceparent": PARENT}
                          for i in range(5)])
        got = receiver.wait_for(5)
    wait_until(lambda: hub.metrics()["attempt_spans_dropped"] == 3)
    spans = hub.take_attempt_spans(max=10, wait_ms=0)
    assert len(spans) == 2
    assert {s.span_id for s in spans} <= {parts(header(r, "traceparent"))[2] for r in got}  # spans on: own ids
    assert all(s.trace_id == TRACE_ID and s.parent_span_id == PUBLISHER_SPAN and s.trace_flags == 1 for s in spans)
    assert all(s.state == "delivered" and s.attempt.status == 200 and s.attempt.number == 1 for s in spans)
    with pytest.raises(brandhooks.ValidationError):
        hub.take_attempt_spans(max=0)
    with pytest.raises(brandhooks.ValidationError):
        hub.enable_attempt_spans(capacity=0)


def test_the_cli_publishes_with_the_trace_context_of_its_environment(tmp_path: Path, brand: str) -> None:
    """`brandhooks events publish` takes --traceparent, or TRACEPARENT (and TRACESTATE) from the
    environment, as OpenTelemetry passes a context to a command."""
    db = str(tmp_path / "cli.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDHOOKS_")}
    env.update(TRACEPARENT=PARENT, TRACESTATE="a=1")
    other = f"00-{'c' * 32}-{'d' * 16}-01"
    for args in (["webhooks", "create", brand, "Deals", "https://example.com/hook"],
                 ["events", "publish", brand, "Deals", "FromEnvironment"],
                 ["events", "publish", brand, "Deals", "FromFlag", "--traceparent", other]):
        out = subprocess.run(brandhooks_cmd(*args, "--db", db), env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    import sqlite3

    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT event, traceparent, tracestate FROM events ORDER BY seq").fetchall()
    assert rows == [("FromEnvironment", PARENT, "a=1"), ("FromFlag", other, "a=1")]
