"""Issue 9: bad input gets a clear 4xx and changes nothing; the service refuses what would hurt it
(reserved signature headers, credentials in urls, an empty database file); a full disk is a
documented 503; dropping a Hub does not freeze Python; key rotation is bounded."""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from importlib.metadata import requires
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import httpx
import pytest
from packaging.requirements import Requirement

import brandhooks
from brandhooks import Config, Hub

from conftest import ADMIN_TOKEN, Server, brandhooks_cmd
from receivers import Receiver, wait_until

LONE = "\\ud800"  # a JSON escape of a lone UTF-16 surrogate (no UTF-8 form)


def assert_error(response: httpx.Response, status: int, code: str) -> Dict[str, Any]:
    assert response.status_code == status, response.text
    body: Dict[str, Any] = response.json()
    assert list(body) == ["http", "code", "message"]
    assert body["http"] == status and body["code"] == code and body["message"]
    return body


def raw(api: httpx.Client, method: str, path: str, text: str) -> httpx.Response:
    return api.request(method, path, content=text.encode(), headers={"Content-Type": "application/json"})


def webhook_count(api: httpx.Client, brand: str) -> int:
    total: int = api.get(f"/brands/{brand}/webhooks").json()["info"]["total"]
    return total


# --- 7. lone surrogates and deep nesting ---------------------------------------------------------

@pytest.mark.parametrize("body", [
    f'{{"topic": "Deals", "url": "https://example.com/{LONE}"}}',
    f'{{"topic": "Deals{LONE}", "url": "https://example.com/"}}',
    f'{{"topic": "Deals", "url": "https://example.com/", "tags": ["vip", "{LONE}"]}}',
    f'{{"topic": "Deals", "url": "https://example.com/", "{LONE}": 1}}',
])
def test_lone_surrogates_in_a_new_webhook_are_400(api: httpx.Client, brand: str, body: str) -> None:
    assert_error(raw(api, "POST", f"/brands/{brand}/webhooks", body), 400, "Validation")
    assert webhook_count(api, brand) == 0


@pytest.mark.parametrize("body", [
    f'{{"topic": "Deals{LONE}", "event": "Created", "payload": {{}}}}',
    f'{{"topic": "Deals", "event": "Created{LONE}", "payload": {{}}}}',
    f'{{"topic": "Deals", "event": "Created", "payload": {{}}, "tags": ["{LONE}"]}}',
    f'{{"topic": "Deals", "event": "Created", "payload": {{"name": "{LONE}"}}}}',
    f'{{"topic": "Deals", "event": "Created", "payload": {{"{LONE}": 1}}}}',
])
def test_lone_surrogates_in_an_event_are_400(api: httpx.Client, brand: str, body: str) -> None:
    assert_error(raw(api, "POST", f"/brands/{brand}/events", body), 400, "Validation")
    assert api.get("/stats").status_code == 200


@pytest.mark.parametrize("field", ["url", "topic", "tags"])
def test_lone_surrogates_in_a_patch_are_400(api: httpx.Client, brand: str, field: str) -> None:
    hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": "https://example.com/"}).json()["data"]
    value = {"url": f'"https://example.com/{LONE}"', "topic": f'"Deals{LONE}"', "tags": f'["{LONE}"]'}[field]
    path = f"/brands/{brand}/webhooks/{hook['id']}"
    assert_error(raw(api, "PATCH", path, f'{{"{field}": {value}}}'), 400, "Validation")
    assert api.get(path).json()["data"] == hook


def test_lone_surrogates_in_a_brand_parent_and_a_token_are_400(api: httpx.Client, brand: str) -> None:
    assert_error(raw(api, "PUT", f"/brands/{brand}", f'{{"parent": "{LONE}"}}'), 400, "Validation")
    before = len(api.get("/tokens").json()["data"])
    assert_error(raw(api, "POST", "/tokens", f'{{"label": "ops{LONE}"}}'), 400, "Validation")
    assert_error(raw(api, "POST", "/tokens", f'{{"brand": "{LONE}"}}'), 400, "Validation")
    assert len(api.get("/tokens").json()["data"]) == before


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("method, path, prefix", [
    ("POST", "/brands/{brand}/webhooks", '{"topic": "Deals", "url": "https://example.com/", "tags": '),
    ("POST", "/brands/{brand}/events", '{"topic": "Deals", "event": "Created", "payload": {"a": '),
    ("PATCH", "/brands/{brand}/webhooks/{hook}", '{"tags": '),
    ("POST", "/brands/{brand}/webhooks/{hook}/rotate", '{"grace_seconds": '),
    ("POST", "/brands/{brand}/webhooks/{hook}/recover", '{"since": '),
    ("PUT", "/brands/{brand}", '{"parent": '),
    ("POST", "/tokens", '{"label": '),
])
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_json_nested_too_deeply_is_400_bad_request(api: httpx.Client, brand: str, method: str, path: str,
                                                   prefix: str, depth: int) -> None:
    hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": "https://example.com/"}).json()["data"]
    text = prefix + nested(depth) + "}" * prefix.count("{")
    response = raw(api, method, path.format(brand=brand, hook=hook["id"]), text)
    body = assert_error(response, 400, "BadRequest")
    assert "nests too deeply" in body["message"]
    assert api.get(f"/brands/{brand}/webhooks/{hook['id']}").json()["data"] == hook


