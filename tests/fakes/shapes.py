"""Payload shapes met in real provider data (PROVIDERS.md, "Shapes met in real payloads").

Each batch below is served by the fakes (the fetch path) and written as a file the way
the provider or its SDK writes it (the file path), so one table of checks covers both.
"""

from __future__ import annotations

import json

from tests.factories import jsonl, tl_id

# --- TwelveLabs ------------------------------------------------------------------------

TL_TIMED = "68f4ddaf8aaa60d33df0e8c1"
TL_GENERAL = "68f4ddaf8aaa60d33df0e8c2"

# User-defined segment metadata of every JSON type, a custom timestamp field and a time_array.
RICH_METADATA = {
    "label": "keynote opening",
    "severity": "low",
    "confidence": 0.82,
    "importance": 5,
    "contains_speech": True,
    "key_objects": ["stage", "podium"],
    "speaker_change_at": "00:01:23.500",
    "hazards": [
        {"start_time": 12.5, "end_time": 14.0, "kind": "hard brake"},
        {"start_time": "00:00:15", "end_time": "00:00:16.250", "kind": "swerve"},
    ],
}
TIMED_SEGMENTS = {
    "incident": [
        {"start_time": 12.5, "end_time": 18.0, "metadata": RICH_METADATA},
        {"start_time": "00:00:40", "end_time": "00:00:44.500", "metadata": {"label": "string times"}},
    ],
    "scene": [],
}
WARNING = "partial result: the last 40 s could not be analysed; returned results may be incomplete"
JSON_ANSWER = {
    "title": "Loading dock at shift change",
    "keywords": ["forklift", "lane"],
    "chapters": [{"start_time": 1.0, "end_time": 5.0, "title": "intro"}],
}
TRUNCATED = "The output was truncated at the model's token limit."


def _ready(task_id: str, output: str, **extra: object) -> dict:
    data = {"generation_id": "gen", "data": output, "finish_reason": extra.pop("finish_reason", "stop"),
            "usage": {"output_tokens": 10}}  # fmt: skip
    return {"task_id": task_id, "custom_id": None, "status": "ready", "data": data, **extra}


def tl_timed_lines() -> list[dict]:
    return [
        _ready(tl_id(0xC10), json.dumps(TIMED_SEGMENTS)),
        # Upper-case status, and an error beside a ready result: a warning, without a code.
        {
            **_ready(tl_id(0xC11), json.dumps({"incident": [{"start_time": 1, "end_time": 2, "metadata": {}}]})),
            "status": "READY",
            "error": {"message": WARNING},
        },  # fmt: skip
        {
            "task_id": tl_id(0xC12),
            "custom_id": "cam-3",
            "status": "canceled",
            "error": {"code": "batch_expired", "message": "The batch expired before this task ran."},
        },  # fmt: skip
    ]


def tl_general_lines() -> list[dict]:
    # A response_format answer: JSON text whose lists even carry start_time/end_time.
    return [
        _ready(
            tl_id(0xC20),
            json.dumps(JSON_ANSWER),
            finish_reason="length",
            error={"code": "output_truncated", "message": TRUNCATED},
        ),  # fmt: skip
    ]


def tl_jsonl(lines: list[dict]) -> bytes:
    return jsonl(lines)


# --- NomadicML ---------------------------------------------------------------------------

NM_BATCH = "agent-shapes-01"
JSON_LABEL = '{"label": "debris", "score": 0.7}'  # the backend bug the SDK's tests name: kept as text


def nm_ui_event() -> dict:
    """A UI-format event with every overlay pair; one end empty ("" means none)."""
    return {
        "type": "near_miss", "time": "t=61.5", "end_time": "t=64.25", "description": JSON_LABEL,
        "severity": "high", "aiAnalysis": "Pedestrian steps out behind a bus", "approval": "approved",
        "frame_timestamp_start": "2025-09-19 19:22:42.000 UTC", "frame_timestamp_end": "2025-09-19 19:22:44.750 UTC",
        "unix_timestamp_start": 1758310961.5, "unix_timestamp_end": 1758310964.25,
        "data": {"confidence": 0.9, "annotated_thumbnail_url": "https://cdn.example.com/nm.jpg",
                 "frame_gps_lat_start": "37.7749", "frame_gps_lat_end": "37.7751",
                 "frame_gps_lon_start": "-122.4194", "frame_gps_lon_end": "",
                 "frame_speed_start": "31", "frame_speed_end": "12"},
    }  # fmt: skip


LEGACY_EVENT = {"label": "debris on the road", "start_time": 12.0, "end_time": 15.0}


def nm_videos() -> list[dict]:
    """What the fake's bulk endpoint holds: a UI-format video, a legacy agent video, one still processing."""
    return [
        {"video_id": "v-ui", "analysis_id": "an-ui", "filename": "ui.mp4", "import_source_uri": "s3://b/ui.mp4",
         "pointer": {"status": "COMPLETED"},
         "analysis": {"status": "COMPLETED", "answer": "One near miss.", "events": [nm_ui_event()]}},
        {"video_id": "v-legacy", "analysis_id": "an-legacy", "filename": "legacy.mp4",
         "pointer": {"status": "completed"},
         "analysis": {"status": "completed", "summary": ["Highway.", "One object."],
                      "detected_events": [dict(LEGACY_EVENT)]}},
        # No analysis document yet while the pointer says processing: processing, not failed.
        {"video_id": "v-busy", "analysis_id": None, "pointer": {"status": "PROCESSING"}, "analysis": None},
    ]  # fmt: skip


def nm_batch_analysis_json() -> bytes:
    """The same batch as the SDK's get_batch_analysis() returns it (JSON mode)."""
    ui_event = {
        "t_start": "01:01", "t_end": "01:04", "category": "near_miss", "label": JSON_LABEL, "severity": "high",
        "aiAnalysis": "Pedestrian steps out behind a bus", "confidence": 0.9, "approval": "approved",
        "annotated_thumbnail_url": "https://cdn.example.com/nm.jpg",
        "overlay": {"frame_timestamp": {"start": "2025-09-19 19:22:42.000 UTC", "end": "2025-09-19 19:22:44.750 UTC"},
                    "unix_timestamp": {"start": 1758310961.5, "end": 1758310964.25},
                    "frame_gps_lat": {"start": 37.7749, "end": 37.7751},
                    "frame_gps_lon": {"start": -122.4194, "end": None},
                    "frame_speed": {"start": 31.0, "end": 12.0}},
    }  # fmt: skip
    document = {
        "batch_metadata": {"batch_id": NM_BATCH, "batch_viewer_url": f"https://app.nomadicml.com/x/{NM_BATCH}",
                           "batch_type": "agent", "analysis_type": "edge_case_agent", "status": "COMPLETED",
                           "review_status": "", "review_status_updated_at": "N/A", "metadata": {}},
        "results": [
            {"video_id": "v-ui", "analysis_id": "an-ui", "mode": "agent", "status": "COMPLETED",
             "video_name": "ui.mp4", "import_source_uri": "s3://b/ui.mp4", "summary": "One near miss.",
             "events": [ui_event]},
            # The SDK passes legacy agent events through unchanged.
            {"video_id": "v-legacy", "analysis_id": "an-legacy", "mode": "agent", "status": "completed",
             "video_name": "legacy.mp4", "summary": "Highway.\nOne object.", "events": [dict(LEGACY_EVENT)]},
            {"video_id": "v-busy", "analysis_id": None, "mode": "agent", "status": "processing", "events": []},
        ],
    }  # fmt: skip
    return json.dumps(document).encode()
