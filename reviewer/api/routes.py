"""The API's operations. Each one parses, checks the role, and calls the same module the dashboard's views call.

Filters are the batch page's own (reviewer/filters.py, same values, same 400 messages);
decisions go through reviewer/review.py (same roles, stale check, audit rows, undo).
"""

from __future__ import annotations

import uuid
from typing import Literal

from django.db.models import Count, Q
from django.http import HttpRequest, QueryDict, StreamingHttpResponse
from ninja import Query, Status
from ninja.errors import HttpError

from reviewer import filters, handoff, quality, review
from reviewer.api import api, takes
from reviewer.api.pages import BadCursor, event_order, item_order, paginate
from reviewer.api.schemas import (
    AddBatchIn,
    AppliedOut,
    BatchOut,
    DecideIn,
    DecideManyIn,
    DecideOut,
    DecisionOut,
    Error,
    EventOut,
    EventPage,
    HandoffOut,
    ItemOut,
    ItemPage,
    ListQuery,
    QualityOut,
    SourceOut,
    SyncStateOut,
    UndoIn,
    WebhookOut,
)
from reviewer.models import Batch, DeliveryState, Event, Loading, Source, Webhook
from reviewer.views import can_review

MAX_OFFSET = 1_000_000_000  # past any real list; a larger number is a 400, not a database error

# The errors every operation may answer, documented so clients (and the schema checks) know them.
READ_ERRORS = {400: Error, 401: Error, 404: Error, 429: Error}
WRITE_ERRORS = {**READ_ERRORS, 403: Error}


def _reviewer(request: HttpRequest) -> None:
    if not can_review(request.user):
        raise api_error(403, "This token's user can view and export, but not change, reviews.")


def api_error(status: int, text: str) -> HttpError:
    """An answer with ``{"detail": text}``; raise it."""
    return HttpError(status, text)


def _batch(pk: int) -> Batch:
    batch = Batch.objects.select_related("source").filter(pk=pk).first()
    if batch is None:
        raise api_error(404, f"No batch {pk}.")
    return batch


def _event(pk: int) -> Event:
    """An event, or 404; also while its batch is loading (a load's rows are not shown before it ends)."""
    event = (
        Event.objects.select_related("batch", "item", "decided_by").filter(pk=pk, batch__loading=Loading.NONE).first()
    )
    if event is None:
        raise api_error(404, f"No event {pk}.")
    return event


def _filter(batch: Batch, data: QueryDict) -> filters.BatchFilter:
    batch_filter, form = filters.parse(data, batch)
    if batch_filter is None:
        raise api_error(400, form.error_message())
    return batch_filter


def _page(queryset, order, keyset, cursor, limit):
    try:
        return paginate(queryset, order, keyset, cursor, limit)
    except BadCursor:
        raise api_error(
            400, "cursor: not a cursor this API gave for this list and sort; start again without it."
        ) from None


# --- Output -----------------------------------------------------------------------------------


def batch_out(batch: Batch) -> dict:
    return {
        "id": batch.pk, "provider": batch.provider, "provider_batch_id": batch.provider_batch_id,
        "source": batch.source.name if batch.source_id else None, "status": batch.status,
        "provider_status": batch.provider_status, "analysis_type": batch.analysis_type,
        "model_name": batch.model_name, "prompt": batch.prompt, "viewer_url": batch.viewer_url,
        "created_at": batch.created_at, "completed_at": batch.completed_at, "last_synced_at": batch.last_synced_at,
        "sync_state": batch.sync_state, "last_error": batch.last_error, "loading": bool(batch.loading),
        "item_total": batch.item_total, "event_total": batch.event_total, "item_counts": batch.item_counts,
        "approval_counts": batch.approval_counts, "reviewed_by_people": batch.reviewed_total,
        "pending": batch.pending_total, "is_reviewed": batch.is_reviewed, "url": batch.get_absolute_url(),
    }  # fmt: skip


def event_out(event: Event) -> dict:
    item = event.item
    return {
        "id": event.pk, "batch": event.batch_id,
        "item": {"id": item.pk, "provider_item_id": item.provider_item_id, "custom_id": item.custom_id,
                 "video_name": item.video_name, "status": item.status},
        "key": event.key, "position": event.position, "category": event.category, "label": event.label,
        "severity": event.severity, "confidence": event.confidence, "ai_analysis": event.ai_analysis,
        "start_seconds": event.start_seconds, "end_seconds": event.end_seconds, "t_start": event.t_start,
        "t_end": event.t_end, "thumbnail_url": event.thumbnail_url, "metadata": event.metadata,
        "provider_approval": event.provider_approval, "approval": event.approval,
        "decided_by": event.decided_by.get_username() if event.decided_by_id else None,
        "decided_at": event.decided_at, "reason": event.reason, "note": event.note, "revision": event.revision,
    }  # fmt: skip


