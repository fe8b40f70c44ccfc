"""Loading a batch with no items: committed chunks, hidden until done, undone on failure, reclaimed when its process died.

transaction=True: the chunks commit for real, and other threads (a reviewer of another
batch) use their own connections, as a web server's would.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.utils import timezone

from reviewer import review, sync
from reviewer.models import Batch, Event, Item, Loading, SyncOutcome, SyncState, SyncTrigger
from reviewer.records import Malformed, RecordError
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

pytestmark = pytest.mark.django_db(transaction=True)


def results(count: int, events: int = 10, prefix: str = "v") -> list[dict]:
    return [
        nomadic_result(f"{prefix}{n:04d}", [nomadic_event(label=f"e{k}", t_start=f"00:{k:02d}") for k in range(events)])
        for n in range(count)
    ]


def batch_file(batch_id: str, count: int, **options) -> bytes:
    import json

    return json.dumps(nomadic_analysis(batch_id, results(count, **options))).encode()


def records_of(data: bytes):
    """The batch record and the item records of a NomadicML batch JSON (as the importer reads them)."""
    import io

    from reviewer import importers

    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    batch_record, records = importers.read_batch_json(text)
    return batch_record, list(records)


@pytest.fixture
def reviewer_user(db):
    user = User.objects.create_user("rita", password="pw")
    user.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    return user


@pytest.fixture
def other_batch():
    run = import_bytes(batch_file("other", 3), "other.json")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    return run.batch


def paused_stream(records, at: int, while_paused):
    """Yield ``records``, calling ``while_paused()`` after the first ``at`` (the load is then mid-way)."""
    for index, record in enumerate(records):
        if index == at:
            while_paused()
        yield record


def in_thread(target, seconds: float):
    """Run ``target`` on its own connection; returns (finished within ``seconds``, its result or exception)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = target()
        except BaseException as exc:
            outcome["value"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), outcome.get("value")


def test_a_decision_on_another_batch_does_not_wait_for_a_load(other_batch, reviewer_user):
    batch_record, records = records_of(batch_file("big", 120))
    event = Event.objects.filter(batch=other_batch).first()
    observed = {}

    def decide_meanwhile():
        started = time.monotonic()
        finished, value = in_thread(lambda: review.decide(event, "approved", reviewer_user), 10)
        observed.update(finished=finished, value=value, seconds=time.monotonic() - started)
        loading = Batch.objects.get(provider_batch_id="big")
        observed.update(loading=loading.loading, shown=Client().get("/").status_code)

    run = sync.write_records(
        batch_record, paused_stream(records, 60, decide_meanwhile), trigger=SyncTrigger.IMPORT, file_name="big.json"
    )
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert observed["finished"] and not isinstance(observed["value"], BaseException), observed
    assert observed["seconds"] < 2, observed  # one chunk's write at most, not the whole load
    assert observed["loading"] == Loading.NEW
    assert Event.objects.get(pk=event.pk).approval == "approved"
    batch = Batch.objects.get(pk=run.batch.pk)
    assert batch.loading == Loading.NONE and batch.event_total == 1200 and batch.item_total == 120
    assert batch.sync_state == SyncState.IDLE


def test_a_loading_batch_shows_nothing_until_the_load_ends(reviewer_user):
    batch_record, records = records_of(batch_file("half", 150))
    seen = {}

    def look():
        batch = Batch.objects.get(provider_batch_id="half")
        event = Event.objects.filter(batch=batch).first()
        web = Client()
        web.force_login(reviewer_user)
        page = web.get(f"/batches/{batch.pk}/")
        seen.update(
            written=Item.objects.filter(batch=batch).count(),
            page=page.status_code,
            body=page.content.decode(),
            pane=web.get(f"/events/{event.pk}/pane").status_code,
            decide=web.post(f"/events/{event.pk}/decision", {"decision": "approved"}).status_code,
            export=b"".join(web.get(f"/batches/{batch.pk}/export.csv").streaming_content).count(b"\n"),
        )

    run = sync.write_records(batch_record, paused_stream(records, 120, look), trigger=SyncTrigger.IMPORT)
    assert run.outcome == SyncOutcome.SUCCEEDED
    assert seen["written"] >= 1 and seen["page"] == 200
    assert "Loading this batch:" in seen["body"] and "appear when the load ends" in seen["body"]
    assert 'class="event"' not in seen["body"]
    assert seen["pane"] == 404 and seen["decide"] == 404
    assert seen["export"] == 1  # the header only
    assert Event.objects.filter(approval="approved", decided_at__isnull=False).count() == 0


