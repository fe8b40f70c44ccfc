from __future__ import annotations

import io

import pytest
from django.urls import reverse

from reviewer import demo
from reviewer.models import Batch, Event, Item
from tests.factories import jsonl, tl_id, tl_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_batches():
    demo.load()
    return {batch.provider_batch_id: batch for batch in Batch.objects.all()}


def test_it_sends_an_anonymous_visitor_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_login_page_renders_and_logs_in(client, staff):
    assert b"Log in to reviewer" in client.get(reverse("login")).content
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert response.url == reverse("batch_list")


def test_the_batch_list_shows_an_empty_state(staff_client):
    response = staff_client.get("/")
    assert b"No batches yet" in response.content
    assert b"load_demo" in response.content


def test_the_batch_list_shows_every_demo_batch_with_counts(staff_client, demo_batches):
    response = staff_client.get("/")
    body = response.content.decode()
    for batch_id in demo_batches:
        assert batch_id in body
    assert "34 completed" in body and "2 failed" in body
    assert "Processing" in body


def test_every_demo_batch_page_opens(staff_client, demo_batches):
    for batch in demo_batches.values():
        response = staff_client.get(batch.get_absolute_url())
        assert response.status_code == 200
        assert batch.provider_batch_id in response.content.decode()


def test_the_batch_page_shows_items_events_and_the_viewer_link(staff_client, demo_batches):
    batch = demo_batches[demo.NOMADIC_ASK_BATCH]
    body = staff_client.get(batch.get_absolute_url()).content.decode()
    assert "jaywalking near intersections" in body
    assert 'href="https://app.nomadicml.com/use-cases/rapid-review/batch-view/rr-2025-09-19-jaywalk"' in body
    assert "sf-market-st-001.mp4" in body
    assert "decode error" in body
    assert 'src="/static/demo/' in body
    assert "Page 1 of 2" in body


def test_the_batch_page_shows_errors_and_codes_of_failed_tasks(staff_client, demo_batches):
    body = staff_client.get(demo_batches[demo.TL_TIMED_BATCH].get_absolute_url()).content.decode()
    assert "asset_unavailable" in body
    assert "video_duration_too_long" in body
    assert "No events detected in this task." in body


def test_a_missing_batch_is_a_404(staff_client):
    assert staff_client.get("/batches/999999/").status_code == 404


def test_the_batch_page_lists_skipped_lines_of_the_last_import(staff_client):
    from reviewer import importers

    run = importers.import_file(
        io.BytesIO(jsonl([tl_line(tl_id(1)), "{oops"])),
        name="z.jsonl",
        batch_id="68f4ddaf8aaa60d33df0e899",
        skip_invalid=True,
    )
    body = staff_client.get(run.batch.get_absolute_url()).content.decode()
    assert "1 malformed record skipped" in body
    assert "Line 2: invalid JSON" in body


def test_provider_text_is_escaped_and_unsafe_urls_are_not_links(staff_client):
    batch = Batch.objects.create(provider="nomadicml", provider_batch_id="x", viewer_url="javascript:alert(1)")
    item = Item.objects.create(
        batch=batch,
        provider_item_id="v1",
        status="completed",
        content_hash="h",
        video_name="<script>alert('n')</script>",
        thumbnail_url="data:image/png;base64,AA",
        import_source_uri="javascript:alert(2)",
    )
    Event.objects.create(
        item=item,
        batch=batch,
        key="k",
        label="<img src=x onerror=alert(3)>",
        content_hash="h",
        thumbnail_url="javascript:alert(4)",
    )
    body = staff_client.get(batch.get_absolute_url()).content.decode()
    assert "<script>alert('n')" not in body and "&lt;script&gt;" in body
    assert "<img src=x" not in body
    for payload in ('href="javascript:', 'src="javascript:', 'src="data:'):
        assert payload not in body


