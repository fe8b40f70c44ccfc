"""The pages run a fixed number of queries, whatever the number of batches, videos and events."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reviewer import fetch, review
from reviewer.models import Approval, Batch
from tests.fakes import nomadicml as nm

pytestmark = pytest.mark.django_db


def _videos(count: int, events: int) -> list[dict]:
    return [
        nm.video(f"v{n}", [nm.ui_event("near_miss", 5.0 * k, 5.0 * k + 2, f"market pedestrian {k}",
                                       approval="pending" if k % 2 else None) for k in range(events)])
        for n in range(count)
    ]  # fmt: skip


def _sync(nomadic_source, nomadic_fake, batch_id: str, videos: int, events: int) -> Batch:
    nomadic_fake.add_batch(batch_id, _videos(videos, events))
    assert fetch.fetch_batch(nomadic_source, batch_id).outcome == "succeeded"
    return Batch.objects.get(provider_batch_id=batch_id)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


PAGES = [
    "/batches/{pk}/", "/batches/{pk}/?page=2", "/batches/{pk}/?approval=pending&sort=confidence",
    "/batches/{pk}/?q=market+pedes&sort=severity", "/batches/{pk}/?severity=medium&sort=time",
    "/batches/{pk}/?sort=video&decided=provider", "/batches/{pk}/review", "/batches/{pk}/review?approval=pending",
    "/batches/{pk}/insights", "/", "/search/?q=market+pedestrian", "/search/?q=market&approval=pending",
]  # fmt: skip


def test_every_page_runs_as_many_queries_for_a_large_batch_as_for_a_small_one(
    nomadic_source, nomadic_fake, staff_client
):
    small = _sync(nomadic_source, nomadic_fake, "small", videos=30, events=2)
    small_counts = {url: _queries(staff_client, url.format(pk=small.pk)) for url in PAGES}
    large = _sync(nomadic_source, nomadic_fake, "large", videos=60, events=12)
    for number in range(3):  # more batches for the list and the search
        _sync(nomadic_source, nomadic_fake, f"more-{number}", videos=2, events=3)
    large_counts = {url: _queries(staff_client, url.format(pk=large.pk)) for url in PAGES}
    assert large_counts == small_counts
    assert max(large_counts.values()) <= 20, large_counts  # the insights page: 15 aggregates and its cache key


def test_the_insights_page_counts_again_after_a_decision_or_a_sync(nomadic_source, nomadic_fake, staff_client, staff):
    """Its numbers are cached until something they count changes (reviewer/counted.py)."""
    batch = _sync(nomadic_source, nomadic_fake, "cached", videos=2, events=4)
    url = f"/batches/{batch.pk}/insights"
    first = _queries(staff_client, url)
    again = _queries(staff_client, url)
    assert again < first  # the aggregates came from the cache
    event = batch.events.order_by("pk").first()
    review.decide(event, Approval.APPROVED, staff)
    assert _queries(staff_client, url) == first  # a decision: counted again
    assert staff_client.get(url).context["overall"].approved == 1
    assert _queries(staff_client, url) == again
    nomadic_fake.add_batch("cached", _videos(3, 4))
    assert fetch.fetch_batch(nomadic_source, "cached").outcome == "succeeded"
    assert _queries(staff_client, url) == first  # a sync: counted again


def test_the_batch_page_follows_a_decision_and_a_sync_made_after_it_was_shown(
    nomadic_source, nomadic_fake, staff_client, staff
):
    """Its counts and order are cached (reviewer/views.py _page_numbers) until the next decision or sync."""
    batch = _sync(nomadic_source, nomadic_fake, "fresh", videos=3, events=4)
    url = f"/batches/{batch.pk}/?approval=pending&sort=severity"
    before = staff_client.get(url).context
    pending = before["approval_chip_counts"]["pending"]
    assert pending == before["shown_event_count"] == 12
    event = batch.events.filter(approval=Approval.PENDING).order_by("pk").first()
    review.decide(event, Approval.REJECTED, staff)
    after = staff_client.get(url).context
    assert after["shown_event_count"] == pending - 1
    assert event.pk not in {e.pk for item in after["page"].object_list for e in item.shown_events}
    nomadic_fake.add_batch("fresh", _videos(5, 4))  # two more videos of four pending events
    assert fetch.fetch_batch(nomadic_source, "fresh").outcome == "succeeded"
    synced = staff_client.get(url).context
    assert synced["shown_event_count"] == pending - 1 + 8
    assert synced["page"].paginator.count == 5