# --- Batches and sources --------------------------------------------------------------------------


@api.get("/sources", response={200: list[SourceOut], **READ_ERRORS}, tags=["batches"])
def list_sources(request):
    """The configured provider sources a batch can be added from."""
    return [{"name": source.name, "provider": source.provider} for source in Source.objects.order_by("name")]


@api.get("/batches", response={200: list[BatchOut], **READ_ERRORS}, tags=["batches"])
@takes("limit", "offset")
def list_batches(request, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_OFFSET)):
    """Batches, newest first, with their counts and review progress."""
    batches = Batch.objects.select_related("source").order_by("-created_at", "-id")[offset : offset + limit]
    return [batch_out(batch) for batch in batches]


@api.post("/batches", response={202: BatchOut, **WRITE_ERRORS}, tags=["batches"])
def add_batch(request, body: AddBatchIn):
    """Add a provider batch to a source and start fetching it (or sync it again if it is known)."""
    _reviewer(request)
    source = Source.objects.filter(name=body.source).first()
    if source is None:
        names = ", ".join(Source.objects.order_by("name").values_list("name", flat=True)) or "none yet"
        raise api_error(400, f"source: no source named {body.source!r}. Sources: {names}.")
    if not source.adapter.is_valid_id(body.batch_id):
        raise api_error(400, f"batch_id: {source.adapter.id_hint}")
    batch, _ = Batch.objects.get_or_create(
        source=source, provider_batch_id=body.batch_id, defaults={"provider": source.provider}
    )
    _start_sync(batch)
    return Status(202, batch_out(_batch(batch.pk)))


@api.get("/batches/{batch_id}", response={200: BatchOut, **READ_ERRORS}, tags=["batches"])
def get_batch(request, batch_id: int):
    return batch_out(_batch(batch_id))


@api.post("/batches/{batch_id}/sync", response={202: SyncStateOut, **WRITE_ERRORS}, tags=["batches"])
def start_sync(request, batch_id: int):
    """Fetch the batch from its provider again (in the background)."""
    _reviewer(request)
    batch = _batch(batch_id)
    if batch.source is None:
        raise api_error(400, "This batch was imported from a file: import the file again to update it.")
    _start_sync(batch)
    return Status(202, _sync_state(_batch(batch_id)))


@api.get("/batches/{batch_id}/sync", response={200: SyncStateOut, **READ_ERRORS}, tags=["batches"])
def sync_state(request, batch_id: int):
    """The batch's sync state and its latest runs."""
    return _sync_state(_batch(batch_id))


def _start_sync(batch: Batch) -> None:
    from reviewer.views import _enqueue_sync

    _enqueue_sync(batch)


def _sync_state(batch: Batch) -> dict:
    runs = []
    for run in batch.sync_runs.order_by("-started_at", "-id")[:5]:
        runs.append({**run.as_dict(), "malformed_lines": len(run.malformed_lines),
                     "started_at": run.started_at, "finished_at": run.finished_at})  # fmt: skip
    return {
        "batch": batch.pk, "sync_state": batch.sync_state, "last_synced_at": batch.last_synced_at,
        "last_error": batch.last_error, "paused": batch.sync_paused, "runs": runs,
    }  # fmt: skip


# --- Items and events, with the batch page's filters -----------------------------------------------


def _list_params(request) -> QueryDict:
    """The filter part of the query string (``cursor`` and ``limit`` are the API's own)."""
    data = request.GET.copy()
    for name in ("cursor", "limit"):
        data.pop(name, None)
    return data


FILTER_DOC = (
    "Filters as on the batch page, each repeatable (`approval=pending&approval=approved`): "
    "approval, decided (human, provider, disagree), reason, status, severity, category; `q` searches the text."
)


@api.get("/batches/{batch_id}/events", response={200: EventPage, **READ_ERRORS}, tags=["events"],
         description=FILTER_DOC)  # fmt: skip
