"""Add batch, Sync now, the polled status panel and the recent-batches picker, against the provider fakes.

The background task runs inline here (django-tasks' ImmediateBackend), so a request
that enqueues a sync has synced by the time it answers.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reviewer.models import Batch, Event, SyncRun, SyncState
from tests.fakes import nomadicml as nm
from tests.fakes import twelvelabs as tl

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inline_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def reviewer_client(client, reviewer_user):
    client.force_login(reviewer_user)
    return client


def test_add_batch_fetches_it_and_opens_its_page(reviewer_client, tl_source, twelvelabs_fake):
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    response = reviewer_client.post(reverse("batch_add"), {"source": tl_source.pk, "batch_id": tl.TIMED_BATCH})
    batch = Batch.objects.get()
    assert response.status_code == 302 and response.url == batch.get_absolute_url()
    assert (batch.item_total, batch.sync_state, batch.status) == (7, SyncState.IDLE, "completed")
    page = reviewer_client.get(response.url).content.decode()
    assert f"Fetching {tl.TIMED_BATCH} from tl" in page and "near miss" in page


def test_adding_a_known_batch_again_syncs_it_and_keeps_one_copy(reviewer_client, tl_source, twelvelabs_fake):
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    for _ in range(2):
        reviewer_client.post(reverse("batch_add"), {"source": tl_source.pk, "batch_id": tl.TIMED_BATCH})
    assert Batch.objects.count() == 1
    assert list(SyncRun.objects.values_list("items_created", "items_unchanged").order_by("pk")) == [(7, 0), (0, 7)]


@pytest.mark.parametrize(
    ("batch_id", "message"),
    [
        ("68f4ddaf", "A TwelveLabs batch id is 24 hexadecimal characters"),
        ("68f4ddaf8aaa60d33df0e80g", "A TwelveLabs batch id is 24 hexadecimal characters"),
        ("", "This field is required."),
    ],
)
def test_add_batch_refuses_a_malformed_id_without_calling_the_provider(
    reviewer_client, tl_source, twelvelabs_fake, batch_id, message
):
    response = reviewer_client.post(reverse("batch_add"), {"source": tl_source.pk, "batch_id": batch_id})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Batch.objects.exists() and twelvelabs_fake.calls == []


def test_add_batch_refuses_a_nomadicml_id_with_a_slash(reviewer_client, nomadic_source):
    response = reviewer_client.post(reverse("batch_add"), {"source": nomadic_source.pk, "batch_id": "../status"})
    assert response.status_code == 400 and "only letters, digits" in response.content.decode()


def test_add_batch_with_an_unknown_id_shows_the_providers_answer(reviewer_client, tl_source, twelvelabs_fake):
    response = reviewer_client.post(reverse("batch_add"), {"source": tl_source.pk, "batch_id": tl_id_unknown()})
    page = reviewer_client.get(response.url).content.decode()
    assert "Last sync failed" in page and "TwelveLabs has no batch" in page
    assert Batch.objects.get().item_total == 0


def tl_id_unknown() -> str:
    return "0" * 24


def test_add_batch_page_says_how_to_connect_a_source_when_there_is_none(staff_client):
    page = staff_client.get(reverse("batch_add")).content.decode()
    assert "No provider account connected yet" in page and "add_source" in page


def test_sync_now_over_htmx_answers_the_status_panel(reviewer_client, nomadic_source, nomadic_fake):
    nomadic_fake.add_batch(nm.ASK_BATCH, nm.ask_videos())
    reviewer_client.post(reverse("batch_add"), {"source": nomadic_source.pk, "batch_id": nm.ASK_BATCH})
    batch = Batch.objects.get()
    response = reviewer_client.post(reverse("batch_sync", args=[batch.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="batch-status"') and "<html" not in body
    assert SyncRun.objects.filter(batch=batch).count() == 2


def test_sync_now_without_javascript_redirects_back(reviewer_client, nomadic_source, nomadic_fake):
    nomadic_fake.add_batch(nm.ASK_BATCH, nm.ask_videos())
    reviewer_client.post(reverse("batch_add"), {"source": nomadic_source.pk, "batch_id": nm.ASK_BATCH})
    batch = Batch.objects.get()
    response = reviewer_client.post(reverse("batch_sync", args=[batch.pk]))
    assert response.status_code == 302 and response.url == batch.get_absolute_url()


def test_sync_now_of_an_imported_batch_explains_instead_of_failing(reviewer_client):
    batch = Batch.objects.create(provider="twelvelabs", provider_batch_id="68f4ddaf8aaa60d33df0e899")
    response = reviewer_client.post(reverse("batch_sync", args=[batch.pk]), follow=True)
    assert "imported from a file: import the file again" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_sync_now_with_a_refused_key_keeps_the_data_and_says_why(reviewer_client, tl_source, twelvelabs_fake):
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    reviewer_client.post(reverse("batch_add"), {"source": tl_source.pk, "batch_id": tl.TIMED_BATCH})
    batch = Batch.objects.get()
    events_before = list(Event.objects.values_list("key", "label").order_by("key"))
    twelvelabs_fake.inject("batch", tl.error(401, "api_key_invalid", "The API key you provided is not valid."))
    response = reviewer_client.post(reverse("batch_sync", args=[batch.pk]), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "Last sync failed" in body and "API key you provided is not valid" in body
    assert list(Event.objects.values_list("key", "label").order_by("key")) == events_before


@pytest.fixture
def processing_batch(tl_source, twelvelabs_fake) -> Batch:
    """A batch the provider is still processing, synced once."""
    from reviewer import fetch

    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines(), status="processing")
    fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    return Batch.objects.get()


def test_the_status_panel_re_syncs_an_unfinished_batch_when_due(
    reviewer_client, processing_batch, twelvelabs_fake, settings
):
    settings.AUTO_SYNC_SECONDS = 30
    Batch.objects.filter(pk=processing_batch.pk).update(last_synced_at=timezone.now() - timedelta(seconds=31))
    SyncRun.objects.update(started_at=timezone.now() - timedelta(seconds=31))  # the last attempt
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines(), status="completed")
    seen = "1"  # the page was rendered at an older sync
    response = reviewer_client.get(reverse("batch_status", args=[processing_batch.pk]), {"seen": seen})
    processing_batch.refresh_from_db()
    assert processing_batch.status == "completed" and SyncRun.objects.count() == 2
    assert response["HX-Trigger"] == "batch-synced"  # the results reload themselves
    assert 'hx-trigger="every 3s"' not in response.content.decode()  # a finished batch stops polling


def test_the_status_panel_does_not_re_sync_before_the_interval(reviewer_client, processing_batch, settings):
    settings.AUTO_SYNC_SECONDS = 30
    seen = str(int(processing_batch.last_synced_at.timestamp()))
    response = reviewer_client.get(reverse("batch_status", args=[processing_batch.pk]), {"seen": seen})
    assert SyncRun.objects.count() == 1
    assert "HX-Trigger" not in response and 'hx-trigger="every 3s"' in response.content.decode()


def test_the_status_panel_of_a_viewer_polls_but_never_calls_the_provider(viewer_client, processing_batch, settings):
    settings.AUTO_SYNC_SECONDS = 0
    for _ in range(5):
        response = viewer_client.get(reverse("batch_status", args=[processing_batch.pk]))
        assert response.status_code == 200 and "Sync now" not in response.content.decode()
    assert SyncRun.objects.count() == 1  # a read-only user's page polls the cache only


def test_a_wrong_batch_id_is_not_asked_about_again_by_polls(reviewer_client, tl_source, twelvelabs_fake, settings):
    from reviewer import fetch

    settings.AUTO_SYNC_SECONDS = 0
    batch = Batch.objects.create(source=tl_source, provider="twelvelabs", provider_batch_id="0" * 24)
    fetch.fetch_batch(tl_source, batch.provider_batch_id)  # 404: a wrong id will not mend by itself
    for _ in range(20):
        reviewer_client.get(reverse("batch_status", args=[batch.pk]))
    assert SyncRun.objects.count() == 1 and twelvelabs_fake.calls_to("batch") == 1


def test_failures_in_a_row_double_the_wait_before_the_next_automatic_sync(tl_source, twelvelabs_fake, settings):
    from reviewer import fetch

    settings.AUTO_SYNC_SECONDS = 30
    twelvelabs_fake.inject("batch", tl.error(503, "service_unavailable", "Down."), times=None)
    batch = Batch.objects.create(source=tl_source, provider="twelvelabs", provider_batch_id=tl.TIMED_BATCH)
    fetch.fetch_batch(tl_source, batch.provider_batch_id)
    batch.refresh_from_db()
    started = SyncRun.objects.get().started_at
    assert not batch.sync_paused
    assert not fetch.auto_sync_due(batch, started + timedelta(seconds=59))  # one failure: 2 x 30 s
    assert fetch.auto_sync_due(batch, started + timedelta(seconds=61))
    SyncRun.objects.create(batch=batch, trigger="refresh", outcome="failed", started_at=started)
    assert not fetch.auto_sync_due(batch, started + timedelta(seconds=119))  # two in a row: 4 x 30 s
    assert fetch.auto_sync_due(batch, started + timedelta(seconds=121))
    for _ in range(10):
        SyncRun.objects.create(batch=batch, trigger="refresh", outcome="failed", started_at=started)
    assert fetch.auto_sync_due(batch, started + fetch.MAX_BACKOFF)  # never more than an hour apart
