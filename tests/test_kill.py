"""kill -9 during syncs and imports: afterwards the database is sound, every batch is as before or fully new, and syncable.

Twenty runs, each in a process of its own (tests/write_child.py) killed with SIGKILL at
a random moment: during the download or the parsing, in the middle of a load's committed
chunks, or inside an update's transaction. Each kind in turn: a first sync, a re-sync
that changes every item, an import of a new file, a re-import that changes every item.
After each kill the worker's reclaiming runs (sync.reclaim_stalled_loads), then the
same run again, in this process, to the end: the state the kill left must be the state
before or the state after, nothing in between.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from reviewer import fetch, importers, models, sync
from reviewer.models import Batch, Event, Item, Loading, SyncOutcome
from tests.factories import nomadic_analysis, nomadic_event, nomadic_result

pytestmark = pytest.mark.django_db(transaction=True)

RUNS = 20
VIDEOS, EVENTS = 300, 10  # a load of 6 chunks; about a second of work


def videos(version: int) -> list[dict]:
    return [
        nomadic_result(
            f"v{n:04d}",
            [nomadic_event(label=f"e{k} v{version}", t_start=f"00:{k:02d}") for k in range(EVENTS)],
            summary=f"drive {n}, version {version}",
        )
        for n in range(VIDEOS)
    ]


def fake_videos(version: int) -> list[dict]:
    from tests.fakes.nomadicml import ui_event, video

    return [
        video(f"v{n:04d}", [ui_event("near_miss", k, k + 1, f"e{k} v{version}") for k in range(EVENTS)])
        for n in range(VIDEOS)
    ]


def database_url() -> str:
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    return f"postgres://{config['USER']}:{config['PASSWORD']}@{config['HOST'] or 'localhost'}:{config['PORT'] or 5432}/{config['NAME']}"


def state() -> tuple:
    """Everything a person sees of the cache, without row ids (a completed re-run makes new ones)."""
    batches = sorted(Batch.objects.values_list("provider_batch_id", "loading", "item_total", "event_total"))
    items = sorted(Item.objects.values_list("batch__provider_batch_id", "provider_item_id", "content_hash"))
    events = sorted(
        Event.objects.values_list(
            "batch__provider_batch_id", "item__provider_item_id", "key", "content_hash", "approval"
        )
    )
    return tuple(batches), tuple(items), tuple(events)


def run_and_kill(args: list[str], delay: float) -> bool:
    """Start the child, kill it after ``delay`` seconds; True when it was killed before it finished."""
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.write_child", *args], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        return child.stdout.read().strip() != "done"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def integrity_ok() -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA integrity_check")
            assert cursor.fetchall() == [("ok",)]


def test_killed_syncs_and_imports_leave_every_batch_as_before_or_fully_new(
    nomadic_fake, nomadic_source, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(models, "SYNC_LEASE", timedelta(0))  # the killed process renews nothing: reclaim at once
    rng = random.Random(9)
    version = {"old-sync": 0, "old-import": 0}
    nomadic_fake.add_batch("old-sync", fake_videos(0))
    began = time.monotonic()
    assert fetch.fetch_batch(nomadic_source, "old-sync").outcome == SyncOutcome.SUCCEEDED
    took = {"new-sync": time.monotonic() - began}
    (tmp_path / "old-import.json").write_text(json.dumps(nomadic_analysis("old-import", videos(0))))
    began = time.monotonic()
    assert (
        importers.import_file((tmp_path / "old-import.json").open("rb"), name="old-import.json").outcome == "succeeded"
    )
    took["new-import"] = time.monotonic() - began
    took.update({"old-sync": took["new-sync"], "old-import": took["new-import"]})

    killed_mid_way = killed_mid_load = 0
    for number in range(RUNS):
        kind = ("new-sync", "old-sync", "new-import", "old-import")[number % 4]
        if kind == "new-sync":
            batch_id = f"new-sync-{number}"
            nomadic_fake.add_batch(batch_id, fake_videos(number))
        elif kind == "old-sync":
            batch_id = "old-sync"
            version[batch_id] += 1
            nomadic_fake.add_batch(batch_id, fake_videos(version[batch_id]))
        else:
            batch_id = f"new-import-{number}" if kind == "new-import" else "old-import"
            version[batch_id] = version.get(batch_id, -1) + 1
            path = tmp_path / f"{batch_id}.json"
            path.write_text(json.dumps(nomadic_analysis(batch_id, videos(version[batch_id]))))
        args = ["sync", nomadic_source.name, batch_id] if kind.endswith("sync") else ["import", str(path)]

        before = state()
        # Somewhere in the run, as long as the same run took last time (the child's start is not counted).
        killed_mid_way += run_and_kill(args, delay=rng.uniform(0.1, 1.1) * took[kind])
        killed_mid_load += Batch.objects.exclude(loading=Loading.NONE).exists()
        sync.reclaim_stalled_loads()
        integrity_ok()
        after_kill = state()
        leftovers = Batch.objects.filter(provider_batch_id=batch_id).first()
        assert leftovers is None or (leftovers.loading == Loading.NONE and not leftovers.is_syncing), kind

        # Syncable (importable) again, to the end: the state after.
        began = time.monotonic()
        if kind.endswith("sync"):
            again = fetch.fetch_batch(nomadic_source, batch_id)
        else:
            again = importers.import_file(path.open("rb"), name=path.name)
        assert again.outcome == SyncOutcome.SUCCEEDED, (kind, again.error)
        took[kind] = time.monotonic() - began
        assert after_kill in (before, state()), f"run {number} ({kind}) left a half-written batch"
        integrity_ok()
    print(f"{killed_mid_way} of {RUNS} runs killed before the end, {killed_mid_load} in the middle of a load")
    assert killed_mid_way >= RUNS // 2 and killed_mid_load >= 1  # the kills landed where it matters
