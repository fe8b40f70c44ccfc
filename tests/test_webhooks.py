"""Webhooks against a real receiver on 127.0.0.1: signed, retried, never lost, never in a decision's way."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import statistics
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from reviewer import webhooks
from reviewer.management.commands import worker
from reviewer.models import Decision, DeliveryState, Webhook, WebhookDelivery
from tests.conftest import bearer
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result
from tests.fakes.receiver import Receiver
from tests.fakes.server import FakeServer, Reply

SECRET = "whsec_test-secret-for-the-receiver"
ALL_EVENTS = ["decision.created", "batch.reviewed", "sync.succeeded", "sync.failed"]


@pytest.fixture
def receiver():
    with FakeServer(Receiver()) as server:
        server.app.url = server.url + "/hook"
        yield server.app


def make_hook(receiver, events=ALL_EVENTS) -> Webhook:
    hook = Webhook(url=receiver.url, events=list(events))
    hook.set_secret(SECRET)
    hook.save()
    return hook


def make_batch(videos: int = 2, per_video: int = 2):
    results = [nomadic_result(f"v{n}", [nomadic_event(label=f"e{n}-{k}", t_start=f"00:0{k}", t_end=f"00:0{k + 1}")
                                        for k in range(per_video)]) for n in range(videos)]  # fmt: skip
    run = import_bytes(json.dumps(nomadic_analysis("b-hook", results)).encode(), "b-hook.json")
    assert run.outcome == "succeeded", run.error
    return run.batch


def decide(client, token: str, event_pk: int, decision: str = "approved") -> float:
    started = time.perf_counter()
    response = client.post(f"/api/events/{event_pk}/decision", {"decision": decision}, content_type="application/json",
                           **bearer(token))  # fmt: skip
    assert response.status_code == 200, response.content
    return time.perf_counter() - started


def verified(request) -> dict:
    """The delivery's JSON, after checking its signature as a receiver must."""
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-reviewer-signature"], expected)
    assert request.headers["content-type"] == "application/json"
    return json.loads(request.body)


@pytest.mark.django_db
def test_a_decision_is_delivered_signed(client, api_tokens, receiver):
    batch = make_batch()
    make_hook(receiver)
    event = batch.events.first()
    decide(client, api_tokens["reviewer"], event.pk, "rejected")
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.PENDING and receiver.received == []  # queued, not sent by the request
    assert webhooks.deliver_due() == 1
    (request,) = receiver.received
    body = verified(request)
    assert request.headers["x-reviewer-event"] == "decision.created"
    assert request.headers["x-reviewer-delivery"] == str(delivery.pk)
    decision = Decision.objects.get(event=event)
    assert body["event"] == "decision.created"
    assert body["data"] == {
        "batch": {"id": batch.pk, "provider": "nomadicml", "provider_batch_id": "b-hook"},
        "group": str(decision.group), "user": "rita", "decision": "rejected", "reason": "", "note": "",
        "undo": False, "count": 1, "event_ids": [event.pk], "event_ids_truncated": False,
    }  # fmt: skip
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.response_code) == (DeliveryState.DELIVERED, 1, 204)
    # a wrong secret would not verify
    forged = "sha256=" + hmac.new(b"guess", request.body, hashlib.sha256).hexdigest()
    assert forged != request.headers["x-reviewer-signature"]


@pytest.mark.django_db
def test_after_a_500_it_retries_and_nothing_is_lost(client, api_tokens, receiver):
    batch = make_batch()
    make_hook(receiver, ["decision.created"])
    receiver.inject("hook", Reply(500, b"down"), times=3)
    events = list(batch.events.all()[:3])
    for event in events:
        decide(client, api_tokens["reviewer"], event.pk)
    now = timezone.now()
    assert webhooks.deliver_due(now) == 3
    assert set(WebhookDelivery.objects.values_list("state", "attempts", "response_code")) == {("pending", 1, 500)}
    assert "answered 500" in WebhookDelivery.objects.first().error
    assert webhooks.deliver_due(now + timedelta(seconds=5)) == 0  # not due before the first delay (10 s)
    assert webhooks.deliver_due(now + timedelta(seconds=11)) == 3
    assert set(WebhookDelivery.objects.values_list("state", "attempts")) == {("delivered", 2)}
    # every decision arrived; each retry was the same delivery, byte for byte, with the same signature
    delivered_groups = {verified(request)["data"]["group"] for request in receiver.received}
    assert delivered_groups == {str(group) for group in Decision.objects.values_list("group", flat=True)}
    by_id: dict[str, set] = {}
    for request in receiver.received:
        by_id.setdefault(request.headers["x-reviewer-delivery"], set()).add(request.body)
    assert len(by_id) == 3 and all(len(bodies) == 1 for bodies in by_id.values())
    assert len(receiver.received) == 6


