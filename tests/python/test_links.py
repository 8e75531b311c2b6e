"""Issue 13's access routes, end to end on a real `brandhooks serve` (both backends): tokens that
expire, portal links, the bearer's own token and a brand's descendants."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest

from conftest import Server, brandhooks_cmd

EVENT = {"topic": "Deals", "event": "Created", "payload": {"n": 1}}
LINK_FIELDS = ["url", "expires_at", "brand", "token_id"]


def sql_execute(db: str, statement: str) -> None:
    """Runs one statement that changes rows (committed) on either backend."""
    if db.startswith("postgresql://"):
        from pgserver import bin_dir

        subprocess.run([str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", statement],
                       check=True, capture_output=True, text=True)
        return
    import sqlite3

    with contextlib.closing(sqlite3.connect(db, timeout=10)) as connection:
        with connection:
            connection.execute(statement)


def new_token(api: httpx.Client, **body: Any) -> Dict[str, Any]:
    response = api.post("/tokens", json=body)
    assert response.status_code == 200, response.text
    data: Dict[str, Any] = response.json()["data"]
    return data


def token_ids(api: httpx.Client) -> List[str]:
    return [t["id"] for t in api.get("/tokens").json()["data"]]


@contextlib.contextmanager
def bearer(server: Server, token: str) -> Iterator[httpx.Client]:
    with server.client(token=token) as client:
        yield client


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["http"] == status and body["code"] == code, body
    message: str = body["message"]
    return message


# --- tokens that expire ------------------------------------------------------------------------

def test_a_token_stops_working_at_its_expiry_on_every_route_and_on_publish(server, api, brand):
    token = new_token(api, brand=brand, label="soon", expires_in=60)
    assert token["expires_at"] == pytest.approx(token["created_at"] + 60, abs=1e-3)
    # A minute is the shortest lifetime the API gives; bring this one's expiry to 2 s from now.
    expires_at = time.time() + 2
    sql_execute(str(server.db), f"UPDATE api_tokens SET expires_at = {int(expires_at * 1e6)} WHERE id = '{token['id']}'")
    with bearer(server, token["token"]) as client:
        assert client.get(f"/brands/{brand}/webhooks").status_code == 200
        assert client.post(f"/brands/{brand}/events", json=EVENT).status_code == 202
        assert client.get("/tokens/current").json()["data"]["expires_at"] == pytest.approx(expires_at, abs=1e-3)
        time.sleep(max(0.0, expires_at - time.time()) + 0.2)
        # No cache to outlive it: refused at once, by the routes and by the raw publish path.
        for response in (client.get(f"/brands/{brand}/webhooks"),
                         client.post(f"/brands/{brand}/events", json=EVENT),
                         client.post(f"/brands/{brand}/events", json=[EVENT, EVENT]),
                         client.get("/tokens/current"),
                         client.post(f"/brands/{brand}/portal-links", json={}),
                         client.get(f"/brands/{brand}/descendants")):
            assert refused(response, 401, "UnauthorizedAccess") == "token expired"
    # It is still listed (with its expiry) until retention prunes it.
    assert token["id"] in token_ids(api)


@pytest.mark.parametrize("expires_in", [59, 30 * 86400 + 1, 0, -60, "60", 60.0, 60.5, True, [60], 2**70])
def test_a_bad_expires_in_is_400_and_creates_no_token(api, brand, expires_in):
    before = token_ids(api)
    refused(api.post("/tokens", json={"brand": brand, "expires_in": expires_in}), 400, "Validation")
    assert token_ids(api) == before


def test_expires_in_bounds_and_null(api, brand):
    longest = new_token(api, brand=brand, expires_in=30 * 86400)
    assert longest["expires_at"] == pytest.approx(longest["created_at"] + 30 * 86400, abs=1e-3)
    assert new_token(api, brand=brand, expires_in=None)["expires_at"] is None
    assert new_token(api, brand=brand)["expires_at"] is None
    listed = {t["id"]: t for t in api.get("/tokens").json()["data"]}
    assert listed[longest["id"]]["expires_at"] == longest["expires_at"]


def test_expired_tokens_are_pruned_with_retention(new_database):
    """Hub.prune (which the dispatcher runs every prune_interval_s) deletes tokens that expired
    more than retention_s ago; one that expired within it stays, refused as expired."""
    from brandhooks import Config, Hub, UnauthorizedError

    db = new_database("prune-tokens")
    with Hub(Config(db=db, retention_s=3600)) as hub:
        old = hub.create_token(None, "old", expires_in=60)
        recent = hub.create_token(None, "recent", expires_in=60)
        kept = hub.create_token(None, "kept")
        now = int(time.time() * 1e6)
        sql_execute(db, f"UPDATE api_tokens SET expires_at = {now - 7200 * 10**6} WHERE id = '{old.info.id}'")
        sql_execute(db, f"UPDATE api_tokens SET expires_at = {now - 60 * 10**6} WHERE id = '{recent.info.id}'")
        hub.prune()
        assert [t.id for t in hub.list_tokens()] == [recent.info.id, kept.info.id]
        with pytest.raises(UnauthorizedError, match="token expired"):
            hub.authenticate(recent.secret)
        with pytest.raises(UnauthorizedError, match="invalid or revoked token"):
            hub.authenticate(old.secret)


# --- GET /tokens/current -----------------------------------------------------------------------

def test_current_token_of_an_admin_and_of_a_brand(server, api, brand):
    admin = api.get("/tokens/current")
    assert admin.status_code == 200
    data = admin.json()["data"]
    assert list(data) == ["id", "brand", "label", "created_at", "expires_at"]
    assert data["brand"] is None and data["expires_at"] is None and data["label"] == "serve --admin-token"
    scoped = new_token(api, brand=brand.upper(), label="crm", expires_in=600)
    with bearer(server, scoped["token"]) as client:
        mine = client.get("/tokens/current").json()["data"]
    assert mine == {k: v for k, v in scoped.items() if k != "token"}
    assert mine["brand"] == brand
    with server.client(token=None) as anonymous:
        refused(anonymous.get("/tokens/current"), 401, "UnauthorizedAccess")
    with bearer(server, "bh_" + "0" * 64) as client:
        refused(client.get("/tokens/current"), 401, "UnauthorizedAccess")
    # A resource of its own: not a token id that DELETE /tokens/{id} would try to revoke.
    response = api.delete("/tokens/current")
    refused(response, 405, "BadRequest")
    assert response.headers["allow"] == "GET"
    assert api.get("/tokens/current").status_code == 200


# --- POST /brands/{id}/portal-links ------------------------------------------------------------

@pytest.mark.parametrize("body", [None, {}, {"expires_in": 60}, {"expires_in": 86400}])
def test_a_portal_link_signs_in_its_brand_only(server, api, brand, body):
    child, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert api.put(f"/brands/{child}", json={"parent": brand}).status_code == 200
    response = api.post(f"/brands/{brand}/portal-links", **({} if body is None else {"json": body}))
    assert response.status_code == 200, response.text
    link = response.json()
    assert link["code"] == "OK" and list(link["data"]) == LINK_FIELDS
    data = link["data"]
    prefix = server.url + "/portal#token="
    assert data["url"].startswith(prefix) and data["brand"] == brand
    secret = data["url"][len(prefix):]
    lifetime = (body or {}).get("expires_in", 3600)
    assert data["expires_at"] == pytest.approx(time.time() + lifetime, abs=30)

    with bearer(server, secret) as client:
        me = client.get("/tokens/current").json()["data"]
        assert me["id"] == data["token_id"] and me["brand"] == brand and me["label"] == "portal link"
        assert me["expires_at"] == data["expires_at"]
        assert client.get(f"/brands/{brand}/webhooks").status_code == 200
        assert client.get(f"/brands/{child}/webhooks").status_code == 200  # a descendant
        assert client.post(f"/brands/{brand}/events", json=EVENT).status_code == 202
        refused(client.get(f"/brands/{other}/webhooks"), 403, "AccessForbidden")
        refused(client.post(f"/brands/{other}/events", json=EVENT), 403, "AccessForbidden")
        refused(client.post(f"/brands/{other}/portal-links", json={}), 403, "AccessForbidden")
        refused(client.get("/tokens"), 403, "AccessForbidden")
    assert data["token_id"] in token_ids(api)


@pytest.mark.parametrize("body", [{"expires_in": 59}, {"expires_in": 86401}, {"expires_in": "3600"},
                                  {"expires_in": 3600.0}, {"expires_in": 3600.5}, {"expires_in": True},
                                  {"expires_in": None}, {"expires_in": 2**70}, [], "3600", 3600])
def test_a_bad_portal_link_request_is_400_and_creates_no_token(api, brand, body):
    before = token_ids(api)
    refused(api.post(f"/brands/{brand}/portal-links", json=body), 400, "Validation")
    assert token_ids(api) == before


def test_a_portal_link_request_that_is_not_json_is_400(api, brand):
    before = token_ids(api)
    refused(api.post(f"/brands/{brand}/portal-links", content=b"{nope"), 400, "BadRequest")
    refused(api.post("/brands/not-a-uuid/portal-links", json={}), 400, "Validation")
    assert token_ids(api) == before


def test_a_link_never_outlives_the_token_that_made_it(server, api, brand):
    brief = new_token(api, brand=brand, expires_in=120)
    with bearer(server, brief["token"]) as client:
        long_asked = client.post(f"/brands/{brand}/portal-links", json={"expires_in": 86400}).json()["data"]
        assert long_asked["expires_at"] == brief["expires_at"]
        short = client.post(f"/brands/{brand}/portal-links", json={"expires_in": 60}).json()["data"]
        assert short["expires_at"] == pytest.approx(time.time() + 60, abs=30)
    # A link's own token makes links no longer than itself either.
    secret = long_asked["url"].split("#token=", 1)[1]
    with bearer(server, secret) as client:
        again = client.post(f"/brands/{brand}/portal-links", json={}).json()["data"]
    assert again["expires_at"] == brief["expires_at"]


def test_portal_links_need_a_token_reaching_the_brand(server, api, brand):
    with server.client(token=None) as anonymous:
        refused(anonymous.post(f"/brands/{brand}/portal-links", json={}), 401, "UnauthorizedAccess")
    other = new_token(api, brand=str(uuid.uuid4()))
    with bearer(server, other["token"]) as client:
        refused(client.post(f"/brands/{brand}/portal-links", json={}), 403, "AccessForbidden")


# --- GET /brands/{id}/descendants --------------------------------------------------------------

def test_descendants_breadth_first(server, api, brand):
    a, b = sorted(str(uuid.uuid4()) for _ in range(2))
    a1, b1 = str(uuid.uuid4()), str(uuid.uuid4())
    for child, parent in ((b, brand), (a, brand), (b1, b), (a1, a)):
        assert api.put(f"/brands/{child}", json={"parent": parent}).status_code == 200
    answer = api.get(f"/brands/{brand.upper()}/descendants").json()
    level_two = sorted([{"id": a1, "parent": a}, {"id": b1, "parent": b}], key=lambda x: x["id"])
    assert answer == {"code": "OK", "data": [{"id": a, "parent": brand}, {"id": b, "parent": brand}, *level_two],
                      "info": {"count": 4, "total": 4}}
    assert api.get(f"/brands/{a1}/descendants").json() == {"code": "OK", "data": [], "info": {"count": 0, "total": 0}}
    assert api.get(f"/brands/{uuid.uuid4()}/descendants").json()["data"] == []
    refused(api.get("/brands/nope/descendants"), 400, "Validation")
    # A brand token sees below itself, not above.
    token = new_token(api, brand=a)["token"]
    with bearer(server, token) as client:
        assert client.get(f"/brands/{a}/descendants").json()["data"] == [{"id": a1, "parent": a}]
        refused(client.get(f"/brands/{brand}/descendants"), 403, "AccessForbidden")


# --- public_url, and the secret never in a log -------------------------------------------------

def test_public_url_is_the_links_base_and_no_log_line_holds_the_secret(tmp_path: Path):
    server = Server(tmp_path / "public.db", "--public-url", "https://hooks.example.com/bh/",
                    "--log-level", "debug").start()
    try:
        brand = str(uuid.uuid4())
        with server.client() as api:
            data = api.post(f"/brands/{brand}/portal-links", json={}).json()["data"]
            secret = data["url"].split("#token=", 1)[1]
            assert data["url"] == "https://hooks.example.com/bh/portal#token=" + secret
            with bearer(server, secret) as client:
                assert client.get(f"/brands/{brand}/webhooks").status_code == 200
            # A request that fails with the secret in hand (another brand): its log line neither.
            with bearer(server, secret) as client:
                assert client.get(f"/brands/{uuid.uuid4()}/webhooks").status_code == 403
    finally:
        server.stop()
    log = server.output
    assert f"POST /brands/{brand}/portal-links" in log  # the access log was on
    assert secret not in log and secret[3:] not in log


@pytest.mark.parametrize("value", ["ftp://hooks.example.com", "hooks.example.com", "https://hooks.example.com/#x",
                                   "https://hooks.example.com/?a=b", "https://user:pw@hooks.example.com"])
@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_refuses_a_bad_public_url(tmp_path: Path, value: str, how: str):
    args = ["serve", "--db", str(tmp_path / "x.db"), "--port", "0"]
    env = {"PATH": "/usr/bin:/bin"}
    if how == "flag":
        args += ["--public-url", value]
    else:
        env["BRANDHOOKS_PUBLIC_URL"] = value
    done = subprocess.run(brandhooks_cmd(*args), capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2, done.stderr
    assert "public_url must be an absolute http(s) URL" in done.stderr


# --- the CLI -----------------------------------------------------------------------------------

def test_cli_token_create_expires_in(tmp_path: Path):
    db = str(tmp_path / "cli.db")
    done = subprocess.run(brandhooks_cmd("token", "create", "--db", db, "--expires-in", "600", "--json"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["expires_at"] == pytest.approx(created["created_at"] + 600, abs=1e-3)
    human = subprocess.run(brandhooks_cmd("token", "create", "--db", db, "--expires-in", "60"),
                           capture_output=True, text=True, timeout=60)
    assert human.returncode == 0 and ", expires " in human.stderr
    bad = subprocess.run(brandhooks_cmd("token", "create", "--db", db, "--expires-in", "59"),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "expires_in must be between 60 and 2592000" in bad.stderr
    listed = subprocess.run(brandhooks_cmd("token", "list", "--db", db, "--json"), capture_output=True, text=True,
                            timeout=60)
    tokens = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(tokens) == 2 and tokens[0]["expires_at"] == created["expires_at"]