@pytest.mark.parametrize("existing", [False, True], ids=["new batch", "empty batch"])
def test_a_refused_load_leaves_nothing_of_what_it_wrote(existing):
    if existing:
        Batch.objects.create(provider="nomadicml", provider_batch_id="bad", prompt="kept")
    batch_record, records = records_of(batch_file("bad", 40))
    records.append(Malformed(99, "result 40: missing 'status'"))  # after several committed chunks

    run = sync.write_records(batch_record, records, trigger=SyncTrigger.IMPORT)
    assert run.outcome == SyncOutcome.FAILED and "1 malformed record" in run.error
    assert Item.objects.count() == 0 and Event.objects.count() == 0
    if existing:
        batch = Batch.objects.get()
        assert batch.loading == Loading.NONE and batch.prompt == "kept" and batch.sync_state == SyncState.FAILED
    else:
        assert not Batch.objects.exists() and run.batch is None


def test_a_stream_that_breaks_mid_load_undoes_it():
    batch_record, records = records_of(batch_file("broken", 40))

    def breaking():
        yield from records[:30]
        raise RecordError("the stream broke")

    run = sync.write_records(batch_record, breaking(), trigger=SyncTrigger.IMPORT)
    assert run.outcome == SyncOutcome.FAILED and "the stream broke" in run.error
    assert not Batch.objects.exists() and not Item.objects.exists()


def test_a_crash_mid_load_undoes_it_and_raises():
    batch_record, records = records_of(batch_file("crash", 40))

    def crashing():
        yield from records[:30]
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        sync.write_records(batch_record, crashing(), trigger=SyncTrigger.IMPORT)
    assert not Batch.objects.exists() and not Item.objects.exists() and not Event.objects.exists()


def test_a_second_run_waits_for_a_load_of_its_batch_then_finds_it_unchanged():
    batch_record, records = records_of(batch_file("twice", 150))
    second: dict = {}

    def start_second():
        again_record, again = records_of(batch_file("twice", 150))

        def run():
            try:
                second["run"] = sync.write_records(again_record, again, trigger=SyncTrigger.IMPORT)
            finally:
                connection.close()

        second["thread"] = threading.Thread(target=run, daemon=True)
        second["thread"].start()
        time.sleep(1)  # it is waiting now, while this load is mid-way
        second["waiting"] = "run" not in second

    run = sync.write_records(batch_record, paused_stream(records, 120, start_second), trigger=SyncTrigger.IMPORT)
    assert run.outcome == SyncOutcome.SUCCEEDED and second["waiting"]
    second["thread"].join(30)
    assert second["run"].outcome == SyncOutcome.SUCCEEDED, second["run"].error
    assert (second["run"].items_created, second["run"].items_unchanged) == (0, 150)
    assert Item.objects.count() == 150 and Event.objects.count() == 1500


def test_a_run_that_waited_too_long_for_a_load_is_refused_and_leaves_the_batch_alone(monkeypatch):
    monkeypatch.setattr(sync, "LOAD_WAIT_SECONDS", 0.2)
    loading = interrupted_load("busy", heartbeat_age=timedelta(seconds=0))
    batch_record, records = records_of(batch_file("busy", 5))
    run = sync.write_records(batch_record, records, trigger=SyncTrigger.IMPORT)
    assert run.outcome == SyncOutcome.FAILED and "still loading this batch; nothing was changed" in run.error
    after = Batch.objects.get(pk=loading.pk)
    assert (after.loading, after.sync_state, after.last_error) == (Loading.NEW, SyncState.RUNNING, "")
    assert after.items.count() == 12


def interrupted_load(batch_id: str, *, heartbeat_age: timedelta, loading=Loading.NEW) -> Batch:
    """What a load killed mid-way leaves: the batch marked loading, some items and events written."""
    batch_record, records = records_of(batch_file(batch_id, 30))
    batch, _ = sync._claim(None, batch_record)
    Batch.objects.filter(pk=batch.pk).update(loading=loading)
    writer = sync._ChunkWriter(batch, sync.SyncRun(trigger=SyncTrigger.IMPORT), batch_record, commit_chunks=True)
    for position, record in enumerate(records[:12]):
        writer.add(record, position)
    writer.flush()
    Batch.objects.filter(pk=batch.pk).update(load_heartbeat_at=timezone.now() - heartbeat_age)
    return Batch.objects.get(pk=batch.pk)


def test_a_load_whose_process_died_is_reclaimed_by_the_worker():
    dead = interrupted_load("dead", heartbeat_age=timedelta(minutes=5))
    empty = interrupted_load("empty", heartbeat_age=timedelta(minutes=5), loading=Loading.FIRST)
    alive = interrupted_load("alive", heartbeat_age=timedelta(seconds=1))
    assert Item.objects.filter(batch=dead).exists()

    assert sync.reclaim_stalled_loads() == 2
    assert not Batch.objects.filter(pk=dead.pk).exists()  # made by the load: gone with it
    empty.refresh_from_db()
    assert empty.loading == Loading.NONE and not empty.items.exists() and not empty.events.exists()
    assert empty.sync_state == SyncState.FAILED and "stopped without finishing" in empty.last_error
    assert not empty.is_syncing  # syncable again
    assert Batch.objects.get(pk=alive.pk).loading == Loading.NEW and alive.items.count() == 12