@pytest.mark.django_db
def test_it_gives_up_after_the_last_retry_and_staff_can_send_it_again(client, staff, receiver):
    hook = make_hook(receiver)
    webhooks.send_test(hook)
    receiver.inject("hook", Reply(503), times=None)
    now = timezone.now()
    for attempt in range(len(webhooks.RETRY_DELAYS) + 1):
        assert webhooks.deliver_due(now) == 1, attempt
        now += timedelta(hours=2)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 7)
    assert webhooks.deliver_due(now + timedelta(days=1)) == 0  # given up
    client.force_login(staff)
    page = client.get(f"/webhooks/{hook.pk}/").content.decode()
    assert "Failed (gave up)" in page and "HTTP 503" in page
    receiver._faults.clear()
    client.post(f"/webhooks/{hook.pk}/retry", {"delivery": delivery.pk})
    assert webhooks.deliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED
    assert verified(receiver.received[-1])["event"] == "ping"


@pytest.mark.django_db
def test_an_unreachable_receiver_is_retried_with_a_clear_error(receiver):
    hook = make_hook(receiver)
    hook.url = "http://127.0.0.1:9/closed"  # the discard port: nothing listens
    hook.save()
    webhooks.send_test(hook)
    assert webhooks.deliver_due() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.PENDING and delivery.response_code is None
    assert delivery.error == "Could not reach the receiver: ConnectionError."


@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_never_slows_a_decision(client, api_tokens, receiver, monkeypatch):
    """The worker's delivery thread is stuck on the receiver; decisions answer as fast as without webhooks."""
    batch = make_batch(videos=4, per_video=3)
    events = list(batch.events.order_by("pk"))
    token = api_tokens["reviewer"]
    decide(client, token, events[0].pk, "invalid")  # warm up
    without = [decide(client, token, event.pk) for event in events[1:6]]
    make_hook(receiver, ["decision.created"])
    receiver.hang()
    monkeypatch.setattr(worker, "DELIVER_SECONDS", 0.05)
    stop = threading.Event()
    sender = threading.Thread(target=worker.deliver_loop, args=(stop,), daemon=True)
    sender.start()
    try:
        decide(client, token, events[6].pk)
        deadline = time.monotonic() + 10
        while receiver.hanging == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert receiver.hanging == 1  # the delivery thread now waits on the receiver
        during = [decide(client, token, event.pk) for event in events[7:12]]
        assert receiver.hanging >= 1, "the receiver must still be hanging while the decisions were made"
        print(f"decision latency without webhooks: median {statistics.median(without) * 1000:.1f} ms; "
              f"with a hanging receiver: median {statistics.median(during) * 1000:.1f} ms, "
              f"max {max(during) * 1000:.1f} ms")  # fmt: skip
        # Generous bounds (a shared machine is noisy): a decision waiting on the receiver would take ≥ 10 s.
        assert max(during) < max(1.0, 5 * max(without))
    finally:
        receiver.release()
        deadline = time.monotonic() + 30
        while WebhookDelivery.objects.exclude(state=DeliveryState.DELIVERED).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        sender.join(15)
    assert WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).count() == 6  # nothing lost
    delivered = sorted(verified(request)["data"]["event_ids"][0] for request in receiver.received)
    assert sorted(set(delivered)) == [event.pk for event in events[6:12]]


@pytest.mark.django_db
def test_batch_reviewed_once_the_last_pending_event_is_decided(client, api_tokens, receiver):
    batch = make_batch()
    make_hook(receiver, ["batch.reviewed"])
    events = list(batch.events.order_by("pk"))
    for event in events[:-1]:
        decide(client, api_tokens["reviewer"], event.pk)
    assert not WebhookDelivery.objects.exists()
    decide(client, api_tokens["reviewer"], events[-1].pk, "rejected")
    decide(client, api_tokens["reviewer"], events[-1].pk, "invalid")  # still nothing pending: no second one
    webhooks.deliver_due()
    (request,) = receiver.received
    body = verified(request)
    assert body["event"] == "batch.reviewed"
    assert body["data"]["approval_counts"] == {"approved": 3, "rejected": 1}
    assert body["data"]["reviewed_by_people"] == 4


@pytest.mark.django_db
def test_syncs_and_imports_announce_their_outcome(receiver):
    make_hook(receiver, ["sync.succeeded", "sync.failed"])
    good = make_batch()
    bad = import_bytes(b'{"batch_metadata": {"batch_id": "b-bad"}, "results": [', "b-bad.json")
    assert bad.outcome == "failed"
    webhooks.deliver_due()
    bodies = sorted((verified(request) for request in receiver.received), key=lambda body: body["event"])
    assert [body["event"] for body in bodies] == ["sync.failed", "sync.succeeded"]
    assert bodies[0]["data"]["error"] == bad.error and bodies[0]["data"]["batch"] is None
    assert bodies[1]["data"]["batch"]["id"] == good.pk and bodies[1]["data"]["events_created"] == 4


