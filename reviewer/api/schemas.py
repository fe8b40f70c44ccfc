"""The API's request and response shapes (they make the OpenAPI schema at /api/openapi.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema

ApprovalValue = Literal["pending", "approved", "rejected", "invalid"]
SortValue = Literal["", "time", "severity", "confidence", "video"]
# An id or a count the database can hold (a larger number is a 400, not a driver's overflow error).
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]


class Error(Schema):
    detail: str = Field(description="What was wrong, in words a person can act on. Nothing was changed.")


class BatchOut(Schema):
    id: int
    provider: str
    provider_batch_id: str
    source: str | None = Field(description="The source's name; null for a batch imported from a file")
    status: str
    provider_status: str
    analysis_type: str
    model_name: str
    prompt: str
    viewer_url: str = Field(description="The provider's own page of the batch, when it has one")
    created_at: datetime
    completed_at: datetime | None
    last_synced_at: datetime | None
    sync_state: str
    last_error: str
    loading: bool = Field(description="A first sync or import is being written; its items are not listed yet")
    item_total: int
    event_total: int
    item_counts: dict[str, int]
    approval_counts: dict[str, int]
    reviewed_by_people: int = Field(description="Events a person decided (approved, rejected or invalid)")
    pending: int
    is_reviewed: bool = Field(description="Every event decided by a person")
    url: str = Field(description="The batch page in the dashboard")


class SourceOut(Schema):
    name: str
    provider: str


class AddBatchIn(Schema):
    source: str = Field(description="A source's name (GET /api/sources)")
    batch_id: str = Field(min_length=1, max_length=128, description="The provider's batch id")


class SyncRunOut(Schema):
    id: int
    trigger: str
    outcome: str
    error: str
    started_at: datetime | None
    finished_at: datetime | None
    items_created: int
    items_updated: int
    events_created: int
    events_updated: int
    events_removed: int
    malformed_lines: int


class SyncStateOut(Schema):
    batch: int
    sync_state: str = Field(description="idle, queued, running or failed")
    last_synced_at: datetime | None
    last_error: str
    paused: bool = Field(description="Automatic re-syncs stopped: trying again cannot help (e.g. a bad key)")
    runs: list[SyncRunOut] = Field(description="The latest runs, newest first")


class ItemOut(Schema):
    id: int
    provider_item_id: str
    custom_id: str
    analysis_id: str
    video_name: str
    status: str
    text: str
    error_code: str
    error_message: str
    thumbnail_url: str
    position: int
    gone_upstream: bool


class ItemRef(Schema):
    id: int
    provider_item_id: str
    custom_id: str
    video_name: str
    status: str


class EventOut(Schema):
    id: int
    batch: int
    item: ItemRef
    key: str
    position: int
    category: str
    label: str
    severity: str
    confidence: float | None
    ai_analysis: str
    start_seconds: float | None
    end_seconds: float | None
    t_start: str
    t_end: str
    thumbnail_url: str
    metadata: Any
    provider_approval: ApprovalValue
    approval: ApprovalValue
    decided_by: str | None = Field(description="Who decided it; null when nobody did (the provider's value)")
    decided_at: datetime | None
    reason: str
    note: str
    revision: int = Field(description="Send it back with a decision to refuse it if someone changed the event since")


class ListQuery(Schema):
    """The batch page's filter (each list repeatable: ``approval=pending&approval=approved``), then the page."""

    approval: list[str] = Field([], description="pending, approved, rejected, invalid")
    decided: list[str] = Field([], description="human, provider, disagree")
    reason: list[str] = Field([], description="A reason code's label")
    status: list[str] = Field([], description="A video's status, as the provider names it")
    severity: list[str] = []
    category: list[str] = []
    q: str = Field("", max_length=200, description="Words in the label, category, analysis, note or the video's text")
    sort: SortValue = ""
    cursor: str = Field("", max_length=2000, description="The `next_cursor` of the page before")
    limit: int = Field(100, ge=1, le=500)


class EventPage(Schema):
    count: int = Field(description="Events matching the filter, on every page")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one")
    results: list[EventOut]


class ItemPage(Schema):
    count: int
    next_cursor: str | None
    results: list[ItemOut]


class DecisionOut(Schema):
    id: int
    event: int
    user: str | None
    from_approval: str
    to_approval: str
    reason: str
    note: str
    group: str = Field(description="One review action (single or bulk); undo takes back a whole group")
    undo: bool
    created_at: datetime


class DecideIn(Schema):
    decision: ApprovalValue
    note: str = Field("", max_length=2000)
    reason: str = Field("", max_length=100, description="A reason code; only with rejected or invalid")
    revision: Count | None = Field(None, description="The event's revision you saw; a mismatch is refused (409)")


class DecideOut(Schema):
    outcome: Literal["applied", "unchanged"]
    group: str | None
    event: EventOut


class FilterIn(Schema):
    """The batch page's filter, as lists of values (an empty list: no filter on that field)."""

    approval: list[str] = []
    decided: list[str] = []
    reason: list[str] = []
    status: list[str] = []
    severity: list[str] = []
    category: list[str] = []
    q: str = ""


class DecideManyIn(Schema):
    decision: ApprovalValue
    event_ids: list[Id] | None = Field(None, max_length=10_000, description="These events (all must be in the batch)")
    filter: FilterIn | None = Field(None, description="Or every event matching this filter")
    expected_count: Count | None = Field(
        None, description="With `filter`: how many events you expect it to match; another number refuses"
    )
    note: str = Field("", max_length=2000)
    reason: str = Field("", max_length=100)


class AppliedOut(Schema):
    group: str | None
    changed: int
    unchanged: int
    skipped: int = Field(description="Undo only: events someone changed since, left as they are")


class UndoIn(Schema):
    group: str | None = Field(None, description="Undo only if your last action is still this group")


class HandoffEvent(Schema):
    event_id: int
    key: str
    start_seconds: float | None
    end_seconds: float | None
    t_start: str
    t_end: str
    label: str
    category: str
    severity: str
    confidence: float | None
    decided_by: str | None
    reason: str
    note: str


class HandoffVideo(Schema):
    item_id: int
    provider_item_id: str
    custom_id: str
    video_name: str
    approved: list[HandoffEvent]
    rejected: list[HandoffEvent]


class HandoffOut(Schema):
    batch: int
    provider: str
    provider_batch_id: str
    prompt: str
    people_only: bool
    videos: list[HandoffVideo]


class WebhookOut(Schema):
    id: int
    url: str
    events: list[str]
    active: bool
    pending: int
    failed: int


class QualityRow(Schema):
    group: str
    approved: int
    rejected: int
    invalid: int
    pending: int = Field(description="Not decided by a person (the provider's own decisions included)")
    precision: float | None = Field(description="approved / (approved + rejected); null with none of either")
    precision_low: float | None = Field(description="The 95 % Wilson score interval's lower bound")
    precision_high: float | None
    invalid_rate: float | None = Field(description="invalid / (approved + rejected + invalid)")


class QualityOut(Schema):
    by: str
    overall: QualityRow
    groups: list[QualityRow]
