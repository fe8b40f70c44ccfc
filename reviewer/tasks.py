"""Background jobs, run by ``manage.py db_worker`` (django-tasks with the database backend)."""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.utils import timezone
from django_tasks import task

from reviewer import fetch, importers, media, sync
from reviewer.models import Batch, Source, SyncRun, SyncTrigger

logger = logging.getLogger(__name__)


@task()
def sync_batch_task(source_id: int, batch_id: str, trigger: str = SyncTrigger.FETCH) -> dict:
    """Fetch one batch from its source; returns the SyncRun as a dict (stored as the task's result).

    A provider failure is a failed SyncRun, not a failed task: the outcome and the
    error are on the run and on the batch. Raises Source.DoesNotExist for a deleted source.
    """
    source = Source.objects.get(pk=source_id)
    return fetch.fetch_batch(source, batch_id, trigger).as_dict()


@task()
def store_images_task(batch_id: int) -> dict:
    """Store the batch's thumbnails (reviewer/media.py); failed ones are tried again later.

    Returns the counts (stored as the task's result). A batch deleted meanwhile is no error.
    """
    batch = Batch.objects.filter(pk=batch_id).select_related("source").first()
    if batch is None:
        return {"stored": 0, "kept": 0, "failed": 0}
    counts = media.store_images(batch)
    if counts.failed:
        retry_at = timezone.now() + media.IMAGE_RETRY_DELAY
        store_images_task.using(run_after=retry_at).enqueue(batch_id)
    return vars(counts)


@task()
def import_file_task(run_id: int, stored_name: str, options: dict) -> dict:
    """Import an uploaded file saved in storage (the Import page), completing its queued SyncRun.

    The upload is deleted afterwards, whatever the outcome: the SyncRun keeps the result.
    """
    run = SyncRun.objects.get(pk=run_id)
    try:
        with default_storage.open(stored_name, "rb") as binary:
            run = importers.import_file(binary, name=run.file_name, run=run, **options)
    except Exception:
        # A bug, not a bad file: the page must not say "Importing…" for ever.
        logger.exception("import of %s (run %s) crashed", run.file_name, run_id)
        sync.record_failure(run, "The import crashed (an internal error; see the server log). Nothing was imported.")
        raise
    finally:
        default_storage.delete(stored_name)
    return run.as_dict()
