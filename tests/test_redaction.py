"""No form of an API key in any stored, shown or logged message: whole, cut, upper-cased, URL-encoded."""

from __future__ import annotations

import io
import logging
from urllib.parse import quote

import pytest
from django.test import override_settings

from reviewer import fetch, redaction
from reviewer.models import Batch, SyncRun
from reviewer.tasks import sync_batch_task
from tests.conftest import TL_KEY
from tests.factories import tl_id
from tests.fakes import twelvelabs as tl
from tests.fakes.server import Reply

pytestmark = pytest.mark.django_db

# A key-like value with characters quote() changes, so its URL-encoded form differs.
ODD_KEY = "tlk_live/8f3e+9a2c=b71d04e6a5"


def assert_no_piece_of(key: str, text: str) -> None:
    lowered = text.lower()
    for i in range(len(key) - redaction.MIN_RUN + 1):
        piece = key[i : i + redaction.MIN_RUN].lower()
        assert piece not in lowered, f"{piece!r} of the key is in {text[:300]!r}"


def shown_to_a_viewer(viewer_client, batch: Batch) -> str:
    return "".join(
        viewer_client.get(url).content.decode()
        for url in ("/", batch.get_absolute_url(), f"/batches/{batch.pk}/status")
    )


def test_a_key_across_the_cut_of_an_error_body_is_redacted(tl_source, twelvelabs_fake, viewer_client):
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    twelvelabs_fake.inject(
        "batch", Reply(400, ("x" * 170 + TL_KEY + " trailing").encode(), {"Content-Type": "text/plain"})
    )
    run = fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    batch = Batch.objects.get()
    assert run.outcome == "failed" and "[redacted]" in run.error
    for text in (run.error, batch.last_error, shown_to_a_viewer(viewer_client, batch)):
        assert_no_piece_of(TL_KEY, text)


@pytest.mark.parametrize("echo", [TL_KEY.upper(), TL_KEY.lower(), f"…{TL_KEY[3:20]}…", quote(TL_KEY)])
def test_every_form_of_an_echoed_key_is_redacted(tl_source, twelvelabs_fake, echo):
    twelvelabs_fake.inject("batch", tl.error(401, "api_key_invalid", f"Key {echo} is not valid."))
    run = fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    assert run.outcome == "failed"
    assert_no_piece_of(TL_KEY, run.error)


def test_a_url_encoded_key_is_redacted():
    redaction.remember(ODD_KEY)
    text = f"GET /x?key={quote(ODD_KEY, safe='')} and {ODD_KEY.upper()}"
    cleaned = redaction.redact(text)
    assert cleaned == "GET /x?key=[redacted] and [redacted]"


def test_a_key_in_a_results_field_never_reaches_a_malformed_line(tl_source, twelvelabs_fake, viewer_client):
    lines = [*tl.timed_lines(), {"task_id": tl_id(0xBAD), "status": TL_KEY}]
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, lines)
    run = fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    assert run.outcome == "succeeded" and len(run.malformed_lines) == 1
    stored = SyncRun.objects.get(pk=run.pk)
    assert "[redacted]" in stored.malformed_lines[0]["error"]
    assert_no_piece_of(TL_KEY, stored.malformed_lines[0]["error"])
    assert_no_piece_of(TL_KEY, shown_to_a_viewer(viewer_client, run.batch))


def test_task_results_carry_no_key(tl_source, twelvelabs_fake):
    twelvelabs_fake.inject("batch", Reply(500, f"upstream said {TL_KEY}".encode(), {"Content-Type": "text/plain"}),
                           times=None)  # fmt: skip
    with override_settings(TASKS={"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}):
        result = sync_batch_task.enqueue(tl_source.pk, tl.TIMED_BATCH)
    assert result.return_value["outcome"] == "failed"
    assert_no_piece_of(TL_KEY, str(result.return_value))


def test_log_lines_are_redacted_by_the_configured_filter(tl_source):
    tl_source.get_api_key()  # this process has handled the key
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redaction.RedactingFilter())
    logger = logging.getLogger("reviewer.test-redaction")
    logger.addHandler(handler)
    try:
        logger.warning("provider said %s", TL_KEY[:-3].upper())
        try:
            raise ValueError(f"bad key {TL_KEY}")
        except ValueError:
            logger.exception("crash")
    finally:
        logger.removeHandler(handler)
    assert "[redacted]" in stream.getvalue()
    assert_no_piece_of(TL_KEY, stream.getvalue())


def test_ordinary_text_is_left_alone():
    redaction.remember(TL_KEY)
    text = "TwelveLabs had a server error (HTTP 503): try again later."
    assert redaction.redact(text) == text


def test_a_key_echoed_in_an_item_is_stored_nowhere(nomadic_source, nomadic_fake, viewer_client):
    from reviewer.models import Item
    from tests.conftest import NM_KEY
    from tests.fakes import nomadicml as nm

    videos = nm.ask_videos()
    videos[0]["analysis"] = None
    videos[0]["pointer"] = {"status": "failed", "last_error": f"upload failed: header X-API-Key={NM_KEY}"}
    nomadic_fake.add_batch(nm.ASK_BATCH, videos)
    run = fetch.fetch_batch(nomadic_source, nm.ASK_BATCH)
    item = Item.objects.get(provider_item_id=videos[0]["video_id"])
    assert "[redacted]" in item.error_message
    page = viewer_client.get(run.batch.get_absolute_url()).content.decode()
    export = b"".join(viewer_client.get(f"/batches/{run.batch.pk}/export.json").streaming_content).decode()
    for text in (item.error_message, str(item.raw), page, export):
        assert_no_piece_of(NM_KEY, text)
