"""manage.py refresh_batches: re-sync unfinished fetched batches, once or in a loop."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from reviewer import fetch
from reviewer.management.commands import refresh_batches
from reviewer.models import Batch, SyncRun, SyncTrigger
from tests.factories import tl_id
from tests.fakes import nomadicml as nm
from tests.fakes import twelvelabs as tl


@pytest.fixture
def batches(tl_source, nomadic_source, twelvelabs_fake, nomadic_fake):
    """One batch of each kind refresh must tell apart, all fetched once."""
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines(), status="processing")  # unfinished
    twelvelabs_fake.add_batch(tl.GENERAL_BATCH, tl.general_lines(), mode="general")  # completed
    nomadic_fake.add_batch(nm.ASK_BATCH, nm.ask_videos(), status="processing")  # unfinished
    for source, batch_id in (
        (tl_source, tl.TIMED_BATCH),
        (tl_source, tl.GENERAL_BATCH),
        (nomadic_source, nm.ASK_BATCH),
    ):
        assert fetch.fetch_batch(source, batch_id).outcome == "succeeded"
    gone = Batch.objects.create(source=tl_source, provider="twelvelabs", provider_batch_id=tl_id(0x60E),
                                gone_upstream=True)  # fmt: skip
    imported = Batch.objects.create(provider="twelvelabs", provider_batch_id=tl_id(0x1F))  # no source
    return gone, imported


def refreshed() -> list[str]:
    return list(
        SyncRun.objects.filter(trigger=SyncTrigger.REFRESH)
        .order_by("id")
        .values_list("batch__provider_batch_id", flat=True)
    )


def test_it_resyncs_only_unfinished_fetched_batches_still_upstream(batches, twelvelabs_fake):
    twelvelabs_fake.results[tl.TIMED_BATCH][5]["status"] = "canceled"
    twelvelabs_fake.batches[tl.TIMED_BATCH]["status"] = "canceled"
    out = StringIO()
    call_command("refresh_batches", stdout=out)
    assert refreshed() == [tl.TIMED_BATCH, nm.ASK_BATCH]
    assert out.getvalue().count("Synced ") == 2
    assert Batch.objects.get(provider_batch_id=tl.TIMED_BATCH).status == "canceled"

    call_command("refresh_batches", stdout=StringIO())  # the canceled batch is finished now
    assert refreshed() == [tl.TIMED_BATCH, nm.ASK_BATCH, nm.ASK_BATCH]


def test_it_goes_on_after_a_failing_batch(batches, twelvelabs_fake):
    twelvelabs_fake.remove_batch(tl.TIMED_BATCH)
    out, err = StringIO(), StringIO()
    call_command("refresh_batches", stdout=out, stderr=err)
    assert err.getvalue().startswith(f"tl {tl.TIMED_BATCH}: TwelveLabs has no batch {tl.TIMED_BATCH}")
    assert Batch.objects.get(provider_batch_id=tl.TIMED_BATCH).gone_upstream
    assert out.getvalue().startswith("Synced NomadicML")


def test_it_loops_until_interrupted(batches, monkeypatch):
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(refresh_batches.time, "sleep", sleep)
    out = StringIO()
    call_command("refresh_batches", "--loop", "0.5", stdout=out)
    assert naps == [0.5, 0.5]
    assert len(refreshed()) == 2 * 2  # two rounds of two batches, interrupted in the second nap
    assert out.getvalue().endswith("Stopped.\n")


def test_it_says_when_there_is_nothing_to_refresh(db):
    out = StringIO()
    call_command("refresh_batches", stdout=out)
    assert out.getvalue() == "No unfinished batch to refresh.\n"