def test_payload_deeper_than_128_levels_is_400_validation(api: httpx.Client, brand: str) -> None:
    deep: Any = {}  # 1 level
    for _ in range(126):
        deep = [deep]
    ok = api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {"a": deep}})
    assert ok.status_code == 202, ok.text  # 128 levels, the payload object included
    too_deep = api.post(f"/brands/{brand}/events",
                        json={"topic": "Deals", "event": "Created", "payload": {"a": [deep]}})
    assert "128" in assert_error(too_deep, 400, "Validation")["message"]


# --- 11. credentials in urls ---------------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://user:s3cret@example.com/hook", "https://s3cret@example.com/",
                                 "http://:s3cret@example.com:8080/"])
def test_urls_with_credentials_are_refused_without_echoing_them(api: httpx.Client, brand: str, url: str) -> None:
    body = assert_error(api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": url}), 400, "Validation")
    assert "credentials" in body["message"] and "s3cret" not in body["message"]
    assert webhook_count(api, brand) == 0
    hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": "https://example.com/"}).json()["data"]
    body = assert_error(api.patch(f"/brands/{brand}/webhooks/{hook['id']}", json={"url": url}), 400, "Validation")
    assert "s3cret" not in body["message"]
    assert api.get(f"/brands/{brand}/webhooks/{hook['id']}").json()["data"]["url"] == "https://example.com/"


def test_repr_of_a_stored_url_with_credentials_hides_them(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    hub = Hub(Config(db=str(db)))
    brand = str(uuid.uuid4())
    hook = hub.create_webhook(brand, "Deals", "https://example.com/hook")
    # A webhook registered before credentials were refused.
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE webhooks SET url = ? WHERE id = ?", ("https://user:s3cret@example.com/hook", hook.id))
    stored = hub.get_webhook(brand, hook.id)
    assert "s3cret" not in repr(stored) and "***@example.com/hook" in repr(stored)


def test_client_records_keep_the_key_out_of_their_repr(server: Server, brand: str) -> None:
    with brandhooks.Client(server.url, ADMIN_TOKEN) as client:
        hook = client.create_webhook(brand, "Deals", "https://example.com/hook")
    assert len(hook.key) == 64 and hook.key not in repr(hook) and "example.com/hook" in repr(hook)


# --- 10. reserved signature headers ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["Host", "Content-Length", "transfer-encoding", "webhook-signature", "X Sig"])
def test_serve_refuses_a_reserved_signature_header(tmp_path: Path, name: str) -> None:
    proc = subprocess.Popen(brandhooks_cmd("serve", "--port", "0", "--db", str(tmp_path / "b.db"),
                                           "--signature-header", name),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 2, err
    assert "signature_header" in err
    with pytest.raises(brandhooks.ValidationError):
        Hub(Config(db=":memory:", signature_header=name))


# --- 9. an empty database file --------------------------------------------------------------------

def test_an_empty_database_file_is_refused_unless_init_db(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDHOOKS_")}
    for args in (["serve", "--port", "0", "--db", str(db)], ["webhooks", "list", str(uuid.uuid4()), "--db", str(db)]):
        proc = subprocess.run(brandhooks_cmd(*args), capture_output=True, text=True, timeout=30, env=env)
        assert proc.returncode == 1, proc.stderr
        assert "is empty (0 bytes)" in proc.stderr and "--init-db" in proc.stderr
        assert db.stat().st_size == 0
    with pytest.raises(brandhooks.StorageError, match="empty"):
        Hub(Config(db=str(db)))

    # Asked for: a new database in it, through the CLI's admin commands and through serve.
    listed = subprocess.run(brandhooks_cmd("webhooks", "list", str(uuid.uuid4()), "--db", str(db), "--init-db"),
                            capture_output=True, text=True, timeout=30, env=env)
    assert listed.returncode == 0, listed.stderr
    assert db.stat().st_size > 0
    other = tmp_path / "other.db"
    other.touch()
    server = Server(other, "--init-db").start()
    try:
        with server.client() as api:
            assert api.get("/healthz").status_code == 200
    finally:
        server.stop()


# --- 6. key rotation -----------------------------------------------------------------------------

def test_rotation_without_grace_leaves_one_signature(tmp_path: Path) -> None:
    hub = Hub(Config(db=str(tmp_path / "r.db"), deliver=True, allow_private=True, retry_jitter=0.0))
    try:
        with Receiver() as receiver:
            brand = str(uuid.uuid4())
            hook = hub.create_webhook(brand, "Deals", receiver.url())
            for _ in range(3):
                hub.rotate_key(brand, hook.id, 3600)
            hub.publish(brand, "Deals", "Created", {})
            assert len(receiver.wait_for(1)[0].headers["webhook-signature"].split(" ")) == 4
            for _ in range(7):  # the previous keys are capped
                hub.rotate_key(brand, hook.id, 3600)
            hub.publish(brand, "Deals", "Created", {})
            assert len(receiver.wait_for(2)[1].headers["webhook-signature"].split(" ")) == 6
            newest = hub.rotate_key(brand, hook.id, 0)
            hub.publish(brand, "Deals", "Created", {})
            request = receiver.wait_for(3)[2]
            [signature] = request.headers["webhook-signature"].split(" ")
            assert signature.startswith("v1,")
            assert brandhooks.verify(request.body, request.headers, newest.key) == "standard"
    finally:
        hub.close()


# --- 13. dropping a Hub releases the GIL ------------------------------------------------------------

def test_dropping_a_hub_with_a_hanging_delivery_lets_python_threads_run(tmp_path: Path) -> None:
    with Receiver(lambda n: "hang") as receiver:
        hub: Optional[Hub] = Hub(Config(db=str(tmp_path / "g.db"), deliver=True, allow_private=True,
                                        request_timeout_ms=3000))
        assert hub is not None
        brand = str(uuid.uuid4())
        hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        receiver.wait_for(1)  # the attempt is in flight and will not finish before its timeout

        ticks = [0]
        stop = threading.Event()

        def count() -> None:
            while not stop.is_set():
                ticks[0] += 1
                time.sleep(0.005)

        counter = threading.Thread(target=count)
        counter.start()
        time.sleep(0.1)
        before = ticks[0]
        started = time.monotonic()
        hub = None  # the only reference: the Hub is destroyed here, without close()
        gc.collect()
        dropped_in = time.monotonic() - started
        during = ticks[0] - before
        stop.set()
        counter.join()
    assert dropped_in > 1.0, "the drop did not wait for the in-flight attempt: nothing measured"
    # Holding the GIL, the counter could not move at all; 1 s gives it room for ~200 ticks.
    assert during >= 20, f"{during} ticks in {dropped_in:.1f} s"


# --- 15. dependency pins -------------------------------------------------------------------------

def test_pydantic_2_is_required() -> None:
    pins = [Requirement(r) for r in requires("brandhooks") or []]
    [pydantic] = [r for r in pins if r.name == "pydantic" and r.marker is None]
    assert not pydantic.specifier.contains("1.10.13") and pydantic.specifier.contains("2.7.0")


# --- 8. a full disk --------------------------------------------------------------------------------

@contextlib.contextmanager
def small_filesystem(size: str) -> Iterator[Path]:
    """A real tmpfs of `size` (needs root, as CI runs); skips where mounting is impossible."""
    mountpoint = Path(tempfile.mkdtemp(prefix="brandhooks-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        mountpoint.rmdir()


def fill(directory: Path) -> Path:
    """Writes a file until the filesystem has no space left; returns it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_503_unavailable_and_recovers_by_itself() -> None:
    with small_filesystem("8m") as mountpoint:
        server = Server(mountpoint / "brandhooks.db", "--no-deliver").start()
        try:
            with server.client() as api:
                brand = str(uuid.uuid4())
                assert api.post(f"/brands/{brand}/webhooks",
                                json={"topic": "Deals", "url": "https://example.com/"}).status_code == 200
                event = {"topic": "Deals", "event": "Created", "payload": {"blob": "x" * 300_000}}
                accepted = 0
                filler = fill(mountpoint)

                statuses: List[int] = []
                for _ in range(30):  # the WAL may still hold a few events' worth of free pages
                    response = api.post(f"/brands/{brand}/events", json=event)
                    statuses.append(response.status_code)
                    if response.status_code == 202:
                        accepted += 1
                        continue
                    body = assert_error(response, 503, "Unavailable")
                    assert "storage is full" in body["message"]
                    assert int(response.headers["Retry-After"]) > 0
                    break
                assert statuses[-1] == 503, statuses
                health = api.get("/healthz")
                assert "storage is full" in assert_error(health, 503, "Unavailable")["message"]
                assert "Retry-After" in health.headers
                assert api.get(f"/brands/{brand}/webhooks").status_code == 200  # reads still work

                filler.unlink()  # space comes back: no restart, no operator action
                wait_until(lambda: api.get("/healthz").status_code == 200, timeout=20)
                response = api.post(f"/brands/{brand}/events", json=event)
                assert response.status_code == 202, response.text
                accepted += 1
                assert api.get("/stats").json()["data"]["events"] == accepted  # the refused one left nothing
        finally:
            server.stop()
