"""TwelveLabs Analyze API v1.3 batches: wire format -> normalized records.

Docs: https://docs.twelvelabs.io/v1.3/api-reference/analyze-videos/batch-analysis
(results stream: "Retrieve batch results"; the contract is summarized in PROVIDERS.md).
"""

from __future__ import annotations

import json
import re

from reviewer.providers import wire
from reviewer.records import BatchRecord, EventRecord, ItemRecord, RecordError
from reviewer.timecodes import format_timestamp, parse_seconds

PROVIDER = "twelvelabs"
ID_PATTERN = re.compile(r"^[0-9a-fA-F]{24}$")
ITEM_STATUSES = ("queued", "processing", "ready", "failed", "canceled")
TERMINAL_ITEM_STATUSES = {"ready", "failed", "canceled"}
MODE_GENERAL = "general"
MODE_TIME_BASED = "time_based_metadata"

# Provider batch status -> normalized BatchStatus value.
BATCH_STATUS = {
    "pending": "processing",
    "processing": "processing",
    "canceling": "processing",
    "completed": "completed",
    "canceled": "canceled",
    "expired": "expired",
}

# Segment metadata fields read into event columns; everything else stays in raw.
_ANALYSIS_FIELDS = ("ai_analysis", "analysis", "description", "reason", "explanation")


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value or ""))


def parse_batch(obj: object) -> BatchRecord:
    """Return a BatchRecord from a Batch object; raises RecordError."""
    obj = wire.require_object(obj, "batch")
    provider_status = wire.text(obj, "status")
    return BatchRecord(
        provider=PROVIDER,
        provider_batch_id=wire.text(obj, "batch_id", required=True),
        provider_status=provider_status,
        status=BATCH_STATUS.get(provider_status, "processing"),
        mode=wire.text(obj, "analysis_mode"),
        model_name=wire.text(obj, "model_name"),
        provider_created_at=wire.timestamp(obj, "created_at"),
        expires_at=wire.timestamp(obj, "expires_at"),
        completed_at=wire.timestamp(obj, "completed_at")
        or wire.timestamp(obj, "canceled_at")
        or wire.timestamp(obj, "expired_at"),
    )


def parse_result(obj: object) -> ItemRecord:
    """Return an ItemRecord from one line of the results stream; raises RecordError.

    In time_based_metadata mode ``data.data`` is a JSON string of segments, which
    become events; in general mode it is the generated text.
    """
    obj = wire.require_object(obj, "result")
    task_id = wire.text(obj, "task_id", required=True)
    status = wire.text(obj, "status", required=True)
    record = ItemRecord(provider_item_id=task_id, status=status, custom_id=wire.text(obj, "custom_id"), raw=obj)
    if status not in ITEM_STATUSES:
        raise RecordError(f"unknown item status {status!r}")
    error = wire.mapping(obj, "error")
    if error:
        record.error_code = wire.text(error, "code")
        record.error_message = wire.text(error, "message")
    envelope = wire.mapping(obj, "data")
    if envelope:
        output = envelope.get("data")
        if output is not None and not isinstance(output, str):
            raise RecordError("'data.data' must be a string")
        record.finish_reason = wire.text(envelope, "finish_reason")
        usage = wire.mapping(envelope, "usage")
        record.input_tokens = wire.integer(usage, "input_tokens")
        record.output_tokens = wire.integer(usage, "output_tokens")
        segments = _segments(output or "")
        if segments is None:
            record.text = output or ""
        else:
            record.events = segments
    return record


def is_time_based(record: ItemRecord) -> bool:
    """Whether the item's output was a segment map (time_based_metadata mode)."""
    return bool(record.events) or _segments(_output_text(record.raw)) is not None


def _output_text(raw: dict) -> str:
    envelope = raw.get("data")
    if isinstance(envelope, dict) and isinstance(envelope.get("data"), str):
        return envelope["data"]
    return ""


def _segments(output: str) -> list[EventRecord] | None:
    """Return the events of a time_based_metadata output, or None for plain text."""
    stripped = output.lstrip()
    if not stripped.startswith("{"):
        return None
    try:
        parsed = json.loads(output)
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or not all(isinstance(v, list) for v in parsed.values()):
        return None
    events = []
    for definition_id, segments in parsed.items():
        for index, segment in enumerate(segments):
            if not isinstance(segment, dict):
                raise RecordError(f"segment {definition_id}[{index}] must be an object")
            try:
                events.append(_segment_event(definition_id, segment))
            except RecordError as exc:
                raise RecordError(f"segment {definition_id}[{index}]: {exc}") from None
    return events


def _segment_event(definition_id: str, segment: dict) -> EventRecord:
    metadata = wire.mapping(segment, "metadata")
    start = parse_seconds(segment.get("start_time"))
    end = parse_seconds(segment.get("end_time"))
    confidence = metadata.get("confidence")
    return EventRecord(
        category=str(definition_id),
        label=_metadata_text(metadata, "label"),
        severity=_metadata_text(metadata, "severity"),
        confidence=float(confidence) if isinstance(confidence, int | float) and not isinstance(confidence, bool) else None,
        ai_analysis=next((_metadata_text(metadata, key) for key in _ANALYSIS_FIELDS if metadata.get(key)), ""),
        start_seconds=start,
        end_seconds=end,
        t_start=format_timestamp(start),
        t_end=format_timestamp(end),
        raw=segment,
    )


def _metadata_text(metadata: dict, key: str) -> str:
    value = metadata.get(key)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