def test_the_next_run_takes_over_a_dead_load_and_writes_it_whole():
    dead = interrupted_load("again", heartbeat_age=timedelta(minutes=5))
    run = import_bytes(batch_file("again", 30), "again.json")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert run.batch.pk == dead.pk and run.items_created == 30
    assert Item.objects.filter(batch=dead).count() == 30 and Event.objects.filter(batch=dead).count() == 300
    assert Batch.objects.get(pk=dead.pk).loading == Loading.NONE


def test_a_reimport_where_nothing_changed_writes_nothing_and_keeps_counts():
    first = import_bytes(batch_file("same", 20), "same.json")
    before = Batch.objects.get(pk=first.batch.pk)
    again = import_bytes(batch_file("same", 20), "same.json")
    assert again.outcome == SyncOutcome.SUCCEEDED
    assert (again.items_unchanged, again.items_updated, again.events_unchanged) == (20, 0, 200)
    after = Batch.objects.get(pk=first.batch.pk)
    assert after.approval_counts == before.approval_counts and after.event_total == 200
    assert after.last_synced_at > before.last_synced_at


def test_a_reimport_updates_only_what_changed_and_keeps_decisions(reviewer_user):
    first = import_bytes(batch_file("change", 20), "change.json")
    decided = Event.objects.filter(batch=first.batch).order_by("pk").first()
    review.decide(decided, "rejected", reviewer_user)
    changed = results(20)
    changed[5]["events"][0]["label"] = "relabelled"
    changed[19]["events"].append(nomadic_event(label="new one", t_start="00:59"))
    import json

    run = import_bytes(json.dumps(nomadic_analysis("change", changed)).encode(), "change.json")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert (run.items_unchanged, run.items_updated) == (18, 2)
    assert Event.objects.filter(label="relabelled").count() == 1
    assert Event.objects.get(pk=decided.pk).approval == "rejected"
    assert Batch.objects.get(pk=first.batch.pk).event_total == 201


def test_a_sync_takes_over_a_dead_first_sync_although_it_renews_its_own_heartbeat(
    nomadic_fake, nomadic_source, monkeypatch
):
    from reviewer import fetch
    from tests.fakes.nomadicml import ui_event, video

    monkeypatch.setattr(sync, "LOAD_WAIT_SECONDS", 1.0)  # a regression fails in a second, not 15 minutes
    nomadic_fake.add_batch("dead-sync", [video(f"v{n}", [ui_event("near_miss", 1, 2, "x")]) for n in range(30)])
    batch_record, records = records_of(batch_file("dead-sync", 30))
    batch = Batch.objects.create(source=nomadic_source, provider="nomadicml", provider_batch_id="dead-sync")
    claimed, _ = sync._claim(nomadic_source, batch_record)
    writer = sync._ChunkWriter(claimed, sync.SyncRun(trigger=SyncTrigger.FETCH), batch_record, commit_chunks=True)
    for position, record in enumerate(records[:5]):
        writer.add(record, position)
    writer.flush()
    Batch.objects.filter(pk=batch.pk).update(load_heartbeat_at=timezone.now() - timedelta(minutes=5))

    run = fetch.fetch_batch(nomadic_source, "dead-sync")  # renews sync_heartbeat_at all along: not the load's
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert Item.objects.filter(batch=batch).count() == 30 and Batch.objects.get(pk=batch.pk).loading == Loading.NONE


def test_a_load_taken_over_by_another_run_stops_and_leaves_it_to_that_run():
    batch_record, records = records_of(batch_file("taken", 150))

    def take_over():
        Batch.objects.filter(provider_batch_id="taken").update(load_owner="someone-else")

    run = sync.write_records(batch_record, paused_stream(records, 120, take_over), trigger=SyncTrigger.IMPORT)
    assert run.outcome == SyncOutcome.FAILED and "took this batch over" in run.error
    batch = Batch.objects.get(provider_batch_id="taken")  # not undone by the run that lost it
    assert batch.loading == Loading.NEW and batch.load_owner == "someone-else" and batch.items.count() == 100


def test_reclaiming_skips_a_load_taken_over_since_it_was_read(monkeypatch):
    dead = interrupted_load("raced", heartbeat_age=timedelta(minutes=5))
    listed = list(Batch.objects.exclude(loading=Loading.NONE))
    Batch.objects.filter(pk=dead.pk).update(load_owner="new-run", load_heartbeat_at=timezone.now())
    monkeypatch.setattr(Batch.objects, "exclude", lambda **kwargs: listed)  # the list read before the take-over
    assert sync.reclaim_stalled_loads() == 0
    assert Batch.objects.get(pk=dead.pk).load_owner == "new-run" and dead.items.count() == 12
