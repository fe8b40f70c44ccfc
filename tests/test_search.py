"""Full-text search (reviewer/search.py): what matches, on the database the suite runs on (SQLite or PostgreSQL),
and the index kept in step by the sync, the import and the decisions."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from reviewer import fetch, review, search
from reviewer.models import Approval, Batch, Event
from tests import factories
from tests.fakes import nomadicml as nm

pytestmark = pytest.mark.django_db

LABELS = {
    "e-bus": "Pedestrian behind a bus",
    "e-bus-reversed": "Bus stopped behind the pedestrian crossing",
    "e-pieton": "Piéton traversant au feu rouge",
    "e-cyclist": "Cyclist weaving between lanes",
    "e-upper": "TRUCK BLOCKING THE LANE",
}


def _video(video_id: str, labels: list[str], *, summary: str = "", name: str = "") -> dict:
    events = [nm.ui_event("traffic", 10.0 * n, 10.0 * n + 4, label) for n, label in enumerate(labels)]
    video = nm.video(video_id, events, answer=summary or f"summary of {video_id}")
    if name:
        video["filename"] = name
    return video


@pytest.fixture
def synced(nomadic_source, nomadic_fake):
    nomadic_fake.add_batch("search-1", [_video("v1", list(LABELS.values())), _video("v2", [], summary="Rainy dusk")])
    nomadic_fake.add_batch("search-2", [_video("v9", ["Pedestrian behind a bus, again"], name="Harbour café.mp4")])
    for batch_id in ("search-1", "search-2"):
        assert fetch.fetch_batch(nomadic_source, batch_id).outcome == "succeeded"
    return Batch.objects.get(provider_batch_id="search-1"), Batch.objects.get(provider_batch_id="search-2")


def found(batch: Batch, q: str) -> set[str]:
    """The labels of the batch's events matching ``q``, through the batch page's filter."""
    events = Event.objects.filter(batch=batch).filter(search.event_q(search.Query.parse(q)))
    return set(events.values_list("label", flat=True))


def test_words_match_in_any_order_whatever_case_and_accents(synced):
    batch, _ = synced
    both = {LABELS["e-bus"], LABELS["e-bus-reversed"]}
    assert found(batch, "behind bus") == both
    assert found(batch, "bus behind") == both
    assert found(batch, "BEHIND Bus") == both
    assert found(batch, "pieton") == found(batch, "PIÉTON") == found(batch, "piéton") == {LABELS["e-pieton"]}
    assert found(batch, "truck lane") == {LABELS["e-upper"]}
    assert found(batch, "behind bicycle") == set()  # every word must match


def test_the_last_word_matches_as_a_prefix_and_the_others_as_whole_words(synced):
    batch, _ = synced
    assert found(batch, "pedes") == {LABELS["e-bus"], LABELS["e-bus-reversed"]}
    assert found(batch, "cycl weaving") == set()  # "cycl" is not the last word: a whole word
    assert found(batch, "weaving cycl") == {LABELS["e-cyclist"]}


def test_quoted_phrases_match_their_words_in_a_row(synced):
    batch, _ = synced
    assert found(batch, '"behind a bus"') == {LABELS["e-bus"]}
    assert found(batch, '"bus behind"') == set()
    assert found(batch, '"behind the pedestrian" bus') == {LABELS["e-bus-reversed"]}
    assert found(batch, '"feu rouge"') == {LABELS["e-pieton"]}
    assert found(batch, "cyclis") == {LABELS["e-cyclist"]}
    assert found(batch, '"cyclis"') == set()  # quoted: a whole word, not a prefix


@pytest.mark.parametrize(
    "hostile",
    ['"', '""', "*", "bus*", "NEAR(bus behind)", "bus OR truck", "-bus", "bus AND", ":*", "a & b | !c", "(", "'",
     "\\", "\x00", "ｂｕｓ", "𝐛𝐮𝐬", "%", "_", "bus" * 70, " ".join(["w"] * 100)],
)  # fmt: skip
def test_query_syntax_from_the_user_is_never_syntax_for_the_database(synced, staff_client, hostile):
    batch, _ = synced
    response = staff_client.get(f"/batches/{batch.pk}/", {"q": hostile})
    assert response.status_code in (200, 400)  # 400 only for what the form refuses (NUL, too long)
    assert staff_client.get("/search/", {"q": hostile}).status_code in (200, 400)
    if hostile in ("bus OR truck", "ｂｕｓ", "𝐛𝐮𝐬", "bus*"):  # operators are words; compatibility forms fold
        assert found(batch, hostile) == (
            set() if hostile == "bus OR truck" else {LABELS["e-bus"], LABELS["e-bus-reversed"]}
        )


def test_item_words_find_their_events_and_items_without_events(synced, staff_client):
    batch, other = synced
    assert found(other, "harbour cafe") == {"Pedestrian behind a bus, again"}
    assert found(batch, "v1 cyclist") == {LABELS["e-cyclist"]}  # the video's id and an event word
    body = staff_client.get(f"/batches/{batch.pk}/", {"q": "rainy"}).content.decode()
    assert "v2" in body and "Rainy" in body  # a video found by its summary, without events


def test_the_batch_page_highlights_the_matching_words(synced, staff_client):
    batch, _ = synced
    body = staff_client.get(f"/batches/{batch.pk}/", {"q": "pieton rou"}).content.decode()
    assert "<mark>Piéton</mark> traversant au feu <mark>rouge</mark>" in body
    assert "Cyclist" not in body


def test_the_index_follows_a_resync(synced, nomadic_source, nomadic_fake):
    batch, _ = synced
    labels = list(LABELS.values())
    labels[3] = "Scooter weaving between lanes"
    nomadic_fake.add_batch("search-1", [_video("v1", labels), _video("v2", [], summary="Sunny noon")])
    run = fetch.fetch_batch(nomadic_source, "search-1")
    assert (run.outcome, run.events_created, run.events_removed) == ("succeeded", 1, 1)  # a new label: a new event
    assert found(batch, "cyclist") == set()
    assert found(batch, "scooter") == {"Scooter weaving between lanes"}
    assert set(
        batch.items.filter(search.item_q(search.Query.parse("sunny"))).values_list("provider_item_id", flat=True)
    ) == {"v2"}
    assert not batch.items.filter(search.item_q(search.Query.parse("rainy"))).exists()

    # A renamed video: its events' words follow, though the events themselves did not change.
    nomadic_fake.add_batch("search-1", [_video("v1", labels, name="Canal street.mp4"), _video("v2", [])])
    run = fetch.fetch_batch(nomadic_source, "search-1")
    assert run.outcome == "succeeded" and run.events_updated == 0
    assert found(batch, "canal scooter") == {"Scooter weaving between lanes"}


def test_the_index_follows_an_import(db):
    line = factories.tl_line(
        factories.tl_id(1),
        segments={"hazard": [{"start_time": 0, "end_time": 5, "metadata": {"label": "Ladder on the road"}}]},
    )
    factories.import_bytes(
        factories.jsonl([line]), "tl.jsonl", batch_id="68f4ddaf8aaa60d33df0e7b2", mode="time_based_metadata"
    )
    batch = Batch.objects.get()
    assert found(batch, "ladder road") == {"Ladder on the road"}
    changed = json.loads(json.dumps(line).replace("Ladder on the road", "Mattress on the road"))
    factories.import_bytes(
        factories.jsonl([changed]), "tl.jsonl", batch_id="68f4ddaf8aaa60d33df0e7b2", mode="time_based_metadata"
    )
    assert found(batch, "ladder") == set()
    assert found(batch, "mattress") == {"Mattress on the road"}


def test_the_index_follows_decisions_notes_and_undo(synced, reviewer_user):
    batch, _ = synced
    event = Event.objects.get(batch=batch, label=LABELS["e-cyclist"])
    review.decide(event, Approval.REJECTED, reviewer_user, note="Déjà vu: same rider as yesterday")
    assert found(batch, "deja rider") == {LABELS["e-cyclist"]}
    review.decide_many(batch, Event.objects.filter(batch=batch, label__startswith="Bus"), Approval.INVALID,
                       reviewer_user, note="camera blocked")  # fmt: skip
    assert found(batch, "camera blocked") == {LABELS["e-bus-reversed"]}
    review.undo_last(batch, reviewer_user)
    assert found(batch, "camera blocked") == set()
    assert found(batch, "deja") == {LABELS["e-cyclist"]}


def test_the_index_forgets_deleted_events(synced):
    batch, other = synced
    other.delete()
    assert not Event.objects.filter(search.event_q(search.Query.parse("harbour"))).exists()
    assert found(batch, "behind bus")


def test_search_across_batches_groups_the_events_by_batch(synced, staff_client):
    batch, other = synced
    response = staff_client.get("/search/", {"q": "behind bus"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "3</strong> matching events in <strong>2</strong> batches" in body
    groups = re.findall(r'<section class="search-group" aria-labelledby="batch-(\d+)"', body)
    assert groups == [str(other.pk), str(batch.pk)]  # newest batch first
    assert "<mark>behind</mark> a <mark>bus</mark>, again" in body
    assert f'href="/batches/{batch.pk}/?q=behind+bus"' in body  # the batch page with the same search

    # The chips narrow it; an unknown value is a clear 400.
    pending = staff_client.get("/search/", {"q": "behind bus", "approval": "rejected"}).content.decode()
    assert "No event matches" in pending
    bad = staff_client.get("/search/", {"q": "bus", "severity": "apocalyptic"})
    assert bad.status_code == 400 and "severity: Select a valid choice" in bad.content.decode()


def test_search_across_batches_pages_the_batches_and_limits_events_per_batch(
    nomadic_source, nomadic_fake, staff_client, monkeypatch
):
    from reviewer import search_views

    monkeypatch.setattr(search_views, "BATCHES_PER_PAGE", 2)
    for n in range(3):
        nomadic_fake.add_batch(f"many-{n}", [_video(f"m{n}", [f"Ladder {k}" for k in range(7)])])
        fetch.fetch_batch(nomadic_source, f"many-{n}")
    first = staff_client.get("/search/", {"q": "ladder"}).content.decode()
    assert "21</strong> matching events in <strong>3</strong> batches" in first
    assert first.count('class="search-group"') == 2 and "Page 1 of 2" in first
    assert first.count("Detected <mark>Ladder</mark>") == 2 * search_views.EVENTS_PER_BATCH  # the analyses
    assert "All 7 in this batch" in first
    second = staff_client.get("/search/", {"q": "ladder", "page": 2}).content.decode()
    assert second.count('class="search-group"') == 1


def test_search_page_empty_state_and_login(staff_client):
    assert Client().get("/search/?q=bus").status_code == 302
    body = staff_client.get("/search/").content.decode()
    assert "Find events in every batch" in body


def test_the_query_count_does_not_grow_with_batches(
    nomadic_source, nomadic_fake, staff_client, django_assert_max_num_queries
):
    nomadic_fake.add_batch("q-1", [_video("a", ["Ladder"])])
    fetch.fetch_batch(nomadic_source, "q-1")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        staff_client.get("/search/", {"q": "ladder"})
    for n in range(2, 6):
        nomadic_fake.add_batch(f"q-{n}", [_video(f"a{n}", ["Ladder", "Ladder two"])])
        fetch.fetch_batch(nomadic_source, f"q-{n}")
    with CaptureQueriesContext(connection) as five:
        staff_client.get("/search/", {"q": "ladder"})
    assert len(five) == len(one)


def test_search_across_batches_follows_decisions_made_after_it_was_shown(synced, staff_client, staff):
    """Its counts are cached until the next decision or sync (reviewer/search_views.py _hits)."""
    batch, _ = synced
    query = {"q": "behind bus", "approval": "pending"}
    assert "3</strong> matching events" in staff_client.get("/search/", query).content.decode()
    review.decide(Event.objects.get(label=LABELS["e-bus"]), Approval.APPROVED, staff)
    body = staff_client.get("/search/", query).content.decode()
    assert "2</strong> matching events" in body and LABELS["e-bus"] not in body
