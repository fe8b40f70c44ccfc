"""The hand-off: a batch's approved and rejected events per video, as JSON.

What a team feeds to training (positive and negative examples, e.g. NomadicML's
``create_agent``). By default only a person's decisions count: the review is the
ground truth, and an event only the provider approved is not a reviewed example.
Streamed: memory stays flat at 100,000 events. One code path for the page's download
and the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import F

from reviewer.exporters import safe_file_name
from reviewer.models import Approval, Batch, Event

_EVENT_FIELDS = (
    "pk", "key", "start_seconds", "end_seconds", "t_start", "t_end", "label", "category", "severity", "confidence",
    "decided_by__username", "reason", "note", "approval",
)  # fmt: skip
_ITEM_FIELDS = ("item_id", "item__provider_item_id", "item__custom_id", "item__video_name")


def events(batch: Batch, *, people_only: bool = True):
    """The hand-off's events in video order, then time order."""
    chosen = Event.objects.filter(batch=batch, approval__in=[Approval.APPROVED, Approval.REJECTED])
    if batch.loading:
        return chosen.none()
    if people_only:
        chosen = chosen.filter(decided_at__isnull=False)
    return chosen.order_by(
        "item__position", "item_id", F("start_seconds").asc(nulls_last=True), "position", "pk"
    ).values_list(*_ITEM_FIELDS, *_EVENT_FIELDS)


def json_chunks(batch: Batch, *, people_only: bool = True) -> Iterator[str]:
    """``{"batch": …, "videos": [{…, "approved": [...], "rejected": [...]}]}`` in pieces."""
    head = {
        "batch": batch.pk, "provider": batch.provider, "provider_batch_id": batch.provider_batch_id,
        "prompt": batch.prompt, "people_only": people_only,
    }  # fmt: skip
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "videos": ['
    separator, video = "", None
    for row in events(batch, people_only=people_only).iterator(chunk_size=2000):
        item_values, event_values = row[: len(_ITEM_FIELDS)], row[len(_ITEM_FIELDS) :]
        if video is None or video["item_id"] != item_values[0]:
            if video is not None:
                yield separator + json.dumps(video, ensure_ascii=False)
                separator = ", "
            video = _video(item_values)
        event = dict(zip(("event_id", *_EVENT_FIELDS[1:-1]), event_values[:-1], strict=True))
        event["decided_by"] = event.pop("decided_by__username")
        video[event_values[-1]].append(event)
    if video is not None:
        yield separator + json.dumps(video, ensure_ascii=False)
    yield "]}\n"


def _video(item_values: tuple) -> dict:
    item_id, provider_item_id, custom_id, video_name = item_values
    return {
        "item_id": item_id, "provider_item_id": provider_item_id, "custom_id": custom_id, "video_name": video_name,
        "approved": [], "rejected": [],
    }  # fmt: skip


def file_name(batch: Batch) -> str:
    return safe_file_name(f"{batch.provider_batch_id}-handoff", "json")
