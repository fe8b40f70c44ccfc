"""TwelveLabs Analyze API v1.3 batches: wire format -> normalized records, and the client.

Docs: https://docs.twelvelabs.io/v1.3/api-reference/analyze-videos/batch-analysis
(results stream: "Retrieve batch results"; the contract is summarized in PROVIDERS.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from reviewer.providers import wire
from reviewer.providers.http import ProviderClient, ProviderError
from reviewer.records import BatchRecord, EventRecord, ItemRecord, Malformed, RecordError, StopRead
from reviewer.timecodes import format_timestamp, parse_seconds

T = TypeVar("T")

PROVIDER = "twelvelabs"
ID_PATTERN = re.compile(r"^[0-9a-fA-F]{24}$")
ITEM_STATUSES = ("queued", "processing", "ready", "failed", "canceled")
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
    provider_status = wire.text(obj, "status").lower()
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


class ModeUnknown(StopRead):
    """A result whose text is a JSON object, read without knowing the batch's analysis mode.

    Segments and a general-mode JSON answer (a ``response_format`` schema) look alike:
    only the batch's ``analysis_mode`` tells them apart, so the reader never guesses.
    Not a malformed line: the whole read stops and asks for the mode.
    """


def parse_result(obj: object, mode: str) -> ItemRecord:
    """Return an ItemRecord from one line of the results stream; raises RecordError.

    ``mode`` is the batch's ``analysis_mode``. In ``time_based_metadata`` mode ``data.data``
    is a JSON string of segments, which become events; in ``general`` mode it is the
    answer, kept as text even when it is JSON. With ``mode`` empty (unknown), a JSON
    object answer raises ModeUnknown. An ``error`` on a ready item is a warning (a
    partial or truncated result) and is kept next to the result.
    """
    obj = wire.require_object(obj, "result")
    task_id = wire.text(obj, "task_id", required=True)
    status = wire.text(obj, "status", required=True).lower()
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
        segments = _segments(output or "") if mode == MODE_TIME_BASED else None
        if segments is None:
            if not mode and _is_json_object(output or ""):
                raise ModeUnknown(
                    f"Task {task_id}'s answer is JSON: segments in a time_based_metadata batch, an answer "
                    "in a general batch. Say which analysis mode the batch used."
                )
            record.text = output or ""
        else:
            record.events = segments
    return record


def _is_json_object(output: str) -> bool:
    if not output.lstrip().startswith("{"):
        return False
    try:
        return isinstance(wire.loads(output), dict)
    except (json.JSONDecodeError, RecordError):
        return False


def _segments(output: str) -> list[EventRecord] | None:
    """Return the events of a time_based_metadata output, or None when it is no segment map."""
    stripped = output.lstrip()
    if not stripped.startswith("{"):
        return None
    try:
        parsed = wire.loads(output)
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
        confidence=_confidence(confidence),
        ai_analysis=next((_metadata_text(metadata, key) for key in _ANALYSIS_FIELDS if metadata.get(key)), ""),
        start_seconds=start,
        end_seconds=end,
        t_start=format_timestamp(start),
        t_end=format_timestamp(end),
        metadata=metadata,  # every user-defined field, whatever its type: shown and exported
        raw=segment,
    )


def _confidence(value: object) -> float | None:
    """A number (or a numeric string) from the segment's metadata; None otherwise, never invented."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _metadata_text(metadata: dict, key: str) -> str:
    value = metadata.get(key)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def parse_lines(lines: Iterable[bytes | str], mode: str) -> Iterator[ItemRecord | Malformed]:
    """Yield one record per non-blank line of a results stream, numbered from 1.

    A line that is not JSON, not a valid result, or repeats a task_id is yielded as
    Malformed with its line number (the official SDK drops them silently). Raises
    ModeUnknown (see parse_result) when ``mode`` is empty and an answer is JSON.
    """
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines are allowed in the stream
        try:
            record = parse_result(wire.loads(line), mode)
        except StopRead:
            raise
        except UnicodeDecodeError:
            yield Malformed(number, "not UTF-8 text")
            continue
        except json.JSONDecodeError as exc:
            yield Malformed(number, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecordError as exc:
            yield Malformed(number, str(exc))
            continue
        if record.provider_item_id in seen:
            first = seen[record.provider_item_id]
            yield Malformed(number, f"duplicate task_id {record.provider_item_id} (first on line {first})")
            continue
        seen[record.provider_item_id] = number
        yield record


@dataclass
class TaskInfo:
    """What ``GET /analyze/tasks/{task_id}`` says of one task (its asset id leads to the video and thumbnail)."""

    task_id: str
    status: str
    batch_id: str = ""
    custom_id: str = ""
    asset_id: str = ""
    duration: float | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    raw: dict = field(default_factory=dict)


def parse_task(obj: object) -> TaskInfo:
    """Return a TaskInfo from a Task object; raises RecordError."""
    obj = wire.require_object(obj, "task")
    video_source = wire.mapping(obj, "video_source")
    return TaskInfo(
        task_id=wire.text(obj, "task_id", required=True),
        status=wire.text(obj, "status", required=True),
        batch_id=wire.text(obj, "batch_id"),
        custom_id=wire.text(obj, "custom_id"),
        asset_id=wire.text(video_source, "asset_id"),
        duration=wire.number(wire.mapping(video_source, "system_metadata"), "duration"),
        created_at=wire.timestamp(obj, "created_at"),
        completed_at=wire.timestamp(obj, "completed_at"),
        raw=obj,
    )


@dataclass
class AssetInfo:
    """What ``GET /assets/{asset_id}`` says of a video: its HLS stream and thumbnail (both expiring)."""

    hls_url: str = ""  # empty while the stream is not ready
    thumbnail_url: str = ""  # empty while the thumbnail is not ready
    duration: float | None = None
    filename: str = ""


def parse_asset(obj: object) -> AssetInfo:
    """Return an AssetInfo; a URL whose status is not ``ready`` is left empty; raises RecordError."""
    obj = wire.require_object(obj, "asset")
    hls, thumbnail = wire.mapping(obj, "hls"), wire.mapping(obj, "thumbnail")
    return AssetInfo(
        hls_url=wire.text(hls, "manifest_url") if wire.text(hls, "status") == "ready" else "",
        thumbnail_url=wire.text(thumbnail, "representative_url") if wire.text(thumbnail, "status") == "ready" else "",
        duration=wire.number(obj, "duration"),
        filename=wire.text(obj, "filename"),
    )


class TwelveLabsClient(ProviderClient):
    """The Analyze API v1.3 batch endpoints. Every method raises ProviderError on failure."""

    provider = "TwelveLabs"
    auth_header = "x-api-key"

    # https://docs.twelvelabs.io/v1.3/api-reference/analyze-videos/batch-analysis/the-batch-object
    def get_batch(self, batch_id: str) -> BatchRecord:
        """Return the batch's metadata (``GET /analyze/batches/{batch_id}``)."""
        what = _check_id(batch_id, "batch")
        return self._parsed(parse_batch, self.get_json(self.url("analyze", "batches", batch_id), what=what), what)

    # https://docs.twelvelabs.io/v1.3/api-reference/analyze-videos/batch-analysis (list batches)
    def list_batches(
        self, *, page_limit: int = 50, max_pages: int = 20, status: list[str] | None = None,
        analysis_mode: list[str] | None = None,
    ) -> list[BatchRecord]:  # fmt: skip
        """Return the account's batches, newest first, reading at most ``max_pages`` pages.

        Stops at ``page_info.total_page``: unlike the SDK's pager, never asks for the
        empty page after the last one. Entries that cannot be read are left out.
        """
        records: list[BatchRecord] = []
        page = 1
        while page <= max_pages:
            params = {"page": page, "page_limit": min(page_limit, 50), "status": status or [],
                      "analysis_mode": analysis_mode or []}  # fmt: skip
            body = self.get_json(self.url("analyze", "batches"), what="batch list", params=params)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise ProviderError(f"{self.provider} sent a batch list without a 'data' list.")
            for entry in body["data"]:
                try:
                    records.append(parse_batch(entry))
                except RecordError:
                    continue  # a listing for a picker: one odd entry must not hide the others
            total_pages = wire.integer(wire.mapping(body, "page_info"), "total_page") or page
            if page >= total_pages or not body["data"]:
                break
            page += 1
        return records

    # https://docs.twelvelabs.io/v1.3/api-reference/analyze-videos/batch-analysis ("Retrieve batch results")
    def iter_results(self, batch_id: str, mode: str) -> Iterator[ItemRecord | Malformed]:
        """Request the results now and return a lazy iterator of their records.

        The request (and so a 401/404/timeout) happens in this call; the body is then
        read line by line as the iterator is consumed, never whole into memory.
        Malformed lines come out as Malformed with their line number; a stream that
        breaks mid-way raises ProviderError from the iterator.
        """
        what = _check_id(batch_id, "batch")
        response = self.request("GET", self.url("analyze", "batches", batch_id, "results"), what=what, stream=True)
        content_type = response.headers.get("Content-Type", "")
        if "html" in content_type.lower():
            response.close()  # a proxy's page with status 200: not results, and not N malformed lines
            raise ProviderError(f"{self.provider} answered the results of {what} with an HTML page.")
        return parse_lines(self.iter_lines(response, what=f"results stream of {what}"), mode)

    # https://docs.twelvelabs.io/v1.3/api-reference/analyze-videos/retrieve-analysis-task-status-results
    def get_task(self, task_id: str) -> TaskInfo:
        """Return one analysis task (``GET /analyze/tasks/{task_id}``)."""
        what = _check_id(task_id, "task")
        return self._parsed(parse_task, self.get_json(self.url("analyze", "tasks", task_id), what=what), what)

    # https://docs.twelvelabs.io/v1.3/api-reference (Assets: "Retrieve an asset")
    def get_asset(self, asset_id: str) -> AssetInfo:
        """Return the asset's HLS stream and thumbnail URLs (expiring; empty while not ready)."""
        what = _check_id(asset_id, "asset")
        body = self.get_json(self.url("assets", asset_id), what=what)
        return self._parsed(parse_asset, body, what)

    def _parsed(self, parse: Callable[[object], T], body: object, what: str) -> T:
        """Return ``parse(body)``; a body that breaks the contract is a ProviderError, not a crash."""
        try:
            return parse(body)
        except RecordError as exc:
            raise ProviderError(f"{self.provider} sent a {what.split()[0]} that cannot be read: {exc}") from None


def _check_id(value: str, kind: str) -> str:
    """Return "<kind> <value>" for messages; raises a permanent ProviderError for a malformed id."""
    if not is_valid_id(value):
        raise ProviderError(
            f"{value!r} is not a TwelveLabs {kind} id (24 hexadecimal characters).", status=None, permanent=True
        )
    return f"{kind} {value}"
