"""Write normalized records into the cache: all-or-nothing, chunked, keeping human work.

Every sync and file import ends here. A run either writes every record of the batch or
changes nothing anyone sees (see write_records for the two ways); either way a SyncRun
row says what happened. Provider fields are rewritten; a human decision on an event is
never overwritten, and events a person decided are kept even when the provider drops
them.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
import sqlite3
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields, is_dataclass, replace
from functools import lru_cache

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from reviewer import redaction, search, webhooks
from reviewer.models import (
    TERMINAL_ITEM_STATUSES,
    Batch,
    BatchStatus,
    Event,
    Item,
    Loading,
    Source,
    SyncOutcome,
    SyncRun,
    SyncState,
)
from reviewer.providers.http import ProviderError
from reviewer.records import BatchRecord, EventRecord, ItemRecord, Malformed, RecordError, content_hash, event_hash

logger = logging.getLogger(__name__)

CHUNK_SIZE = 500  # items per round of bulk writes: bounds memory whatever the batch size

_BATCH_FIELDS = (
    "provider_status", "mode", "analysis_type", "model_name", "prompt", "category", "metadata",
    "provider_review_status", "provider_review_status_updated_at", "viewer_url",
    "provider_created_at", "expires_at", "completed_at",
)  # fmt: skip
ITEM_FIELDS = (
    "status", "custom_id", "analysis_id", "video_name", "text", "error_code", "error_message",
    "finish_reason", "input_tokens", "output_tokens", "import_source_uri", "thumbnail_url", "raw",
)  # fmt: skip
EVENT_FIELDS = (
    "category", "label", "severity", "confidence", "ai_analysis", "start_seconds", "end_seconds",
    "t_start", "t_end", "thumbnail_url", "overlay", "metadata", "raw",
)  # fmt: skip


class Refused(Exception):
    """Malformed records were found and the caller did not ask to skip them."""


def write_records(
    batch_record: BatchRecord,
    records: Iterable[ItemRecord | Malformed],
    *,
    trigger: str,
    source: Source | None = None,
    file_name: str = "",
    skip_invalid: bool = False,
    run: SyncRun | None = None,
) -> SyncRun:
    """Write a batch and its items; returns the saved SyncRun (check ``outcome``).

    ``run``: a SyncRun saved earlier (an import waiting in the queue) to complete, else a new one.

    ``records`` may be a lazy stream; it is consumed once. A RecordError or a
    ProviderError (a provider stream that broke, a failed chunk) raised while
    iterating, or any Malformed record when ``skip_invalid`` is false, undoes the whole
    run.

    Two ways, both all-or-nothing and both short on locks (on SQLite one writer at a
    time: a reviewer's decision waits for whichever transaction is open):
    - a batch with no items yet (the big case: a first sync, an import) is *loaded*:
      its items are written in short committed chunks while ``Batch.loading`` hides
      them, then shown at once; a failure deletes them again, and a load whose process
      died is reclaimed by the next run or by the worker (reclaim_stalled_loads);
    - a batch with items is *updated* in one transaction, which only writes what
      changed: the unchanged items are found before it opens.
    """
    run = run or SyncRun(trigger=trigger, file_name=file_name[:255])
    try:
        batch, leftovers = _claim_when_free(source, batch_record)
    except _LoadBusy as exc:
        return record_failure(run, str(exc))  # the batch is another run's: its state is left alone
    except (Refused, RecordError) as exc:
        return record_failure(run, str(exc), batch=_find_batch(source, batch_record))
    imported_from = file_name[:255] if file_name and source is None else ""  # the batch list names the file
    if batch.loading:
        batch.imported_from = imported_from or batch.imported_from
        return _load(batch, batch_record, records, run, skip_invalid=skip_invalid, leftovers=leftovers)
    try:
        unchanged_ids: set[int] = set()
        records = spooled(_without_unchanged(batch, batch_record, records, run, unchanged_ids))
        with transaction.atomic():
            batch = _upsert_batch(source, batch_record)
            batch.imported_from = imported_from or batch.imported_from
            writer = _ChunkWriter(batch, run, batch_record)
            writer.seen_item_ids |= unchanged_ids
            _write_all(writer, records, run, skip_invalid)
            unlisted_changed = batch_record.complete and _mark_unlisted(batch, writer.seen_item_ids)
            _finish_batch(batch, batch_record, recount=unlisted_changed or _wrote_anything(run))
            return _succeeded(run, batch)
    except (Refused, RecordError, ProviderError) as exc:
        return record_failure(run, str(exc), batch=_find_batch(source, batch_record))


def _write_all(writer: _ChunkWriter, records: Iterable, run: SyncRun, skip_invalid: bool) -> None:
    """Write every record (an ItemRecord, a (position, ItemRecord) pair or a Malformed); refuse malformed ones."""
    for entry in records:
        if isinstance(entry, Malformed):
            run.malformed_lines.append({"line": entry.line, "error": _storable(entry.error)})
            continue
        position, record = entry if isinstance(entry, tuple) else (writer.position, entry)
        if problem := _item_too_long(record):
            run.malformed_lines.append({"line": position + 1, "error": problem})
        else:
            writer.add(record, position)
    writer.flush()
    if run.malformed_lines and not skip_invalid:
        raise Refused(f"{len(run.malformed_lines)} malformed record(s); nothing was imported.")


def _succeeded(run: SyncRun, batch: Batch) -> SyncRun:
    run.batch = batch
    run.outcome = SyncOutcome.SUCCEEDED
    run.finished_at = timezone.now()
    run.save()
    webhooks.sync_finished(run)
    return run


def _wrote_anything(run: SyncRun) -> bool:
    return bool(run.items_created or run.items_updated or run.events_created or run.events_updated
                or run.events_removed)  # fmt: skip


# --- Loading a batch with no items, in committed chunks ----------------------------------


class _LoadBusy(Refused):
    pass


class _LoadLost(Exception):
    """Another run (a take-over, the worker's reclaim) owns this batch's load now: this one stops."""


LOAD_WAIT_SECONDS = 900.0  # how long a run waits for another run's load of its batch to end


def _claim_when_free(source: Source | None, record: BatchRecord) -> tuple[Batch, bool]:
    """_claim, waiting while another live run loads the batch: runs of one batch take turns."""
    deadline = time.monotonic() + LOAD_WAIT_SECONDS
    while True:
        try:
            return _claim(source, record)
        except _LoadBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _claim(source: Source | None, record: BatchRecord) -> tuple[Batch, bool]:
    """The batch row (created if new); marked ``loading`` if it has no items yet. One short transaction.

    A load gets an owner token (``batch.load_owner``): every later transaction of the load
    checks it still owns the batch. Returns the batch and whether a dead load's rows must
    be deleted first. A batch another live run is loading is refused (nothing changes).
    """
    with transaction.atomic():
        existing = _find_batch(source, record)
        batch = _upsert_batch(source, record, copy_fields=False)
        leftovers = False
        if batch.loading:
            if not batch.load_expired:
                raise _LoadBusy("Another sync or import was still loading this batch; nothing was changed. Try again.")
            leftovers = True  # its run died mid-load: this run takes over
        elif not Item.objects.filter(batch=batch).exists():
            batch.loading = Loading.NEW if existing is None else Loading.FIRST
        if batch.loading:
            batch.load_owner, now = uuid.uuid4().hex, timezone.now()
            batch.load_heartbeat_at = batch.sync_heartbeat_at = now
            batch.sync_state = SyncState.RUNNING
            batch.save(update_fields=["loading", "load_owner", "load_heartbeat_at", "sync_heartbeat_at", "sync_state"])
    return batch, leftovers


def _beat(batch: Batch) -> None:
    """Renew the load's heartbeat inside the current transaction; _LoadLost if another run owns the load now."""
    now = timezone.now()
    renewed = Batch.objects.filter(pk=batch.pk, load_owner=batch.load_owner).update(
        load_heartbeat_at=now, sync_heartbeat_at=now
    )
    if not renewed:
        raise _LoadLost(f"Another run took over the load of batch {batch.pk}.")


def _load(batch: Batch, batch_record: BatchRecord, records, run: SyncRun, *, skip_invalid: bool, leftovers: bool):
    try:
        if leftovers:
            _delete_items(batch)
        writer = _ChunkWriter(batch, run, batch_record, commit_chunks=True)
        _write_all(writer, records, run, skip_invalid)
        counts = batch.counted()  # before the last transaction: nothing else writes a loading batch's rows
        with transaction.atomic():
            _beat(batch)
            current = Batch.objects.select_for_update().get(pk=batch.pk)
            current.imported_from = batch.imported_from
            current.loading, current.load_owner = Loading.NONE, ""
            current.set_counts(counts)
            _finish_batch(current, batch_record, recount=False)
            return _succeeded(run, current)
    except _LoadLost as exc:
        logger.warning("%s", exc)
        return record_failure(run, "Another sync or import took this batch over; this one stopped.")
    except (Refused, RecordError, ProviderError) as exc:
        kept = _unload_owned(batch)
        return record_failure(run, str(exc), batch=kept)
    except BaseException:
        try:
            _unload_owned(batch)
        except Exception:  # the database went away too: reclaim_stalled_loads will do it
            logger.exception("could not undo the interrupted load of batch %s", batch.pk)
        raise


def _unload_owned(batch: Batch) -> Batch | None:
    """_unload, unless another run owns the load by now (then it is that run's to finish or undo)."""
    try:
        return _unload(batch)
    except _LoadLost:
        return None


def _unload(batch: Batch) -> Batch | None:
    """Delete what a load wrote; the batch row too if the load made it. Returns the batch kept, if any.

    Only while ``batch.load_owner`` still owns the load (else _LoadLost).
    """
    _delete_items(batch)
    with transaction.atomic():
        _beat(batch)
        current = Batch.objects.select_for_update().get(pk=batch.pk)
        if current.loading == Loading.NEW:
            current.delete()
            return None
        current.loading, current.load_owner = Loading.NONE, ""
        current.save(update_fields=["loading", "load_owner"])
        return current


def _delete_items(batch: Batch) -> None:
    """Delete a loading batch's items and events, a short transaction per chunk, each checking the owner."""
    for model, size in ((Event, 5 * CHUNK_SIZE), (Item, CHUNK_SIZE)):
        while ids := list(model.objects.filter(batch=batch).values_list("pk", flat=True)[:size]):
            with transaction.atomic():
                _beat(batch)
                model.objects.filter(pk__in=ids)._raw_delete(connection.alias)  # nothing refers to them yet


def reclaim_stalled_loads() -> int:
    """Undo the loads whose run died (no heartbeat for SYNC_LEASE); returns how many. Run by the worker.

    A dead load is claimed with one conditional UPDATE (its owner and heartbeat unchanged
    since they were read), so a run taking it over at the same moment and this never both own it.
    """
    reclaimed = 0
    for batch in Batch.objects.exclude(loading=Loading.NONE):
        if not batch.load_expired:
            continue
        token = uuid.uuid4().hex
        claimed = Batch.objects.filter(
            pk=batch.pk, load_owner=batch.load_owner, load_heartbeat_at=batch.load_heartbeat_at
        ).update(load_owner=token, load_heartbeat_at=timezone.now())
        if not claimed:
            continue  # taken over meanwhile
        batch.load_owner = token
        try:
            kept = _unload(batch)
        except _LoadLost:
            continue
        if kept is not None:
            message = "The last sync or import stopped without finishing (its process stopped); nothing was kept."
            Batch.objects.filter(pk=kept.pk).update(sync_state=SyncState.FAILED, last_error=message)
        logger.warning("reclaimed the interrupted load of batch %s", batch)
        reclaimed += 1
    return reclaimed


# --- Updating a batch that has items ------------------------------------------------------


def _without_unchanged(batch: Batch, batch_record: BatchRecord, records, run: SyncRun, unchanged_ids: set[int]):
    """``records`` as (position, record) pairs, minus the items whose cached copy is the same.

    Read before the update's transaction opens: a re-sync or re-import where little
    changed then holds the write lock only for what changed. The unchanged items are
    counted on ``run`` and their ids added to ``unchanged_ids``. The transaction
    compares again, so a change made meanwhile is never lost.
    """
    chunk: list[tuple[int, ItemRecord]] = []
    position = 0
    for record in records:
        if isinstance(record, Malformed):
            yield record
            continue
        if _item_too_long(record):
            yield position, record  # refused by _write_all, naming its place, as in a load
            continue
        chunk.append((position, record))
        position += 1
        if len(chunk) >= CHUNK_SIZE:
            yield from _changed_in(batch, batch_record, chunk, run, unchanged_ids)
            chunk = []
    yield from _changed_in(batch, batch_record, chunk, run, unchanged_ids)


def _changed_in(batch, batch_record, chunk: list[tuple[int, ItemRecord]], run: SyncRun, unchanged_ids: set[int]):
    if not chunk:
        return
    cached = {
        provider_item_id: (pk, digest, position)
        for pk, provider_item_id, digest, position in Item.objects.filter(
            batch=batch, provider_item_id__in=[record.provider_item_id for _, record in chunk]
        ).values_list("pk", "provider_item_id", "content_hash", "position")
    }
    prepared = [(position, *_prepared(record)[:2]) for position, record in chunk]
    if batch_record.carried_item_fields is not None:
        prepared = _merge_cached(batch, batch_record, prepared)
    for (position, record, digest), (original_position, original) in zip(prepared, chunk, strict=True):
        if cached.get(record.provider_item_id, (None, None, None))[1:] == (digest, position):
            unchanged_ids.add(cached[record.provider_item_id][0])
            run.items_unchanged += 1
            run.events_unchanged += len(record.events)
        else:
            yield original_position, original


def spooled(stream: Iterator[ItemRecord | Malformed]) -> Iterator[ItemRecord | Malformed]:
    """Read the whole stream (a provider's download, a file being parsed) into a temporary file, then replay it.

    The write transaction then lasts as long as the database work, not as long as the
    download or the parsing: on SQLite a reviewer's decision would otherwise wait for a
    slow provider or a big file. Memory stays flat (one record at a time); a stream that
    breaks, or a file that cannot be read, raises here, before anything is written.
    """
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _replay, or below on failure)
    try:
        for record in stream:
            pickle.dump(record, spool, protocol=pickle.HIGHEST_PROTOCOL)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return _replay(spool)


def _replay(spool) -> Iterator[ItemRecord | Malformed]:
    # Only our own records, written just above by this process, are unpickled.
    with spool:
        while True:
            try:
                yield pickle.load(spool)
            except EOFError:
                return


def record_failure(run: SyncRun, error: str, *, batch: Batch | None = None, permanent: bool = False) -> SyncRun:
    """Save ``run`` as failed (with zeroed counts: nothing was written) and flag the batch.

    ``permanent``: trying again cannot help, so the batch's automatic re-syncs pause.
    """
    for counter in (
        "items_created", "items_updated", "items_unchanged",
        "events_created", "events_updated", "events_unchanged", "events_removed",
    ):  # fmt: skip
        setattr(run, counter, 0)
    error = redaction.redact(_storable(error))  # a garbage body can carry NULs, or echo a key
    if run.pk is not None and not SyncRun.objects.filter(pk=run.pk).exists():
        run.pk = None  # saved inside the transaction that was rolled back
    if batch is not None and not Batch.objects.filter(pk=batch.pk).exists():
        batch = None  # a load that made the row was undone
    run.batch = batch
    run.outcome = SyncOutcome.FAILED
    run.error = error
    run.finished_at = timezone.now()
    run.save()
    if batch is not None:
        batch.last_error, batch.sync_state, batch.sync_paused = error, SyncState.FAILED, permanent
        Batch.objects.filter(pk=batch.pk).update(last_error=error, sync_state=SyncState.FAILED, sync_paused=permanent)
    webhooks.sync_finished(run)
    logger.info("sync run %s failed: %s", run.pk, error)
    return run


def event_keys(events: list[EventRecord]) -> Iterator[str]:
    """Yield a stable key per event: the same event gets the same key on every sync.

    Events identical in category, time and label are told apart by their order.
    """
    seen: Counter[str] = Counter()
    for event in events:
        base = hashlib.sha1(event.identity().encode()).hexdigest()
        count = seen[base]
        seen[base] += 1
        yield base if count == 0 else f"{base}-{count}"


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _map_strings(value, change):
    """``value`` with ``change`` applied to every string in it: strings, dict keys and values, lists, dataclasses."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {_map_strings(key, change): _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_map_strings(item, change) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: _map_strings(getattr(value, f.name), change) for f in fields(value)})
    return value


def _storable(value):
    """``value`` with every NUL and lone surrogate replaced by U+FFFD, in strings, dicts, lists and dataclasses.

    PostgreSQL's text and jsonb columns refuse NUL, which SQLite stores; no database
    driver can encode a lone surrogate ("\\ud800" in JSON). One such character in a
    provider's label or error body failed the whole sync. Replaced the same way on every
    database, so both hold the same data. (Records are only rebuilt when their JSON
    shows one; see _ChunkWriter.add.)
    """
    return _map_strings(value, lambda text: _UNSTORABLE.sub("\ufffd", text))


def _insert_rows(model, rows: list[dict]) -> None:
    """Insert ``rows`` (field values by attname; a missing one takes the field's default).

    Building a model instance per row for bulk_create was a third of a first sync.
    """
    _execute(_insert_statements(model, rows))


def _insert_statements(model, rows: list[dict]) -> list[tuple[str, list]]:
    """The INSERTs of ``rows``, many rows each, with their values (prepared outside any transaction by a load).

    Many rows a statement, not one statement a row (executemany): on SQLite the event
    table's full-text trigger makes every statement keep an undo journal of the pages it
    touches, which then cost more than the rows themselves.
    """
    meta, quote = model._meta, connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    columns = [(field.attname, field.get_default(), *_db_value(field)) for field in fields]
    values = [
        value if type(value) is same or value is None else to_db(value)
        for row in rows
        for name, default, same, to_db in columns
        for value in (row.get(name, default),)
    ]
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) VALUES "
    placeholders = f"({', '.join(['%s'] * len(fields))})"
    step = len(fields) * max(1, _max_parameters() // len(fields))
    return [
        (head + ", ".join([placeholders] * (len(part) // len(fields))), part)
        for part in (values[start : start + step] for start in range(0, len(values), step))
    ]


# The Python type whose values Django's get_db_prep_save returns as they are, by field
# type: such values skip it (called per value, it was a third of a first sync).
_UNCHANGED_TYPES = {
    "CharField": str, "TextField": str, "FloatField": float, "BooleanField": bool, "ForeignKey": int,
    "PositiveIntegerField": int, "PositiveSmallIntegerField": int,
}  # fmt: skip


def _db_value(field) -> tuple[type | None, Callable]:
    """The type of ``field``'s values stored as they are (None: none is), and the conversion of the others."""
    if field.get_internal_type() == "JSONField":
        ops, encoder = connection.ops, field.encoder
        return None, lambda value: ops.adapt_json_value(value, encoder)
    return _UNCHANGED_TYPES.get(field.get_internal_type()), lambda value: field.get_db_prep_save(value, connection)


def _max_parameters() -> int:
    """How many parameters one statement may have on this database."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 65535  # PostgreSQL's wire protocol counts them in 16 bits


def _execute(statements: list[tuple[str, list]]) -> None:
    with connection.cursor() as cursor:
        for sql, values in statements:
            cursor.execute(sql, values)


def _update_rows(model, objects: list, field_names: list[str]) -> None:
    """Write ``field_names`` of every object: one ``UPDATE ... WHERE id = %s`` sent with executemany.

    Django's bulk_update builds one CASE expression per field over the whole batch, which
    SQLite evaluates row by row: 40,000 changed events took 80 s (inside the sync's write
    transaction, so every reviewer waited); this takes about a second.
    """
    if not objects:
        return
    meta, quote = model._meta, connection.ops.quote_name
    fields = [meta.get_field(name) for name in field_names]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    rows = [[field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields] + [obj.pk]
            for obj in objects]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _find_batch(source: Source | None, record: BatchRecord) -> Batch | None:
    lookup = {"source": source} if source else {"source__isnull": True, "provider": record.provider}
    return Batch.objects.filter(provider_batch_id=record.provider_batch_id, **lookup).first()


def _upsert_batch(source: Source | None, record: BatchRecord, *, copy_fields: bool = True) -> Batch:
    """The batch row, created if new, locked for this run: syncs and imports of one batch take turns.

    ``copy_fields``: write the record's batch fields now (an update), not when a load ends.

    Two first syncs of one new batch both find no row; the second insert then breaks the
    unique constraint (PostgreSQL), so it waits for the first to commit and takes its row.
    """
    if problem := _too_long(record, Batch, _BATCH_FIELDS + ("provider_batch_id",)):
        raise RecordError(f"The batch's {problem}.")
    batch = _find_batch(source, record)
    if batch is None:
        try:
            with transaction.atomic():  # a savepoint: the conflict must not end the run's transaction
                batch = Batch.objects.create(
                    source=source, provider=record.provider, provider_batch_id=record.provider_batch_id
                )
        except IntegrityError:
            batch = _find_batch(source, record)
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    if copy_fields:
        _copy_batch_fields(batch, record)
        batch.save()
    return batch


def _too_long(record, model, names: tuple[str, ...]) -> str:
    """'<field> is longer than N characters' for the first text field of ``record`` over its column; else ''.

    SQLite stores any length and PostgreSQL refuses: both refuse here, with the same message.
    """
    for name, limit in _length_limits(model, names):
        value = getattr(record, name, None)
        if isinstance(value, str) and len(value) > limit:
            return f"{name.replace('_', ' ')} is longer than {limit} characters ({len(value):,})"
    return ""


@lru_cache(maxsize=8)
def _length_limits(model, names: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """The fields of ``names`` with a length limit, and the limit: looked up once, checked on every record."""
    fields_ = (model._meta.get_field(name) for name in names)
    return tuple((field.name, field.max_length) for field in fields_ if getattr(field, "max_length", None))


def _copy_batch_fields(batch: Batch, record: BatchRecord) -> None:
    # Only what the record knows: a CSV re-import must not blank the prompt a JSON
    # import stored earlier.
    for name in _BATCH_FIELDS:
        value = _storable(getattr(record, name))
        if value not in ("", None, {}):
            setattr(batch, name, value)
    if record.status:
        batch.status = record.status


def _finish_batch(batch: Batch, record: BatchRecord, *, recount: bool = True) -> None:
    """Copy the batch fields, recount (``recount``: something was written) and mark the batch synced."""
    _copy_batch_fields(batch, record)  # readers may learn fields (e.g. mode) while streaming
    if recount or batch.event_facets is None:
        batch.refresh_counts()
    if not record.status:
        done = all(status in TERMINAL_ITEM_STATUSES for status in batch.item_counts)
        batch.status = BatchStatus.COMPLETED if done else BatchStatus.PROCESSING
    batch.last_synced_at = timezone.now()
    batch.sync_state = SyncState.IDLE
    batch.last_error = ""
    batch.sync_paused = False
    batch.gone_upstream = False
    batch.save()


def _item_too_long(record: ItemRecord) -> str:
    what = f"{record.provider_item_id[:60]}: "
    if problem := _too_long(record, Item, ("provider_item_id", *ITEM_FIELDS)):
        return what + problem
    for index, event in enumerate(record.events):
        if problem := _too_long(event, Event, EVENT_FIELDS):
            return f"{what}event {index}: {problem}"
    return ""


def _mark_unlisted(batch: Batch, seen: set[int]) -> bool:
    """Flag the cached items a complete listing no longer names (kept, decisions and all); unflag the rest.

    Returns whether any flag changed.
    """
    flagged = set(batch.items.filter(gone_upstream=True).values_list("pk", flat=True))
    unlisted = set(batch.items.values_list("pk", flat=True)) - seen - flagged
    back = flagged & seen
    for ids, value in ((sorted(unlisted), True), (sorted(back), False)):
        for start in range(0, len(ids), CHUNK_SIZE):
            Item.objects.filter(pk__in=ids[start : start + CHUNK_SIZE]).update(gone_upstream=value)
    return bool(unlisted or back)


def _merge_cached(
    batch: Batch, batch_record: BatchRecord, chunk: list[tuple[int, ItemRecord, str]]
) -> list[tuple[int, ItemRecord, str]]:
    """Fill what a file does not carry from the cached items and events; returns the chunk, re-hashed.

    A CSV re-import keeps the raw payloads, exact seconds, errors, tokens and the item
    order of the cached copy; overlay and metadata are merged key by key. A decided
    event whose file approval is the decision itself (our own export coming back)
    keeps its provider approval.
    """
    item_fields = [name for name in ITEM_FIELDS if name not in batch_record.carried_item_fields]
    event_carried = batch_record.carried_event_fields
    cached_items = {
        item.provider_item_id: item
        for item in Item.objects.filter(batch=batch, provider_item_id__in=[r.provider_item_id for _, r, _ in chunk])
    }
    cached_events: dict[int, dict[str, Event]] = {}
    for event in Event.objects.filter(item_id__in=[item.pk for item in cached_items.values()]):
        cached_events.setdefault(event.item_id, {})[event.key] = event
    merged = []
    for position, record, digest in chunk:
        item = cached_items.get(record.provider_item_id)
        if item is not None:
            position = item.position
            for name in item_fields:
                setattr(record, name, getattr(item, name))
            events = cached_events.get(item.pk, {})
            record.event_keys = _match_cached(record.events, events)
            for key, event_record in zip(record.event_keys, record.events, strict=True):
                cached = events.get(key)
                if cached is not None:
                    _merge_event(event_record, cached, event_carried)
            digest = hashlib.sha256(record.content_json().encode()).hexdigest()
        merged.append((position, record, digest))
    return merged


# What tells apart events identical in category, time and label, when a file lists them in
# another order than the cache (a sorted export) or only some of them (a filtered one).
_SIMILARITY_FIELDS = ("severity", "ai_analysis", "confidence", "thumbnail_url", "label", "t_start", "t_end")


def _match_cached(records: list[EventRecord], cached: dict[str, Event]) -> list[str]:
    """The key of each file event: its cached twin's where there is one, else a new key.

    An identity shared by several events (same category, time and label) is matched by
    their other fields, not by their order in the file: a file need not keep the cache's
    order, nor list every event (a filtered export), and a decision must stay on its event.
    """
    by_base: dict[str, list[Event]] = defaultdict(list)
    for key, event in cached.items():
        by_base[key.split("-", 1)[0]].append(event)
    keys = list(event_keys(records))
    used = set(cached)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[key.split("-", 1)[0]].append(index)
    for base, indexes in groups.items():
        candidates = by_base.get(base, [])
        if len(indexes) == 1 and len(candidates) <= 1:
            if candidates:
                keys[indexes[0]] = candidates[0].key
            continue
        for index in indexes:
            if candidates:
                best = max(candidates, key=lambda event, record=records[index]: _likeness(record, event))
                candidates.remove(best)
                keys[index] = best.key
            else:  # more in the file than cached: a key no cached event has
                keys[index] = next(f"{base}-{n}" for n in range(1, 10**6) if f"{base}-{n}" not in used)
            used.add(keys[index])
    return keys


def _likeness(record: EventRecord, event: Event) -> tuple[int, int]:
    same = sum(getattr(record, name) == getattr(event, name) for name in _SIMILARITY_FIELDS)
    return same, -event.position  # a tie goes to the earlier event, as order-based keys did


def _merge_event(record: EventRecord, cached: Event, carried: frozenset[str]) -> None:
    for name in EVENT_FIELDS:
        if name not in carried:
            setattr(record, name, getattr(cached, name))
        elif name in ("overlay", "metadata"):
            # Key by key; an equal value keeps its cached form (a CSV's 12.0 for a cached 12).
            kept = getattr(cached, name)
            setattr(record, name, kept | {k: v for k, v in getattr(record, name).items() if kept.get(k) != v})
    if record.label == "" and cached.label == cached.category:
        record.label = cached.label  # a CSV leaves a label that repeats the category blank
    if cached.decided_at is not None and record.provider_approval == cached.approval:
        record.provider_approval = cached.provider_approval


def _keys_of(record: ItemRecord) -> list[str] | Iterator[str]:
    """The keys of the record's events: matched to the cached ones (a file import), else computed."""
    return record.event_keys if record.event_keys is not None else event_keys(record.events)


def _new_event_row(record: EventRecord, ids: tuple[int, int], key: str, position: int, digest: str, words: str) -> dict:
    """The column values of a new event (for _insert_statements): nobody decided it, so its approval is the provider's.

    ``ids``: its item's and batch's; ``words``: its item's searchable words.
    """
    return {**vars(record), "item_id": ids[0], "batch_id": ids[1], "key": key, "position": position,
            "content_hash": digest, "approval": record.provider_approval,
            "search_text": search.event_document(record, words)}  # fmt: skip


def _prepared(record: ItemRecord) -> tuple[ItemRecord, str, list[str]]:
    """``record`` made storable (no NUL, no lone surrogate, no API key), its content hash and its events' JSON.

    The events' JSON is what records.event_hash hashes: a load needs no second encoding of them.
    """
    encoded, events = record.content_parts()
    try:
        data = encoded.encode()  # a lone surrogate cannot be encoded
    except UnicodeEncodeError:
        data = None
    if data is None or "\\u0000" in encoded:  # JSON always writes a NUL this way: clean only those records
        record = _storable(record)
        encoded, events = record.content_parts()
        data = encoded.encode()
    if redaction.mentions_secret(encoded):  # a provider echoed a key into an item (an error, a raw field)
        record = _map_strings(record, redaction.redact)
        encoded, events = record.content_parts()
        data = encoded.encode()
    return record, hashlib.sha256(data).hexdigest(), events


# Events per committed chunk of a load: under a tenth of a second of writing on SQLite,
# about the most a reviewer's decision then waits for the write lock (writers take
# turns: reviewer/sqlite/base.py).
LOAD_CHUNK_EVENTS = 1000


class _ChunkWriter:
    """Buffers item records and writes them a chunk at a time with bulk queries.

    ``commit_chunks`` (a load): each chunk is its own transaction, and renews the batch's heartbeat.
    """

    def __init__(self, batch: Batch, run: SyncRun, batch_record: BatchRecord, *, commit_chunks: bool = False) -> None:
        self.batch = batch
        self.run = run
        self.batch_record = batch_record
        self.commit_chunks = commit_chunks
        self.seen_item_ids: set[int] = set()  # every item this run named (see _mark_unlisted)
        self.reworded_item_ids: set[int] = set()  # items whose searchable words changed (see _write_events)
        # (position, record, content hash, its events' JSON)
        self.buffer: list[tuple[int, ItemRecord, str, list[str]]] = []
        self.buffered_events = 0
        self.position = 0  # the next item's position, when the records do not say

    def add(self, record: ItemRecord, position: int) -> None:
        record, digest, events_json = _prepared(record)
        self.buffer.append((position, record, digest, events_json))
        self.position = position + 1
        self.buffered_events += len(record.events)
        if len(self.buffer) >= CHUNK_SIZE or (self.commit_chunks and self.buffered_events >= LOAD_CHUNK_EVENTS):
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        chunk, self.buffer, self.buffered_events = self.buffer, [], 0
        if self.commit_chunks:
            self._load(chunk)
        else:
            self._write([(position, record, digest) for position, record, digest, _ in chunk])

    def _load(self, chunk: list[tuple[int, ItemRecord, str, list[str]]]) -> None:
        """Insert a chunk of a load: new items, then their events, each in a transaction of its own.

        The rows are prepared before each transaction opens, so the write lock is held
        only while SQLite inserts (a loading batch is hidden: nobody sees the items
        before their events, and a load that dies half-way is deleted whole).
        """
        words = {record.provider_item_id: search.item_document(record) for _, record, _, _ in chunk}
        items = [
            {**{name: getattr(record, name) for name in ITEM_FIELDS}, "batch_id": self.batch.pk,
             "provider_item_id": record.provider_item_id, "position": position, "content_hash": digest,
             "search_text": words[record.provider_item_id]}
            for position, record, digest, _ in chunk
        ]  # fmt: skip
        statements = _insert_statements(Item, items)
        with transaction.atomic():
            _beat(self.batch)
            _execute(statements)
        item_ids = dict(
            Item.objects.filter(
                batch=self.batch, provider_item_id__in=[row["provider_item_id"] for row in items]
            ).values_list("provider_item_id", "pk")
        )
        self.seen_item_ids.update(item_ids.values())
        events = [
            _new_event_row(event_record, (item_ids[record.provider_item_id], self.batch.pk), key, position,
                           event_hash(event_json, position), words[record.provider_item_id])
            for _, record, _, events_json in chunk
            for position, (key, event_record, event_json) in enumerate(
                zip(_keys_of(record), record.events, events_json, strict=True)
            )
        ]  # fmt: skip
        statements = _insert_statements(Event, events)
        with transaction.atomic():
            _beat(self.batch)
            _execute(statements)
        self.run.items_created += len(items)
        self.run.events_created += len(events)

    def _write(self, chunk: list[tuple[int, ItemRecord, str]]) -> None:
        if self.batch_record.carried_item_fields is not None:
            chunk = _merge_cached(self.batch, self.batch_record, chunk)
        changed = self._write_items(chunk)
        if changed:
            self._write_events(changed)

    def _write_items(self, chunk: list[tuple[int, ItemRecord, str]]) -> list[tuple[Item, ItemRecord, bool]]:
        ids = [record.provider_item_id for _, record, _ in chunk]
        existing = {
            item.provider_item_id: item
            for item in Item.objects.filter(batch=self.batch, provider_item_id__in=ids).only(
                "id", "provider_item_id", "content_hash", "position", "search_text"
            )
        }
        to_create, to_update, changed = [], [], []
        for position, record, digest in chunk:
            item = existing.get(record.provider_item_id)
            if item is not None and item.content_hash == digest and item.position == position:
                self.run.items_unchanged += 1
                self.run.events_unchanged += len(record.events)
                continue
            is_new = item is None
            if is_new:
                item = Item(batch=self.batch, provider_item_id=record.provider_item_id)
                to_create.append(item)
            else:
                to_update.append(item)
            for name in ITEM_FIELDS:
                setattr(item, name, getattr(record, name))
            item.position = position
            item.content_hash = digest
            words = search.item_document(record)
            if not is_new and words != item.search_text:  # its events' search text holds the item's words
                self.reworded_item_ids.add(item.pk)
            item.search_text = words
            changed.append((item, record, is_new))
        Item.objects.bulk_create(to_create)
        self.seen_item_ids.update(item.pk for item in existing.values())
        self.seen_item_ids.update(item.pk for item in to_create)
        _update_rows(Item, to_update, [*ITEM_FIELDS, "position", "content_hash", "search_text"])
        self.run.items_created += len(to_create)
        self.run.items_updated += len(to_update)
        return changed

    def _write_events(self, changed: list[tuple[Item, ItemRecord, bool]]) -> None:
        updated_item_ids = [item.pk for item, _, is_new in changed if not is_new]
        # Locked so a decision committed meanwhile (PostgreSQL) is seen, not overwritten.
        existing: dict[tuple[int, str], Event] = {
            (event.item_id, event.key): event
            for event in Event.objects.select_for_update()
            .filter(item_id__in=updated_item_ids)
            .only("id", "item_id", "key", "position", "content_hash", "decided_at", "approval", "provider_approval")
        }
        complete = self.batch_record.complete
        to_create, to_update, reworded, seen = [], [], [], set()
        for item, record, _ in changed:
            for position, (key, event_record) in enumerate(zip(_keys_of(record), record.events, strict=True)):
                seen.add((item.pk, key))
                event = existing.get((item.pk, key))
                if event is not None and not complete:
                    position = event.position  # a partial file does not reorder what it leaves out
                digest = content_hash([vars(event_record), position])
                if event is not None and event.content_hash == digest:
                    self.run.events_unchanged += 1
                    if item.pk in self.reworded_item_ids:
                        event.search_text = search.event_document(event_record, item.search_text)
                        reworded.append(event)
                    continue
                if event is None:
                    to_create.append(_new_event_row(event_record, (item.pk, self.batch.pk), key, position, digest,
                                                    item.search_text))  # fmt: skip
                    continue
                to_update.append(event)
                for name in EVENT_FIELDS:
                    setattr(event, name, getattr(event_record, name))
                event.position = position
                event.content_hash = digest
                event.search_text = search.event_document(event_record, item.search_text)
                event.provider_approval = event_record.provider_approval
                if event.decided_at is None:
                    event.approval = event_record.provider_approval
        _insert_rows(Event, to_create)
        _update_rows(
            Event,
            to_update,
            [*EVENT_FIELDS, "position", "content_hash", "provider_approval", "approval", "search_text"],
        )
        _update_rows(Event, reworded, ["search_text"])
        # Gone upstream: drop them, unless a person decided them (their work is kept).
        gone = [
            event.pk
            for (item_id, key), event in existing.items()
            if complete and (item_id, key) not in seen and event.decided_at is None
        ]
        if gone:
            Event.objects.filter(pk__in=gone).delete()
        self.run.events_created += len(to_create)
        self.run.events_updated += len(to_update)
        self.run.events_removed += len(gone)
