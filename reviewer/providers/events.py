"""The event shape of ``get_batch_analysis`` (the SDK form), written and read in one place.

Our JSON export writes every event of both providers in this shape, and a NomadicML
``get_batch_analysis`` file holds it: ``to_json`` and ``from_json`` are each other's
inverse, so an exported file imports back unchanged.
"""

from __future__ import annotations

from typing import Any

from reviewer.providers import wire
from reviewer.records import EventRecord, RecordError
from reviewer.timecodes import format_timestamp, parse_seconds

APPROVALS = ("approved", "rejected", "pending", "invalid")


def parse_approval(value: object) -> str:
    """Return a valid approval; blank means pending; raises RecordError otherwise."""
    if value is None or value == "":
        return "pending"
    text = str(value).strip().lower()
    if text not in APPROVALS:
        raise RecordError(f"unknown approval {value!r} (expected one of {', '.join(APPROVALS)})")
    return text


def to_json(event: Any) -> dict:
    """An event (model or record) in the SDK form, plus the exact seconds and every extra field."""
    result = {
        "t_start": event.t_start,
        "t_end": event.t_end,
        "start_seconds": event.start_seconds,  # exact; the display times are whole seconds
        "end_seconds": event.end_seconds,
        "category": event.category,
        "label": event.label,
        "severity": event.severity,
        "aiAnalysis": event.ai_analysis,
        "confidence": event.confidence,
        "approval": getattr(event, "approval", event.provider_approval),
        "annotated_thumbnail_url": event.thumbnail_url,
        "overlay": event.overlay,
    }
    if event.metadata:
        result["metadata"] = event.metadata
    return result


def from_json(event: dict) -> EventRecord:
    """Return an EventRecord from an event in SDK form; raises RecordError.

    Exact seconds come from ``start_seconds``/``end_seconds`` when present (our export
    writes them), else from the display timestamps ``t_start``/``t_end``, else from a
    legacy agent event's ``start_time``/``end_time`` (seconds, passed through by the SDK).
    """
    start = parse_seconds(_first(event, "start_seconds", "t_start", "start_time"))
    end = parse_seconds(_first(event, "end_seconds", "t_end", "end_time"))
    overlay = event.get("overlay") or {}
    if not isinstance(overlay, dict):
        raise RecordError("'overlay' must be an object")
    metadata = event.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise RecordError("'metadata' must be an object")
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
        metadata=metadata,
        raw=event,
        provider_approval=parse_approval(event.get("approval")),
    )


def _first(obj: dict, *keys: str) -> object:
    return next((obj[key] for key in keys if obj.get(key) not in (None, "")), None)
