"""CSV and JSON out: exactly the rows a filtered batch page shows, streamed.

One code path for the export views and ``manage.py export_batch``. Items are read in
chunks with their shown events prefetched per chunk (``.iterator(chunk_size=…)``), so
memory stays flat whatever the batch size.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from reviewer.filters import BatchFilter
from reviewer.importers import CSV_COLUMNS
from reviewer.models import Batch, Event, Item

CHUNK_SIZE = 500  # items per database round trip
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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


def csv_rows(batch_filter: BatchFilter) -> Iterator[str]:
    """Yield the CSV text in pieces of about CSV_BUFFER characters: the header, then one row per shown event."""
    writer = csv.writer(_Line())
    batch = batch_filter.batch
    yield writer.writerow(CSV_COLUMNS)  # at once: the download starts before any row is read
    pending: list[str] = []
    size = 0
    for row in _csv_event_rows(batch_filter):
        line = writer.writerow([_neutralize(value) for value in _csv_values(batch, *row)])
        pending.append(line)
        size += len(line)
        if size >= CSV_BUFFER:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)


def _csv_event_rows(batch_filter: BatchFilter) -> Iterator[tuple]:
    """The shown events in page order, as tuples of _CSV_FIELDS, read in chunks.

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
        events = batch_filter.events().order_by(*item_order, *event_order).values_list(*_CSV_FIELDS)
        yield from events.iterator(chunk_size=2000)
        return
    for item in _shown_items(batch_filter):
        for event in item.shown_events:
            yield tuple(_attribute(event, item, name) for name in _CSV_FIELDS)


def _attribute(event: Event, item: Item, name: str) -> object:
    return getattr(item, name.removeprefix("item__")) if name.startswith("item__") else getattr(event, name)


def _csv_values(
    batch: Batch, t_start, t_end, approval, category, label, ai_analysis, severity, confidence, thumbnail_url,
    video_name, custom_id, provider_item_id, analysis_id, status, import_source_uri, text,
) -> list[str]:  # fmt: skip
    # Columns and values as the NomadicML seed page defines them (PROVIDERS.md, "CSV").
    timestamp = t_start if t_start == t_end or not t_end else f"{t_start}-{t_end}"
    return [
        batch.prompt,
        video_name or custom_id or provider_item_id,  # Item.display_name
        approval,
        timestamp,
        category,
        "" if label == category else label,
        ai_analysis,
        severity,
        provider_item_id,
        analysis_id,
        batch.provider_batch_id,
        batch.viewer_url,
        status,
        "" if confidence is None else repr(confidence),
        thumbnail_url,
        import_source_uri,
        text,
    ]


def _neutralize(value: str) -> str:
    """Keep spreadsheets from running a provider's text as a formula (the importer undoes it)."""
    if value and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


# --- JSON ---------------------------------------------------------------------------


def json_chunks(batch_filter: BatchFilter) -> Iterator[str]:
    """Yield the JSON document in pieces: ``{"batch_metadata": …, "results": [ … ]}``.

    The shape of NomadicML's ``get_batch_analysis``; it imports back unchanged.
    """
    yield '{"batch_metadata": ' + json.dumps(batch_metadata(batch_filter.batch), ensure_ascii=False)
    yield ', "results": ['
    separator = ""
    for item in _shown_items(batch_filter):
        yield separator + json.dumps(_result(batch_filter.batch, item), ensure_ascii=False)
        separator = ", "
    yield "]}\n"


def batch_metadata(batch: Batch) -> dict:
    metadata = {
        "batch_id": batch.provider_batch_id,
        "provider": batch.provider,
        "batch_viewer_url": batch.viewer_url,
        "status": batch.provider_status or batch.status,
        "metadata": batch.metadata,
    }
    if batch.provider == "twelvelabs":
        metadata.update(analysis_mode=batch.mode, model_name=batch.model_name)
    else:
        metadata.update(
            batch_type=batch.mode,
            analysis_type=batch.analysis_type,
            review_status=batch.provider_review_status,
            review_status_updated_at=batch.provider_review_status_updated_at or "N/A",
        )
        if batch.mode == "ask" or batch.prompt:
            metadata.update(prompt=batch.prompt, category=batch.category)
    for name in ("provider_created_at", "expires_at", "completed_at"):
        value = getattr(batch, name)
        if value:
            metadata[name.removeprefix("provider_")] = value.isoformat().replace("+00:00", "Z")
    return metadata


def _result(batch: Batch, item: Item) -> dict:
    events = [_event(event) for event in item.shown_events]
    if batch.provider == "twelvelabs":
        # The provider's own fields, as the results stream gave them, plus the events.
        result = {key: item.raw[key] for key in ("task_id", "custom_id", "status", "data", "error") if key in item.raw}
        result.setdefault("task_id", item.provider_item_id)
        result.setdefault("status", item.status)
    else:
        result = {
            "video_id": item.provider_item_id,
            "analysis_id": item.analysis_id or None,
            "mode": batch.mode,
            "status": item.status,
            "video_name": item.video_name,
            "import_source_uri": item.import_source_uri,
            "summary": item.text,
        }
        if item.error_message:
            result["error"] = item.error_message
    if item.thumbnail_url:
        result["thumbnail_url"] = item.thumbnail_url
    result["events"] = events
    return result


def _event(event: Event) -> dict:
    return {
        "t_start": event.t_start,
        "t_end": event.t_end,
        "start_seconds": event.start_seconds,  # exact; the display times are rounded
        "end_seconds": event.end_seconds,
        "category": event.category,
        "label": event.label,
        "severity": event.severity,
        "aiAnalysis": event.ai_analysis,
        "confidence": event.confidence,
        "approval": event.approval,
        "annotated_thumbnail_url": event.thumbnail_url,
        "overlay": event.overlay,
    }


def file_name(batch_filter: BatchFilter, extension: str) -> str:
    """``<batch id>-<filter>.<ext>``, safe for a Content-Disposition header."""
    stem = f"{batch_filter.batch.provider_batch_id}-{batch_filter.describe()}"
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in stem)
    return f"{safe[:150]}.{extension}"
