"""reviewer/fetch.py against both provider fakes: what lands in the cache, and every fault."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from reviewer import fetch, review
from reviewer.models import Batch, Decision, Event, Item, Source, SyncOutcome, SyncRun, SyncState, SyncTrigger
from reviewer.providers import http
from reviewer.providers.twelvelabs import TwelveLabsAdapter
from tests.conftest import NM_KEY, TL_KEY
from tests.factories import tl_id, tl_line
from tests.fakes import nomadicml as nm
from tests.fakes import twelvelabs as tl
from tests.fakes.server import FakeApp, Reply, cut_after, delayed, stall_after

_VOLATILE_BATCH_FIELDS = {
    "sync_state",
    "last_error",
    "last_synced_at",
    "gone_upstream",
    "sync_paused",
    "sync_heartbeat_at",
}


@dataclass
class Upstream:
    """A provider fake serving one batch, and the source pointing at it."""

    fake: FakeApp
    source: Source
    batch_id: str

    def sync(self, batch_id: str | None = None) -> SyncRun:
        return fetch.fetch_batch(self.source, batch_id or self.batch_id, SyncTrigger.REFRESH)


@pytest.fixture
def twelvelabs(twelvelabs_fake, tl_source) -> Upstream:
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines(), status="processing")
    return Upstream(twelvelabs_fake, tl_source, tl.TIMED_BATCH)


@pytest.fixture
def nomadicml(nomadic_fake, nomadic_source) -> Upstream:
    nomadic_fake.add_batch(nm.ASK_BATCH, nm.ask_videos(), status="processing")
    return Upstream(nomadic_fake, nomadic_source, nm.ASK_BATCH)


def snapshot(source: Source) -> dict:
    """Everything a sync may write for ``source``, but the sync bookkeeping of the batch."""
    fields = [f.attname for f in Batch._meta.concrete_fields if f.name not in _VOLATILE_BATCH_FIELDS]
    return {
        "batches": list(Batch.objects.filter(source=source).order_by("id").values(*fields)),
        "items": list(Item.objects.filter(batch__source=source).order_by("id").values()),
        "events": list(Event.objects.filter(batch__source=source).order_by("id").values()),
        "decisions": list(Decision.objects.filter(event__batch__source=source).order_by("id").values()),
    }


def decide(event: Event, user, approval: str) -> None:
    """What a reviewer's click does (the review module): approval, who and when, an audit row."""
    review.decide(event, approval, user)


def change_upstream(up: Upstream) -> None:
    """Make the provider's batch differ from the cache, so a sync that wrote anything would show."""
    if isinstance(up.fake, tl.TwelveLabsFake):
        up.fake.results[up.batch_id][5] = tl_line(tl_id(6), text="finished since")
        up.fake.results[up.batch_id].append(tl_line(tl_id(8), "queued"))
        up.fake.batches[up.batch_id]["status"] = "completed"
    else:
        up.fake.videos[up.batch_id].append(nm.video("vid5", [nm.ui_event("jaywalking", 3, 4, "late")]))
        up.fake.batches[up.batch_id]["status"] = "completed"


# --- What lands in the cache -----------------------------------------------------------


def test_it_caches_a_twelvelabs_time_based_batch_as_served(twelvelabs):
    run = twelvelabs.sync()
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    batch = run.batch
    assert (batch.source, batch.provider, batch.mode, batch.provider_status, batch.status) == (
        twelvelabs.source, "twelvelabs", "time_based_metadata", "processing", "processing"
    )  # fmt: skip
    assert batch.item_counts == {"ready": 3, "failed": 1, "canceled": 1, "processing": 1, "queued": 1}
    assert list(batch.items.values_list("provider_item_id", "custom_id", "status")) == [
        (tl_id(1), "cam-1", "ready"), (tl_id(2), "cam-2", "ready"), (tl_id(3), "cam-3", "ready"),
        (tl_id(4), "", "failed"), (tl_id(5), "", "canceled"), (tl_id(6), "cam-6", "processing"),
        (tl_id(7), "cam-7", "queued"),
    ]  # fmt: skip
    events = Event.objects.filter(batch=batch).order_by("item__position", "position")
    assert list(events.values_list("category", "label", "start_seconds", "end_seconds", "t_start", "t_end")) == [
        ("incident", "near miss", 12.5, 18.0, "00:12", "00:18"),
        ("incident", "hard brake", 3600.25, 3604.5, "01:00:00", "01:00:04"),
        ("scene", "highway", 0.0, 30.0, "00:00", "00:30"),
        ("incident", "tailgating", 12.5, 63.0, "00:12", "01:03"),
    ]
    assert (run.items_created, run.events_created, run.malformed_lines) == (7, 4, [])
    assert (batch.sync_state, batch.last_error, batch.gone_upstream) == (SyncState.IDLE, "", False)


