"""NomadicML batch analysis: wire format -> normalized records, and the client.

Docs: https://docs.nomadicml.com (SDK ``get_batch_analysis``); the contract, read from
SDK 0.1.53 and the seed page, is summarized in PROVIDERS.md section 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from reviewer.providers import events as sdk_events
from reviewer.providers import wire
from reviewer.providers.http import ProviderClient, ProviderError
from reviewer.records import BatchRecord, ItemRecord, Malformed, RecordError
from reviewer.timecodes import format_timestamp, parse_seconds

PROVIDER = "nomadicml"
BATCH_STATUS = {
    "processing": "processing",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "canceled",
    "canceled": "canceled",
}
ITEM_STATUSES = ("processing", "completed", "failed")
# A video without an analysis document yet, whose pointer says one of these, is processing.
_UNFINISHED_POINTER = ("processing", "pending", "queued", "running", "uploading")


def viewer_url(dashboard_base: str, batch_id: str) -> str:
    return f"{dashboard_base.rstrip('/')}/use-cases/rapid-review/batch-view/{batch_id}"


def parse_batch_metadata(obj: object) -> BatchRecord:
    """Return a BatchRecord from ``get_batch_analysis()["batch_metadata"]``; raises RecordError."""
    obj = wire.require_object(obj, "batch_metadata")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise RecordError("'metadata' must be an object")
    provider_status = wire.text(obj, "status").lower()
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
            events.append(sdk_events.from_json(wire.require_object(event, "event")))
        except RecordError as exc:
            raise RecordError(f"event {index}: {exc}") from None
    return ItemRecord(
        provider_item_id=wire.text(obj, "video_id", required=True),
        status=wire.text(obj, "status", required=True).lower(),
        analysis_id=wire.text(obj, "analysis_id"),
        video_name=wire.text(obj, "video_name"),
        text=_summary(obj.get("summary")),
        error_message=wire.text(obj, "error"),
        import_source_uri=wire.text(obj, "import_source_uri"),
        thumbnail_url=wire.text(obj, "thumbnail_url"),
        raw={key: value for key, value in obj.items() if key != "events"},
        events=events,
    )


def _summary(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(part) for part in value)
    if isinstance(value, dict):
        raise RecordError("'summary' must be text")
    return str(value)


# --- The HTTP API (the endpoints SDK 0.1.53's get_batch_analysis uses) ---------------

BULK_CHUNK = 100  # video ids per bulk request: the server caps at 500; smaller keeps answers small
ASK_KIND = "rapid_review"
NOT_FOUND = "Analysis not found"
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
# Where an analysis document keeps its events, in the SDK's order of preference.
_EVENT_PATHS = (
    ("events",), ("detected_events",), ("detectedEvents",), ("edge_case_events",), ("edgeCaseEvents",),
    ("result", "events"), ("visual_analysis", "events"),
)  # fmt: skip
# frame_gps_lat_start / unix_timestamp_end ... -> overlay["frame_gps_lat"] = {"start", "end"}
_OVERLAY_KEY = re.compile(r"^(frame_\w+|unix_timestamp)_(start|end)$")


def is_valid_id(value: str) -> bool:
    """Whether ``value`` can be a NomadicML batch id (one safe URL path segment)."""
    return bool(_ID_PATTERN.match(value or ""))


@dataclass
class VideoPointer:
    """One video of ``GET /api/batch/{id}/status``: which analysis to fetch for it."""

    video_id: str
    analysis_id: str = ""
    status: str = ""
    last_error: str = ""


@dataclass
class BatchStatusReport:
    """The batch's metadata and its videos, in the provider's order."""

    record: BatchRecord
    videos: list[VideoPointer]


def parse_status(batch_id: str, obj: object, viewer_base: str) -> BatchStatusReport:
    """Return the batch record and videos of a status answer; raises RecordError.

    Builds the SDK's ``batch_metadata`` (batch_type ``ask`` for rapid review, else
    ``agent``; prompt and category for ask batches only) and reads it with
    ``parse_batch_metadata``, so a fetched batch and an imported JSON file agree.
    """
    obj = wire.require_object(obj, "batch status")
    config = wire.mapping(obj, "config")
    kind = wire.text(config, "analysis_kind")
    is_ask = kind == ASK_KIND
    metadata = {
        "batch_id": batch_id,
        "batch_viewer_url": viewer_url(viewer_base, batch_id) if viewer_base else "",
        "batch_type": "ask" if is_ask else "agent",
        "analysis_type": kind,
        "status": obj.get("status"),
        "created_at": obj.get("created_at"),
        "review_status": obj.get("review_status"),
        "review_status_updated_at": obj.get("review_status_updated_at"),
        "metadata": obj.get("metadata"),
        "prompt": config.get("prompt") if is_ask else None,
        "category": config.get("category") if is_ask else None,
    }
    videos_in = obj.get("videos") or []
    if not isinstance(videos_in, list):
        raise RecordError("'videos' must be a list")
    videos, seen = [], set()
    for index, video in enumerate(videos_in):
        try:
            pointer = _video_pointer(wire.require_object(video, "video"))
        except RecordError as exc:
            raise RecordError(f"video {index}: {exc}") from None
        if pointer.video_id not in seen:  # a repeated id would be one item written twice
            seen.add(pointer.video_id)
            videos.append(pointer)
    return BatchStatusReport(parse_batch_metadata(metadata), videos)


def _video_pointer(video: dict) -> VideoPointer:
    return VideoPointer(
        video_id=wire.text(video, "video_id", required=True),
        analysis_id=wire.text(video, "analysis_id"),
        status=wire.text(video, "status").lower(),
        last_error=wire.text(video, "last_error"),
    )


def parse_bulk_entry(entry: dict | None, video: VideoPointer) -> ItemRecord:
    """Return the ItemRecord of one video from a bulk-analyses entry (None: no entry); raises RecordError.

    The entry is first put in the SDK's result shape, then read by ``parse_result``,
    the same reader as an imported JSON file; the wire events are kept as ``raw``.
    """
    entry = entry or {}
    pointer = wire.mapping(entry, "pointer")
    analysis = wire.mapping(entry, "analysis")
    result = {
        "video_id": video.video_id,
        "analysis_id": entry.get("analysis_id") or video.analysis_id or None,
        "video_name": entry.get("filename") or video.video_id,
        "import_source_uri": entry.get("import_source_uri"),
    }
    if not analysis:
        pointer_status = wire.text(pointer, "status").lower() or video.status
        if pointer_status in _UNFINISHED_POINTER:  # not written yet, not lost (the SDK says "processing" too)
            return parse_result({**result, "status": "processing", "events": []})
        error = wire.text(pointer, "last_error") or video.last_error or NOT_FOUND
        return parse_result({**result, "status": "failed", "events": [], "error": error})
    events = _events(analysis)
    status = wire.text(analysis, "status").lower() or "completed"
    result.update(
        status=status,
        summary=analysis.get("answer") if analysis.get("answer") not in (None, "") else analysis.get("summary"),
        events=[_sdk_event(wire.require_object(event, "event")) for event in events],
    )
    if status == "failed":
        result["error"] = wire.text(analysis, "error") or wire.text(pointer, "last_error") or video.last_error
    record = parse_result(result)
    for event_record, wire_event in zip(record.events, events, strict=True):
        event_record.raw = wire_event  # key sets vary between event forms: keep what was sent
    return record


def _events(analysis: dict) -> list:
    for path in _EVENT_PATHS:
        value: object = analysis
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value:
            if not isinstance(value, list):
                raise RecordError(f"'{'.'.join(path)}' must be a list")
            return value
    return []


def _sdk_event(event: dict) -> dict:
    """Return an event in the SDK's form, from the UI form, the SDK form or the legacy form.

    UI form: ``type``, ``time``/``end_time`` (``"t=61.5"``), ``description``, ``data``.
    Legacy agent form: ``label``, ``start_time``/``end_time``. Exact seconds are kept in
    ``start_seconds``/``end_seconds`` (the SDK keeps only whole seconds). Confidence
    is the provider's or absent: never the SDK's invented 0.85.
    """
    if "t_start" in event or "t_end" in event:
        return event
    data = wire.mapping(event, "data")
    start = parse_seconds(_first(event, "time", "start_time"))
    end = parse_seconds(_first(event, "end_time"))
    confidence = data.get("confidence") if data.get("confidence") not in (None, "") else event.get("confidence")
    return {
        "category": _first(event, "type", "category"),
        "label": _first(event, "description") or _first(data, "label") or _first(event, "label"),
        "severity": event.get("severity"),
        "aiAnalysis": event.get("aiAnalysis"),
        "confidence": confidence,
        "approval": event.get("approval"),
        "annotated_thumbnail_url": _first(data, "annotated_thumbnail_url") or _first(event, "annotated_thumbnail_url"),
        "start_seconds": start,
        "end_seconds": end,
        "t_start": format_timestamp(start),
        "t_end": format_timestamp(end),
        "overlay": _overlay(event, data),
    }


def _first(obj: dict, *keys: str) -> object:
    return next((obj[key] for key in keys if obj.get(key) not in (None, "")), None)


def _overlay(*sources: dict) -> dict:
    overlay: dict[str, dict] = {}
    for source in sources:
        for key, value in source.items():
            match = _OVERLAY_KEY.match(key)
            if match:
                name, side = match.groups()
                overlay.setdefault(name, {"start": None, "end": None})[side] = _number_or_text(value)
    return {name: ends for name, ends in overlay.items() if ends != {"start": None, "end": None}}


def _number_or_text(value: object) -> object:
    """GPS and speed come as strings ("37.7749"): numbers where they are numbers; "" is none."""
    if value == "":
        return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class NomadicMLClient(ProviderClient):
    """The batch-analysis endpoints. Every method raises ProviderError on failure."""

    provider = "NomadicML"
    auth_header = "X-API-Key"

    def __init__(
        self, base_url: str, api_key: str, *, viewer_base: str = "", timeout: tuple[float, float] | None = None
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout)
        self.viewer_base = viewer_base

    # https://docs.nomadicml.com (SDK get_batch_analysis: GET /api/batch/{batch_id}/status)
    def get_status(self, batch_id: str) -> BatchStatusReport:
        """Return the batch's metadata (as a BatchRecord) and its list of videos."""
        what = _check_id(batch_id)
        body = self.get_json(self.url("api", "batch", batch_id, "status"), what=what)
        try:
            return parse_status(batch_id, body, self.viewer_base)
        except RecordError as exc:
            raise ProviderError(f"{self.provider} sent a status of {what} that cannot be read: {exc}") from None

    # https://docs.nomadicml.com (SDK get_batch_analysis: POST /api/batch/{batch_id}/analyses/bulk)
    def iter_results(self, batch_id: str, videos: list[VideoPointer]) -> Iterator[ItemRecord | Malformed]:
        """Yield one record per video, in order, fetching analyses BULK_CHUNK videos at a time.

        A failed chunk raises ProviderError (the SDK logs it and shows its videos as
        "Analysis not found"; here the whole sync fails and the cache is kept). A video
        whose analysis cannot be read is yielded as Malformed, numbered by its position.
        """
        what = _check_id(batch_id)
        url = self.url("api", "batch", batch_id, "analyses", "bulk")
        for start in range(0, len(videos), BULK_CHUNK):
            chunk = videos[start : start + BULK_CHUNK]
            body = self.post_json(
                url, {"video_ids": [video.video_id for video in chunk]}, what=f"analyses of {what}",
                params={"include_source_uri": "true"},
            )  # fmt: skip
            entries = self._entries(body, what)
            for position, video in enumerate(chunk, start=start + 1):
                try:
                    yield parse_bulk_entry(entries.get(video.video_id), video)
                except RecordError as exc:
                    yield Malformed(position, f"video {video.video_id}: {exc}")

    # SDK 0.1.53 (private _get_signed_video_url): POST /api/video/{video_id}/signed-url
    def signed_video_url(self, video_id: str, expires_in: int = 900) -> str:
        """Return a browser-playable MP4 URL of the video, valid ``expires_in`` seconds; raises ProviderError.

        Newer servers answer under ``/api/public/...``: asked when the first path is a 404.
        """
        if not is_valid_id(video_id):
            raise ProviderError(f"{video_id!r} is not a NomadicML video id.", permanent=True)
        what, body = f"video {video_id}", {"expires_in": expires_in}
        try:
            answer = self.post_json(self.url("api", "video", video_id, "signed-url"), body, what=what)
        except ProviderError as exc:
            if exc.status != 404:
                raise
            answer = self.post_json(self.url("api", "public", "video", video_id, "signed-url"), body, what=what)
        url = answer.get("url") if isinstance(answer, dict) else None
        if not isinstance(url, str) or not url:
            raise ProviderError(f"{self.provider} sent a signed URL answer for {what} without a 'url'.")
        return url

    def _entries(self, body: object, what: str) -> dict[str, dict]:
        analyses = body.get("analyses") if isinstance(body, dict) else None
        if not isinstance(analyses, list):
            raise ProviderError(f"{self.provider} sent analyses of {what} without an 'analyses' list.")
        return {
            entry["video_id"]: entry
            for entry in analyses
            if isinstance(entry, dict) and isinstance(entry.get("video_id"), str)
        }


def _check_id(batch_id: str) -> str:
    """Return "batch <id>" for messages; raises a permanent ProviderError for an unusable id."""
    if not is_valid_id(batch_id):
        raise ProviderError(
            f"{batch_id!r} is not a NomadicML batch id (letters, digits, '-', '_' and '.').", permanent=True
        )
    return f"batch {batch_id}"
