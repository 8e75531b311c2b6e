"""Peak RSS of a delivering Hub holding N pending deliveries whose receiver is down.

    python pending.py DB N     -> prints the peak RSS in MB (the last line)
"""

from __future__ import annotations

import resource
import socket
import sys
import time
import uuid

import brandhooks


def main() -> None:
    db, pending = sys.argv[1], int(sys.argv[2])
    with socket.socket() as s:  # a loopback port with nothing listening: every attempt is refused
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    webhooks = 100
    hub = brandhooks.Hub(db, deliver=True, allow_private=True)
    brand = str(uuid.uuid4())
    for i in range(webhooks):
        hub.create_webhook(brand, "Deals", f"http://127.0.0.1:{dead_port}/w/{i}")
    events = pending // webhooks
    for first in range(0, events, 1000):
        hub.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(first, min(events, first + 1000))])
    time.sleep(3)  # the dispatcher works through first attempts meanwhile
    stats = hub.stats()
    assert stats.pending == events * webhooks, stats.to_dict()
    hub.close()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