@takes(*ListQuery.model_fields)
def list_events(request, batch_id: int, params: Query[ListQuery]):
    """The events the batch page shows under the same filter, in its order, a page at a time."""
    batch_filter = _filter(_batch(batch_id), _list_params(request))
    events = batch_filter.events().select_related("item", "decided_by")
    order, keyset = event_order(batch_filter)
    page = _page(events, order, keyset, params.cursor, params.limit)
    count = events.order_by().count()
    return {"count": count, "next_cursor": page.next_cursor, "results": [event_out(event) for event in page.rows]}


@api.get("/batches/{batch_id}/items", response={200: ItemPage, **READ_ERRORS}, tags=["events"],
         description=FILTER_DOC)  # fmt: skip
@takes(*ListQuery.model_fields)
def list_items(request, batch_id: int, params: Query[ListQuery]):
    """The videos the batch page lists under the same filter (with an event filter: those with a match)."""
    batch_filter = _filter(_batch(batch_id), _list_params(request))
    items = batch_filter.item_queryset()
    order, keyset = item_order(batch_filter)
    if not order:
        items = batch_filter.ordered(items)
    page = _page(items, order, keyset, params.cursor, params.limit)
    fields = ItemOut.model_fields
    return {
        "count": items.order_by().count(),
        "next_cursor": page.next_cursor,
        "results": [{name: getattr(item, "pk" if name == "id" else name) for name in fields} for item in page.rows],
    }


@api.get("/batches/{batch_id}/handoff", response={200: HandoffOut, **READ_ERRORS}, tags=["events"])
@takes("include_provider")
def get_handoff(request, batch_id: int, include_provider: bool = False):
    """Approved and rejected events per video (ids, times, labels): training input.

    Only a person's decisions unless ``include_provider``.
    """
    batch = _batch(batch_id)
    response = StreamingHttpResponse(
        handoff.json_chunks(batch, people_only=not include_provider), content_type="application/json"
    )
    return response


@api.get("/events/{event_id}", response={200: EventOut, **READ_ERRORS}, tags=["events"])
def get_event(request, event_id: int):
    return event_out(_event(event_id))


@api.get("/events/{event_id}/history", response={200: list[DecisionOut], **READ_ERRORS}, tags=["decisions"])
def event_history(request, event_id: int):
    """Every change of the event's approval, newest first (undos included), with who made it."""
    event = _event(event_id)
    decisions = event.decisions.select_related("user").order_by("-created_at", "-id")[:500]
    return [
        {
            "id": decision.pk, "event": decision.event_id, "user": decision.user.get_username() if decision.user else None,
            "from_approval": decision.from_approval, "to_approval": decision.to_approval, "reason": decision.reason,
            "note": decision.note, "group": str(decision.group), "undo": decision.undoes is not None,
            "created_at": decision.created_at,
        }
        for decision in decisions
    ]  # fmt: skip


# --- Quality (the insights page's numbers) ---------------------------------------------------------


@api.get("/batches/{batch_id}/quality", response={200: QualityOut, **READ_ERRORS}, tags=["quality"])
@takes("by")
def batch_quality(request, batch_id: int, by: Literal["category", "severity", "confidence", "video"] = "category"):
    """Precision with its 95 % interval and the invalid rate per group: only a person's decisions count as reviewed."""
    batch = _batch(batch_id)
    return _quality(quality.shown_events(batch), by)


@api.get("/quality", response={200: QualityOut, **READ_ERRORS}, tags=["quality"])
@takes("by")
def all_quality(
    request, by: Literal["category", "severity", "confidence", "video", "prompt", "provider", "model"] = "provider"
):
    """The same across every batch, e.g. by prompt or model."""
    return _quality(quality.shown_events(), by)


def _quality(events, by: str) -> dict:
    return {"by": by, "overall": quality.overall(events).as_dict(),
            "groups": [row.as_dict() for row in quality.table(events, by)]}  # fmt: skip


# --- Decisions --------------------------------------------------------------------------------------


@api.post("/events/{event_id}/decision", response={200: DecideOut, 409: Error, **WRITE_ERRORS}, tags=["decisions"])
def decide(request, event_id: int, body: DecideIn):
    """Decide one event. With ``revision``, a change made since you read the event is refused (409)."""
    _reviewer(request)
    event = _event(event_id)
    try:
        applied = review.decide(event, body.decision, request.user, note=_clean(body.note),
                                reason=body.reason.strip(), revision=body.revision)  # fmt: skip
    except review.StaleEvent as exc:
        raise api_error(409, str(exc)) from None
    except review.ReviewError as exc:
        raise api_error(400, str(exc)) from None
    outcome = "applied" if applied.changed else "unchanged"
    group = str(applied.group) if applied.group else None
    return {"outcome": outcome, "group": group, "event": event_out(_event(event_id))}