def test_it_caches_a_twelvelabs_general_batch_as_served(twelvelabs):
    twelvelabs.fake.add_batch(tl.GENERAL_BATCH, tl.general_lines(), mode="general", status="completed")
    run = twelvelabs.sync(tl.GENERAL_BATCH)
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    items = run.batch.items.all()
    assert [(i.status, i.finish_reason, i.error_code) for i in items] == [
        ("ready", "stop", ""), ("ready", "length", ""), ("failed", "", "asset_unavailable"),
        ("processing", "", ""), ("queued", "", ""), ("canceled", "", ""),
    ]  # fmt: skip
    assert items[0].text == "This video covers the keynote launch."
    assert (run.batch.mode, run.batch.status, run.batch.event_total) == ("general", "completed", 0)


def test_it_caches_a_nomadicml_ask_batch_as_served(nomadicml):
    run = nomadicml.sync()
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    batch = run.batch
    assert (batch.mode, batch.prompt, batch.category, batch.status) == (
        "ask", "jaywalking near intersections", "driving", "processing"
    )  # fmt: skip
    assert batch.viewer_url == f"https://app.nomadicml.com/use-cases/rapid-review/batch-view/{nm.ASK_BATCH}"
    assert list(batch.items.values_list("provider_item_id", "status", "video_name", "error_message")) == [
        ("vid1", "completed", "vid1.mp4", ""), ("vid2", "completed", "vid2", ""),
        ("vid3", "failed", "vid3", "decode error"), ("vid4", "failed", "vid4", "Analysis not found"),
    ]  # fmt: skip
    events = list(batch.events.order_by("position"))
    assert [(e.category, e.label, e.start_seconds, e.t_start, e.confidence, e.approval) for e in events] == [
        ("jaywalking", "Pedestrian mid-block", 61.5, "01:01", 0.9, "approved"),
        ("near_miss", "Bus pass", 3605.0, "01:00:05", None, "pending"),
    ]
    assert events[0].overlay["frame_gps_lat"] == {"start": 37.7749, "end": 37.7751}
    assert batch.approval_counts == {"approved": 1, "pending": 1}


def test_it_caches_a_nomadicml_agent_batch_as_served(nomadicml):
    nomadicml.fake.add_batch(nm.AGENT_BATCH, nm.agent_videos(), kind="edge_case_agent")
    run = nomadicml.sync(nm.AGENT_BATCH)
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert (run.batch.mode, run.batch.analysis_type, run.batch.prompt) == ("agent", "edge_case_agent", "")
    assert run.batch.item_counts == {"completed": 4, "failed": 1}
    assert list(run.batch.events.order_by("item__position").values_list("label", "approval")) == [
        ("Debris on the highway", "rejected"), ("Emergency vehicle", "pending"), ("Heavy rain", "pending"),
        ("Lane closure", "pending"),
    ]  # fmt: skip


@pytest.mark.parametrize("provider", ["twelvelabs", "nomadicml"])
def test_it_changes_nothing_on_a_second_sync_and_keeps_human_decisions(request, provider, staff):
    up: Upstream = request.getfixturevalue(provider)
    first = up.sync()
    event = first.batch.events.order_by("position").first()
    decide(event, staff, "invalid")
    before = snapshot(up.source)

    again = up.sync()
    assert again.outcome == SyncOutcome.SUCCEEDED, again.error
    assert (again.items_unchanged, again.items_created, again.items_updated) == (first.items_created, 0, 0)
    assert (again.events_created, again.events_updated, again.events_removed) == (0, 0, 0)
    assert snapshot(up.source) == before
    event.refresh_from_db()
    assert (event.approval, event.decided_by, event.decisions.count()) == ("invalid", staff, 1)


def test_it_keeps_a_decision_when_the_provider_changes_the_event(nomadicml, staff):
    run = nomadicml.sync()
    event = run.batch.events.get(label="Bus pass")
    decide(event, staff, "rejected")
    nomadicml.fake.videos[nm.ASK_BATCH][0]["analysis"]["events"][1].update(severity="high", approval="approved")
    again = nomadicml.sync()
    assert again.events_updated == 1
    event.refresh_from_db()
    assert (event.severity, event.provider_approval, event.approval, event.decided_by) == (
        "high", "approved", "rejected", staff
    )  # fmt: skip


