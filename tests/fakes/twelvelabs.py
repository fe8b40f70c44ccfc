"""A fake of TwelveLabs API v1.3 batches: batch, list, results stream (JSONL), task, asset.

Served under ``/v1.3`` like the real API; every request must carry ``x-api-key``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from functools import partial

from tests.factories import tl_id, tl_line
from tests.fakes.server import FakeApp, Reply, Request

PREFIX = "/v1.3"
_ROUTES = [
    ("list", re.compile(r"^/analyze/batches$")),
    ("batch", re.compile(r"^/analyze/batches/(?P<key>[^/]+)$")),
    ("results", re.compile(r"^/analyze/batches/(?P<key>[^/]+)/results$")),
    ("task", re.compile(r"^/analyze/tasks/(?P<key>[^/]+)$")),
    ("asset", re.compile(r"^/assets/(?P<key>[^/]+)$")),
]


def error(status: int, code: str, message: str) -> Reply:
    """TwelveLabs' usual error body."""
    return Reply.json(
        {"code": code, "message": message, "docs_url": f"https://docs.twelvelabs.io/errors/{code}"}, status
    )


class TwelveLabsFake(FakeApp):
    auth_header = "x-api-key"

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.base_url = ""  # set by the fixture: the server's URL + /v1.3
        self.batches: dict[str, dict] = {}
        self.results: dict[str, list[dict | str]] = {}  # a str line is sent as is (blank, malformed)
        self.tasks: dict[str, dict] = {}
        self.assets: dict[str, dict | Callable[[], dict]] = {}

    def add_batch(
        self, batch_id: str, lines: list[dict | str], *, mode: str = "time_based_metadata", status: str = "completed",
        created_at: str = "2025-10-19T12:00:00Z",
    ) -> dict:  # fmt: skip
        """Serve a batch and its results stream; returns the Batch object (with item counts)."""
        counts = Counter(line["status"] for line in lines if isinstance(line, dict))
        batch = {
            "batch_id": batch_id, "analysis_mode": mode, "model_name": "pegasus1.5", "status": status,
            "total_items": sum(counts.values()),
            **{f"{name}_items": counts[name] for name in ("queued", "processing", "ready", "failed", "canceled")},
            "created_at": created_at, "expires_at": "2025-10-20T12:00:00Z",
        }  # fmt: skip
        if status == "completed":
            batch["completed_at"] = "2025-10-19T12:41:07Z"
        self.batches[batch_id] = batch
        self.results[batch_id] = lines
        return batch

    def remove_batch(self, batch_id: str) -> None:
        """The provider deleted it (30 days after creation): 404 from now on."""
        del self.batches[batch_id], self.results[batch_id]

    def route(self, request: Request) -> tuple[str, Callable[[], Reply]]:
        path = request.path.removeprefix(PREFIX)
        for name, pattern in _ROUTES:
            match = pattern.match(path)
            if match and request.method == "GET":
                return name, partial(getattr(self, f"_{name}"), request, **match.groupdict())
        return "unknown", lambda: error(404, "resource_not_exist", f"No route {request.method} {request.path}")

    def unauthorized(self) -> Reply:
        return error(401, "api_key_invalid", "The API key you provided is not valid.")

    def _list(self, request: Request) -> Reply:
        page = int(request.query.get("page", ["1"])[0])
        limit = min(int(request.query.get("page_limit", ["10"])[0]), 50)
        if page < 1 or limit < 1:
            return error(400, "parameter_invalid", "page and page_limit must be positive.")
        batches = sorted(self.batches.values(), key=lambda batch: batch["created_at"], reverse=True)
        total_pages = max(1, -(-len(batches) // limit))
        data = batches[(page - 1) * limit : page * limit]
        page_info = {"limit_per_page": limit, "page": page, "total_page": total_pages, "total_results": len(batches)}
        return Reply.json({"data": data, "page_info": page_info})

    def _batch(self, request: Request, key: str) -> Reply:
        if key not in self.batches:
            return error(404, "resource_not_exist", f"The batch {key} does not exist.")
        return Reply.json(self.batches[key])

    def _results(self, request: Request, key: str) -> Reply:
        if key not in self.results:
            return error(404, "resource_not_exist", f"The batch {key} does not exist.")
        lines = self.results[key]
        # One chunk per line, as a streaming server sends them.
        chunks = ((line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines)
        return Reply(200, chunks, {"Content-Type": "application/jsonl"})

    def _task(self, request: Request, key: str) -> Reply:
        if key not in self.tasks:
            return error(404, "resource_not_exist", f"The task {key} does not exist.")
        return Reply.json(self.tasks[key])

    def _asset(self, request: Request, key: str) -> Reply:
        if key not in self.assets:
            return error(404, "resource_not_exist", f"The asset {key} does not exist.")
        asset = self.assets[key]
        return Reply.json(asset() if callable(asset) else asset)  # a function: freshly signed URLs each time


# --- Two batches covering every item status, in both analysis modes ---

TIMED_BATCH = "68f4ddaf8aaa60d33df0e800"
GENERAL_BATCH = "68f4ddaf8aaa60d33df0e7a1"


def timed_lines() -> list[dict]:
    """time_based_metadata results: numeric times, "HH:MM:SS.fff" string times, every status."""
    numeric = {
        "incident": [
            {"start_time": 12.5, "end_time": 18.0, "metadata": {"label": "near miss", "severity": "high"}},
            {"start_time": 3600.25, "end_time": 3604.5, "metadata": {"label": "hard brake", "severity": "medium"}},
        ],
        "scene": [{"start_time": 0, "end_time": 30, "metadata": {"label": "highway"}}],
    }
    strings = {
        "incident": [{"start_time": "00:00:12.500", "end_time": "00:01:03", "metadata": {"label": "tailgating"}}]
    }
    return [
        tl_line(tl_id(1), segments=numeric, custom_id="cam-1"),
        tl_line(tl_id(2), segments=strings, custom_id="cam-2"),
        tl_line(tl_id(3), segments={"incident": [], "scene": []}, custom_id="cam-3"),
        tl_line(tl_id(4), "failed", error={"code": "video_duration_too_long", "message": "The video is too long."}),
        tl_line(tl_id(5), "canceled"),
        tl_line(tl_id(6), "processing", custom_id="cam-6"),
        tl_line(tl_id(7), "queued", custom_id="cam-7"),
    ]


def general_lines() -> list[dict]:
    """general-mode results: generated text (finish_reason stop and length) and every status."""
    truncated = tl_line(tl_id(0x12), text="A long walkthrough of the warehouse…", custom_id="summary-002")
    truncated["data"].update(finish_reason="length", usage={"output_tokens": 512})
    return [
        tl_line(tl_id(0x11), text="This video covers the keynote launch.", custom_id="summary-001"),
        truncated,
        tl_line(tl_id(0x13), "failed", error={"code": "asset_unavailable", "message": "The asset could not be read."}),
        tl_line(tl_id(0x14), "processing", custom_id="summary-004"),
        tl_line(tl_id(0x15), "queued", custom_id=None),
        tl_line(tl_id(0x16), "canceled", custom_id="summary-006"),
    ]