@pytest.mark.django_db
def test_only_subscribed_and_active_endpoints_get_deliveries(client, api_tokens, receiver):
    batch = make_batch()
    make_hook(receiver, ["sync.failed"])
    paused = make_hook(receiver, ["decision.created"])
    paused.active = False
    paused.save()
    decide(client, api_tokens["reviewer"], batch.events.first().pk)
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_the_webhook_pages_are_for_staff(client, viewer, reviewer_user, staff, receiver):
    for user in (viewer, reviewer_user):
        client.force_login(user)
        assert client.get("/webhooks/").status_code == 403
        assert client.post("/webhooks/", {"url": receiver.url, "events": ["sync.failed"]}).status_code == 403
    assert not Webhook.objects.exists()
    client.force_login(staff)
    refused = client.post("/webhooks/", {"url": "javascript:alert(1)", "events": ["sync.failed"]})
    assert refused.status_code == 400 and not Webhook.objects.exists()
    response = client.post("/webhooks/", {"url": receiver.url, "events": ["sync.failed", "decision.created"]})
    secret = re.search(r'id="webhook-secret">([^<]+)<', response.content.decode()).group(1)
    hook = Webhook.objects.get()
    assert secret not in hook.secret_encrypted and hook.get_secret() == secret
    assert response["Cache-Control"] == "no-store"
    assert secret not in client.get(f"/webhooks/{hook.pk}/").content.decode()  # shown once
    client.post(f"/webhooks/{hook.pk}/test")
    webhooks.deliver_due()
    request = receiver.received[-1]
    assert request.headers["x-reviewer-signature"] == webhooks.signature(secret, request.body)
    assert client.post(f"/webhooks/{hook.pk}/explode").status_code == 404
    asked = client.post(f"/webhooks/{hook.pk}/delete")
    assert "Delete the webhook" in asked.content.decode() and Webhook.objects.exists()  # asked first
    client.post(f"/webhooks/{hook.pk}/delete", {"confirm": "1"})
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_staff_see_the_webhooks_in_the_api(client, api_tokens, receiver):
    hook = make_hook(receiver)
    webhooks.send_test(hook)
    answer = client.get("/api/webhooks", **bearer(api_tokens["staff"])).json()
    assert answer == [{"id": hook.pk, "url": receiver.url, "events": ALL_EVENTS, "active": True, "pending": 1,
                       "failed": 0}]  # fmt: skip
    assert client.get("/api/webhooks", **bearer(api_tokens["reviewer"])).status_code == 403


@pytest.mark.django_db
def test_old_delivered_rows_leave_the_log_failed_ones_stay(receiver):
    hook = make_hook(receiver)
    old = timezone.now() - timedelta(days=webhooks.LOG_DAYS + 1)
    delivered = WebhookDelivery.objects.create(webhook=hook, event="ping", body="{}", state="delivered",
                                               delivered_at=old)  # fmt: skip
    failed = WebhookDelivery.objects.create(webhook=hook, event="ping", body="{}", state="failed", delivered_at=None)
    fresh = WebhookDelivery.objects.create(webhook=hook, event="ping", body="{}", state="delivered",
                                           delivered_at=timezone.now())  # fmt: skip
    assert webhooks.prune() == 1
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {failed.pk, fresh.pk}
    assert not WebhookDelivery.objects.filter(pk=delivered.pk).exists()


@pytest.mark.django_db
def test_a_paused_webhook_keeps_its_deliveries_until_resumed(client, staff, receiver):
    hook = make_hook(receiver)
    webhooks.send_test(hook)
    client.force_login(staff)
    client.post(f"/webhooks/{hook.pk}/pause")
    assert webhooks.deliver_due() == 0 and receiver.received == []
    client.post(f"/webhooks/{hook.pk}/resume")
    assert webhooks.deliver_due() == 1 and len(receiver.received) == 1
    assert client.post(f"/webhooks/{hook.pk}/retry", {"delivery": "abc"}).status_code == 404


@pytest.mark.django_db
def test_a_large_action_lists_the_first_ids_and_says_so(receiver, staff, monkeypatch):
    from reviewer import review

    monkeypatch.setattr(webhooks, "PAYLOAD_IDS", 3)
    batch = make_batch(videos=3, per_video=2)
    make_hook(receiver, ["decision.created", "batch.reviewed"])
    review.decide_many(batch, batch.events.all(), "approved", staff)
    webhooks.deliver_due()
    bodies = {verified(request)["event"]: verified(request)["data"] for request in receiver.received}
    assert bodies["decision.created"]["count"] == 6 and len(bodies["decision.created"]["event_ids"]) == 3
    assert bodies["decision.created"]["event_ids_truncated"] is True
    assert bodies["batch.reviewed"]["reviewed_by_people"] == 6  # every event decided by a person now
