"""Bad input gets its documented status and envelope, never a 500, and changes nothing."""

from __future__ import annotations

import uuid

import pytest

GOOD = {"topic": "Deals", "url": "https://example.com/hook"}


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["http", "code", "message"]
    assert body["http"] == status and body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in body["message"]
    return body


def total(api, brand):
    return api.get(f"/brands/{brand}/webhooks").json()["info"]["total"]


@pytest.mark.parametrize(
    "payload, why",
    [
        ({"url": "https://example.com/"}, "missing topic"),
        ({"topic": "deals", "url": "https://example.com/"}, "lowercase topic"),
        ({"topic": "DEALS", "url": "https://example.com/"}, "uppercase topic"),
        ({"topic": "Listings", "url": "https://example.com/"}, "unknown topic"),
        ({"topic": "", "url": "https://example.com/"}, "empty topic"),
        ({"topic": 3, "url": "https://example.com/"}, "topic not a string"),
        ({"topic": ["Deals"], "url": "https://example.com/"}, "topic a list"),
        ({"topic": "Deals"}, "missing url"),
        ({"topic": "Deals", "url": None}, "null url"),
        ({"topic": "Deals", "url": ""}, "empty url"),
        ({"topic": "Deals", "url": "/relative/path"}, "relative url"),
        ({"topic": "Deals", "url": "example.com/hook"}, "no scheme"),
        ({"topic": "Deals", "url": "ftp://example.com/"}, "ftp"),
        ({"topic": "Deals", "url": "https:///nohost"}, "no host"),
        ({"topic": "Deals", "url": "https://exa mple.com/"}, "space in host"),
        ({"topic": "Deals", "url": "https://example.com/" + "a" * 2030}, "over 2048 characters"),
        ({"topic": "Deals", "url": 42}, "url not a string"),
        ({"topic": "Deals", "url": "https://example.com/", "tags": "vip"}, "tags a string"),
        ({"topic": "Deals", "url": "https://example.com/", "tags": [1]}, "tag not a string"),
        ({"topic": "Deals", "url": "https://example.com/", "tags": [""]}, "empty tag"),
    ],
)
def test_bad_fields_are_400_validation(api, brand, payload, why):
    assert_error(api.post(f"/brands/{brand}/webhooks", json=payload), 400, "Validation")
    assert total(api, brand) == 0, why


def test_url_of_exactly_2048_characters_is_accepted(api, brand):
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    response = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": url})
    assert response.status_code == 200
    assert response.json()["data"]["url"] == url


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"{'topic': 'Deals'}", b"\xff\xfe"])
def test_non_json_body_is_400_bad_request(api, brand, body):
    response = api.post(f"/brands/{brand}/webhooks", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, "BadRequest")
    assert total(api, brand) == 0


@pytest.mark.parametrize("body", [b"[]", b'["Deals"]', b'"Deals"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_400_validation(api, brand, body):
    assert_error(api.post(f"/brands/{brand}/webhooks", content=body), 400, "Validation")
    assert total(api, brand) == 0


def test_body_over_one_mib_is_413(api, brand):
    big = {"topic": "Deals", "url": "https://example.com/", "tags": ["x" * 100] * 11000}
    assert_error(api.post(f"/brands/{brand}/webhooks", json=big), 413, "PayloadTooLarge")
    assert total(api, brand) == 0


def test_body_over_one_mib_without_content_length_is_413(api, brand):
    def chunks():
        for _ in range(17):
            yield b" " * 65536  # whitespace is valid JSON padding: only the size is wrong

    response = api.post(f"/brands/{brand}/webhooks", content=chunks())
    assert_error(response, 413, "PayloadTooLarge")
    assert total(api, brand) == 0


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/brands/not-a-uuid/webhooks"),
        ("GET", "/brands/not-a-uuid/webhooks"),
        ("GET", "/brands/1234/webhooks/2b59461a-fd11-4509-a849-c883dc627363"),
        ("DELETE", "/brands/xyz/webhooks/bfaf726f-771a-4a17-bb2c-95c3e4fe0c34"),
    ],
)
def test_non_uuid_brand_is_400(api, method, path):
    assert_error(api.request(method, path, json=GOOD), 400, "Validation")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_non_uuid_webhook_id_is_400(api, brand, method):
    api.post(f"/brands/{brand}/webhooks", json=GOOD)
    assert_error(api.request(method, f"/brands/{brand}/webhooks/not-a-uuid"), 400, "Validation")
    assert total(api, brand) == 1


@pytest.mark.parametrize(
    "params", [{"topic": "deals"}, {"topic": ""}, {"start": "-1"}, {"start": "x"}, {"limit": "1.5"}, {"limit": "-3"}]
)
def test_bad_query_parameters_are_400(api, brand, params):
    assert_error(api.get(f"/brands/{brand}/webhooks", params=params), 400, "Validation")


def test_unknown_route_is_404(api):
    assert_error(api.get("/nowhere"), 404, "ResourceNotFound")
    assert_error(api.get("/brands"), 404, "ResourceNotFound")


def test_unknown_method_is_405_in_the_envelope(api, brand):
    response = api.patch(f"/brands/{brand}/webhooks", json=GOOD)
    assert_error(response, 405, "BadRequest")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert_error(api.put(f"/brands/{brand}/webhooks", json=GOOD), 405, "BadRequest")
    assert total(api, brand) == 0


def test_unknown_fields_are_ignored(api, brand):
    response = api.post(f"/brands/{brand}/webhooks", json={**GOOD, "colour": "blue"})
    assert response.status_code == 200
    assert "colour" not in response.json()["data"]


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({}, 400, "Validation"),
        ({"parent": "nope"}, 400, "Validation"),
        ({"parent": 7}, 400, "Validation"),
    ],
)
def test_bad_brand_updates(api, brand, body, status, code):
    assert_error(api.put(f"/brands/{brand}", json=body), status, code)


def test_brand_cycle_is_409(api):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert api.put(f"/brands/{b}", json={"parent": a}).status_code == 200
    assert_error(api.put(f"/brands/{a}", json={"parent": b}), 409, "Conflict")
    assert_error(api.put(f"/brands/{a}", json={"parent": a}), 409, "Conflict")