def test_it_marks_the_batch_running_while_it_syncs(twelvelabs, monkeypatch):
    twelvelabs.sync()
    seen = []
    original = TwelveLabsAdapter.open_batch

    def spy(self, client, batch_id):
        seen.append(Batch.objects.get(provider_batch_id=batch_id).sync_state)
        return original(self, client, batch_id)

    monkeypatch.setattr(TwelveLabsAdapter, "open_batch", spy)
    run = twelvelabs.sync()
    assert seen == [SyncState.RUNNING]
    run.batch.refresh_from_db()
    assert run.batch.sync_state == SyncState.IDLE


# --- The fault table ---------------------------------------------------------------------


@dataclass
class Fault:
    """One row: a fault injected before a re-sync, and what must come of it."""

    name: str
    provider: str
    arrange: Callable[[Upstream, pytest.MonkeyPatch], str | None]  # returns another batch id to fetch, or None
    outcome: str
    error: str = ""  # expected in run.error
    check: Callable[[Upstream, SyncRun, float], None] | None = None  # (upstream, run, seconds taken)


def inject(route: str, fault, **options) -> Callable[[Upstream, pytest.MonkeyPatch], None]:
    return lambda up, _: up.fake.inject(route, fault, **options)


def rate_limited() -> Reply:
    reply = tl.error(429, "too_many_requests", "You have exceeded the rate limit.")
    reply.headers["Retry-After"] = "1"
    return reply


def html_503() -> Reply:
    page = b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>nginx</center></html>"
    return Reply(503, page, {"Content-Type": "text/html"})


def malformed_line(up: Upstream, _) -> None:
    up.fake.results[up.batch_id].insert(2, '{"task_id": "oops"')


