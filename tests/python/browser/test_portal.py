"""The brand portal end to end, in Debian's Chromium against a real `brandhooks serve` and a real
loopback receiver: what a brand's person does with a portal link, and what they cannot do."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import uuid
from typing import Any

from conftest import ADMIN_TOKEN, Server

from .conftest import Problems, Screenshot, SwitchableReceiver, sync_api

expect = sync_api.expect

# Comes back from users (a tag, a receiver's answer): shown as text, never run.
HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'


def portal_link(server: Server, brand: str, **body: Any) -> dict:
    with server.client() as admin:
        answer = admin.post(f"/brands/{brand}/portal-links", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_a_brand_manages_its_webhook_through_a_portal_link(
        portal_server: Server, page: Any, receiver: SwitchableReceiver, brand: str,
        screenshot: Screenshot, problems: Problems) -> None:
    link = portal_link(portal_server, brand, expires_in=900)
    assert link["url"] == f"{portal_server.url}/portal#token={link['url'].split('#token=')[1]}"

    # Signed in by the link; the token leaves the address bar at once.
    page.goto(link["url"])
    expect(page.locator("#session-text")).to_contain_text(f"brand {brand}")
    expect(page.locator("#session-text")).to_contain_text("session expires at")
    assert "token" not in page.url and page.url == f"{portal_server.url}/portal"
    expect(page.locator("#webhooks-status")).to_contain_text("No webhooks yet")
    screenshot("1-signed-in-empty")

    # Create a webhook (its tag is hostile text).
    page.locator("summary", has_text="New webhook").click()
    create = page.locator("#create-form")
    create.get_by_label("Topic", exact=True).select_option("Deals")
    create.get_by_label("URL", exact=True).fill(receiver.url("/hooks"))
    create.get_by_label("Tags").fill(f"vip, {HOSTILE}")
    create.get_by_role("button", name="Create webhook").click()
    card = page.locator("li.webhook")
    expect(card).to_have_count(1)
    expect(card).to_contain_text(receiver.url("/hooks"))
    expect(card).to_contain_text(f"Tags: vip, {HOSTILE}")
    expect(card.locator(".state")).to_contain_text("Enabled")
    expect(card).to_contain_text("No successful delivery yet")
    with portal_server.client() as admin:
        webhooks = admin.get(f"/brands/{brand}/webhooks").json()["data"]
    assert [(w["topic"], w["url"], w["tags"]) for w in webhooks] == [("Deals", receiver.url("/hooks"), ["vip", HOSTILE])]
    webhook = webhooks[0]

    # A test event, delivered.
    card.get_by_role("button", name="Send test event").click()
    deliveries = page.locator("#delivery-list li.delivery")
    expect(deliveries.first.locator("h3")).to_contain_text("delivered")
    expect(deliveries.first.locator("table.attempts")).to_contain_text("HTTP 200")
    expect(card.locator(".last")).to_contain_text("Last success ")
    expect(card.locator(".failing")).to_have_text("")
    sent = json.loads(receiver.wait_for(1)[0].body)
    assert (sent["topic"], sent["event"], sent["payload"]["webhook"]) == ("Deals", "Test", webhook["id"])
    screenshot("2-delivered")

    # The receiver fails: the failed attempt with its status and (hostile) answer.
    receiver.status, receiver.body = 500, HOSTILE.encode()
    card.get_by_role("button", name="Send test event").click()
    expect(deliveries).to_have_count(2)
    newest = deliveries.first
    expect(newest.locator("h3")).to_contain_text("failed")
    expect(newest.locator("table.attempts")).to_contain_text("HTTP 500")
    expect(newest.locator("pre.excerpt")).to_have_text(HOSTILE)
    # The card shows the failure streak (GET .../state) and keeps the last success.
    expect(card.locator(".failing")).to_contain_text("Failing since ")
    expect(card.locator(".last")).to_contain_text("Last success ")
    page.get_by_label("Status", exact=True).select_option("failed")
    expect(deliveries).to_have_count(1)
    screenshot("3-failed")
    page.get_by_label("Status", exact=True).select_option("")
    expect(deliveries).to_have_count(2)

    # Fix the URL (edit: PATCH), and the receiver; recover: delivered at the new URL.
    card.get_by_role("button", name="Edit").click()
    dialog = page.locator("#edit-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("URL", exact=True).fill(receiver.url("/fixed"))
    dialog.get_by_label("Rate limit").fill("50")
    dialog.get_by_label("Headers sent with every attempt").fill("X-Team: brokers")
    screenshot("4-edit")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(card).to_contain_text(receiver.url("/fixed"))
    expect(card).to_contain_text("at most 50/s")
    receiver.status, receiver.body = 200, None
    page.get_by_role("button", name="Recover").click()
    expect(page.locator("#recover-result")).to_have_text("Queued 1 failed delivery again.")
    expect(deliveries.first.locator("h3")).to_contain_text("delivered")
    expect(deliveries.first.locator("table.attempts")).to_contain_text("HTTP 200")
    again = receiver.wait_for(3)[2]
    assert again.path == "/fixed" and again.headers["X-Team"] == "brokers"
    expect(card.locator(".last")).to_contain_text("Last success ")
    expect(card.locator(".failing")).to_have_text("")

    # Rotate the key: shown once, with a copy button, then gone from the page.
    card.get_by_role("button", name="Rotate key").click()
    key_dialog = page.locator("#key-dialog")
    expect(key_dialog).to_be_visible()
    key = page.locator("#key-value").input_value()
    assert re.fullmatch(r"[0-9a-f]{64}", key) and key != webhook["key"]
    with portal_server.client() as admin:
        assert admin.get(f"/brands/{brand}/webhooks/{webhook['id']}").json()["data"]["key"] == key
    expect(key_dialog.get_by_role("button", name="Copy")).to_be_visible()
    screenshot("5-new-key")
    key_dialog.get_by_role("button", name="Done").click()
    expect(key_dialog).to_be_hidden()
    expect(page.locator("#key-value")).to_have_value("")
    assert key not in page.content() and key not in page.locator("body").inner_text()

    # Delete, after a confirmation (cancelling first changes nothing).
    card.get_by_role("button", name="Delete").click()
    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_contain_text(receiver.url("/fixed"))
    confirm.get_by_role("button", name="Cancel").click()
    expect(card).to_have_count(1)
    card.get_by_role("button", name="Delete").click()
    screenshot("6-confirm-delete")
    confirm.get_by_role("button", name="Delete").click()
    expect(page.locator("li.webhook")).to_have_count(0)
    expect(page.locator("#webhooks-status")).to_contain_text("Webhook deleted")
    with portal_server.client() as admin:
        assert admin.get(f"/brands/{brand}/webhooks").json()["data"] == []

    # Nothing the users wrote ran as code; no CSP violation, no script error.
    assert page.evaluate("window.pwned") is None
    assert problems.messages == []

    # Sign out: the token leaves the tab.
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_an_expired_link_is_refused_clearly(portal_server: Server, page: Any, brand: str,
                                            screenshot: Screenshot, problems: Problems) -> None:
    link = portal_link(portal_server, brand, expires_in=60)
    # Its hour has come: the token expires at its creation (the server reads it from the store).
    with contextlib.closing(sqlite3.connect(portal_server.db, timeout=10)) as db, db:
        db.execute("UPDATE api_tokens SET expires_at = created_at WHERE id = ?", (link["token_id"],))
    page.goto(link["url"])
    expect(page.locator("#notice")).to_contain_text("This link or token cannot sign in: token expired (401 UnauthorizedAccess)")
    expect(page.locator("#signin")).to_be_visible()
    assert "token" not in page.url
    assert page.evaluate("sessionStorage.length") == 0
    screenshot("7-expired-link")
    assert problems.messages == []


def test_another_brands_token_cannot_see_this_brand(portal_server: Server, page: Any, brand: str,
                                                    receiver: SwitchableReceiver, screenshot: Screenshot,
                                                    problems: Problems) -> None:
    other, child = portal_link(portal_server, str(uuid.uuid4())), str(uuid.uuid4())
    with portal_server.client() as admin:
        assert admin.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url("/secret")}).status_code == 200
        assert admin.put(f"/brands/{child}", json={"parent": other["brand"]}).status_code == 200
        other_token = other["url"].split("#token=")[1]

    # Paste the other brand's token: it sees its own brand, and the brand below it in the picker.
    page.goto(f"{portal_server.url}/portal")
    page.get_by_label("API token").fill(other_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#session-text")).to_contain_text(f"brand {other['brand']}")
    expect(page.get_by_label("Brands this token reaches")).to_contain_text(child)

    # Asking for this brand: 403, said clearly, and nothing of it shown.
    page.get_by_label("Brand id").fill(brand)
    page.get_by_role("button", name="Open").click()
    expect(page.locator("#brand-error")).to_contain_text(f"This token cannot see brand {brand}")
    expect(page.locator("#brand-error")).to_contain_text("403 AccessForbidden")
    expect(page.locator("#webhooks")).to_be_hidden()
    assert receiver.url("/secret") not in page.content()
    screenshot("8-forbidden")
    assert problems.messages == []


def test_the_admin_token_picks_a_brand_with_the_keyboard(portal_server: Server, page: Any, brand: str,
                                                         screenshot: Screenshot, problems: Problems) -> None:
    page.goto(f"{portal_server.url}/portal")
    expect(page.get_by_label("API token")).to_be_focused()
    screenshot("0-sign-in")
    # The focus is visible: a 3 px ring on whatever has it.
    assert page.evaluate("getComputedStyle(document.activeElement).outlineWidth") == "3px"
    page.keyboard.type(ADMIN_TOKEN)
    page.keyboard.press("Enter")
    expect(page.locator("#session-text")).to_contain_text("admin")
    expect(page.get_by_label("Brand id")).to_be_focused()
    page.keyboard.type(brand)
    page.keyboard.press("Enter")
    expect(page.locator("#webhooks-status")).to_contain_text("No webhooks yet")
    assert problems.messages == []
