"""Demo batches in each provider's wire format, loaded through the real parsers.

Deterministic (seeded), so ``load_demo`` can run any number of times: the second run
finds every item unchanged and keeps every decision made in between.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from reviewer import sync
from reviewer.models import SyncRun, SyncTrigger
from reviewer.providers import nomadicml, twelvelabs
from reviewer.records import ItemRecord
from reviewer.timecodes import format_timestamp

THUMBNAILS = ["dashcam-day", "dashcam-dusk", "dashcam-night", "crosswalk", "highway", "rain", "warehouse"]
TL_TIMED_BATCH = "68f4ddaf8aaa60d33df0e800"
TL_GENERAL_BATCH = "68f4ddaf8aaa60d33df0e7a1"
NOMADIC_ASK_BATCH = "rr-2025-09-19-jaywalk"
NOMADIC_AGENT_BATCH = "agent-2025-09-21-edge"
NOMADIC_VIEWER = "https://app.nomadicml.com"
DEMO_VIDEO = "/static/demo/street.mp4"  # 3 minutes, made with ffmpeg's testsrc2 (its clock shows the time)

_INCIDENTS = [
    ("near miss", "high"), ("hard brake", "medium"), ("tailgating", "medium"),
    ("red light running", "high"), ("lane departure", "low"), ("cyclist close pass", "high"),
    ("piéton traversant hors passage — 横断歩道外", "medium"),
]  # fmt: skip
_NOMADIC_EVENTS = [
    ("jaywalking", "Pedestrian crossing mid-block", "high",
     "A pedestrian crosses against the signal about 12 m ahead; the ego vehicle slows."),
    ("jaywalking", "Group crossing outside the crosswalk", "medium",
     "Three pedestrians step off the curb between parked cars while traffic is moving."),
    ("near_miss", "Pedestrian steps out behind a bus", "high",
     "Occluded pedestrian appears from behind a stopped bus; braking distance under 5 m."),
    ("lane_change", "lane change", "low", "Detected lane change without signal."),
    ("jaywalking", "Cyclist rides through the crosswalk", "low",
     "A cyclist uses the pedestrian crossing on a red signal — « vélo » on the crosswalk."),
]  # fmt: skip
_APPROVALS = ["approved", "rejected", "pending", "invalid", "pending", "pending"]


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _thumb(index: int) -> str:
    return f"/static/demo/{THUMBNAILS[index % len(THUMBNAILS)]}.jpg"


def twelvelabs_timed() -> tuple[dict, list[dict]]:
    """A completed time_based_metadata batch: every item status but queued/processing."""
    rng = random.Random(1)
    created = datetime(2025, 10, 19, 12, 0, tzinfo=UTC)
    lines = []
    for n in range(14):
        task_id = f"68f4ddaf8aaa60d33df0e9{n:02x}"
        custom_id = f"dashcam-{n + 1:03d}"
        if n in (3, 9):
            code, message = (
                ("asset_unavailable", "The asset could not be read.")
                if n == 3
                else ("video_duration_too_long", "The video is longer than the model's 2-hour limit.")
            )
            lines.append({"task_id": task_id, "custom_id": custom_id, "status": "failed",
                          "error": {"code": code, "message": message}})  # fmt: skip
            continue
        if n == 12:
            lines.append({"task_id": task_id, "custom_id": None, "status": "canceled"})
            continue
        segments = []
        for _ in range(0 if n == 6 else rng.randint(1, 4)):
            start = rng.uniform(5, 170) if n != 4 else rng.uniform(3600, 4200)  # past one hour
            label, severity = rng.choice(_INCIDENTS)
            segment = {"start_time": round(start, 1), "end_time": round(start + rng.uniform(2, 9), 1),
                       "metadata": {"label": label, "severity": severity}}  # fmt: skip
            if n % 3 == 0:  # user-defined fields of every JSON type, as a custom schema gives them
                segment["metadata"].update({
                    "importance": 1 + (n + len(segments)) % 5, "contains_speech": n % 2 == 0,
                    "key_objects": ["car", "pedestrian"] if "pi" in label else ["car"],
                    "moments": [{"start_time": round(start + 0.5, 1), "end_time": round(start + 1.5, 1),
                                 "kind": "brake lights"}],
                })  # fmt: skip
            if n == 7:  # the batch asked for string timestamps on this one
                segment["start_time"] = f"00:{int(start) // 60:02d}:{int(start) % 60:02d}"
                segment["end_time"] = f"00:{int(start + 5) // 60:02d}:{int(start + 5) % 60:02d}.500"
            segments.append(segment)
        output = {"incident": sorted(segments, key=lambda s: str(s["start_time"])), "scene": []}
        lines.append({
            "task_id": task_id, "custom_id": custom_id, "status": "ready",
            "data": {"generation_id": f"gen_{n:04d}", "data": json.dumps(output, ensure_ascii=False),
                     "finish_reason": "stop", "usage": {"output_tokens": 120 + n * 7, "input_tokens": 45}},
        })  # fmt: skip
    batch = {"batch_id": TL_TIMED_BATCH, "analysis_mode": "time_based_metadata", "model_name": "pegasus1.5",
             "status": "completed", "created_at": _ts(created), "expires_at": _ts(created + timedelta(days=1)),
             "completed_at": _ts(created + timedelta(minutes=41))}  # fmt: skip
    return batch, lines


def twelvelabs_general() -> tuple[dict, list[dict]]:
    """A general-mode batch still processing: queued, processing, ready (stop and length), failed."""
    created = datetime(2025, 11, 20, 8, 30, tzinfo=UTC)
    texts = [
        "This video covers the keynote launch: the presenter introduces the new camera line, "
        "demonstrates low-light recording and closes with pricing and availability.",
        "A walkthrough of the warehouse floor at shift change. Forklifts operate near the loading "
        "dock; two workers cross the marked lane without looking.",
        "Résumé : la vidéo montre une intersection très fréquentée à l'heure de pointe — 人が多い交差点。",
    ]
    lines = [
        {"task_id": "68f4ddaf8aaa60d33df0e700", "custom_id": "summary-001", "status": "ready",
         "data": {"generation_id": "gen_xyz789", "data": texts[0], "finish_reason": "stop",
                  "usage": {"output_tokens": 150, "input_tokens": 45}}},
        {"task_id": "68f4ddaf8aaa60d33df0e701", "custom_id": "summary-002", "status": "ready",
         "data": {"generation_id": "gen_xyz790", "data": texts[1] * 3, "finish_reason": "length",
                  "usage": {"output_tokens": 512}}},
        {"task_id": "68f4ddaf8aaa60d33df0e702", "custom_id": "summary-003", "status": "failed",
         "error": {"code": "batch_processing_timeout", "message": "The task did not finish in time."}},
        {"task_id": "68f4ddaf8aaa60d33df0e703", "custom_id": "summary-004", "status": "processing"},
        {"task_id": "68f4ddaf8aaa60d33df0e704", "custom_id": "summary-005", "status": "queued"},
        {"task_id": "68f4ddaf8aaa60d33df0e705", "custom_id": "summary-006", "status": "ready",
         "data": {"generation_id": "gen_xyz791", "data": texts[2], "finish_reason": "stop",
                  "usage": {"output_tokens": 88, "input_tokens": 45}}},
        # A response_format answer: JSON that stays text in a general batch, never segments.
        {"task_id": "68f4ddaf8aaa60d33df0e708", "custom_id": "summary-009", "status": "ready",
         "data": {"generation_id": "gen_xyz792", "finish_reason": "stop", "usage": {"output_tokens": 60},
                  "data": json.dumps({"title": "Loading dock", "keywords": ["forklift", "lane"],
                                      "highlights": [{"start_time": 3.0, "end_time": 9.5, "note": "near miss"}]})}},
        # A partial result: the error beside a ready answer is a warning, not a failure.
        {"task_id": "68f4ddaf8aaa60d33df0e709", "custom_id": "summary-010", "status": "ready",
         "error": {"message": "partial result: the last 40 s could not be analysed; returned results may be incomplete"},
         "data": {"generation_id": "gen_xyz793", "data": texts[0], "finish_reason": "stop",
                  "usage": {"output_tokens": 71}}},
        {"task_id": "68f4ddaf8aaa60d33df0e706", "custom_id": "summary-007", "status": "queued"},
    ]  # fmt: skip
    batch = {"batch_id": TL_GENERAL_BATCH, "analysis_mode": "general", "model_name": "pegasus1.5",
             "status": "processing", "created_at": _ts(created), "expires_at": _ts(created + timedelta(days=1)),
             "total_items": len(lines)}  # fmt: skip
    return batch, lines


def _nomadic_event(rng: random.Random, index: int, template: tuple, past_hour: bool = False) -> dict:
    category, label, severity, analysis = template
    start = rng.uniform(3700, 3900) if past_hour else rng.uniform(1, 170)
    end = start + rng.uniform(1, 6)
    lat, lon = 37.7749 + rng.uniform(-0.01, 0.01), -122.4194 + rng.uniform(-0.01, 0.01)
    event = {
        "t_start": format_timestamp(start), "t_end": format_timestamp(end),
        "start_seconds": round(start, 2), "end_seconds": round(end, 2),
        "category": category, "label": label, "severity": severity, "aiAnalysis": analysis,
        "approval": _APPROVALS[index % len(_APPROVALS)],
        "annotated_thumbnail_url": _thumb(index),
        "overlay": {"frame_gps_lat": {"start": round(lat, 5), "end": round(lat + 0.0002, 5)},
                    "frame_gps_lon": {"start": round(lon, 5), "end": round(lon + 0.0002, 5)},
                    "frame_speed": {"start": round(rng.uniform(5, 45), 1), "end": round(rng.uniform(0, 40), 1)}},
    }  # fmt: skip
    if index % 5 != 4:  # some events come without a confidence: shown as "—", never invented
        event["confidence"] = round(rng.uniform(0.55, 0.99), 2)
    return event


def nomadic_ask() -> dict:
    """An ask (rapid review) batch: 36 videos, every approval, a failed video, empty videos."""
    rng = random.Random(2)
    results = []
    counter = 0
    for n in range(36):
        video_id = f"vid-{n + 1:04d}"
        if n in (5, 23):
            results.append({"video_id": video_id, "analysis_id": None, "mode": "ask", "status": "failed",
                            "video_name": f"sf-market-st-{n + 1:03d}.mp4", "events": [],
                            "error": "decode error" if n == 5 else "Analysis not found"})  # fmt: skip
            continue
        events = []
        for _ in range(0 if n % 7 == 3 else rng.randint(1, 4)):
            events.append(_nomadic_event(rng, counter, rng.choice(_NOMADIC_EVENTS), past_hour=(n == 10)))
            counter += 1
        events.sort(key=lambda e: e["start_seconds"])
        results.append({
            "video_id": video_id, "analysis_id": f"an-{n + 1:04d}", "mode": "ask", "status": "completed",
            "video_name": f"sf-market-st-{n + 1:03d}.mp4",
            # A clip shipped with the app, so the demo plays a video at every event without any account.
            "import_source_uri": DEMO_VIDEO,
            "summary": (f"{len(events)} jaywalking-related moment(s) near the intersection." if events
                        else "No jaywalking observed; light traffic."),
            "thumbnail_url": _thumb(n), "events": events,
        })  # fmt: skip
    return {
        "batch_metadata": {
            "batch_id": NOMADIC_ASK_BATCH,
            "batch_viewer_url": nomadicml.viewer_url(NOMADIC_VIEWER, NOMADIC_ASK_BATCH),
            "batch_type": "ask", "analysis_type": "rapid_review", "status": "completed",
            "review_status": "in_review", "review_status_updated_at": "2025-09-20T09:12:00Z",
            "metadata": {"site": "sf-3", "fleet": "north", "camera": "front"},
            "prompt": "jaywalking near intersections", "category": "driving",
        },
        "results": results,
    }  # fmt: skip


def nomadic_agent() -> dict:
    """An agent batch: no prompt, edge-case events, one video without an analysis."""
    rng = random.Random(3)
    templates = [
        ("edge_case", "Debris on the highway", "high", "Unidentified object in the lane; ego swerves."),
        ("edge_case", "Emergency vehicle approaching", "medium", "Siren audible, ambulance in mirror."),
        ("construction_zone", "Lane closure with flagger", "low", "Temporary signage, manual traffic control."),
        ("weather", "Heavy rain, low visibility", "medium", "Wipers at max; lane markings hard to see."),
    ]  # fmt: skip
    results = []
    for n in range(8):
        video_id = f"edge-{n + 1:03d}"
        if n == 6:
            results.append({"video_id": video_id, "analysis_id": None, "mode": "agent", "status": "failed",
                            "events": [], "error": "Analysis not found"})  # fmt: skip
            continue
        events = [_nomadic_event(rng, n * 3 + k, rng.choice(templates)) for k in range(rng.randint(1, 3))]
        results.append({
            "video_id": video_id, "analysis_id": f"ag-{n + 1:03d}", "mode": "agent", "status": "completed",
            "video_name": f"i80-east-{n + 1:02d}.mp4", "import_source_uri": f"gs://edge-cases/i80-east-{n + 1:02d}.mp4",
            "summary": ["Highway drive, mostly clear.", f"{len(events)} edge case(s) flagged."],
            "thumbnail_url": _thumb(n + 3), "events": events,
        })  # fmt: skip
    return {
        "batch_metadata": {
            "batch_id": NOMADIC_AGENT_BATCH,
            "batch_viewer_url": nomadicml.viewer_url(NOMADIC_VIEWER, NOMADIC_AGENT_BATCH),
            "batch_type": "agent", "analysis_type": "edge_case_agent", "status": "completed",
            "review_status": "", "review_status_updated_at": "N/A", "metadata": {},
        },
        "results": results,
    }  # fmt: skip


def _with_thumbnail(index: int, record: ItemRecord) -> ItemRecord:
    # TwelveLabs results carry no thumbnail (it comes from the asset API): use a demo image,
    # and the demo clip as the video (a file import plays its item's source URI).
    record.thumbnail_url = _thumb(index)
    record.import_source_uri = DEMO_VIDEO
    return record


def load() -> list[SyncRun]:
    """Load (or refresh) the four demo batches; returns their SyncRuns."""
    runs = []
    for make_batch in (twelvelabs_timed, twelvelabs_general):
        batch_wire, lines = make_batch()
        batch_record = twelvelabs.parse_batch(batch_wire)
        records = (
            _with_thumbnail(index, twelvelabs.parse_result(line, batch_record.mode)) for index, line in enumerate(lines)
        )
        runs.append(sync.write_records(batch_record, records, trigger=SyncTrigger.DEMO))
    for make_analysis in (nomadic_ask, nomadic_agent):
        analysis = make_analysis()
        records = (nomadicml.parse_result(result) for result in analysis["results"])
        batch_record = nomadicml.parse_batch_metadata(analysis["batch_metadata"])
        runs.append(sync.write_records(batch_record, records, trigger=SyncTrigger.DEMO))
    return runs
