"""A sync whose worker was killed does not leave its batch "Syncing" for good (a heartbeat lease)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewer import fetch
from reviewer.models import SYNC_LEASE, Batch, SyncRun, SyncState
from tests.fakes import twelvelabs as tl
from tests.fakes.server import delayed

pytestmark = pytest.mark.django_db


@pytest.fixture
def killed_mid_sync(tl_source, twelvelabs_fake) -> Batch:
    """A batch left as a kill -9 of its worker leaves it: running, its heartbeat stopped a lease ago."""
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines(), status="processing")
    batch = fetch.fetch_batch(tl_source, tl.TIMED_BATCH).batch
    stopped = timezone.now() - SYNC_LEASE - timedelta(seconds=1)
    Batch.objects.filter(pk=batch.pk).update(sync_state=SyncState.RUNNING, sync_heartbeat_at=stopped)
    batch.refresh_from_db()
    return batch


def test_a_sync_whose_heartbeat_stopped_no_longer_blocks_the_batch(killed_mid_sync, staff_client):
    batch = killed_mid_sync
    assert batch.sync_stalled and not batch.is_syncing
    page = staff_client.get(batch.get_absolute_url()).content.decode()
    assert "The last sync stopped without finishing" in page
    assert '<button class="btn" type="submit">Sync now</button>' in page  # enabled again


def test_it_is_synced_again_by_hand_and_by_the_polled_page(killed_mid_sync, staff_client, twelvelabs_fake, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.AUTO_SYNC_SECONDS = 0
    assert fetch.auto_sync_due(killed_mid_sync, timezone.now())
    staff_client.get(f"/batches/{killed_mid_sync.pk}/status")
    killed_mid_sync.refresh_from_db()
    assert killed_mid_sync.sync_state == SyncState.IDLE and SyncRun.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_live_sync_renews_its_heartbeat(tl_source, twelvelabs_fake, monkeypatch):
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    batch = Batch.objects.create(source=tl_source, provider="twelvelabs", provider_batch_id=tl.TIMED_BATCH)
    monkeypatch.setattr(fetch, "HEARTBEAT_SECONDS", 0.2)
    twelvelabs_fake.inject("results", delayed(1.5))  # a slow download: several beats pass meanwhile
    seen = []
    real_write = fetch.sync.write_records

    def write_records(*args, **kwargs):  # the moment the download is done
        seen.append(Batch.objects.get(pk=batch.pk).sync_heartbeat_at)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(fetch.sync, "write_records", write_records)
    started = timezone.now()
    run = fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    assert run.outcome == "succeeded"
    assert seen and seen[0] - started >= timedelta(seconds=1)  # renewed during the download
