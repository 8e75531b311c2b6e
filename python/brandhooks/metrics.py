"""Prometheus exposition (docs/operations.md, "Metrics"): the core's counters and histograms, the
store's gauges (read at a flat cost: Hub.gauges), and the API's responses by route and status.
The alert rules in deploy/prometheus/ read these names; tests/python/test_alerts.py checks that
every name they use is served."""

from __future__ import annotations

import threading
import time
from typing import Any, Awaitable, Callable, Dict, Iterator, MutableMapping, Optional, Tuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.exposition import generate_latest

from ._core import DUE_COUNT_LIMIT, Hub

COUNTERS = [
    ("events_published", "Events accepted by publish"),
    ("deliveries_created", "Deliveries created by publish (one per matching webhook)"),
    ("attempts", "Delivery attempts made"),
    ("retries_scheduled", "Failed attempts that were scheduled for a retry"),
    ("webhooks_disabled", "Webhooks disabled by delivery (410 Gone or failing too long)"),
    ("deliveries_pruned", "Finished deliveries removed by retention"),
    ("leases_lost", "Attempt outcomes dropped because another node had taken the delivery's lease over"),
    ("leases_taken_back", "This node's leases its dispatcher did not hold (a COMMIT whose answer was lost), "
                          "returned to the queue"),
    ("outcomes_already_recorded", "Attempt outcomes found recorded when written again (the first COMMIT's "
                                  "answer was lost)"),
    ("attempt_spans_dropped", "Attempt spans dropped because the OpenTelemetry exporter fell behind (the queue was full)"),
]

#: The route label of a request that matched no route (a 404 or 405 of the router).
UNMATCHED = "unmatched"
#: Methods counted by name; any other is counted as "other" (a client chooses them).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The scope key where a middleware that answers a request itself (the publish fast path) names
#: the route it answered; routed requests have FastAPI's route in scope["route"].
ROUTE_TEMPLATE = "brandhooks.route"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ResponseCounts:
    """Responses of the API by method, route template and status, since the server started
    (brandhooks_http_requests_total). Written by the event loop, read by a scrape's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Dict[Tuple[str, str, str], int] = {}

    def add(self, method: str, route: str, status: int) -> None:
        key = (method if method in METHODS else "other", route, str(status))
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> Dict[Tuple[str, str, str], int]:
        with self._lock:
            return dict(self._counts)


def route_template(scope: Scope) -> str:
    """The route a request matched, as its template (never the path itself: every id would make
    a series of its own)."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path_format", UNMATCHED))
    return str(scope.get(ROUTE_TEMPLATE, UNMATCHED))


class CountResponses:
    """ASGI middleware, the outermost: counts each response by method, route template and
    status. An exception that leaves the app counts as the 500 the server then answers; a
    request whose client went away before any answer counts as nothing."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], counts: ResponseCounts) -> None:
        self.app, self.counts = app, counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: Optional[int] = None

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except BaseException:
            if status is None:
                status = 500
            raise
        finally:
            if status is not None:
                self.counts.add(scope["method"], route_template(scope), status)


class HubCollector:
    """Reads one Hub's counters and the store's gauges at every scrape, and the API's responses."""

    def __init__(self, hub: Hub, responses: Optional[ResponseCounts] = None) -> None:
        self.hub = hub
        self.responses = responses

    def collect(self) -> Iterator[Metric]:
        metrics = self.hub.metrics()
        # Behind a load balancer any node may answer a scrape: this one says which did. The
        # counters are this node's; the store gauges (deliveries, webhooks, queue) are the
        # shared database's, the same on every node.
        node = GaugeMetricFamily("brandhooks_node_info", "The node that answered (its --node-id); always 1",
                                 labels=["node"])
        node.add_metric([self.hub.config.node_id], 1)
        yield node
        for name, help_text in COUNTERS:
            yield CounterMetricFamily(f"brandhooks_{name}", help_text, value=metrics[name])
        taken = CounterMetricFamily("brandhooks_leases_taken_over",
                                    "Deliveries this node took over from a node that stopped renewing its leases, "
                                    "by that node", labels=["from_node"])
        for from_node, count in sorted(metrics["leases_taken_over"].items()):
            taken.add_metric([from_node], count)
        yield taken
        outcomes = CounterMetricFamily("brandhooks_deliveries_finished", "Deliveries that reached a final outcome",
                                       labels=["outcome"])
        outcomes.add_metric(["delivered"], metrics["deliveries_delivered"])
        outcomes.add_metric(["failed"], metrics["deliveries_failed"])
        yield outcomes
        for name, key, help_text in [
            ("brandhooks_attempt_duration_seconds", "attempt_seconds", "Duration of delivery attempts"),
            ("brandhooks_publish_to_delivered_seconds", "publish_to_delivered_seconds",
             "Time from publish to the successful attempt's end"),
        ]:
            histogram = metrics[key]
            buckets = [("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in histogram["buckets"]]
            yield HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=histogram["sum"])
        if self.responses is not None:
            requests = CounterMetricFamily("brandhooks_http_requests", "API responses by method, route and status",
                                           labels=["method", "route", "status"])
            for (method, route, status), count in sorted(self.responses.snapshot().items()):
                requests.add_metric([method, route, status], count)
            yield requests
        yield from self._store_gauges()

    def _store_gauges(self) -> Iterator[Metric]:
        gauges = self.hub.gauges()
        yield GaugeMetricFamily("brandhooks_database_up",
                                "1 when the database answered this scrape and can take writes (as /healthz); "
                                "0 when it is unreachable, full, read-only or failing",
                                value=0 if gauges is None else 1)
        if gauges is None:
            return  # nothing known about the store: its gauges are absent, not zero
        states = GaugeMetricFamily("brandhooks_deliveries", "Stored deliveries by state", labels=["state"])
        for state in ("pending", "delivered", "failed", "cancelled"):
            states.add_metric([state], getattr(gauges, state))
        yield states
        webhooks = GaugeMetricFamily("brandhooks_webhooks", "Live webhooks", labels=["enabled"])
        webhooks.add_metric(["true"], gauges.webhooks - gauges.disabled_webhooks)
        webhooks.add_metric(["false"], gauges.disabled_webhooks)
        yield webhooks
        yield GaugeMetricFamily("brandhooks_queue_depth",
                                f"Pending deliveries that are due now, counted up to {DUE_COUNT_LIMIT}",
                                value=gauges.due_now)
        now = time.time()
        oldest = 0.0 if gauges.oldest_due_at is None else max(0.0, now - gauges.oldest_due_at)
        yield GaugeMetricFamily("brandhooks_oldest_due_age_seconds", "How long the oldest due delivery has waited",
                                value=oldest)
        failing = GaugeMetricFamily("brandhooks_longest_failing_webhook_seconds",
                                    "How long the live, enabled webhook failing the longest has failed without a "
                                    "success (absent when none fails)", labels=["brand", "webhook"])
        if gauges.longest_failing is not None:
            longest = gauges.longest_failing
            failing.add_metric([longest.brand, longest.id], max(0.0, now - longest.since))
        yield failing


def exposition(hub: Hub, responses: Optional[ResponseCounts] = None) -> bytes:
    """The Prometheus text format for `hub` (and the API's `responses`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub, responses))
    return generate_latest(registry)