def slow(route: str) -> Callable[[Upstream, pytest.MonkeyPatch], None]:
    def arrange(up: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(http, "DEFAULT_TIMEOUT", (1.0, 0.3))
        up.fake.inject(route, delayed(1.0), times=None)

    return arrange


def stalled_results(up: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "DEFAULT_TIMEOUT", (1.0, 0.3))
    up.fake.inject("results", stall_after(2, 1.0))


BIG_BATCH = tl_id(0xB16)


def thousand_items(up: Upstream, _) -> str:
    segments = {"incident": [{"start_time": 1.5, "end_time": 3, "metadata": {"label": "near miss"}}]}
    up.fake.add_batch(BIG_BATCH, [tl_line(tl_id(0x1000 + n), segments=segments) for n in range(1000)])
    return BIG_BATCH


def failing_second_chunk(up: Upstream, _) -> None:
    up.fake.videos[up.batch_id] += [nm.video(f"bulk-{n:03d}", []) for n in range(150)]
    # The first sync made one bulk call; the re-sync's first chunk passes, its second fails every try.
    up.fake.inject("bulk", Reply.json({"detail": "DB down"}, 500), times=None, skip=1)


def revoke_key(up: Upstream, _) -> None:
    up.fake.api_key = "revoked-by-the-provider"


def unknown_batch(up: Upstream, _) -> str:
    return tl_id(0xBAD) if up.source.provider == "twelvelabs" else "no-such-batch"


def remove_batch(up: Upstream, _) -> None:
    up.fake.remove_batch(up.batch_id)


def closed_port(up: Upstream, _) -> None:
    up.source.base_url = "http://127.0.0.1:9"  # nothing listens there
    up.source.save()


def calls(route: str, expected: int) -> Callable[[Upstream, SyncRun, float], None]:
    def check(up: Upstream, run: SyncRun, seconds: float) -> None:
        assert up.fake.calls_to(route) == expected

    return check


def gone(up: Upstream, run: SyncRun, seconds: float) -> None:
    batch = Batch.objects.get(source=up.source, provider_batch_id=up.batch_id)
    assert (batch.gone_upstream, batch.sync_state) == (True, SyncState.FAILED)
    assert batch.last_error == run.error
    assert run.batch == batch


def nothing_created(up: Upstream, run: SyncRun, seconds: float) -> None:
    assert run.batch is None
    assert Batch.objects.filter(source=up.source).count() == 1


def retried_after_waiting(up: Upstream, run: SyncRun, seconds: float) -> None:
    assert up.fake.calls_to("batch") == 3  # the first sync, the 429, the retry
    assert seconds >= 1  # Retry-After was honoured


def rest_imported(up: Upstream, run: SyncRun, seconds: float) -> None:
    assert len(run.malformed_lines) == 1
    assert run.malformed_lines[0]["line"] == 3
    assert run.malformed_lines[0]["error"].startswith("invalid JSON")
    assert run.batch.item_total == 8  # every valid line, the new one included
    assert run.batch.items.get(provider_item_id=tl_id(6)).text == "finished since"


def thousand_imported(up: Upstream, run: SyncRun, seconds: float) -> None:
    assert run.batch.provider_batch_id == BIG_BATCH
    assert (run.batch.item_total, run.batch.event_total, run.items_created) == (1000, 1000, 1000)
    assert seconds < 20


FAULTS = [
    Fault("401 bad key", "twelvelabs", revoke_key, "failed", "TwelveLabs refused the API key (HTTP 401 api_key_invalid"),
    Fault("404 new batch", "twelvelabs", unknown_batch, "failed", f"TwelveLabs has no batch {tl_id(0xBAD)}",
          nothing_created),
    Fault("404 cached batch", "twelvelabs", remove_batch, "failed", "The cached copy is kept.", gone),
    Fault("429 Retry-After then success", "twelvelabs", inject("batch", rate_limited()), "succeeded",
          check=retried_after_waiting),
    Fault("503 HTML then success", "twelvelabs", inject("results", html_503()), "succeeded",
          check=calls("results", 3)),
    Fault("500 on every try", "twelvelabs", inject("batch", tl.error(500, "internal_error", "Oops."), times=None),
          "failed", "TwelveLabs had a server error (HTTP 500 internal_error: Oops)", calls("batch", 1 + 4)),
    Fault("malformed JSONL line", "twelvelabs", malformed_line, "succeeded", check=rest_imported),
    Fault("stream cut mid-way", "twelvelabs", inject("results", cut_after(3)), "failed",
          f"The results stream of batch {tl.TIMED_BATCH} from TwelveLabs broke after line 3"),
    Fault("server too slow", "twelvelabs", slow("batch"), "failed",
          "TwelveLabs did not answer within 0.3 s (read timed out)"),
    Fault("results stall mid-stream", "twelvelabs", stalled_results, "failed",
          f"The results stream of batch {tl.TIMED_BATCH} from TwelveLabs broke after line 2 (nothing came for 0.3 s)"),
    Fault("garbage body", "twelvelabs", inject("batch", Reply(200, b"\x00\xffgarbage", {"Content-Type": "text/plain"})),
          "failed", "answered the request for batch 68f4ddaf8aaa60d33df0e800 with something that is not JSON"),
    Fault("connection refused", "twelvelabs", closed_port, "failed", "Could not connect to TwelveLabs at 127.0.0.1:9"),
    Fault("1,000-item batch", "twelvelabs", thousand_items, "succeeded", check=thousand_imported),
    Fault("401 bad key", "nomadicml", revoke_key, "failed", "NomadicML refused the API key (HTTP 401: Invalid API key)"),
    Fault("404 new batch", "nomadicml", unknown_batch, "failed", "NomadicML has no batch no-such-batch",
          nothing_created),
    Fault("404 cached batch", "nomadicml", remove_batch, "failed", "The cached copy is kept.", gone),
    Fault("failing chunk", "nomadicml", failing_second_chunk, "failed",
          "NomadicML had a server error (HTTP 500: DB down)", calls("bulk", 1 + 1 + 4)),
    Fault("chunk cut mid-way", "nomadicml", inject("bulk", Reply(200, [b'{"analyses": [', b"{}"], cut_after=1)),
          "failed", "The connection to NomadicML broke while reading its answer"),
    Fault("503 on the bulk POST then success", "nomadicml", inject("bulk", Reply.json({"error": "busy"}, 503)),
          "succeeded", check=calls("bulk", 3)),
    Fault("garbage status body", "nomadicml", inject("status", Reply(200, b"Welcome to nginx!", {})), "failed",
          "with something that is not JSON"),
    Fault("server too slow", "nomadicml", slow("bulk"), "failed", "NomadicML did not answer within 0.3 s"),
]  # fmt: skip


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: f"{fault.provider}: {fault.name}")
def test_it_survives_the_fault(request, fault, staff, monkeypatch):
    up: Upstream = request.getfixturevalue(fault.provider)
    first = up.sync()
    assert first.outcome == SyncOutcome.SUCCEEDED, first.error
    decide(first.batch.events.order_by("position").first(), staff, "rejected")
    change_upstream(up)
    before = snapshot(up.source)

    other_id = fault.arrange(up, monkeypatch)
    started = time.monotonic()
    run = up.sync(other_id)
    seconds = time.monotonic() - started

    assert run.outcome == fault.outcome, run.error
    assert fault.error in run.error
    assert run.pk is not None  # every attempt is recorded
    if fault.outcome == SyncOutcome.FAILED:
        assert snapshot(up.source) == before  # nothing cached was changed: items, events, decisions
        assert (run.items_created, run.items_updated, run.events_created) == (0, 0, 0)
        assert "\n" not in run.error
    else:
        assert snapshot(up.source) != before  # the provider's changes arrived
        assert Decision.objects.count() == 1
    if fault.check:
        fault.check(up, run, seconds)