def _big_batch(n_items: int, events_per_item: int) -> Batch:
    batch = Batch.objects.create(provider="twelvelabs", provider_batch_id=f"big-{n_items}")
    Item.objects.bulk_create(
        Item(batch=batch, provider_item_id=f"t{n}", status="ready", position=n, content_hash="h")
        for n in range(n_items)
    )
    items = list(Item.objects.filter(batch=batch))
    Event.objects.bulk_create(
        (
            Event(
                item=item,
                batch=batch,
                key=f"k{k}",
                position=k,
                label=f"event {k}",
                category="incident",
                severity="high",
                start_seconds=k,
                content_hash="h",
            )
            for item in items
            for k in range(events_per_item)
        ),
        batch_size=2000,
    )
    batch.refresh_counts()
    return batch


def test_the_batch_page_query_count_does_not_grow_with_the_batch(staff_client, django_assert_max_num_queries):
    small, big = _big_batch(30, 2), _big_batch(1000, 20)
    assert big.event_total == 20_000

    def count(batch):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert staff_client.get(batch.get_absolute_url()).status_code == 200
        return len(ctx.captured_queries)

    assert count(small) == count(big)
    with django_assert_max_num_queries(12):
        staff_client.get(big.get_absolute_url())


def test_healthz_answers_without_login(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_highlight_marks_the_words_the_search_matches_and_escapes_everything_else():
    from reviewer.templatetags.reviewer_tags import highlight

    text = '<img src=x onerror="alert(1)"> Pédestrian behind a BUS near the bus stop, busy'
    marked = str(highlight(text, "bus pedestrian <img"))
    # Whole words, case and accents ignored; the last word typed also as a prefix ("busy").
    assert marked == (
        "&lt;<mark>img</mark> src=x onerror=&quot;alert(1)&quot;&gt; <mark>Pédestrian</mark> behind a "
        "<mark>BUS</mark> near the <mark>bus</mark> stop, busy"
    )
    assert str(highlight(text, "pedestrian bus")).endswith("<mark>bus</mark> stop, <mark>busy</mark>")
    assert "<mark>behind</mark> <mark>a</mark>" in str(highlight(text, '"behind a"'))
    assert (
        str(highlight(text, ""))
        == str(highlight(text, "   "))
        == text.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
    assert str(highlight(None, "x")) == ""


def test_the_event_table_leaves_out_the_columns_a_batch_never_fills(staff_client):
    import json

    from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

    bare = nomadic_event(aiAnalysis="")
    for name in ("confidence", "annotated_thumbnail_url"):
        bare.pop(name)
    run = import_bytes(json.dumps(nomadic_analysis("bare", [nomadic_result("v1", [bare])])).encode(), "bare.json")
    body = staff_client.get(run.batch.get_absolute_url()).content.decode()
    header = body[body.index('<table class="events"') : body.index("</thead>")]
    assert "Severity" in header and "Conf." not in header and "AI analysis" not in header
    assert 'class="col-thumb"' not in header
    assert 'colspan="6"' in body  # the video row spans select, time, event, severity, approval, decide
    full = import_bytes(
        json.dumps(nomadic_analysis("full", [nomadic_result("v1", [nomadic_event()])])).encode(), "f.json"
    )
    header = staff_client.get(full.batch.get_absolute_url()).content.decode()
    assert all(name in header for name in ("Conf.", "AI analysis", 'class="col-thumb"'))


def test_search_words_are_marked_in_the_results(staff_client):
    import json

    from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

    event = nomadic_event(label="Pedestrian behind a <b>bus</b>", aiAnalysis="A bus stops; the PEDESTRIAN waits.")
    run = import_bytes(json.dumps(nomadic_analysis("hl", [nomadic_result("v1", [event])])).encode(), "hl.json")
    body = staff_client.get(run.batch.get_absolute_url() + "?q=bus").content.decode()
    assert "Pedestrian behind a &lt;b&gt;<mark>bus</mark>&lt;/b&gt;" in body
    assert "A <mark>bus</mark> stops" in body
