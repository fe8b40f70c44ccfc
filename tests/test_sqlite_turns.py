"""SQLite write transactions take turns (reviewer/sqlite/base.py): a writer is not starved by back-to-back chunks."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection, connections, transaction

from reviewer.models import Batch

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's write lock"),
]


def chunks_back_to_back(stop: threading.Event, hold: float, gap: float, started: threading.Event) -> None:
    """A long import's pattern: a write transaction of ``hold`` seconds, a short gap of Python work, again."""
    try:
        while not stop.is_set():
            with transaction.atomic():
                Batch.objects.filter(provider_batch_id="chunks").update(prompt=str(time.monotonic()))
                started.set()
                time.sleep(hold)
            time.sleep(gap)
    finally:
        connection.close()


def test_a_writer_gets_in_between_two_chunks_of_another():
    Batch.objects.create(provider="nomadicml", provider_batch_id="chunks")
    Batch.objects.create(provider="nomadicml", provider_batch_id="decided")
    stop, started = threading.Event(), threading.Event()
    loader = threading.Thread(target=chunks_back_to_back, args=(stop, 0.15, 0.003, started), daemon=True)
    loader.start()
    started.wait(5)
    waits = []
    try:
        for _ in range(15):
            began = time.monotonic()
            with transaction.atomic():
                Batch.objects.filter(provider_batch_id="decided").update(prompt="a decision")
            waits.append(time.monotonic() - began)
            time.sleep(0.05)
    finally:
        stop.set()
        loader.join(5)
    # One chunk (0.15 s) at most, with room for a busy machine; SQLite's own busy handler,
    # sleeping up to 100 ms between tries, kept missing the 3 ms gaps (waits of 1 s and more).
    assert max(waits) < 0.5, [round(wait, 3) for wait in waits]


def test_a_writer_that_waits_longer_than_the_timeout_is_told_the_database_is_locked(settings):
    Batch.objects.create(provider="nomadicml", provider_batch_id="held")
    held, release = threading.Event(), threading.Event()

    def hold_a_turn():
        try:
            with transaction.atomic():
                Batch.objects.filter(provider_batch_id="held").update(prompt="held")
                held.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_a_turn, daemon=True)
    holder.start()
    held.wait(5)
    other = connections.create_connection("default")
    other.settings_dict["OPTIONS"] = {**other.settings_dict["OPTIONS"], "timeout": 0.3}
    try:
        began = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            other._take_turn()
        assert 0.25 < time.monotonic() - began < 3
        release.set()
        holder.join(5)
        other._take_turn()  # free again
        assert other.has_turn
    finally:
        release.set()
        other.close()
    assert not other.has_turn
