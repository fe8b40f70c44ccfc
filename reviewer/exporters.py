"""CSV and JSON out: exactly the rows a filtered batch page shows, streamed.

One code path for the export views and ``manage.py export_batch``. Items are read in
chunks with their shown events prefetched per chunk (``.iterator(chunk_size=…)``), so
memory stays flat whatever the batch size.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from reviewer import csv_columns
from reviewer.filters import BatchFilter
from reviewer.models import Batch, Event, Item
from reviewer.providers import events as sdk_events

CHUNK_SIZE = 500  # items per database round trip


class _Line:
    """A file-like object whose write() returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def _shown_items(batch_filter: BatchFilter) -> Iterator[Item]:
    return batch_filter.items().iterator(chunk_size=CHUNK_SIZE)


# --- CSV ----------------------------------------------------------------------------


CSV_BUFFER = 64 * 1024  # characters per yielded piece: one small write per row is slow to stream

# The event and item columns one CSV row needs, read as flat tuples (no model instances).
_CSV_FIELDS = (
    "t_start", "t_end", "approval", "category", "label", "ai_analysis", "severity", "confidence", "thumbnail_url",
    "item__video_name", "item__custom_id", "item__provider_item_id", "item__analysis_id", "item__status",
    "item__import_source_uri", "item__text",
)  # fmt: skip


# Read too for ``extended`` (csv_columns.REVIEW_COLUMNS); their keys there, in this order.
_REVIEW_FIELDS = ("pk", "provider_approval", "decided_by__username", "decided_at", "reason", "note")
_REVIEW_KEYS = ("event_id", "provider_approval", "decided_by", "decided_at", "reason", "note")


def csv_rows(batch_filter: BatchFilter, *, extended: bool = False) -> Iterator[str]:
    """Yield the CSV text in pieces of about CSV_BUFFER characters: the header, then one row per shown event.

    ``extended``: the seed page's 17 columns, then who decided each event, when, why and the note.
    """
    writer = csv.writer(_Line())
    batch = batch_filter.batch
    batch_values = {"prompt": batch.prompt, "batch_id": batch.provider_batch_id, "viewer_url": batch.viewer_url}
    fields, keys = (_CSV_FIELDS + _REVIEW_FIELDS, _CSV_KEYS + _REVIEW_KEYS) if extended else (_CSV_FIELDS, _CSV_KEYS)
    header = csv_columns.EXTENDED_HEADER if extended else csv_columns.HEADER
    yield writer.writerow(header)  # at once: the download starts before any row is read
    pending: list[str] = []
    size = 0
    for row in _csv_event_rows(batch_filter, fields):
        values = dict(zip(keys, row, strict=True))
        values.update(batch_values)
        line = writer.writerow(csv_columns.write_row(values, extended=extended))
        pending.append(line)
        size += len(line)
        if size >= CSV_BUFFER:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)


def _csv_event_rows(batch_filter: BatchFilter, fields: tuple[str, ...]) -> Iterator[tuple]:
    """The shown events in page order, as tuples of ``fields``, read in chunks.

    The orders whose item order is a plain column are one flat query; the severity and
    confidence orders rank items by an aggregate, so they go item by item as the page does.
    """
    event_order = batch_filter.event_order()
    item_order = {
        "": ["item__position", "item_id"],
        "time": ["item__position", "item_id"],
        "video": ["item__video_name", "item__custom_id", "item__provider_item_id", "item_id"],
    }.get(batch_filter.sort)
    if item_order is not None:
        events = batch_filter.events().order_by(*item_order, *event_order).values_list(*fields)
        yield from events.iterator(chunk_size=2000)
        return
    for item in _shown_items(batch_filter):
        for event in item.shown_events:
            yield tuple(_attribute(event, item, name) for name in fields)


def _attribute(event: Event, item: Item, name: str) -> object:
    if name == "decided_by__username":
        return event.decided_by.get_username() if event.decided_by_id else None
    return getattr(item, name.removeprefix("item__")) if name.startswith("item__") else getattr(event, name)


# The keys of csv_columns.COLUMNS, in _CSV_FIELDS order.
_CSV_KEYS = tuple(name.removeprefix("item__") for name in _CSV_FIELDS)


# --- JSON ---------------------------------------------------------------------------


def json_chunks(batch_filter: BatchFilter) -> Iterator[str]:
    """Yield the JSON document in pieces: ``{"batch_metadata": …, "results": [ … ]}``.

    The shape of NomadicML's ``get_batch_analysis``; it imports back unchanged.
    """
    yield '{"batch_metadata": ' + json.dumps(batch_metadata(batch_filter), ensure_ascii=False)
    yield ', "results": ['
    separator = ""
    for item in _shown_items(batch_filter):
        yield separator + json.dumps(_result(batch_filter.batch, item), ensure_ascii=False)
        separator = ", "
    yield "]}\n"


def batch_metadata(batch_filter: BatchFilter) -> dict:
    batch = batch_filter.batch
    metadata = {
        "batch_id": batch.provider_batch_id,
        "provider": batch.provider,
        "batch_viewer_url": batch.viewer_url,
        "status": batch.provider_status or batch.status,
        "metadata": batch.metadata,
        **batch.adapter.export_metadata(batch),
    }
    for name in ("provider_created_at", "expires_at", "completed_at"):
        value = getattr(batch, name)
        if value:
            metadata[name.removeprefix("provider_")] = value.isoformat().replace("+00:00", "Z")
    if batch_filter.is_active:
        # A re-import of this file must leave the events the filter left out alone.
        metadata["export_filter"] = batch_filter.query_string(page=None)
    return metadata


def _result(batch: Batch, item: Item) -> dict:
    result = batch.adapter.export_result(batch, item)
    if item.thumbnail_url:
        result["thumbnail_url"] = item.thumbnail_url
    result["events"] = [sdk_events.to_json(event) for event in item.shown_events]
    return result


def file_name(batch_filter: BatchFilter, extension: str) -> str:
    """``<batch id>-<filter>.<ext>``, safe for a Content-Disposition header."""
    return safe_file_name(f"{batch_filter.batch.provider_batch_id}-{batch_filter.describe()}", extension)


def safe_file_name(stem: str, extension: str) -> str:
    """``stem.extension`` with only letters, digits, ``-_.`` (the rest ``_``), for a Content-Disposition header."""
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in stem)
    return f"{safe[:150]}.{extension}"