@api.post("/batches/{batch_id}/decisions", response={200: AppliedOut, 409: Error, **WRITE_ERRORS},
          tags=["decisions"])  # fmt: skip
def decide_many(request, batch_id: int, body: DecideManyIn):
    """Decide many events as one undoable action: ``event_ids``, or every event matching ``filter``.

    With ``filter``, ``expected_count`` is required: when another number of events
    matches now (someone decided meanwhile), nothing is changed (409).
    """
    _reviewer(request)
    batch = _batch(batch_id)
    if batch.loading:
        raise api_error(409, "This batch is still loading: nothing can be decided before it ends.")
    if (body.event_ids is None) == (body.filter is None):
        raise api_error(400, "Send either event_ids or filter (not both, not neither).")
    if body.filter is not None:
        if body.expected_count is None:
            raise api_error(400, "expected_count: required with filter (the number of events you expect to change).")
        events, expected = _filter(batch, _filter_query(body.filter)).events(), body.expected_count
    else:
        if not body.event_ids:
            raise api_error(400, "event_ids: give at least one event id.")
        events, expected = Event.objects.filter(pk__in=body.event_ids), len(set(body.event_ids))
    try:
        applied = review.decide_many(batch, events, body.decision, request.user, note=_clean(body.note),
                                     reason=body.reason.strip(), expected_count=expected)  # fmt: skip
    except review.CountChanged as exc:
        if body.event_ids is not None:  # a listed id is not an event of this batch (or no longer exists)
            raise api_error(409, "Some of event_ids are not events of this batch: nothing was changed.") from None
        raise api_error(409, str(exc)) from None
    except review.ReviewError as exc:
        raise api_error(400, str(exc)) from None
    return _applied(applied)


@api.post("/batches/{batch_id}/undo", response={200: AppliedOut, 409: Error, **WRITE_ERRORS}, tags=["decisions"])
def undo(request, batch_id: int, body: UndoIn):
    """Undo your own last action on the batch (the token's user's), as the dashboard's u does."""
    _reviewer(request)
    batch = _batch(batch_id)
    group = None
    if body.group:
        try:
            group = uuid.UUID(body.group)
        except ValueError:
            raise api_error(400, "group: not a group id (a UUID from a decision's answer).") from None
    applied = review.undo_last(batch, request.user, only_group=group)
    if applied is None:
        text = "Nothing to undo: you have no action on this batch that is not undone."
        if group is not None and review.last_action(batch, request.user) is not None:
            text = "Nothing was undone: your last action on this batch is another one."
        raise api_error(409, text)
    return _applied(applied)


def _applied(applied: review.Applied) -> dict:
    return {"group": str(applied.group) if applied.group else None, "changed": applied.changed,
            "unchanged": applied.unchanged, "skipped": applied.skipped}  # fmt: skip


def _filter_query(body_filter) -> QueryDict:
    data = QueryDict(mutable=True)
    for name, value in body_filter.dict().items():
        if isinstance(value, list):
            data.setlist(name, [str(v) for v in value])
        elif value:
            data[name] = value
    return data


def _clean(note: str) -> str:
    return note.replace("\x00", "").strip()


# --- Webhooks (staff) ---------------------------------------------------------------------------------


@api.get("/webhooks", response={200: list[WebhookOut], 403: Error, **READ_ERRORS}, tags=["webhooks"])
def list_webhooks(request):
    """The webhook endpoints and how many deliveries each has pending and failed (staff only)."""
    if not request.user.is_staff:
        raise api_error(403, "Only staff can see the webhooks.")
    hooks = Webhook.objects.annotate(
        pending=Count("deliveries", filter=Q(deliveries__state=DeliveryState.PENDING)),
        failed=Count("deliveries", filter=Q(deliveries__state=DeliveryState.FAILED)),
    )
    return [{"id": hook.pk, "url": hook.url, "events": hook.events, "active": hook.active, "pending": hook.pending,
             "failed": hook.failed} for hook in hooks]  # fmt: skip
