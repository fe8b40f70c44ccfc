"""The API token and webhook pages in a real browser, with the API and a webhook receiver really called."""

from __future__ import annotations

import pytest
import requests

from reviewer import demo, webhooks
from reviewer.models import Batch, Decision, ReasonCode
from tests.conftest import log_in
from tests.fakes.receiver import Receiver
from tests.fakes.server import FakeServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_makes_a_token_uses_it_and_revokes_it(page, live_server, reviewer_user):
    demo.load()
    ReasonCode.objects.get_or_create(label="False positive")  # an earlier transactional test may have flushed it
    batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
    event = batch.events.filter(approval="pending").order_by("pk").first()
    log_in(page, live_server, "rita", "pw-rita")
    page.click("nav >> text=API")
    page.fill("input[name=name]", "labelling script")
    page.click("text=Create token")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("rvw_")
    assert page.locator("table.tokens >> text=labelling script").is_visible()

    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    answer = api.post(f"{live_server.url}/api/events/{event.pk}/decision", json={"decision": "rejected",
                      "reason": "False positive", "note": "by the script"}, timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert Decision.objects.get(event=event).user == reviewer_user

    page.goto(live_server.url + batch.get_absolute_url() + "?decided=human")
    row = page.locator(f"#event-{event.pk}")
    assert row.get_attribute("data-approval") == "rejected"

    page.goto(live_server.url + "/account/tokens/")
    assert page.locator("#new-token").count() == 0  # shown once
    assert page.locator("table.tokens td >> text=never").count() == 0  # its last use is shown
    page.click("button[aria-label='Revoke labelling script']")
    page.locator(".msg-success").filter(has_text="Revoked").wait_for()
    assert api.get(f"{live_server.url}/api/batches", timeout=10).status_code == 401


def test_staff_add_a_webhook_and_send_it_a_test_event(page, live_server, staff):
    with FakeServer(Receiver()) as server:
        log_in(page, live_server, "alice", "pw-alice")
        page.click("nav >> text=API")
        page.click("main >> text=Webhooks")
        page.fill("input[name=url]", server.url + "/hook")
        page.check("input[value='sync.failed']")
        page.click("text=Add webhook")
        secret = page.locator("#webhook-secret").inner_text().strip()
        page.click("text=Done: go to the webhook")
        page.click("text=Send a test event")
        page.locator(".msg-success").filter(has_text="test event is queued").wait_for()
        assert page.locator("table.deliveries .badge").inner_text() == "Pending"
        webhooks.deliver_due()  # what the worker does every second
        page.reload()
        assert page.locator("table.deliveries .badge").inner_text() == "Delivered"
        assert "HTTP 204" in page.locator("table.deliveries").inner_text()
        (request,) = server.app.received
        assert request.headers["x-reviewer-signature"] == webhooks.signature(secret, request.body)
