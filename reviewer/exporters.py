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


def csv_rows(batch_filter: BatchFilter) -> Iterator[str]:
    """Yield the CSV text line by line: the header, then one row per shown event."""
    writer = csv.writer(_Line())
    batch = batch_filter.batch
    yield writer.writerow(CSV_COLUMNS)
    for item in _shown_items(batch_filter):
        for event in item.shown_events:
            yield writer.writerow([_neutralize(value) for value in _csv_values(batch, item, event)])


def _csv_values(batch: Batch, item: Item, event: Event) -> list[str]:
    # Columns and values as the NomadicML seed page defines them (PROVIDERS.md, "CSV").
    timestamp = event.t_start if event.t_start == event.t_end or not event.t_end else f"{event.t_start}-{event.t_end}"
    return [
        batch.prompt,
        item.display_name,
        event.approval,
        timestamp,
        event.category,
        "" if event.label == event.category else event.label,
        event.ai_analysis,
        event.severity,
        item.provider_item_id,
        item.analysis_id,
        batch.provider_batch_id,
        batch.viewer_url,
        item.status,
        "" if event.confidence is None else repr(event.confidence),
        event.thumbnail_url,
        item.import_source_uri,
        item.text,
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
