"""The plain-Python sender a team would write instead of brandhooks, written fairly.

A SQLite outbox (WAL, the same durability as brandhooks' default), asyncio + aiohttp with
keep-alive connections, the same concurrency limits (8 in flight per webhook, 256 in all), and
an HMAC-SHA256 signature per request with the hmac module (a keyed object copied per message).

    python sender.py --port P --keys keys.txt --events E
keys.txt is the receiver's file: "<path> <key>" per line, one line per webhook. Prints one JSON
line: {"deliveries": N, "seconds": S}. Publishing (into the outbox) is part of the time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

PER_WEBHOOK, GLOBAL, BATCH = 8, 256, 1000


def publish(db: sqlite3.Connection, hooks: list, events: int) -> None:
    """Commit each event's deliveries to the outbox, 1000 events per transaction."""
    brand = str(uuid.uuid4())
    for start in range(0, events, 1000):
        rows = []
        for i in range(start, min(events, start + 1000)):
            event_id = str(uuid.uuid4())
            body = json.dumps({"topic": "Deals", "event": "Created", "timestamp": int(time.time() * 1000),
                               "payload": {"i": i}, "id": event_id, "brand": brand}, separators=(",", ":"))
            rows += [(path, body) for path, _ in hooks]
        with db:
            db.executemany("INSERT INTO outbox (path, body, state) VALUES (?, ?, 'pending')", rows)


async def send_all(db: sqlite3.Connection, hooks: list, port: int) -> None:
    """Reader -> queue -> 256 workers (at most 8 per webhook) -> outcomes committed in batches."""
    keyed = {path: hmac.new(bytes.fromhex(key), digestmod=hashlib.sha256) for path, key in hooks}
    per_hook = {path: asyncio.Semaphore(PER_WEBHOOK) for path, _ in hooks}
    queue: asyncio.Queue = asyncio.Queue(maxsize=2 * BATCH)
    done: list = []
    connector = aiohttp.TCPConnector(limit=GLOBAL, limit_per_host=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while True:
                row = await queue.get()
                if row is None:
                    return
                row_id, path, body = row
                async with per_hook[path]:
                    signer = keyed[path].copy()
                    signer.update(body.encode())
                    async with session.post(f"http://127.0.0.1:{port}{path}", data=body, headers={
                            "Content-Type": "application/json", "X-Webhook-Signature": signer.hexdigest(),
                            "webhook-id": str(row_id)}) as response:
                        await response.read()
                        if 200 <= response.status < 300:
                            done.append(row_id)

        def commit() -> None:
            with db:  # the outcomes since the last commit in one transaction (group commit)
                db.executemany("UPDATE outbox SET state = 'delivered' WHERE id = ?", [(i,) for i in done])
            done.clear()

        workers = [asyncio.create_task(worker()) for _ in range(GLOBAL)]
        last_id = 0
        while True:
            rows = db.execute("SELECT id, path, body FROM outbox WHERE state = 'pending' AND id > ? "
                              "ORDER BY id LIMIT ?", (last_id, BATCH)).fetchall()
            if not rows:
                break
            last_id = rows[-1][0]
            for row in rows:
                await queue.put(row)
            commit()
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
        commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keys", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args()
    hooks = [tuple(line.split()) for line in Path(args.keys).read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "outbox.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, path TEXT, body TEXT, state TEXT)")
        db.isolation_level = ""  # back to implicit transactions for `with db:`
        start = time.perf_counter()
        publish(db, hooks, args.events)
        asyncio.run(send_all(db, hooks, args.port))
        print(json.dumps({"deliveries": args.events * len(hooks), "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
