"""reviewer/tasks.py: the background sync, through django-tasks' backends."""

from __future__ import annotations

from django.core.management import call_command
from django.test import override_settings
from django_tasks import TaskResultStatus

from reviewer.models import Batch, SyncRun
from reviewer.tasks import sync_batch_task
from tests.fakes import twelvelabs as tl


def test_it_syncs_a_batch_when_run(tl_source, twelvelabs_fake):
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    with override_settings(TASKS={"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}):
        result = sync_batch_task.enqueue(tl_source.pk, tl.TIMED_BATCH)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert (result.return_value["outcome"], result.return_value["items_created"]) == ("succeeded", 7)
    assert Batch.objects.get().item_total == 7


def test_it_is_run_by_the_database_worker(tl_source, twelvelabs_fake):
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    result = sync_batch_task.enqueue(tl_source.pk, tl.TIMED_BATCH)  # settings.TASKS: the database backend
    assert result.status == TaskResultStatus.READY
    assert not SyncRun.objects.exists()

    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)

    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value["outcome"] == "succeeded"
    assert SyncRun.objects.get().batch.provider_batch_id == tl.TIMED_BATCH


def test_it_records_a_provider_failure_as_a_failed_run_not_a_crash(tl_source, twelvelabs_fake):
    with override_settings(TASKS={"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}):
        result = sync_batch_task.enqueue(tl_source.pk, tl.TIMED_BATCH)  # the fake has no such batch
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value["outcome"] == "failed"
    assert "TwelveLabs has no batch" in result.return_value["error"]
