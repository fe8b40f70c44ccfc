"""NomadicML batch analysis: wire format -> normalized records.

Docs: https://docs.nomadicml.com (SDK ``get_batch_analysis``); the contract, read from
SDK 0.1.53 and the seed page, is summarized in PROVIDERS.md section 2.
"""

from __future__ import annotations

from reviewer.providers import wire
from reviewer.records import BatchRecord, EventRecord, ItemRecord, RecordError
from reviewer.timecodes import format_timestamp, parse_seconds

PROVIDER = "nomadicml"
APPROVALS = ("approved", "rejected", "pending", "invalid")
BATCH_STATUS = {
    "processing": "processing",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "canceled",
    "canceled": "canceled",
}
ITEM_STATUSES = ("completed", "failed")


def viewer_url(dashboard_base: str, batch_id: str) -> str:
    return f"{dashboard_base.rstrip('/')}/use-cases/rapid-review/batch-view/{batch_id}"


def parse_approval(value: object) -> str:
    """Return a valid approval; blank means pending; raises RecordError otherwise."""
    if value is None or value == "":
        return "pending"
    if value not in APPROVALS:
        raise RecordError(f"unknown approval {value!r} (expected one of {', '.join(APPROVALS)})")
    return str(value)


def parse_batch_metadata(obj: object) -> BatchRecord:
    """Return a BatchRecord from ``get_batch_analysis()["batch_metadata"]``; raises RecordError."""
    obj = wire.require_object(obj, "batch_metadata")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise RecordError("'metadata' must be an object")
    provider_status = wire.text(obj, "status")
    return BatchRecord(
        provider=PROVIDER,
        provider_batch_id=wire.text(obj, "batch_id", required=True),
        provider_status=provider_status,
        status=BATCH_STATUS.get(provider_status) if provider_status else None,
        mode=wire.text(obj, "batch_type"),
        analysis_type=wire.text(obj, "analysis_type"),
        prompt=wire.text(obj, "prompt"),
        category=wire.text(obj, "category"),
        metadata=metadata,
        provider_review_status=wire.text(obj, "review_status"),
        provider_review_status_updated_at=wire.text(obj, "review_status_updated_at"),
        viewer_url=wire.text(obj, "batch_viewer_url"),
        provider_created_at=wire.timestamp(obj, "created_at"),
    )


def parse_result(obj: object) -> ItemRecord:
    """Return an ItemRecord from one ``get_batch_analysis()["results"]`` entry; raises RecordError."""
    obj = wire.require_object(obj, "result")
    events_in = obj.get("events") or []
    if not isinstance(events_in, list):
        raise RecordError("'events' must be a list")
    events = []
    for index, event in enumerate(events_in):
        try:
            events.append(parse_sdk_event(wire.require_object(event, "event")))
        except RecordError as exc:
            raise RecordError(f"event {index}: {exc}") from None
    return ItemRecord(
        provider_item_id=wire.text(obj, "video_id", required=True),
        status=wire.text(obj, "status", required=True),
        analysis_id=wire.text(obj, "analysis_id"),
        video_name=wire.text(obj, "video_name"),
        text=_summary(obj.get("summary")),
        error_message=wire.text(obj, "error"),
        import_source_uri=wire.text(obj, "import_source_uri"),
        thumbnail_url=wire.text(obj, "thumbnail_url"),
        raw={key: value for key, value in obj.items() if key != "events"},
        events=events,
    )


def parse_sdk_event(event: dict) -> EventRecord:
    """Return an EventRecord from an event in SDK form (``t_start``/``t_end``/``label``).

    Exact seconds are read from ``start_seconds``/``end_seconds`` when present (our own
    JSON export writes them), else from the display timestamps.
    """
    start = parse_seconds(event.get("start_seconds", event.get("t_start")))
    end = parse_seconds(event.get("end_seconds", event.get("t_end")))
    overlay = event.get("overlay") or {}
    if not isinstance(overlay, dict):
        raise RecordError("'overlay' must be an object")
    return EventRecord(
        category=wire.text(event, "category"),
        label=wire.text(event, "label"),
        severity=wire.text(event, "severity"),
        confidence=wire.number(event, "confidence"),
        ai_analysis=wire.text(event, "aiAnalysis"),
        start_seconds=start,
        end_seconds=end,
        t_start=wire.text(event, "t_start") or format_timestamp(start),
        t_end=wire.text(event, "t_end") or format_timestamp(end),
        thumbnail_url=wire.text(event, "annotated_thumbnail_url"),
        overlay=overlay,
        raw=event,
        provider_approval=parse_approval(event.get("approval")),
    )


def _summary(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(part) for part in value)
    if isinstance(value, dict):
        raise RecordError("'summary' must be text")
    return str(value)
