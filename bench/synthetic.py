"""Deterministic synthetic batches in each provider's wire format (PROVIDERS.md).

Built with the test fakes' own builders (``tests.fakes.nomadicml.video``/``ui_event``,
``tests.factories.tl_line``), so the bench serves exactly what the fakes serve in the
suite, only more of it. Same arguments => same bytes, in every process.
"""

from __future__ import annotations

import json
import random

from tests.factories import tl_id, tl_line
from tests.fakes.nomadicml import ui_event, video

KINDS = (
    "jaywalking", "near_miss", "hard_brake", "lane_change", "tailgating", "red_light_run",
    "cyclist_close_pass", "wrong_way_driver",
)  # fmt: skip
SEVERITIES = ("low", "medium", "medium", "high", "high", "critical")
# Half the events are still pending when a batch comes in (so "approval=pending" matches
# ~50,000 of 100,000: the bulk-decision workload); the rest were decided in NomadicML.
APPROVALS = (None, None, None, None, None, "approved", "approved", "rejected", "rejected", "invalid")
STREETS = ("Market St", "Mission St", "Van Ness Ave", "Geary Blvd", "3rd St", "Embarcadero", "Castro St")
SEGMENT_DEFINITIONS = ("incident", "scene", "hazard")


def _analysis(rng: random.Random, kind: str, street: str) -> str:
    """An AI analysis of realistic length (~200 characters)."""
    return (
        f"The model detected {kind.replace('_', ' ')} near {street}: the ego vehicle was travelling at "
        f"{rng.randint(8, 45)} mph with {rng.choice(('light', 'moderate', 'heavy'))} traffic; "
        f"visibility {rng.choice(('clear', 'rain', 'dusk', 'glare'))}. Review the clip around the marked time."
    )


def nomadic_videos(count: int, events_per_video: int, *, seed: int = 1) -> list[dict]:
    """``count`` completed videos of ``events_per_video`` UI-format events each (bulk-analyses entries)."""
    rng = random.Random(seed)
    videos = []
    for index in range(count):
        events = []
        start = rng.uniform(0, 20)
        for _ in range(events_per_video):
            kind, street = rng.choice(KINDS), rng.choice(STREETS)
            end = start + rng.uniform(0.5, 6)
            lat, lon = 37.70 + rng.random() / 10, -122.50 + rng.random() / 10
            event = ui_event(
                kind, round(start, 2), round(end, 2), f"{kind.replace('_', ' ')} on {street}",
                severity=rng.choice(SEVERITIES), approval=rng.choice(APPROVALS),
                confidence=round(rng.uniform(0.5, 0.99), 2),
                frame_gps_lat_start=f"{lat:.5f}", frame_gps_lat_end=f"{lat + 0.0002:.5f}",
                frame_gps_lon_start=f"{lon:.5f}", frame_gps_lon_end=f"{lon + 0.0002:.5f}",
                frame_speed_start=str(rng.randint(5, 45)), frame_speed_end=str(rng.randint(5, 45)),
            )  # fmt: skip
            event["aiAnalysis"] = _analysis(rng, kind, street)
            events.append(event)
            start = end + rng.uniform(1, 30)
        summary = (
            f"Dash-cam drive {index}: {events_per_video} events flagged along {rng.choice(STREETS)}. "
            "Mostly urban traffic with pedestrians near intersections; see the events for details."
        )
        videos.append(video(f"vid-{seed}-{index:05d}", events, answer=summary))
    return videos


def twelvelabs_lines(count: int, segments_per_item: int, *, seed: int = 2) -> list[dict]:
    """``count`` ready time_based_metadata results of ``segments_per_item`` segments each."""
    rng = random.Random(seed)
    lines = []
    for index in range(count):
        segments: dict[str, list[dict]] = {name: [] for name in SEGMENT_DEFINITIONS}
        start = rng.uniform(0, 10)
        for number in range(segments_per_item):
            kind, street = rng.choice(KINDS), rng.choice(STREETS)
            end = start + rng.uniform(0.5, 8)
            metadata = {
                "label": kind.replace("_", " "),
                "severity": rng.choice(SEVERITIES),
                "confidence": round(rng.uniform(0.5, 0.99), 2),
                "description": _analysis(rng, kind, street),
            }
            segments[SEGMENT_DEFINITIONS[number % len(SEGMENT_DEFINITIONS)]].append(
                {"start_time": round(start, 3), "end_time": round(end, 3), "metadata": metadata}
            )
            start = end + rng.uniform(1, 20)
        line = tl_line(tl_id(0xBE4C_0000 + seed * 100_000 + index), segments=segments, custom_id=f"cam-{index:04d}")
        line["data"]["usage"] = {"output_tokens": rng.randint(400, 1200), "input_tokens": rng.randint(50, 300)}
        lines.append(line)
    return lines


def jsonl_size(lines: list[dict]) -> int:
    """Bytes of a results stream (for the report)."""
    return sum(len(json.dumps(line).encode()) + 1 for line in lines)


# --- Files to import (the SDK's batch-analysis JSON shape) ------------------------------

# An analysis of 650 characters: 220,000 events make a file just under the 200 MiB upload limit.
FILLER = (
    "The ego vehicle approaches the intersection at moderate speed while a pedestrian waits at the curb; "
    "the light turns amber, the lead car brakes hard and the driver keeps a safe gap. "
) * 4


def write_nomadic_analysis(path, events: int, per_video: int = 10, *, batch_id: str = "load-import") -> int:
    """A NomadicML batch analysis of ``events`` events, written to ``path`` as it is built; returns its size."""
    from tests.factories import nomadic_analysis, nomadic_event, nomadic_result

    rng = random.Random(220)
    head = json.dumps(nomadic_analysis(batch_id, []))
    with path.open("w") as out:
        out.write(head[: head.rindex("[") + 1])  # everything up to the results array
        for number in range(-(-events // per_video)):
            count = min(per_video, events - number * per_video)
            result = nomadic_result(
                f"imp-{number:06d}",
                [
                    nomadic_event(
                        rng.choice(KINDS[:4]), f"Event {k} of drive {number}",
                        approval=rng.choice(("pending", "pending", "approved", "rejected")),
                        t_start=f"00:{k * 5:02d}", t_end=f"00:{k * 5 + 3:02d}", aiAnalysis=FILLER[:650],
                    )
                    for k in range(count)
                ],
            )  # fmt: skip
            out.write(("," if number else "") + json.dumps(result))
        out.write("]}")
    return path.stat().st_size


def small_analysis(batch_id: str, seed: int, events: int = 4) -> bytes:
    """A small NomadicML batch analysis (the batch list's thousand batches): one video, ``events`` events."""
    from tests.factories import nomadic_analysis, nomadic_event, nomadic_result

    rng = random.Random(seed)
    found = [
        nomadic_event(kind, f"{kind.replace('_', ' ')} on {street}", approval=rng.choice(("pending", "approved")),
                      t_start=f"00:{k * 5:02d}", t_end=f"00:{k * 5 + 3:02d}", aiAnalysis=_analysis(rng, kind, street))
        for k in range(events)
        for kind, street in [(rng.choice(KINDS), rng.choice(STREETS))]
    ]  # fmt: skip
    prompt = f"Flag every {rng.choice(KINDS).replace('_', ' ')} near {rng.choice(STREETS)}"
    return json.dumps(nomadic_analysis(batch_id, [nomadic_result(f"{batch_id}-v", found)], prompt=prompt)).encode()
