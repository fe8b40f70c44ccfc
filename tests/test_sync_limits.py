"""Where databases differ or runs collide: one first sync at a time, over-long values refused alike,
NUL in notes, items a provider stops listing, huge and long records read fast."""

from __future__ import annotations

import io
import json
import threading

import pytest
from django.db import close_old_connections

from reviewer import fetch, importers
from reviewer.models import Batch, Decision, Event, Item, SyncOutcome
from tests.factories import import_bytes, jsonl, nomadic_analysis, nomadic_event, nomadic_result, tl_id, tl_line
from tests.fakes import twelvelabs as tl


def at_once(action, times: int = 3) -> list[str]:
    """Run ``action`` in ``times`` threads released together; returns their outcomes (or the crash)."""
    outcomes, start = [], threading.Barrier(times)

    def run():
        try:
            start.wait()
            outcomes.append(action())
        except Exception as exc:  # a crash is the failure these tests look for
            outcomes.append(repr(exc))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_three_first_syncs_of_one_new_batch_take_turns(tl_source, twelvelabs_fake):
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    assert at_once(lambda: fetch.fetch_batch(tl_source, tl.TIMED_BATCH).outcome) == ["succeeded"] * 3
    assert Batch.objects.count() == 1 and Item.objects.count() == len(tl.timed_lines())


@pytest.mark.django_db(transaction=True)
def test_three_imports_of_one_file_take_turns():
    data = json.dumps(nomadic_analysis("b-race", [nomadic_result("v1", [nomadic_event()])])).encode()
    assert at_once(lambda: importers.import_file(io.BytesIO(data), name="race.json").outcome) == ["succeeded"] * 3
    assert Batch.objects.count() == 1 and Event.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"analysis_id": "a" * 129}, "analysis id is longer than 128 characters"),
        ({"events": [nomadic_event(category="c" * 256)]}, "category is longer than 255 characters"),
    ],
)
def test_over_long_values_are_refused_alike_on_every_database(result, message):
    data = nomadic_analysis("b-long", [nomadic_result("v1", [nomadic_event()]) | result])
    run = import_bytes(json.dumps(data).encode(), "long.json")
    assert run.outcome == SyncOutcome.FAILED
    assert message in run.malformed_lines[0]["error"] and Item.objects.count() == 0


@pytest.mark.django_db
def test_an_over_long_batch_id_is_refused():
    from tests.test_round_trips import csv_columns

    row = ["q", "a.mp4", "pending", "00:01", "cat", "", "", "", "v1", "", "b" * 129, "", "completed", "", "", "", ""]
    run = import_bytes((",".join(csv_columns.HEADER) + "\n" + ",".join(row) + "\n").encode(), "x.csv")
    assert run.outcome == SyncOutcome.FAILED and "provider batch id is longer than 128" in run.error


@pytest.mark.django_db
def test_a_nul_in_a_decision_note_is_dropped(staff_client):
    run = import_bytes(
        json.dumps(nomadic_analysis("b-nul", [nomadic_result("v1", [nomadic_event()])])).encode(), "n.json"
    )
    event = run.batch.events.get()
    response = staff_client.post(f"/events/{event.pk}/decision", {"decision": "approved", "note": "ok\x00 fine"})
    assert response.status_code == 302
    data = {"decision": "rejected", "event": [event.pk], "note": "bulk\x00 note"}
    staff_client.post(f"/batches/{run.batch.pk}/decisions", data)
    assert sorted(Decision.objects.values_list("note", flat=True)) == ["bulk note", "ok fine"]


@pytest.mark.django_db
def test_items_a_provider_stops_listing_are_kept_marked_and_come_back(tl_source, twelvelabs_fake, staff_client, staff):
    lines = tl.timed_lines()
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, lines, status="processing")
    batch = fetch.fetch_batch(tl_source, tl.TIMED_BATCH).batch
    dropped = Item.objects.get(provider_item_id=lines[0]["task_id"])
    from reviewer import review

    review.decide(dropped.events.first(), "rejected", staff)
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, lines[1:], status="processing")
    fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    dropped.refresh_from_db()
    assert dropped.gone_upstream and dropped.events.filter(approval="rejected").exists()
    assert Item.objects.filter(gone_upstream=True).count() == 1
    assert "no longer listed upstream" in staff_client.get(batch.get_absolute_url()).content.decode()
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, lines, status="processing")
    fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    assert not Item.objects.filter(gone_upstream=True).exists()


@pytest.mark.django_db
def test_a_jsonl_file_whose_first_line_is_over_64_kb_is_recognized():
    first = tl_line(tl_id(1), text="x" * 100_000)
    run = import_bytes(jsonl([first, tl_line(tl_id(2))]), "68f4ddaf8aaa60d33df0e8b1.jsonl", mode="general")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert Item.objects.get(provider_item_id=tl_id(1)).text == "x" * 100_000


def test_one_huge_json_record_is_decoded_in_a_few_attempts():
    """Each attempt decodes the whole pending text: 64 KB more per attempt was quadratic (64 MB: 65 s)."""
    summary = "y" * (16 * 1024 * 1024)
    data = json.dumps(nomadic_analysis("b-huge", [nomadic_result("v1", [], summary=summary)])).encode()
    stream = importers._JsonObjectStream(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    attempts = []

    class CountingDecoder:
        def raw_decode(self, text, pos):
            attempts.append(len(text) - pos)
            return importers.wire.DECODER.raw_decode(text, pos)

    stream.decoder = CountingDecoder()
    members = list(stream.members(stream_key="results"))
    assert members[-1][2]["summary"] == summary
    assert len(attempts) < 30  # doubling: about log2(16 MB / 64 KB) = 8 attempts for the record (was 256)
