"""Fetch a batch from its provider into the cache.

The one path used by the background task, ``manage.py fetch_batch`` and
``manage.py refresh_batches``: build the source's client, read the batch metadata,
then stream the results into ``sync.write_records`` (all-or-nothing). Provider
trouble never raises from here: it ends as a failed SyncRun, and the cache keeps
what it had.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from reviewer import media, sync
from reviewer.crypto import KeyUnreadable
from reviewer.models import Batch, Source, SyncOutcome, SyncRun, SyncState, SyncTrigger
from reviewer.providers.http import ProviderError
from reviewer.records import BatchRecord, RecordError

logger = logging.getLogger(__name__)


def fetch_batch(source: Source, batch_id: str, trigger: str = SyncTrigger.FETCH) -> SyncRun:
    """Fetch ``batch_id`` from ``source`` into the cache; returns the saved SyncRun (check ``outcome``).

    A failure (bad key, timeout, broken stream, failed chunk...) is a failed run with a
    readable ``error`` and changes no cached item, event or decision. A 404 for a batch
    synced before marks it ``gone_upstream`` and keeps its data. Raises only for
    unexpected errors (bugs), after recording the run as failed.
    """
    batch = Batch.objects.filter(source=source, provider_batch_id=batch_id).first()
    if batch is not None:
        batch.sync_state, batch.sync_heartbeat_at = SyncState.RUNNING, timezone.now()
        batch.save(update_fields=["sync_state", "sync_heartbeat_at"])
    with _Heartbeat(batch.pk if batch else None):
        return _fetch(source, batch_id, batch, trigger)


def _fetch(source: Source, batch_id: str, batch: Batch | None, trigger: str) -> SyncRun:
    run = SyncRun(trigger=trigger)
    try:
        client = source.client()
    except KeyUnreadable as exc:
        return sync.record_failure(run, str(exc), batch=batch, permanent=True)
    try:
        try:
            batch_record, stream = source.adapter.open_batch(client, batch_id)
            records = sync.spooled(stream)
        except ProviderError as exc:
            return _record_unreachable(run, exc, batch)
        except RecordError as exc:
            return sync.record_failure(run, str(exc), batch=batch)
        run = sync.write_records(batch_record, records, trigger=trigger, source=source, skip_invalid=True)
        if run.outcome == SyncOutcome.SUCCEEDED:
            media.schedule_image_storage(run.batch)
        return run
    except Exception:
        # A bug, not provider trouble: the batch must not stay "Syncing" forever.
        logger.exception("fetch of %s from source %s crashed", batch_id, source.name)
        sync.record_failure(run, "The sync crashed (an internal error; see the server log).", batch=batch)
        raise
    finally:
        client.close()


class _Heartbeat:
    """Renews the batch's ``sync_heartbeat_at`` every HEARTBEAT_SECONDS from a thread, while a sync runs.

    Its own database connection: the sync's transaction is not involved. On SQLite a
    renewal waits while the sync holds the write lock; a sync writing longer than the
    lease may then look stalled, which at worst lets someone queue a redundant sync.
    """

    def __init__(self, batch_pk: int | None) -> None:
        self.batch_pk = batch_pk
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"sync-heartbeat-{batch_pk}")

    def __enter__(self) -> _Heartbeat:
        if self.batch_pk is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)

    def _beat(self) -> None:
        try:
            while not self.stop.wait(HEARTBEAT_SECONDS):
                try:
                    Batch.objects.filter(pk=self.batch_pk).update(sync_heartbeat_at=timezone.now())
                except DatabaseError as exc:  # locked for a while: the next beat tries again
                    logger.info("sync heartbeat of batch %s skipped: %s", self.batch_pk, exc)
        finally:
            connections.close_all()


HEARTBEAT_SECONDS = 10.0
MAX_BACKOFF = timedelta(hours=1)


def auto_sync_due(batch: Batch, now: datetime) -> bool:
    """Whether an unfinished fetched batch should be synced again now (the batch page's poll).

    Not while a sync is queued or running, paused, gone upstream or finished. Otherwise
    after AUTO_SYNC_SECONDS since the last attempt, doubled by every failure in a row
    (at most MAX_BACKOFF): a wrong id or an outage is not asked about every few seconds.
    """
    if batch.source_id is None or batch.gone_upstream or batch.sync_paused or batch.is_terminal:
        return False
    if batch.is_syncing:  # queued, or running with a live heartbeat
        return False
    recent = list(batch.sync_runs.order_by("-started_at", "-id").values_list("started_at", "outcome")[:8])
    if not recent:
        return True
    failures = next((n for n, (_, outcome) in enumerate(recent) if outcome != SyncOutcome.FAILED), len(recent))
    wait = min(timedelta(seconds=settings.AUTO_SYNC_SECONDS) * 2**failures, MAX_BACKOFF)
    return now - recent[0][0] >= wait


def recent_batches(source: Source, limit: int = 20) -> list[BatchRecord]:
    """The source's newest batches for the "Add batch" picker; raises ProviderError or KeyUnreadable.

    Empty for a provider without a listing endpoint (NomadicML).
    """
    if not source.adapter.can_list_batches:
        return []
    client = source.client()
    try:
        return source.adapter.recent_batches(client, limit)
    finally:
        client.close()


def summary(run: SyncRun) -> str:
    """One line saying what a successful run changed (printed by the commands)."""
    verb = "Imported" if run.trigger == SyncTrigger.IMPORT else "Synced"
    return (
        f"{verb} {run.batch}: items {run.items_created} new, {run.items_updated} updated, "
        f"{run.items_unchanged} unchanged; events {run.events_created} new, {run.events_updated} updated, "
        f"{run.events_unchanged} unchanged, {run.events_removed} removed"
        + (f"; {len(run.malformed_lines)} malformed line(s) skipped" if run.malformed_lines else "")
    )


def _record_unreachable(run: SyncRun, exc: ProviderError, batch: Batch | None) -> SyncRun:
    # Only a batch that was synced before is "gone": a 404 for one just added is a wrong id.
    gone = exc.status == 404 and batch is not None and batch.last_synced_at is not None
    message = f"{exc.message} The cached copy is kept." if gone else exc.message
    # A refused key or a wrong id will not mend by itself: stop the automatic re-syncs.
    run = sync.record_failure(run, message, batch=batch, permanent=exc.permanent and not gone)
    if gone:
        batch.gone_upstream = True
        batch.save(update_fields=["gone_upstream"])
    return run
