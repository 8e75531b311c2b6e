"""Owned leases: two delivering nodes (separate processes, each a Hub with deliver=True) on one
SQLite file share the work without sending a delivery twice, keep the counts right, and a node
killed with SIGKILL has its leased deliveries taken over once its leases expire."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from brandhooks import Config, Hub, ValidationError

from receivers import Receiver, wait_until

# One node: opens the file, publishes `count` events (handed over to itself, leased), says
# "ready", delivers until SIGTERM, then closes and prints its metrics.
NODE = r"""
import json, signal, sys, threading
from brandhooks import Config, Hub
db, node, lease, in_flight, timeout_ms, brand, count = sys.argv[1:8]
hub = Hub(Config(db=db, deliver=True, allow_private=True, node_id=node, lease_timeout_s=int(lease),
                 max_in_flight=int(in_flight), request_timeout_ms=int(timeout_ms), log_level="off"))
if int(count):
    hub.publish_many([(brand, "Deals", "Created", {"node": node, "i": i}) for i in range(int(count))])
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
while not stop.wait(0.1):
    pass
hub.close()
metrics = hub.metrics()
print(json.dumps({k: v for k, v in metrics.items() if not k.endswith("_seconds")}), flush=True)  # no histograms
"""


class Node:
    def __init__(self, db: Path, node_id: str, brand: str, publish: int = 0, lease_timeout_s: int = 30,
                 max_in_flight: int = 4, request_timeout_ms: int = 15000) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", NODE, str(db), node_id, str(lease_timeout_s), str(max_in_flight),
             str(request_timeout_ms), brand, str(publish)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line + self.proc.stderr.read() if self.proc.stderr else line

    def stop(self) -> Dict[str, Any]:
        """SIGTERM, then the node's metrics."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=30)  # also closes its pipes


def delivery_ids(receiver: Receiver) -> List[str]:
    with receiver.lock:
        return [r.headers["webhook-id"] for r in receiver.requests]


def test_two_nodes_on_one_file_share_the_work_without_double_sends(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    per_source = 1000  # node a's own publishes, node b's, and the API-only process's
    total = 3 * per_source
    brand = str(uuid.uuid4())
    local = Hub(Config(db=str(db), allow_private=True))  # publishes and reads, never delivers
    nodes: List[Node] = []
    try:
        with Receiver(lambda n: 200) as receiver:
            local.create_webhook(brand, "Deals", receiver.url())
            # a leases its own publishes; b starts while a still holds most of them (a rolling
            # restart): b must not release or send what a holds.
            nodes.append(Node(db, "node-a", brand, publish=per_source, max_in_flight=16))
            nodes.append(Node(db, "node-b", brand, publish=per_source, max_in_flight=16))
            # Not leased by anyone: both nodes' claims compete for these.
            local.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(per_source)])

            wait_until(lambda: local.stats().pending == 0, timeout=120, interval=0.1)
            time.sleep(1)  # a second send, if any, would arrive now
            ids = delivery_ids(receiver)
            metrics = [node.stop() for node in nodes]
            nodes.clear()

        twice = {i: n for i, n in Counter(ids).items() if n > 1}
        assert not twice, f"{len(twice)} deliveries sent more than once"
        assert len(set(ids)) == total
        stats = local.stats()
        assert (stats.pending, stats.delivered, stats.failed) == (0, total, 0)
        assert sum(m["deliveries_delivered"] for m in metrics) == total
        assert all(m["deliveries_delivered"] > 0 for m in metrics), "both nodes deliver"
        assert sum(m["leases_lost"] for m in metrics) == 0
        assert all(m["leases_taken_over"] == {} for m in metrics)
    finally:
        for node in nodes:
            node.kill()
        local.close()


