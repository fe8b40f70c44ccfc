"""``manage.py worker``: keeps the background worker running through database errors."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django_tasks_db.management.commands import db_worker

from reviewer.management.commands import worker

pytestmark = pytest.mark.django_db


def test_the_worker_restarts_after_database_errors_with_backoff(monkeypatch, caplog):
    runs, sleeps = [], []

    def flaky_worker(self, *args, **options):
        runs.append(options.get("batch"))
        if len(runs) <= 3:
            raise OperationalError("database is locked")

    monkeypatch.setattr(db_worker.Command, "handle", flaky_worker)
    monkeypatch.setattr(worker, "pause", sleeps.append)
    call_command("worker", "--batch")
    assert len(runs) == 4 and sleeps == [1.0, 2.0, 4.0]
    assert caplog.text.count("database is locked") == 3


def test_the_worker_gives_up_after_the_allowed_restarts(monkeypatch):
    def locked(self, *args, **options):
        raise OperationalError("database is locked")

    monkeypatch.setattr(db_worker.Command, "handle", locked)
    monkeypatch.setattr(worker, "pause", lambda seconds: None)
    with pytest.raises(OperationalError):
        call_command("worker", "--max-restarts", "2")


def test_the_worker_runs_the_queued_tasks(tl_source, twelvelabs_fake):
    from reviewer.models import SyncRun
    from reviewer.tasks import sync_batch_task
    from tests.fakes import twelvelabs as tl

    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    sync_batch_task.enqueue(tl_source.pk, tl.TIMED_BATCH)
    call_command("worker", "--batch")
    assert SyncRun.objects.get().outcome == "succeeded"
