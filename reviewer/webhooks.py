"""Webhooks: signed JSON deliveries of what happened, sent by the background worker.

``emit`` writes one WebhookDelivery row per subscribed endpoint inside the caller's
transaction: a decision and its deliveries commit together or not at all, and the
request never waits for a receiver. The worker (``manage.py worker``) calls
``deliver_due`` every second: it claims due rows, POSTs them, and on failure tries again
later (RETRY_DELAYS), then gives up and says so in the delivery log.

Each delivery carries ``X-Reviewer-Signature: sha256=<hex HMAC-SHA256 of the body with
the endpoint's secret>``; ``X-Reviewer-Delivery`` is its id (the same on every retry,
so a receiver can drop duplicates: a delivery may arrive more than once, never zero times).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.utils import timezone

from reviewer import redaction
from reviewer.crypto import KeyUnreadable
from reviewer.models import Batch, DeliveryState, SyncRun, Webhook, WebhookDelivery, WebhookEvent

logger = logging.getLogger(__name__)

PING = "ping"  # the "send a test event" button's event
# Seconds before attempt 2, 3, …: about 1.7 hours in all, then the delivery is marked failed.
RETRY_DELAYS = (10, 30, 120, 600, 1800, 3600)
TIMEOUT = (5, 10)  # seconds to connect, and between bytes of the answer
CLAIM_SECONDS = 60  # a claimed row is not picked again for this long (another worker, a crash)
BATCH_SIZE = 8  # deliveries sent at once, each in its own thread
USER_AGENT = "reviewer-webhooks/1"
PAYLOAD_IDS = 1000  # event ids listed in one decision.created (a bulk action can change 100,000)
LOG_DAYS = 30  # delivered rows are kept this long in the delivery log


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


def signature(secret: str, body: bytes) -> str:
    """The value of X-Reviewer-Signature for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def emit(event: str, data: dict) -> int:
    """Queue ``event`` for every active endpoint subscribed to it; returns how many deliveries were queued."""
    endpoints = [hook for hook in Webhook.objects.filter(active=True).only("id", "events") if event in hook.events]
    if not endpoints:
        return 0
    body = _body(event, data)
    WebhookDelivery.objects.bulk_create([WebhookDelivery(webhook=hook, event=event, body=body) for hook in endpoints])
    return len(endpoints)


def send_test(webhook: Webhook) -> WebhookDelivery:
    """Queue a ``ping`` delivery for one endpoint, whatever it subscribed to."""
    body = _body(PING, {"webhook": webhook.pk, "message": "A test delivery from reviewer."})
    return WebhookDelivery.objects.create(webhook=webhook, event=PING, body=body)


def _body(event: str, data: dict) -> str:
    created = timezone.now().isoformat().replace("+00:00", "Z")
    return json.dumps({"id": uuid.uuid4().hex, "event": event, "created_at": created, "data": data}, default=str)


# --- What each event says ---------------------------------------------------------------


def decision_created(batch: Batch, was_reviewed: bool, *, group, user, decision: str, event_ids: list[int],
                     reason="", note="", undo=False) -> None:  # fmt: skip
    """Queue ``decision.created`` for one review action, and ``batch.reviewed`` when it made every event decided by a person.

    ``batch`` has its counts after the action; ``was_reviewed``: ``batch.is_reviewed`` before it.
    At most PAYLOAD_IDS event ids are listed (``event_ids_truncated`` says when more changed):
    the rest are in the API's history of the action's ``group``.
    """
    emit(
        WebhookEvent.DECISION_CREATED,
        {
            "batch": _batch_ref(batch), "group": str(group), "user": user.get_username() if user else None,
            "decision": decision, "reason": reason, "note": note, "undo": undo,
            "count": len(event_ids), "event_ids": event_ids[:PAYLOAD_IDS],
            "event_ids_truncated": len(event_ids) > PAYLOAD_IDS,
        },
    )  # fmt: skip
    if batch.is_reviewed and not was_reviewed:
        emit(WebhookEvent.BATCH_REVIEWED, {"batch": _batch_ref(batch), "approval_counts": batch.approval_counts,
                                           "reviewed_by_people": batch.reviewed_total})  # fmt: skip


