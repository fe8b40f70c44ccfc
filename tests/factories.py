"""Small builders of wire-format files and cached batches for tests."""

from __future__ import annotations

import io
import json

from reviewer import importers
from reviewer.models import SyncRun


def tl_line(
    task_id: str,
    status: str = "ready",
    *,
    segments: dict | None = None,
    text: str | None = None,
    custom_id: str | None = None,
    error: dict | None = None,
) -> dict:
    """One line of a TwelveLabs results stream."""
    line: dict = {"task_id": task_id, "custom_id": custom_id, "status": status}
    if status == "ready":
        output = json.dumps(segments) if segments is not None else (text or "generated text")
        line["data"] = {
            "generation_id": "gen",
            "data": output,
            "finish_reason": "stop",
            "usage": {"output_tokens": 10, "input_tokens": 5},
        }
    if status == "failed":
        line["error"] = error or {"code": "asset_unavailable", "message": "The asset could not be read."}
    return line


def tl_id(n: int) -> str:
    return f"{n:024x}"


def jsonl(lines: list[dict | str]) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode() + b"\n"


def nomadic_event(
    category: str = "jaywalking",
    label: str = "Pedestrian",
    approval: str = "pending",
    t_start: str = "00:01",
    t_end: str = "00:02",
    **extra,
) -> dict:
    event = {
        "t_start": t_start,
        "t_end": t_end,
        "category": category,
        "label": label,
        "severity": "high",
        "aiAnalysis": "analysis",
        "confidence": 0.9,
        "approval": approval,
        "annotated_thumbnail_url": "https://cdn.example.com/t.jpg",
    }
    event.update(extra)
    return event


def nomadic_result(video_id: str, events: list[dict], status: str = "completed", **extra) -> dict:
    result = {
        "video_id": video_id,
        "analysis_id": f"a-{video_id}",
        "mode": "ask",
        "status": status,
        "video_name": f"{video_id}.mp4",
        "import_source_uri": f"s3://bucket/{video_id}.mp4",
        "summary": f"summary of {video_id}",
        "events": events,
    }
    result.update(extra)
    return result


def nomadic_analysis(batch_id: str, results: list[dict], **metadata) -> dict:
    batch_metadata = {
        "batch_id": batch_id,
        "batch_viewer_url": f"https://app.nomadicml.com/use-cases/rapid-review/batch-view/{batch_id}",
        "batch_type": "ask",
        "analysis_type": "rapid_review",
        "review_status": "",
        "review_status_updated_at": "N/A",
        "metadata": {},
        "prompt": "jaywalking",
        "category": "driving",
    }
    batch_metadata.update(metadata)
    return {"batch_metadata": batch_metadata, "results": results}


def import_bytes(data: bytes, name: str, **options) -> SyncRun:
    return importers.import_file(io.BytesIO(data), name=name, **options)
