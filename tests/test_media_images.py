"""Images that outlive the provider: stored by the worker after a sync, served from storage."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import call_command

from reviewer import fetch, media
from reviewer.models import Event, Item
from tests.conftest import give_tl_videos
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result
from tests.fakes import nomadicml as nm
from tests.fakes import twelvelabs as tl
from tests.fakes.server import Reply

pytestmark = pytest.mark.django_db


def run_worker() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)


@pytest.fixture
def synced(tl_source, nomadic_source, twelvelabs_fake, nomadic_fake, cdn, django_capture_on_commit_callbacks):
    """A TwelveLabs and a NomadicML batch whose thumbnails the CDN serves, synced, images queued."""
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    give_tl_videos(twelvelabs_fake, cdn, [line["task_id"] for line in tl.timed_lines()])
    videos = nm.ask_videos()
    for video in videos:
        for event in (video.get("analysis") or {}).get("events") or []:
            event.setdefault("data", {})["annotated_thumbnail_url"] = cdn.signed_url("thumb.jpg", 3600)
    nomadic_fake.add_batch(nm.ASK_BATCH, videos)
    with django_capture_on_commit_callbacks(execute=True):
        runs = [fetch.fetch_batch(tl_source, tl.TIMED_BATCH), fetch.fetch_batch(nomadic_source, nm.ASK_BATCH)]
    assert [run.outcome for run in runs] == ["succeeded", "succeeded"]
    return [run.batch for run in runs]


def test_the_worker_stores_every_image_and_pages_show_them_after_the_provider_forgets(synced, staff_client, cdn):
    tl_batch, nm_batch = synced
    run_worker()

    items = Item.objects.filter(batch=tl_batch, status="ready")
    assert items.exists() and not items.filter(thumbnail_file="").exists()
    events = Event.objects.filter(batch=nm_batch).exclude(thumbnail_url="")
    assert events.exists() and not events.filter(thumbnail_file="").exists()

    cdn.gone = True  # the provider deleted the batch: every media URL answers 404
    for batch, pages in ((tl_batch, ["", "review"]), (nm_batch, ["", "review"])):
        for page in pages:
            html = staff_client.get(f"/batches/{batch.pk}/{page}").content.decode()
            images = re.findall(r'<(?:img|video)[^>]+(?:src|poster)="([^"]+)"', html)
            stored = [src for src in images if src.startswith("/images/thumbs/")]
            assert stored, f"no stored image on /batches/{batch.pk}/{page}"
            assert not [src for src in images if src.startswith(cdn.base_url)]  # never the dead provider URL
            for src in stored:
                response = staff_client.get(src)
                assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
                assert b"".join(response.streaming_content).startswith(b"\xff\xd8\xff")


def test_a_second_run_keeps_what_is_stored(synced, cdn):
    run_worker()
    downloads = len([path for path, status in cdn.served if path == "/thumb.jpg"])
    counts = media.store_images(synced[1])
    assert counts.stored == 0 and counts.kept > 0
    assert len([path for path, status in cdn.served if path == "/thumb.jpg"]) == downloads


def test_a_failed_download_never_fails_the_sync_and_is_retried_later(synced, cdn):
    cdn.gone = True
    counts = media.store_images(synced[1])
    assert counts.failed > 0 and counts.stored == 0
    assert Event.objects.filter(batch=synced[1], thumbnail_attempts=1).count() == counts.failed
    cdn.gone = False
    assert media.store_images(synced[1]).stored == counts.failed


def test_the_task_queues_a_retry_when_some_images_failed(synced, cdn):
    from django_tasks_db.models import DBTaskResult

    cdn.gone = True
    run_worker()  # the queued store tasks run and fail their downloads
    retries = DBTaskResult.objects.filter(task_path__endswith="store_images_task", status="READY")
    assert retries.exists() and all(task.run_after is not None for task in retries)


def test_only_images_under_the_size_cap_are_stored(nomadic_fake, cdn, monkeypatch):
    def serve(body: bytes, content_type: str):
        nomadic_fake.inject("status", Reply(200, body, {"Content-Type": content_type}), times=None)
        return nomadic_fake.base_url + "/api/batch/x/status"

    with pytest.raises(media.ImageRefused, match="not a JPEG"):
        media.download_image(serve(b"<html>not an image</html>", "image/jpeg"))
    monkeypatch.setattr(media, "MAX_IMAGE_BYTES", 10)
    with pytest.raises(media.ImageRefused, match="cap"):
        media.download_image(cdn.signed_url("thumb.jpg"))


def test_addresses_inside_the_network_are_refused_unless_allowed(settings):
    settings.MEDIA_FETCH_PRIVATE_HOSTS = False
    for url in ("http://127.0.0.1/x.jpg", "http://10.0.0.8/x.jpg", "http://169.254.169.254/latest/meta-data"):
        with pytest.raises(media.ImageRefused, match="inside this network"):
            media.download_image(url)


def test_a_file_import_stores_its_event_thumbnails(cdn, django_capture_on_commit_callbacks):
    result = nomadic_result("v1", [nomadic_event(annotated_thumbnail_url=cdn.signed_url("thumb.jpg", 3600))])
    with django_capture_on_commit_callbacks(execute=True):
        run = import_bytes(json.dumps(nomadic_analysis("b-img", [result])).encode(), "f.json")
    run_worker()
    assert Event.objects.get(batch=run.batch).thumbnail_file.startswith(f"thumbs/{run.batch.pk}/event-")


def test_stored_image_paths_outside_the_thumbnails_are_refused(staff_client):
    for name in ("../settings.py", "thumbs/../../x.jpg", "other/x.jpg", "thumbs/x.exe"):
        assert staff_client.get(f"/images/{name}").status_code == 404


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9\\@8.8.8.8/x.png", "http://127.0.0.1:9\\\\@8.8.8.8/x.png", "http://8.8.8.8 @127.0.0.1/x.png"],
)
def test_an_address_read_two_ways_is_refused(settings, url):
    settings.MEDIA_FETCH_PRIVATE_HOSTS = False
    with pytest.raises(media.ImageRefused, match="ambiguous|inside this network"):
        media.download_image(url)


def test_a_stored_asset_thumbnail_is_not_looked_up_again(synced, twelvelabs_fake):
    run_worker()
    asked = twelvelabs_fake.calls_to("asset")
    counts = media.store_images(synced[0])
    assert counts.stored == 0 and counts.kept > 0
    assert twelvelabs_fake.calls_to("asset") == asked
