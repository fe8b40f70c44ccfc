"""A fake of the NomadicML batch-analysis API (the endpoints SDK 0.1.53 uses).

``GET /api/batch/{id}/status`` and ``POST /api/batch/{id}/analyses/bulk``; every request
must carry ``X-API-Key``; errors are FastAPI-style ``{"detail": …}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from tests.fakes.server import FakeApp, Reply, Request

MAX_IDS = 100  # what the client promises per bulk request (the real server caps at 500)
_ROUTES = [
    ("status", "GET", re.compile(r"^/api/batch/(?P<key>[^/]+)/status$")),
    ("bulk", "POST", re.compile(r"^/api/batch/(?P<key>[^/]+)/analyses/bulk$")),
    ("signed_url", "POST", re.compile(r"^/api/video/(?P<key>[^/]+)/signed-url$")),
    ("public_signed_url", "POST", re.compile(r"^/api/public/video/(?P<key>[^/]+)/signed-url$")),
]


def ui_event(
    kind: str, start: float, end: float, description: str = "", *, severity: str = "medium",
    approval: str | None = None, confidence: float | None = None, **data: object,
) -> dict:  # fmt: skip
    """An event as NomadicML stores it ("UI format")."""
    event = {"type": kind, "time": f"t={start}", "end_time": f"t={end}", "description": description,
             "severity": severity, "aiAnalysis": f"Detected {description or kind}",
             "unix_timestamp_start": 1758310000 + start, "unix_timestamp_end": 1758310000 + end,
             "data": {"annotated_thumbnail_url": f"https://cdn.example.com/{kind}-{start}.jpg", **data}}  # fmt: skip
    if approval is not None:
        event["approval"] = approval
    if confidence is not None:
        event["data"]["confidence"] = confidence
    return event


def video(
    video_id: str, events: list[dict], *, answer: object = "", events_key: str = "events", **extra: object
) -> dict:
    """A video whose analysis document exists; ``events_key`` is where the analysis keeps its events."""
    analysis: dict = {"status": "completed", "answer": answer}
    if "summary" in extra:
        analysis["summary"] = extra.pop("summary")
    *parents, last = events_key.split(".")
    holder = analysis
    for key in parents:
        holder = holder.setdefault(key, {})
    holder[last] = events
    return {"video_id": video_id, "analysis_id": f"an-{video_id}", "filename": f"{video_id}.mp4",
            "import_source_uri": f"s3://fleet/{video_id}.mp4", "pointer": {"status": "completed"},
            "analysis": analysis, **extra}  # fmt: skip


def missing_video(video_id: str, last_error: str | None = None) -> dict:
    """A video with no analysis document (its pointer may say why)."""
    pointer = {"status": "failed", **({"last_error": last_error} if last_error else {})}
    return {"video_id": video_id, "analysis_id": None, "pointer": pointer, "analysis": None}


class NomadicFake(FakeApp):
    auth_header = "X-API-Key"

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.base_url = ""  # set by the fixture
        self.batches: dict[str, dict] = {}  # batch id -> status answer without "videos"
        self.videos: dict[str, list[dict]] = {}  # batch id -> videos (see ``video``)
        self.bulk_sizes: list[int] = []  # ids per bulk request, in order
        # video id -> a function of expires_in giving the signed URL (see tests/fakes/cdn.py)
        self.video_urls: dict[str, Callable[[int], str]] = {}
        self.signed_expiries: list[int] = []
        self.public_signed_urls_only = False

    def add_batch(
        self, batch_id: str, videos: list[dict], *, kind: str = "rapid_review", status: str = "completed",
        prompt: str = "jaywalking near intersections", **extra: object,
    ) -> None:  # fmt: skip
        config = {"analysis_kind": kind, "is_thumbnail": False}
        if kind == "rapid_review":
            config.update(prompt=prompt, category="driving")
        self.batches[batch_id] = {"status": status, "created_at": "2025-09-19T19:20:00Z", "config": config, **extra}
        self.videos[batch_id] = videos

    def remove_batch(self, batch_id: str) -> None:
        del self.batches[batch_id], self.videos[batch_id]

    def route(self, request: Request) -> tuple[str, Callable[[], Reply]]:
        for name, method, pattern in _ROUTES:
            match = pattern.match(request.path)
            if match and request.method == method:
                return name, partial(getattr(self, f"_{name}"), request, **match.groupdict())
        return "unknown", lambda: Reply.json({"detail": "Not Found"}, 404)

    def unauthorized(self) -> Reply:
        return Reply.json({"detail": "Invalid API key"}, 401)

    def _signed_url(self, request: Request, key: str) -> Reply:
        if self.public_signed_urls_only:  # a newer server: only the /api/public/... path exists
            return Reply.json({"detail": "Not Found"}, 404)
        return self._public_signed_url(request, key)

    def _public_signed_url(self, request: Request, key: str) -> Reply:
        if key not in self.video_urls:
            return Reply.json({"detail": f"Video {key} not found"}, 404)
        body = request.json()
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        if not isinstance(expires_in, int) or expires_in <= 0:
            return Reply.json({"detail": [{"loc": ["body", "expires_in"], "msg": "expected a positive integer"}]}, 422)
        self.signed_expiries.append(expires_in)
        return Reply.json({"url": self.video_urls[key](expires_in)})

    def _status(self, request: Request, key: str) -> Reply:
        if key not in self.batches:
            return Reply.json({"detail": f"Batch {key} not found"}, 404)
        videos = [
            {"video_id": v["video_id"], "analysis_id": v.get("analysis_id"), "status": v["pointer"]["status"],
             **({"last_error": v["pointer"]["last_error"]} if "last_error" in v["pointer"] else {})}
            for v in self.videos[key]
        ]  # fmt: skip
        return Reply.json({**self.batches[key], "videos": videos})

    def _bulk(self, request: Request, key: str) -> Reply:
        if key not in self.batches:
            return Reply.json({"detail": f"Batch {key} not found"}, 404)
        if request.query.get("include_source_uri") != ["true"]:
            return Reply.json({"detail": [{"loc": ["query", "include_source_uri"], "msg": "expected true"}]}, 422)
        body = request.json()
        ids = body.get("video_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or len(ids) > MAX_IDS:
            msg = f"ensure this value has at most {MAX_IDS} items"
            return Reply.json({"detail": [{"loc": ["body", "video_ids"], "msg": msg}]}, 422)
        self.bulk_sizes.append(len(ids))
        by_id = {v["video_id"]: v for v in self.videos[key]}
        analyses = [{k: v for k, v in by_id[i].items() if v is not None} for i in ids if i in by_id]
        unresolved = [i for i in ids if i not in by_id]
        return Reply.json({"analyses": analyses, "unresolved_video_ids": unresolved, "not_found_analysis_ids": []})


# --- An ask batch and an agent batch covering every event form and video status ---

ASK_BATCH = "rr-2025-09-19-jaywalk"
AGENT_BATCH = "agent-2025-09-21-edge"


def ask_videos() -> list[dict]:
    return [
        video("vid1", [
            ui_event("jaywalking", 61.5, 64.0, "Pedestrian mid-block", severity="high", approval="approved",
                     confidence=0.9, frame_gps_lat_start="37.7749", frame_gps_lat_end="37.7751", frame_speed_start="31"),
            ui_event("near_miss", 3605, 3610.25, "", label="Bus pass"),  # no confidence, label in data
        ], answer="Two jaywalkers near the crosswalk."),
        video("vid2", [], answer="No jaywalking observed.", filename=None),  # no filename: named by its id
        missing_video("vid3", "decode error"),
        missing_video("vid4"),
    ]  # fmt: skip


def agent_videos() -> list[dict]:
    sdk_form = {
        "t_start": "00:05",
        "t_end": "00:09",
        "category": "edge_case",
        "label": "Debris on the highway",
        "severity": "high",
        "aiAnalysis": "Object in lane",
        "approval": "rejected",
    }
    legacy_form = {"label": "Emergency vehicle", "start_time": 20.25, "end_time": 31, "category": "edge_case"}
    return [
        video("edge-1", [sdk_form], events_key="detected_events", answer=None,
              summary=["Highway drive, mostly clear.", "1 edge case flagged."]),
        video("edge-2", [legacy_form], events_key="edgeCaseEvents"),
        video("edge-3", [ui_event("weather", 2, 8, "Heavy rain")], events_key="result.events"),
        video("edge-4", [ui_event("construction_zone", 40, 45, "Lane closure")], events_key="visual_analysis.events"),
        missing_video("edge-5", "model timeout"),
    ]  # fmt: skip