# --- Secrets, keys and ids -------------------------------------------------------------------


def test_it_keeps_api_keys_out_of_runs_batches_and_logs(twelvelabs, nomadicml, caplog):
    caplog.set_level(logging.DEBUG)
    twelvelabs.fake.inject("batch", tl.error(401, "api_key_invalid", f"Key {TL_KEY} revoked."))
    nomadicml.fake.inject("status", Reply.json({"detail": f"Invalid API key {NM_KEY}"}, 401))
    runs = [twelvelabs.sync(), nomadicml.sync(), twelvelabs.sync(), nomadicml.sync()]
    assert [run.outcome for run in runs] == ["failed", "failed", "succeeded", "succeeded"]
    stored = [run.error for run in SyncRun.objects.all()] + [b.last_error for b in Batch.objects.all()]
    for text in [*stored, caplog.text]:
        assert TL_KEY not in text
        assert NM_KEY not in text
    assert "[redacted]" in runs[0].error


def test_it_records_a_key_that_cannot_be_decrypted(twelvelabs, settings):
    settings.ENCRYPTION_KEY = "bXVzdC1iZS0zMi11cmwtc2FmZS1iYXNlNjQtYnl0ZXM="  # another Fernet key
    run = twelvelabs.sync()
    assert run.outcome == SyncOutcome.FAILED
    assert "cannot be decrypted" in run.error
    assert twelvelabs.fake.calls == []


def test_it_records_an_invalid_batch_id_without_calling_the_provider(twelvelabs):
    run = twelvelabs.sync("not-a-twelvelabs-id")
    assert run.outcome == SyncOutcome.FAILED
    assert run.error == "'not-a-twelvelabs-id' is not a TwelveLabs batch id (24 hexadecimal characters)."
    assert twelvelabs.fake.calls == []


def test_it_does_not_call_a_batch_added_but_never_synced_gone(twelvelabs):
    batch = Batch.objects.create(source=twelvelabs.source, provider="twelvelabs", provider_batch_id=tl_id(0xBAD))
    run = twelvelabs.sync(tl_id(0xBAD))
    batch.refresh_from_db()
    assert run.outcome == SyncOutcome.FAILED
    assert (batch.gone_upstream, batch.sync_state, batch.last_error) == (False, SyncState.FAILED, run.error)


@pytest.mark.django_db(transaction=True)
def test_the_download_happens_before_the_write_transaction_opens(twelvelabs_fake, monkeypatch):
    """A slow provider must not hold the database's write lock: reviewers keep deciding meanwhile."""
    from django.db import connection

    from reviewer.models import Source

    source = Source(name="tl", provider="twelvelabs", base_url=twelvelabs_fake.base_url)
    source.set_api_key(TL_KEY)
    source.save()
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    in_transaction_while_reading: list[bool] = []
    real_open = TwelveLabsAdapter.open_batch

    def watched_open(self, client, batch_id):
        record, stream = real_open(self, client, batch_id)

        def watched():
            for item in stream:
                in_transaction_while_reading.append(connection.in_atomic_block)
                yield item

        return record, watched()

    monkeypatch.setattr(TwelveLabsAdapter, "open_batch", watched_open)
    run = fetch.fetch_batch(source, tl.TIMED_BATCH)
    assert run.outcome == SyncOutcome.SUCCEEDED and run.items_created == 7
    assert in_transaction_while_reading == [False] * 7
