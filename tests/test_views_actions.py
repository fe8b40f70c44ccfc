"""Actions: who may do them, which methods they take, and how they answer bad input."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from reviewer.models import Batch, Item, Source, SyncRun
from tests.factories import jsonl, tl_id, tl_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def source() -> Source:
    source = Source(name="tl", provider="twelvelabs", base_url="http://127.0.0.1:9/v1.3")
    source.set_api_key("tlk_secret_1234")
    source.save()
    return source


@pytest.mark.parametrize("url", ["/import/", "/batches/add/"])
def test_a_viewer_cannot_open_action_pages(viewer_client, url):
    assert viewer_client.get(url).status_code == 403


def test_a_viewer_cannot_sync(viewer_client, source):
    batch = Batch.objects.create(source=source, provider="twelvelabs", provider_batch_id=tl_id(1))
    assert viewer_client.post(reverse("batch_sync", args=[batch.pk])).status_code == 403


def test_sync_refuses_get(staff_client, source):
    batch = Batch.objects.create(source=source, provider="twelvelabs", provider_batch_id=tl_id(1))
    assert staff_client.get(reverse("batch_sync", args=[batch.pk])).status_code == 405


def import_through_the_page(client, upload, capture) -> tuple[str, object]:
    """Post the file, let the background worker import it; returns (progress page URL, its answer after)."""
    with capture(execute=True):
        response = client.post("/import/", {"file": upload})
    assert response.status_code == 302 and response.url.startswith("/imports/")
    progress = client.get(response.url).content.decode()
    assert "Importing" in progress and 'hx-trigger="every 2s"' in progress  # queued: the page follows it
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    return response.url, client.get(response.url)


def test_the_import_page_imports_in_the_background_and_redirects_to_the_batch(
    staff_client, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile(
        "68f4ddaf8aaa60d33df0e810.jsonl", jsonl([tl_line(tl_id(1)), tl_line(tl_id(2), "failed")])
    )
    _, response = import_through_the_page(staff_client, upload, django_capture_on_commit_callbacks)
    batch = Batch.objects.get()
    assert response.status_code == 302 and response.url == batch.get_absolute_url()
    page = staff_client.get(response.url).content.decode()
    assert "Imported 68f4ddaf8aaa60d33df0e810.jsonl: 2 new" in page
    assert not default_storage.listdir("uploads")[1]  # the saved upload is gone once imported


def test_the_import_page_lists_malformed_lines_and_imports_nothing(staff_client, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("68f4ddaf8aaa60d33df0e811.jsonl", jsonl([tl_line(tl_id(1)), "{bad"]))
    _, response = import_through_the_page(staff_client, upload, django_capture_on_commit_callbacks)
    body = response.content.decode()
    assert "Nothing was imported from 68f4ddaf8aaa60d33df0e811.jsonl." in body and "Line 2: invalid JSON" in body
    assert 'hx-trigger="every 2s"' not in body  # finished: no more polling
    assert Item.objects.count() == 0 and SyncRun.objects.get().outcome == "failed"


def test_the_import_page_refuses_a_file_over_the_limit(staff_client, settings):
    settings.MAX_UPLOAD_SIZE = 1024
    upload = SimpleUploadedFile("big.jsonl", b" " * 2048)
    response = staff_client.post("/import/", {"file": upload})
    assert response.status_code == 400
    assert "The file is larger than the 1.0\xa0KB limit." in response.content.decode()
    assert Batch.objects.count() == 0


def test_the_import_page_needs_csrf(client, staff):
    client.handler.enforce_csrf_checks = True
    client.force_login(staff)
    response = client.post("/import/", {"file": SimpleUploadedFile("x.jsonl", io.BytesIO(b"{}").read())})
    assert response.status_code == 403


def test_add_batch_validates_a_twelvelabs_id(staff_client, source):
    response = staff_client.post("/batches/add/", {"source": source.pk, "batch_id": "not-hex"})
    assert response.status_code == 400
    assert "24 hexadecimal characters" in response.content.decode()
    assert Batch.objects.count() == 0


def test_add_batch_explains_when_no_source_exists(staff_client):
    body = staff_client.get("/batches/add/").content.decode()
    assert "No provider account connected yet" in body


def test_the_api_key_never_appears_on_pages(client, admin_user, source):
    staff_client = client
    staff_client.force_login(admin_user)
    Batch.objects.create(source=source, provider="twelvelabs", provider_batch_id=tl_id(1))
    for url in ["/", "/batches/add/", f"/admin/reviewer/source/{source.pk}/change/", "/admin/reviewer/source/"]:
        body = staff_client.get(url).content.decode()
        assert "tlk_secret_1234" not in body, url
    assert "••••1234" in staff_client.get("/admin/reviewer/source/").content.decode()


def test_a_viewer_sees_no_actions_and_a_403_explains_itself(viewer_client):
    listing = viewer_client.get("/").content.decode()
    assert 'href="/import/"' not in listing and 'href="/batches/add/"' not in listing
    response = viewer_client.get("/import/")
    body = response.content.decode()
    assert response.status_code == 403
    assert "You can't do that here" in body and "can view and export, but not change" in body
    assert 'class="topbar"' in body  # in the site's layout


def test_a_403_is_logged_as_one_line_without_a_traceback(viewer_client):
    import io
    import logging

    from reviewer.log_filters import ForbiddenWithoutTraceback

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ForbiddenWithoutTraceback())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        viewer_client.get("/import/")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().strip().splitlines()
    assert lines == ["Forbidden (Permission denied): /import/"]


def test_a_file_that_breaks_utf_8_past_the_sniffed_part_is_refused(staff_client, django_capture_on_commit_callbacks):
    metadata = '{"batch_metadata": {"batch_id": "b-late", "metadata": {"pad": "' + "x" * 70_000
    upload = SimpleUploadedFile("late.json", metadata.encode() + b'\xff"}}, "results": []}')
    _, response = import_through_the_page(staff_client, upload, django_capture_on_commit_callbacks)
    assert "not UTF-8" in response.content.decode() and SyncRun.objects.get().outcome == "failed"


def test_an_import_that_crashes_is_not_importing_for_ever(
    staff_client, django_capture_on_commit_callbacks, monkeypatch
):
    from reviewer import importers

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(importers, "import_file", crash)
    upload = SimpleUploadedFile("68f4ddaf8aaa60d33df0e812.jsonl", jsonl([tl_line(tl_id(1))]))
    _, response = import_through_the_page(staff_client, upload, django_capture_on_commit_callbacks)
    body = response.content.decode()
    assert "The import crashed" in body and 'hx-trigger="every 2s"' not in body
