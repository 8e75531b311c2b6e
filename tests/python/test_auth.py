"""Bearer tokens: admin reaches every brand; a brand token its brand and its descendants."""

from __future__ import annotations

import subprocess
from pathlib import Path
import uuid

import pytest

from conftest import brandhooks_cmd, sql_rows

GOOD = {"topic": "Contacts", "url": "https://example.com/hook"}


def make_token(server, brand=None):
    args = ["token", "create", "--db", str(server.db)] + (["--brand", brand] if brand else [])
    out = subprocess.run(brandhooks_cmd(*args), capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
     {"Authorization": "test-admin-token-0123456789abcdef"}],
)
def test_missing_or_unknown_token_is_401(server, brand, headers):
    with server.client(token=None) as anonymous:
        for method, path in [("GET", f"/brands/{brand}/webhooks"), ("POST", f"/brands/{brand}/webhooks"),
                             ("DELETE", f"/brands/{brand}/webhooks/{uuid.uuid4()}"), ("PUT", f"/brands/{brand}")]:
            response = anonymous.request(method, path, json=GOOD, headers=headers)
            assert response.status_code == 401, (method, path)
            assert response.json()["code"] == "UnauthorizedAccess"


def test_401_comes_before_input_errors(server):
    with server.client(token=None) as anonymous:
        response = anonymous.post("/brands/not-a-uuid/webhooks", content=b"not json")
        assert response.status_code == 401


def test_brand_token_reaches_its_brand_and_descendants_only(server, api):
    parent, child, sibling = (str(uuid.uuid4()) for _ in range(3))
    assert api.put(f"/brands/{child}", json={"parent": parent}).json() == {
        "code": "OK", "data": {"id": child, "parent": parent}}
    token = make_token(server, parent)
    with server.client(token) as scoped:
        own = scoped.post(f"/brands/{parent}/webhooks", json=GOOD)
        assert own.status_code == 200
        assert scoped.post(f"/brands/{child}/webhooks", json=GOOD).status_code == 200
        assert scoped.get(f"/brands/{child}/webhooks").json()["info"]["total"] == 1

        denied = scoped.post(f"/brands/{sibling}/webhooks", json=GOOD)
        assert denied.status_code == 403
        assert denied.json()["code"] == "AccessForbidden"
        assert scoped.get(f"/brands/{sibling}/webhooks").status_code == 403
        assert api.get(f"/brands/{sibling}/webhooks").json()["info"]["total"] == 0  # nothing written

        # only admins change the brand tree
        assert scoped.put(f"/brands/{sibling}", json={"parent": parent}).status_code == 403
        assert scoped.put(f"/brands/{child}", json={"parent": None}).status_code == 403

    # detaching the child takes the parent token's access away
    assert api.put(f"/brands/{child}", json={"parent": None}).json()["data"] == {"id": child, "parent": None}
    with server.client(token) as scoped:
        assert scoped.get(f"/brands/{child}/webhooks").status_code == 403


def test_child_token_cannot_reach_parent(server, api):
    parent, child = str(uuid.uuid4()), str(uuid.uuid4())
    api.put(f"/brands/{child}", json={"parent": parent})
    with server.client(make_token(server, child)) as scoped:
        assert scoped.get(f"/brands/{parent}/webhooks").status_code == 403
        assert scoped.get(f"/brands/{child}/webhooks").status_code == 200


def test_revoked_token_stops_working(server, brand):
    token = make_token(server)
    with server.client(token) as client:
        assert client.get(f"/brands/{brand}/webhooks").status_code == 200
    listed = subprocess.run(brandhooks_cmd("token", "list", "--db", str(server.db), "--json"),
                            capture_output=True, text=True, check=True).stdout
    import json

    ids = [json.loads(line)["id"] for line in listed.splitlines()]
    assert len(ids) >= 2 and all("secret" not in line and token not in line for line in listed.splitlines())
    newest = ids[-1]
    subprocess.run(brandhooks_cmd("token", "revoke", "--db", str(server.db), newest), check=True,
                   capture_output=True)
    with server.client(token) as client:
        assert client.get(f"/brands/{brand}/webhooks").status_code == 401


def test_token_create_refuses_bad_brand(server):
    out = subprocess.run(brandhooks_cmd("token", "create", "--db", str(server.db), "--brand", "nope"),
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "brand id must be a UUID" in out.stderr
    assert out.stdout == ""


def test_tokens_are_stored_hashed(server, backend):
    token = make_token(server)
    rows = sql_rows(str(server.db), "SELECT * FROM api_tokens")
    assert rows
    for value in (value for row in rows for value in row):
        assert token.encode() not in (value if isinstance(value, bytes) else str(value).encode())
    if backend == "sqlite":
        db = Path(server.db)
        for path in db.parent.glob(db.name + "*"):  # the file, its WAL and shm
            assert token.encode() not in path.read_bytes()


def test_every_described_route_has_an_access_rule(server):
    """Each route of /openapi.json but /healthz refuses a missing token (401) and the token of
    another brand (403): a new route that forgets its access rule (BrandAccess, AdminAccess) fails."""
    other_brands_token = make_token(server, str(uuid.uuid4()))
    with server.client(token=None) as anonymous, server.client(token=other_brands_token) as other:
        paths = anonymous.get("/openapi.json").json()["paths"]
        checked = 0
        for template, methods in paths.items():
            if template == "/healthz":
                continue
            path = template
            for name in ("brand", "webhook_id", "delivery_id", "token_id"):
                path = path.replace("{" + name + "}", str(uuid.uuid4()))
            for method in methods:
                body = {} if method in ("post", "put", "patch") else None
                assert anonymous.request(method, path, json=body).status_code == 401, (method, template)
                # Every valid token may ask who it is (GET /tokens/current); nothing else.
                expected = 200 if template == "/tokens/current" else 403
                assert other.request(method, path, json=body).status_code == expected, (method, template)
                checked += 1
        assert checked >= 18