def test_a_killed_nodes_leases_are_taken_over_after_the_lease_timeout(tmp_path: Path) -> None:
    db = tmp_path / "takeover.db"
    count = 200
    brand = str(uuid.uuid4())
    local = Hub(Config(db=str(db), allow_private=True))
    answering = threading.Event()
    survivor: Optional[Node] = None
    try:
        # Until `answering`, the receiver never answers: node a's attempts stay in flight and
        # the rest of its deliveries wait, leased, in its lanes.
        with Receiver(lambda n: 200 if answering.is_set() else "hang") as receiver:
            local.create_webhook(brand, "Deals", receiver.url())
            # max_in_flight 4: room for 256 leased deliveries, so a leases all it publishes.
            doomed = Node(db, "node-a", brand, publish=count, lease_timeout_s=2, max_in_flight=4,
                          request_timeout_ms=60000)
            receiver.wait_for(4)
            doomed.kill()  # SIGKILL: no release, no last commit
            in_flight = set(delivery_ids(receiver))
            answering.set()
            receiver.release.set()  # the hung requests end (unanswered)

            survivor = Node(db, "node-b", brand, lease_timeout_s=2)
            wait_until(lambda: local.stats().pending == 0, timeout=60, interval=0.1)
            time.sleep(0.5)
            ids = delivery_ids(receiver)
            metrics = survivor.stop()
            survivor = None

        counts = Counter(ids)
        assert len(counts) == count, "every delivery arrives"
        twice = {i for i, n in counts.items() if n > 1}
        assert twice <= in_flight, "only the attempts in flight on the killed node are sent again"
        assert len(in_flight) == 4
        stats = local.stats()
        assert (stats.pending, stats.delivered, stats.failed) == (0, count, 0)
        # b got them by taking a's expired leases over, not because anyone released them.
        assert metrics["leases_taken_over"] == {"node-a": count}  # counted by the node that held them
        assert metrics["deliveries_delivered"] == count
    finally:
        if survivor is not None:
            survivor.kill()
        local.close()


def test_node_id_and_lease_timeout_are_settings(tmp_path: Path) -> None:
    hub = Hub(Config(db=str(tmp_path / "n.db")))
    # Filled in when empty, new at every start (containers share host names and pid 1).
    assert re.fullmatch(rf"{re.escape(os.uname().nodename)}:{os.getpid()}:[0-9a-f]{{8}}", hub.config.node_id)
    another = Hub(Config(db=str(tmp_path / "n.db")))
    assert another.config.node_id != hub.config.node_id
    another.close()
    assert hub.config.lease_timeout_s == 30
    hub.close()
    named = Hub(Config(db=str(tmp_path / "n.db"), node_id="eu-1", lease_timeout_s=5))
    assert (named.config.node_id, named.config.lease_timeout_s) == ("eu-1", 5)
    named.close()
    for bad in [{"node_id": "has space"}, {"node_id": "x" * 256}, {"lease_timeout_s": 0}]:
        with pytest.raises(ValidationError):
            Hub(Config(db=str(tmp_path / "n.db"), **bad))


def test_serve_takes_the_node_id_and_lease_timeout_as_flags(tmp_path: Path) -> None:
    from conftest import Server, brandhooks_cmd

    server = Server(tmp_path / "s.db", "--no-deliver", "--node-id", "eu-1", "--lease-timeout", "7").start()
    server.stop()
    assert re.search(r"node\s+eu-1 \(leases expire 7 s after the last renewal\)", server.output)
    usage = subprocess.run(brandhooks_cmd("serve", "--help"), capture_output=True, text=True, check=True).stdout
    assert "BRANDHOOKS_NODE_ID" in usage and "BRANDHOOKS_LEASE_TIMEOUT" in usage


def test_an_outcome_that_could_not_be_committed_is_written_once_the_database_frees_up(tmp_path: Path) -> None:
    """A commit refused (another process holds the write lock longer than busy_timeout_ms) is
    tried again: the delivery ends delivered without a restart, and is not sent again."""
    import sqlite3

    db = tmp_path / "busy.db"
    gate = threading.Event()
    hub = Hub(Config(db=str(db), deliver=True, allow_private=True, busy_timeout_ms=50, log_level="off"))
    try:
        with Receiver(lambda n: 200 if gate.wait(30) else 500) as receiver:
            brand = str(uuid.uuid4())
            hub.create_webhook(brand, "Deals", receiver.url())
            hub.publish(brand, "Deals", "Created", {"i": 1})
            receiver.wait_for(1)  # the attempt is under way, its answer held back
            blocker = sqlite3.connect(str(db), isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # the write lock, as a long transaction elsewhere
            gate.set()
            time.sleep(1.5)  # the outcome's commit fails, and is tried again, meanwhile
            blocker.execute("ROLLBACK")
            blocker.close()
            wait_until(lambda: hub.stats().delivered == 1, timeout=30)
            time.sleep(0.5)
            assert len(receiver.requests) == 1
        stats = hub.stats()
        assert (stats.pending, stats.delivered) == (0, 1)
    finally:
        hub.close()
