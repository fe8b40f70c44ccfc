"""Background jobs, run by ``manage.py db_worker`` (django-tasks with the database backend)."""

from __future__ import annotations

from django_tasks import task

from reviewer import fetch
from reviewer.models import Source, SyncTrigger


@task()
def sync_batch_task(source_id: int, batch_id: str, trigger: str = SyncTrigger.FETCH) -> dict:
    """Fetch one batch from its source; returns the SyncRun as a dict (stored as the task's result).

    A provider failure is a failed SyncRun, not a failed task: the outcome and the
    error are on the run and on the batch. Raises Source.DoesNotExist for a deleted source.
    """
    source = Source.objects.get(pk=source_id)
    return fetch.fetch_batch(source, batch_id, trigger).as_dict()
