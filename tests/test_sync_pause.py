"""A permanent provider error (a refused key) pauses automatic re-syncs; a sync by hand resumes them."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from reviewer import fetch
from reviewer.models import Batch, SyncRun
from tests.fakes import twelvelabs as tl

pytestmark = pytest.mark.django_db


@pytest.fixture
def unfinished(tl_source, twelvelabs_fake) -> Batch:
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines(), status="processing")
    run = fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    assert run.outcome == "succeeded"
    return run.batch


def _refused_key(twelvelabs_fake):
    twelvelabs_fake.inject("batch", tl.error(401, "api_key_invalid", "The API key you provided is not valid."))


def test_a_refused_key_pauses_automatic_syncs(unfinished, tl_source, twelvelabs_fake, staff_client):
    _refused_key(twelvelabs_fake)
    run = fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    unfinished.refresh_from_db()
    assert (run.outcome, unfinished.sync_paused) == ("failed", True)
    assert not unfinished.needs_watching  # the open page stops polling

    runs = SyncRun.objects.count()
    call_command("refresh_batches", stdout=StringIO())
    staff_client.get(f"/batches/{unfinished.pk}/status")  # the poll would re-sync a due batch
    assert SyncRun.objects.count() == runs

    page = staff_client.get(f"/batches/{unfinished.pk}/").content.decode()
    assert "Automatic syncs are paused" in page and "Sync now" in page


def test_a_passing_outage_does_not_pause(unfinished, tl_source, twelvelabs_fake):
    twelvelabs_fake.inject("batch", tl.error(503, "service_unavailable", "Try later."), times=10)
    run = fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    unfinished.refresh_from_db()
    assert (run.outcome, unfinished.sync_paused) == ("failed", False)


def test_a_successful_sync_by_hand_resumes(unfinished, tl_source, twelvelabs_fake):
    _refused_key(twelvelabs_fake)
    fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    # The fault answered once: the key is fixed now.
    run = fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    unfinished.refresh_from_db()
    assert (run.outcome, unfinished.sync_paused, unfinished.last_error) == ("succeeded", False, "")
    out = StringIO()
    call_command("refresh_batches", stdout=out)
    assert "Synced" in out.getvalue()