def sync_finished(run: SyncRun) -> None:
    """Queue ``sync.succeeded`` or ``sync.failed`` for a finished sync or import."""
    event = WebhookEvent.SYNC_SUCCEEDED if run.outcome == "succeeded" else WebhookEvent.SYNC_FAILED
    data = run.as_dict()
    data["malformed_lines"] = len(run.malformed_lines)  # the count; the lines are on the batch page
    data["batch"] = _batch_ref(run.batch) if run.batch_id else None
    emit(event, data)


def _batch_ref(batch: Batch) -> dict:
    return {"id": batch.pk, "provider": batch.provider, "provider_batch_id": batch.provider_batch_id}


# --- Sending ------------------------------------------------------------------------------


@dataclass
class _Result:
    delivery: WebhookDelivery
    code: int | None
    error: str


def deliver_due(now: datetime | None = None, limit: int = BATCH_SIZE) -> int:
    """Send up to ``limit`` deliveries that are due; returns how many were attempted."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.select_related("webhook")
        .filter(state=DeliveryState.PENDING, next_attempt_at__lte=now, webhook__active=True)  # paused: they wait
        .order_by("next_attempt_at", "id")[:limit]
    )
    claimed = [delivery for delivery in due if _claim(delivery, now)]
    if not claimed:
        return 0
    with ThreadPoolExecutor(max_workers=len(claimed)) as pool:
        results = list(pool.map(_send, claimed))
    for result in results:
        _record(result, timezone.now())
    return len(claimed)


def _claim(delivery: WebhookDelivery, now: datetime) -> bool:
    """Take the row for this worker (a conditional update: two workers never send one attempt twice)."""
    return bool(
        WebhookDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING,
                                       next_attempt_at=delivery.next_attempt_at)
        .update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    )  # fmt: skip


def _send(delivery: WebhookDelivery) -> _Result:
    """POST one delivery (no database work here: this runs in a thread)."""
    body = delivery.body.encode()
    try:
        secret = delivery.webhook.get_secret()
    except KeyUnreadable:
        return _Result(delivery, None, "The endpoint's secret cannot be decrypted (SECRET_KEY changed): edit it.")
    headers = {
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-Reviewer-Event": delivery.event, "X-Reviewer-Delivery": str(delivery.pk),
        "X-Reviewer-Signature": signature(secret, body),
    }  # fmt: skip
    try:
        # The answer's body is never read (stream=True): a receiver trickling one out cannot hold the worker.
        response = requests.post(delivery.webhook.url, data=body, headers=headers, timeout=TIMEOUT,
                                 allow_redirects=False, stream=True)  # fmt: skip
        response.close()
    except requests.Timeout:
        return _Result(delivery, None, "The receiver did not answer in time.")
    except requests.RequestException as exc:
        return _Result(delivery, None, f"Could not reach the receiver: {type(exc).__name__}.")
    if 200 <= response.status_code < 300:
        return _Result(delivery, response.status_code, "")
    return _Result(delivery, response.status_code, f"The receiver answered {response.status_code}.")


def _record(result: _Result, now: datetime) -> None:
    delivery = result.delivery
    attempts = delivery.attempts + 1
    update = {"attempts": attempts, "response_code": result.code, "error": redaction.redact(result.error)[:500]}
    if not result.error:
        update.update(state=DeliveryState.DELIVERED, delivered_at=now, next_attempt_at=now)
    elif attempts > len(RETRY_DELAYS):
        update.update(state=DeliveryState.FAILED, next_attempt_at=now)
        logger.warning("webhook delivery %s to endpoint %s failed for good: %s", delivery.pk, delivery.webhook_id,
                       result.error)  # fmt: skip
    else:
        update["next_attempt_at"] = now + timedelta(seconds=RETRY_DELAYS[attempts - 1])
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**update)


def prune(now: datetime | None = None) -> int:
    """Delete delivered rows older than LOG_DAYS (failed ones stay until someone looks); returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=LOG_DAYS)
    deleted, _ = WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED, delivered_at__lt=cutoff).delete()
    return deleted


def retry_now(delivery: WebhookDelivery) -> None:
    """Send a delivery again at once (a staff member's button), whatever its state."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state=DeliveryState.PENDING, next_attempt_at=timezone.now())
