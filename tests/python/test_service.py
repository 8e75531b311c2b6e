"""`brandhooks serve` as a whole: restarts, first start, settings, concurrent clients."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid

import httpx

from conftest import ADMIN_TOKEN, Server, brandhooks_cmd, free_port


def test_webhooks_survive_a_restart(tmp_path):
    server = Server(tmp_path / "hooks.db").start()
    brand = str(uuid.uuid4())
    try:
        with server.client() as api:
            kept = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": "https://a.example/"}).json()["data"]
            gone = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": "https://b.example/"}).json()["data"]
            assert api.delete(f"/brands/{brand}/webhooks/{gone['id']}").status_code == 204
    finally:
        server.stop()

    server.start()
    try:
        with server.client() as api:
            listed = api.get(f"/brands/{brand}/webhooks").json()
            assert listed["data"] == [kept]  # every field, the key included
            assert api.get(f"/brands/{brand}/webhooks/{gone['id']}").status_code == 404
    finally:
        server.stop()


def test_first_start_prints_an_admin_token_once(tmp_path):
    server = Server(tmp_path / "first.db", admin_token=None).start()
    server.stop()
    lines = [line.strip() for line in server.output.splitlines() if line.strip().startswith("bh_")]
    assert len(lines) == 1, server.output
    token = lines[0]

    server.start()  # a token exists now: nothing new is printed
    try:
        with server.client(token) as api:
            assert api.get(f"/brands/{uuid.uuid4()}/webhooks").status_code == 200
    finally:
        server.stop()
    assert sum(line.strip().startswith("bh_") for line in server.output.splitlines()) == 1


def test_settings_come_from_environment_variables(tmp_path):
    db = tmp_path / "from-env.db"
    port = free_port()
    env = {**os.environ, "BRANDHOOKS_DB": str(db), "BRANDHOOKS_PORT": str(port),
           "BRANDHOOKS_ADMIN_TOKEN": ADMIN_TOKEN, "BRANDHOOKS_LOG_LEVEL": "warning",
           "BRANDHOOKS_SYNCHRONOUS": "full"}
    proc = subprocess.Popen(brandhooks_cmd("serve"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/brands/{uuid.uuid4()}/webhooks",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        assert response.status_code == 200
        assert db.exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_bad_setting_is_a_clear_error(tmp_path):
    out = subprocess.run(brandhooks_cmd("serve", "--db", str(tmp_path / "x.db"), "--synchronous", "sometimes"),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "synchronous" in out.stderr


def test_help_lists_every_config_field():
    out = subprocess.run(brandhooks_cmd("serve", "--help"), capture_output=True, text=True, check=True).stdout
    for flag, env in [("--db", "BRANDHOOKS_DB"), ("--synchronous", "BRANDHOOKS_SYNCHRONOUS"),
                      ("--busy-timeout-ms", "BRANDHOOKS_BUSY_TIMEOUT_MS"), ("--port", "BRANDHOOKS_PORT"),
                      ("--admin-token", "BRANDHOOKS_ADMIN_TOKEN")]:
        assert flag in out and env in out


def test_eight_concurrent_clients(server):
    """8 clients create, list and delete for a few seconds: no error, nothing lost or doubled."""
    brand = str(uuid.uuid4())
    deadline = time.monotonic() + 4
    errors, created, deleted = [], [], []
    lock = threading.Lock()

    def client_loop(n: int) -> None:
        mine_live = []
        with server.client() as api:
            i = 0
            while time.monotonic() < deadline:
                i += 1
                try:
                    r = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": f"https://c{n}.example/{i}"})
                    if r.status_code != 200:
                        errors.append(r.text)
                        continue
                    hook = r.json()["data"]
                    with lock:
                        created.append(hook["id"])
                    mine_live.append(hook["id"])
                    listed = api.get(f"/brands/{brand}/webhooks", params={"topic": "Deals"})
                    if listed.status_code != 200 or hook["id"] not in {h["id"] for h in listed.json()["data"]}:
                        errors.append(f"own webhook missing from list: {listed.status_code}")
                    if i % 3 == 0:
                        victim = mine_live.pop(0)
                        d = api.delete(f"/brands/{brand}/webhooks/{victim}")
                        if d.status_code != 204:
                            errors.append(d.text)
                        with lock:
                            deleted.append(victim)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(created) > 40 and len(set(created)) == len(created)
    with server.client() as api:
        final = api.get(f"/brands/{brand}/webhooks").json()
    ids = [h["id"] for h in final["data"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(created) - set(deleted)
    assert final["info"] == {"count": len(ids), "total": len(ids)}
