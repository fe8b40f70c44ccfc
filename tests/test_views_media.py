"""GET /events/<id>/media: the video at an event, from each provider, cached, refreshed, or a clear error."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from reviewer import fetch
from reviewer.models import Batch, Event, Item
from tests.conftest import NM_KEY, TL_KEY, give_tl_videos
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result
from tests.fakes import nomadicml as nm
from tests.fakes import twelvelabs as tl

pytestmark = pytest.mark.django_db


@pytest.fixture
def tl_event(tl_source, twelvelabs_fake, cdn) -> Event:
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    assert fetch.fetch_batch(tl_source, tl.TIMED_BATCH).outcome == "succeeded"
    event = Event.objects.filter(batch__provider="twelvelabs").order_by("id").first()
    give_tl_videos(twelvelabs_fake, cdn, [event.item.provider_item_id])
    return event


@pytest.fixture
def nm_event(nomadic_source, nomadic_fake, cdn) -> Event:
    nomadic_fake.add_batch(nm.ASK_BATCH, nm.ask_videos())
    assert fetch.fetch_batch(nomadic_source, nm.ASK_BATCH).outcome == "succeeded"
    event = Event.objects.filter(batch__provider="nomadicml").order_by("id").first()
    nomadic_fake.video_urls[event.item.provider_item_id] = cdn.signer("clip.mp4")
    return event


def media(client, event: Event, **query):
    return client.get(f"/events/{event.pk}/media", query)


def test_twelvelabs_plays_the_assets_hls_stream(staff_client, tl_event, twelvelabs_fake, cdn):
    response = media(staff_client, tl_event)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["kind"] == "hls" and body["url"].startswith(cdn.base_url + "/hls/index.m3u8?token=")
    assert (body["start"], body["end"]) == (tl_event.start_seconds, tl_event.end_seconds)
    assert body["expires_at"] and body["duration"] == 20.0
    assert response["Cache-Control"] == "private, no-store"
    assert twelvelabs_fake.calls_to("task") == 1 and twelvelabs_fake.calls_to("asset") == 1


def test_nomadicml_plays_a_signed_mp4_and_falls_back_to_the_public_path(staff_client, nm_event, nomadic_fake, cdn):
    nomadic_fake.public_signed_urls_only = True  # a newer server
    response = media(staff_client, nm_event)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["kind"] == "mp4" and body["url"].startswith(cdn.base_url + "/clip.mp4?token=")
    assert nomadic_fake.calls_to("signed_url") == 1 and nomadic_fake.calls_to("public_signed_url") == 1
    assert nomadic_fake.signed_expiries == [900]
    expires = timezone.datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=14) < expires - timezone.now() <= timedelta(minutes=15)


def test_a_cached_url_is_reused_without_asking_the_provider(staff_client, nm_event, nomadic_fake):
    first = media(staff_client, nm_event).json()
    second_event = nm_event.item.events.exclude(pk=nm_event.pk).first() or nm_event
    second = media(staff_client, second_event).json()
    assert second["url"] == first["url"]  # one video per item, cached on the item
    assert nomadic_fake.calls_to("signed_url") == 1


def test_an_expiring_url_is_refreshed(staff_client, nm_event, nomadic_fake):
    first = media(staff_client, nm_event).json()
    Item.objects.filter(pk=nm_event.item_id).update(video_expires_at=timezone.now() + timedelta(seconds=30))
    second = media(staff_client, nm_event).json()
    assert second["url"] != first["url"] and nomadic_fake.calls_to("signed_url") == 2


def test_the_browser_may_report_a_dead_url(staff_client, tl_event, twelvelabs_fake):
    first = media(staff_client, tl_event).json()
    second = media(staff_client, tl_event, refresh="1").json()
    assert second["url"] != first["url"] and twelvelabs_fake.calls_to("asset") == 2


def test_a_file_import_plays_its_web_source(staff_client):
    result = nomadic_result("v1", [nomadic_event()], import_source_uri="https://cdn.example.com/v1.mp4")
    import_bytes(json.dumps(nomadic_analysis("b-file", [result])).encode(), "f.json")
    body = media(staff_client, Event.objects.get()).json()
    assert (body["kind"], body["url"], body["expires_at"]) == ("mp4", "https://cdn.example.com/v1.mp4", None)


def test_a_file_import_without_a_web_source_has_no_video(staff_client):
    import_bytes(json.dumps(nomadic_analysis("b-s3", [nomadic_result("v1", [nomadic_event()])])).encode(), "f.json")
    response = media(staff_client, Event.objects.get())
    assert response.status_code == 404
    assert "No video is available" in response.json()["error"] and "s3://bucket/v1.mp4" in response.json()["error"]


def test_an_asset_not_ready_says_so(staff_client, tl_event, twelvelabs_fake, cdn):
    give_tl_videos(twelvelabs_fake, cdn, [tl_event.item.provider_item_id], hls_ready=False)
    response = media(staff_client, tl_event)
    assert response.status_code == 409
    assert "still preparing" in response.json()["error"]


def test_a_refused_key_is_a_clear_error_without_the_key(staff_client, nm_event, nomadic_fake):
    from tests.fakes.server import Reply

    nomadic_fake.inject("signed_url", Reply.json({"detail": f"Invalid API key {NM_KEY}"}, 401))
    response = media(staff_client, nm_event)
    assert response.status_code == 424
    assert "refused the API key" in response.json()["error"]
    assert NM_KEY not in response.content.decode() and TL_KEY not in response.content.decode()


def test_an_outage_asks_to_retry(staff_client, tl_event, twelvelabs_fake):
    twelvelabs_fake.inject("task", tl.error(503, "service_unavailable", "Down."), times=None)
    response = media(staff_client, tl_event)
    assert (response.status_code, response["Retry-After"]) == (503, "30")


def test_a_batch_gone_upstream_has_no_video(staff_client, tl_event):
    Batch.objects.filter(pk=tl_event.batch_id).update(gone_upstream=True)
    response = media(staff_client, tl_event)
    assert response.status_code == 410 and "no longer has this batch" in response.json()["error"]


def test_a_viewer_may_watch(viewer_client, nm_event):
    response = media(viewer_client, nm_event)
    assert response.status_code == 200 and response.json()["kind"] == "mp4"


def test_an_unknown_event_is_a_404(staff_client):
    assert media(staff_client, Event(pk=999_999)).status_code == 404


def test_the_pane_shows_the_player_and_the_videos_timeline(staff_client, nm_event):
    page = staff_client.get(f"/events/{nm_event.pk}/pane").content.decode()
    assert f'data-media="/events/{nm_event.pk}/media"' in page
    assert page.count('class="mark ') == nm_event.item.events.count()
    assert "is-current" in page
