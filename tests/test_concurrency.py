"""A sync of a large batch while reviewers decide on it: real threads, real connections.

Runs on the suite's database: a SQLite file (tests/settings.py: WAL, IMMEDIATE
transactions, busy timeout, as in production) or PostgreSQL when DATABASE_URL points
to one. transaction=True: every thread commits for real on its own connection.

A NomadicML batch of 3,000 events is synced once, then re-synced (through the fake
provider over HTTP) with every item changed (so the sync locks all 3,000 events),
600 events changed (their provider approval among them), some added and some dropped,
while five threads decide events of the same batch: three through
``review.decide``, one through the decision view (the test Client, as a browser's
htmx request), one with bulk decisions and undos. Every thread works on a shared pool
of events, so they override each other and the sync.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.models import Count
from django.test import Client

from reviewer import fetch, review
from reviewer.models import Approval, Batch, Decision, Event, SyncOutcome, SyncTrigger
from tests.fakes import nomadicml as nm

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = "rr-concurrency"
VIDEOS, EVENTS_PER_VIDEO = 300, 10  # 3,000 events, 3 bulk requests
CHANGED = 2  # the first CHANGED events of each video change in version 2
POOL_SIZE = 40  # events every thread picks from (all changed by the sync): they collide on purpose
MIN_BEFORE_SYNC = 20  # actions done by all threads before the re-sync starts
AFTER_SYNC = 3  # actions per thread once the re-sync is done
MAX_ACTIONS = 400  # per thread: bounds the test whatever the machine
APPROVALS = list(Approval.values)


def changes(event: int, version: int) -> bool:
    return version == 2 and event < CHANGED


def provider_approval(video: int, event: int, version: int) -> str:
    return APPROVALS[(video + event + changes(event, version)) % len(APPROVALS)]


def dropped_in_v2(video: int, event: int) -> bool:
    return video % 10 == 0 and event == EVENTS_PER_VIDEO - 1


def videos(version: int) -> list[dict]:
    """The batch as the provider serves it. Version 2 changes every item and some events (same keys), drops some
    events and adds some."""
    result = []
    for n in range(VIDEOS):
        events = [
            nm.ui_event(
                "jaywalking", 10.0 * k, 10.0 * k + 5, f"event {n}-{k}",
                severity="low" if changes(k, version) else "high", approval=provider_approval(n, k, version),
                confidence=0.7 if changes(k, version) else 0.6,
            )
            for k in range(EVENTS_PER_VIDEO)
            if version == 1 or not dropped_in_v2(n, k)
        ]  # fmt: skip
        if version == 2 and n % 5 == 0:
            events.append(nm.ui_event("near_miss", 500.0, 501.0, f"new event {n}", approval="pending"))
        result.append(nm.video(f"v{n:04d}", events, answer=f"video {n}, version {version}"))
    return result


def v2_events() -> int:
    dropped = sum(dropped_in_v2(n, k) for n in range(VIDEOS) for k in range(EVENTS_PER_VIDEO))
    return VIDEOS * EVENTS_PER_VIDEO - dropped + VIDEOS // 5


@dataclass
class Log:
    """What the threads did: every action that returned, and every exception."""

    changed: int = 0  # Decision rows the successful actions say they wrote
    groups: set = field(default_factory=set)  # groups returned by review.* calls
    actions: int = 0
    during_sync: int = 0  # actions that finished while the re-sync ran
    errors: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, changed: int, group=None, *, syncing: bool) -> None:
        with self.lock:
            self.changed += changed
            self.actions += 1
            self.during_sync += syncing
            if group is not None:
                self.groups.add(group)


def in_thread(log: Log, target) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported by the test below
            log.errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    return threading.Thread(target=run, daemon=True)


def test_decisions_during_a_large_resync_are_all_kept_and_audited(nomadic_fake, nomadic_source):
    nomadic_fake.add_batch(BATCH, videos(1))
    first = fetch.fetch_batch(nomadic_source, BATCH, SyncTrigger.FETCH)
    assert first.outcome == SyncOutcome.SUCCEEDED, first.error
    batch = first.batch
    assert batch.event_total == VIDEOS * EVENTS_PER_VIDEO

    # The pool: events spread over the batch that the sync changes (and keeps).
    changing = [
        pk
        for pk, label in Event.objects.filter(batch=batch).order_by("pk").values_list("pk", "label")
        if changes(int(label.split("-")[1]), 2)
    ]
    pool = changing[:: len(changing) // POOL_SIZE][:POOL_SIZE]
    reviewers = Group.objects.get_or_create(name="reviewer")[0]
    users = [User.objects.create_user(f"reviewer{n}", password="pw") for n in range(5)]
    for user in users:
        user.groups.add(reviewers)
    web = Client()
    web.force_login(users[3])

    log = Log()
    syncing, sync_done = threading.Event(), threading.Event()
    runs = []

    def keep_going(done: int, after: list[int]) -> bool:
        if done >= MAX_ACTIONS:
            return False
        if not sync_done.is_set():
            return True
        after[0] += 1
        return after[0] <= AFTER_SYNC

    def decider(n: int) -> None:
        rng, user, done, after = random.Random(n), users[n], 0, [0]
        while keep_going(done, after):
            event = Event.objects.only("pk", "batch_id").get(pk=rng.choice(pool))
            applied = review.decide(event, rng.choice(APPROVALS), user, note=f"thread {n}")
            log.record(applied.changed, applied.group, syncing=syncing.is_set() and not sync_done.is_set())
            done += 1
            time.sleep(0.001)

    def browser() -> None:
        rng, done, after = random.Random(3), 0, [0]
        while keep_going(done, after):
            pk = rng.choice(pool)
            response = web.post(
                f"/events/{pk}/decision", {"decision": rng.choice(APPROVALS)}, headers={"HX-Request": "true"}
            )
            assert response.status_code == 200, response.content[:500]
            outcome = response["X-Review-Outcome"]
            assert outcome in ("applied", "unchanged"), outcome
            log.record(int(outcome == "applied"), syncing=syncing.is_set() and not sync_done.is_set())
            done += 1
            time.sleep(0.001)

    def bulk() -> None:
        rng, user, done, after = random.Random(4), users[4], 0, [0]
        while keep_going(done, after):
            if done % 3 == 2:
                applied = review.undo_last(batch, user)
            else:
                chosen = rng.sample(pool, 5)
                applied = review.decide_many(
                    batch, Event.objects.filter(pk__in=chosen), rng.choice(APPROVALS), user, expected_count=5
                )
            if applied is not None:
                log.record(applied.changed, applied.group, syncing=syncing.is_set() and not sync_done.is_set())
            done += 1
            time.sleep(0.001)

    def resync() -> None:
        try:
            syncing.set()
            runs.append(fetch.fetch_batch(nomadic_source, BATCH, SyncTrigger.REFRESH))
        finally:
            sync_done.set()

    nomadic_fake.add_batch(BATCH, videos(2))
    threads = [in_thread(log, lambda n=n: decider(n)) for n in range(3)]
    threads += [in_thread(log, browser), in_thread(log, bulk)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while log.actions < MIN_BEFORE_SYNC and not log.errors and time.monotonic() < deadline:
        time.sleep(0.005)
    sync_thread = in_thread(log, resync)
    sync_thread.start()
    for thread in [sync_thread, *threads]:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a thread is stuck"

    # No "database is locked", no deadlock, no crash, anywhere.
    assert log.errors == []
    [run] = runs
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert (run.items_updated, run.events_created, run.events_removed) == (VIDEOS, VIDEOS // 5, VIDEOS // 10)
    assert run.events_updated == VIDEOS * CHANGED
    assert log.during_sync > 0, "no decision ran while the sync did: the test proved nothing"

    # One history row per change, each written by an action that said it succeeded.
    rows = list(Decision.objects.filter(batch=batch).order_by("pk"))
    assert len(rows) == log.changed
    assert log.groups <= {row.group for row in rows}

    # Replay the history of every event: each row starts where the previous one left
    # the event (no lost update), and the event ends as its last row left it.
    by_group_event = {(row.group, row.event_id): row for row in rows}
    state: dict[int, tuple] = {}  # event -> (approval, decided_by, decided_at) after its last row
    for row in rows:
        before = state.get(row.event_id)
        if before is not None and before[2] is not None:  # still decided: no sync could change it since
            assert (row.from_approval, row.previous_decided_by_id, row.previous_decided_at) == before, row.pk
        if row.undoes is None:
            state[row.event_id] = (row.to_approval, row.user_id, row.created_at)
        else:
            undone = by_group_event[(row.undoes, row.event_id)]
            state[row.event_id] = (row.to_approval, undone.previous_decided_by_id, undone.previous_decided_at)
    events = {e.pk: e for e in Event.objects.filter(batch=batch)}
    for pk, (approval, decided_by, decided_at) in state.items():
        event = events[pk]
        if decided_at is None:  # undone back to the provider's value: a later sync may set its new one
            assert event.approval in (approval, event.provider_approval), pk
            assert (event.decided_by_id, event.decided_at) == (None, None), pk
        else:
            assert (event.approval, event.decided_by_id, event.decided_at) == (approval, decided_by, decided_at), pk

    # The sync applied version 2 everywhere and kept every human decision.
    assert len(events) == v2_events()
    for event in events.values():
        if event.label.startswith("event "):
            video, number = map(int, event.label.removeprefix("event ").split("-"))
            assert event.provider_approval == provider_approval(video, number, 2), event.pk
            assert (event.severity, event.confidence) == (("low", 0.7) if changes(number, 2) else ("high", 0.6))
        if event.pk not in state:
            assert (event.approval, event.decided_at) == (event.provider_approval, None), event.pk

    # The stored counters agree with the rows (no lost counter update).
    batch = Batch.objects.get(pk=batch.pk)
    actual = Counter(dict(Event.objects.filter(batch=batch).values_list("approval").annotate(n=Count("pk"))))
    assert (batch.approval_counts, batch.event_total, batch.item_total) == (dict(actual), len(events), VIDEOS)
