"""Prometheus exposition of the core's counters (the numbers come from the C++ core)."""

from __future__ import annotations

import time
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.exposition import generate_latest

from ._core import Hub

COUNTERS = [
    ("events_published", "Events accepted by publish"),
    ("deliveries_created", "Deliveries created by publish (one per matching webhook)"),
    ("attempts", "Delivery attempts made"),
    ("retries_scheduled", "Failed attempts that were scheduled for a retry"),
    ("webhooks_disabled", "Webhooks disabled by delivery (410 Gone or failing too long)"),
    ("deliveries_pruned", "Finished deliveries removed by retention"),
    ("leases_taken_over", "Deliveries taken over from another node that stopped renewing its leases"),
    ("leases_lost", "Attempt outcomes dropped because another node had taken the delivery's lease over"),
    ("leases_taken_back", "This node's leases its dispatcher did not hold (a COMMIT whose answer was lost), "
                          "returned to the queue"),
    ("outcomes_already_recorded", "Attempt outcomes found recorded when written again (the first COMMIT's "
                                  "answer was lost)"),
]


class HubCollector:
    """Reads one Hub's counters and store statistics at every scrape."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        metrics = self.hub.metrics()
        stats = self.hub.stats()
        # Behind a load balancer any node may answer a scrape: this one says which did. The
        # counters are this node's; the store gauges (deliveries, webhooks, queue) are the
        # shared database's, the same on every node.
        node = GaugeMetricFamily("brandhooks_node_info", "The node that answered (its --node-id); always 1",
                                 labels=["node"])
        node.add_metric([self.hub.config.node_id], 1)
        yield node
        for name, help_text in COUNTERS:
            yield CounterMetricFamily(f"brandhooks_{name}", help_text, value=metrics[name])
        outcomes = CounterMetricFamily("brandhooks_deliveries_finished", "Deliveries that reached a final outcome",
                                       labels=["outcome"])
        outcomes.add_metric(["delivered"], metrics["deliveries_delivered"])
        outcomes.add_metric(["failed"], metrics["deliveries_failed"])
        yield outcomes

        states = GaugeMetricFamily("brandhooks_deliveries", "Stored deliveries by state", labels=["state"])
        for state in ("pending", "delivered", "failed", "cancelled"):
            states.add_metric([state], getattr(stats, state))
        yield states
        webhooks = GaugeMetricFamily("brandhooks_webhooks", "Live webhooks", labels=["enabled"])
        webhooks.add_metric(["true"], stats.webhooks - stats.disabled_webhooks)
        webhooks.add_metric(["false"], stats.disabled_webhooks)
        yield webhooks
        yield GaugeMetricFamily("brandhooks_queue_depth", "Pending deliveries that are due now", value=stats.due_now)
        oldest = 0.0 if stats.oldest_due_at is None else max(0.0, time.time() - stats.oldest_due_at)
        yield GaugeMetricFamily("brandhooks_oldest_due_age_seconds", "How long the oldest due delivery has waited",
                                value=oldest)

        for name, key, help_text in [
            ("brandhooks_attempt_duration_seconds", "attempt_seconds", "Duration of delivery attempts"),
            ("brandhooks_publish_to_delivered_seconds", "publish_to_delivered_seconds",
             "Time from publish to the successful attempt's end"),
        ]:
            histogram = metrics[key]
            buckets = [("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in histogram["buckets"]]
            yield HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=histogram["sum"])


def exposition(hub: Hub) -> bytes:
    """The Prometheus text format for `hub`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub))
    return generate_latest(registry)
