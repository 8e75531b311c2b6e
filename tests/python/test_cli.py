"""The admin CLI, against a running server (--url/--token) and against the file (--db)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from conftest import ADMIN_TOKEN, Server, brandhooks_cmd, free_port
from receivers import Receiver, wait_until


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("cli") / "cli.db", "--allow-private", "--retry-schedule", "0",
                    "--retry-jitter", "0").start()
    yield server
    server.stop()


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(brandhooks_cmd(*args), capture_output=True, text=True, timeout=60)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def remote(server, *args):
    return [*args, "--url", server.url, "--token", ADMIN_TOKEN]


def rows(out):
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("where", ["remote", "local"])
def test_webhook_lifecycle(live, tmp_path, where):
    target = (lambda *a: remote(live, *a)) if where == "remote" else (lambda *a: [*a, "--db", str(tmp_path / "l.db")])
    brand = str(uuid.uuid4())
    created = rows(cli(*target("webhooks", "create", brand, "Deals", "https://example.com/a", "--tag", "vip", "--json")))[0]
    assert created["topic"] == "Deals" and created["tags"] == ["vip"] and len(created["key"]) == 64
    listed = rows(cli(*target("webhooks", "list", brand, "--json")))
    assert [w["id"] for w in listed] == [created["id"]]
    table = cli(*target("webhooks", "list", brand)).stdout
    assert "ID" in table and created["id"] in table and "https://example.com/a" in table

    rotated = rows(cli(*target("webhooks", "rotate", brand, created["id"], "--grace-seconds", "0", "--json")))[0]
    assert rotated["key"] != created["key"]
    cli(*target("webhooks", "disable", brand, created["id"]))
    published = rows(cli(*target("events", "publish", brand, "Deals", "Created", "--payload", '{"a": 1}',
                                 "--tag", "vip", "--json")))[0]
    assert published["deliveries"] == 0  # disabled
    cli(*target("webhooks", "enable", brand, created["id"]))
    published = rows(cli(*target("events", "publish", brand, "Deals", "Created", "--tag", "vip", "--json")))[0]
    assert published["deliveries"] == 1

    cli(*target("webhooks", "delete", brand, created["id"]))
    assert rows(cli(*target("webhooks", "list", brand, "--json"))) == []
    gone = cli(*target("webhooks", "delete", brand, created["id"]), check=False)
    assert gone.returncode == 3 and "not found" in gone.stderr


def test_exit_codes(live, tmp_path):
    bad = cli(*remote(live, "webhooks", "create", "not-a-uuid", "Deals", "https://x.example/"), check=False)
    assert bad.returncode == 2 and "UUID" in bad.stderr
    denied = cli("webhooks", "list", str(uuid.uuid4()), "--url", live.url, "--token", "bh_wrong", check=False)
    assert denied.returncode == 4
    unreachable = cli("stats", "--url", f"http://127.0.0.1:{free_port()}", "--token", "x", check=False)
    assert unreachable.returncode == 1 and "error" in unreachable.stderr
    payload = cli(*remote(live, "events", "publish", str(uuid.uuid4()), "Deals", "Created", "--payload", "[1]"),
                  check=False)
    assert payload.returncode == 2
    for command in (["--help"], ["webhooks", "--help"], ["deliveries", "recover", "--help"], ["receive", "--help"],
                    ["token", "create", "--help"], ["stats", "--help"], ["events", "publish", "--help"]):
        assert "Usage" in cli(*command).stdout


def test_deliveries_recover_and_redeliver_through_the_cli(live):
    brand = str(uuid.uuid4())
    with Receiver(lambda n: 500) as broken, Receiver() as healthy:
        hook = rows(cli(*remote(live, "webhooks", "create", brand, "Showings", broken.url(), "--json")))[0]
        before = time.time() - 1
        for i in range(3):
            cli(*remote(live, "events", "publish", brand, "Showings", "Booked", "--payload", json.dumps({"i": i})))
        wait_until(lambda: len(rows(cli(*remote(live, "deliveries", "list", brand, hook["id"], "--status", "failed",
                                                "--json")))) == 3)
        failed = rows(cli(*remote(live, "deliveries", "list", brand, hook["id"], "--status", "failed", "--json")))
        shown = rows(cli(*remote(live, "deliveries", "show", brand, failed[0]["id"], "--json")))[0]
        assert shown["attempts"][0]["status"] == 500
        assert "500" in cli(*remote(live, "deliveries", "show", brand, failed[0]["id"])).stdout

        # fix the endpoint, then recover everything that failed
        from brandhooks import Client

        with Client(live.url, ADMIN_TOKEN) as api:
            api.update_webhook(brand, hook["id"], url=healthy.url())
        out = cli(*remote(live, "deliveries", "recover", brand, hook["id"], "--since", str(before), "--batch", "2"))
        # the result once (progress only on a terminal)
        assert (out.stdout, out.stderr) == ("3 deliveries queued again\n", "")
        healthy.wait_for(3)
        wait_until(lambda: len(rows(cli(*remote(live, "deliveries", "list", brand, hook["id"], "--status",
                                                "delivered", "--json")))) == 3)

        again = rows(cli(*remote(live, "deliveries", "redeliver", brand, failed[0]["id"], "--json")))[0]
        assert again["state"] == "pending"
        requests = healthy.wait_for(4)
        assert requests[-1].headers["webhook-id"] == failed[0]["id"]


def test_tokens_and_stats_through_the_cli(live, tmp_path):
    brand = str(uuid.uuid4())
    created = cli(*remote(live, "token", "create", "--brand", brand, "--label", "ci"))
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("bh_") and "created brand" in created.stderr
    listed = rows(cli(*remote(live, "token", "list", "--json")))
    mine = [t for t in listed if t["label"] == "ci"]
    assert len(mine) == 1 and mine[0]["brand"] == brand and all("token" not in t for t in listed)
    assert cli("webhooks", "list", brand, "--url", live.url, "--token", secret).returncode == 0
    cli(*remote(live, "token", "revoke", mine[0]["id"]))
    assert cli("webhooks", "list", brand, "--url", live.url, "--token", secret, check=False).returncode == 4

    numbers = rows(cli(*remote(live, "stats", "--json")))[0]
    assert {"webhooks", "pending", "delivered", "failed", "due_now"} <= set(numbers)
    local = rows(cli("stats", "--db", str(tmp_path / "empty.db"), "--json"))[0]
    assert local["webhooks"] == 0 and local["events"] == 0


def test_receive_prints_and_verifies(live):
    port = free_port()
    brand = str(uuid.uuid4())
    hook = rows(cli(*remote(live, "webhooks", "create", brand, "Contacts", f"http://127.0.0.1:{port}/in", "--json")))[0]
    proc = subprocess.Popen(brandhooks_cmd("receive", "--port", str(port), "--key", hook["key"], "--count", "2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _listening(port))
        cli(*remote(live, "events", "publish", brand, "Contacts", "Created", "--payload", '{"name": "Ada"}'))
        cli(*remote(live, "webhooks", "rotate", brand, hook["id"], "--grace-seconds", "0"))
        cli(*remote(live, "events", "publish", brand, "Contacts", "Updated"))
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    lines = [line for line in out.splitlines() if "webhook-id" in line]
    assert len(lines) == 2
    assert "Contacts/Created" in lines[0] and "standard signature OK" in lines[0]
    assert "Contacts/Updated" in lines[1] and "INVALID" in lines[1]  # signed with the new key only
    assert '"name":"Ada"' in out


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
