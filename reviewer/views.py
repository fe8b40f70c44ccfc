"""Thin views: parse the request, call a module, render. Views read only the database.

Every view needs a login (LoginRequiredMiddleware); actions check the role too.
"""

from __future__ import annotations

import uuid
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewer import activity, counted, exporters, fetch, filters, media, review
from reviewer.crypto import KeyUnreadable
from reviewer.models import (
    Approval,
    Batch,
    Event,
    Item,
    Loading,
    Provider,
    ReasonCode,
    Source,
    SyncOutcome,
    SyncRun,
    SyncState,
    SyncTrigger,
)
from reviewer.providers.http import ProviderError

REVIEWER_GROUP = "reviewer"

# A database id or count from a request: a Django field, not str.isdigit() ("²".isdigit() is true,
# int("²") fails) and bounded, so a 30-digit value is no OverflowError in the database driver.
_NUMBER = forms.IntegerField(min_value=0, max_value=2**63 - 1)


def _note(request: HttpRequest) -> str:
    """A decision's note: at most 2,000 characters, without NUL (which PostgreSQL cannot store)."""
    return request.POST.get("note", "").replace("\x00", "").strip()[:2000]


def _reason(request: HttpRequest) -> str:
    """A decision's reason code (review.py checks it is one of the offered reasons).

    The note form keeps its reason list on screen for every decision; its reason only
    counts with a rejection or an invalid event.
    """
    reason = request.POST.get("decision_reason", "").strip()[:100]  # "reason" is the filter's
    if request.POST.get("note_form") and request.POST.get("decision") not in review.REASONED:
        return ""
    return reason


def _number(value: str | None) -> int | None:
    """``value`` as a non-negative integer, None when it is not one."""
    try:
        return _NUMBER.clean(value)
    except forms.ValidationError:
        return None


def can_review(user) -> bool:
    """Reviewers and staff may change data; viewers (everyone else) only read and export."""
    return user.is_staff or user.groups.filter(name=REVIEWER_GROUP).exists()


def reviewer_required(view):
    """Answer 403 unless the user may change data (see can_review)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not can_review(request.user):
            raise PermissionDenied("Your account can view and export, but not change, reviews.")
        return view(request, *args, **kwargs)

    return wrapper


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    Batch.objects.exists()  # proves the database answers
    return JsonResponse({"status": "ok"})


@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    batches = Batch.objects.select_related("source").with_last_decision().order_by("-created_at", "-id")
    page = Paginator(batches, 50).get_page(request.GET.get("page"))
    Batch.attach_reviewers(page.object_list)
    return render(request, "reviewer/batch_list.html", {"page": page})


@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("source").with_last_decision(), pk=pk)
    batch_filter, form = filters.parse(request.GET, batch)
    context = {"batch": batch, "form": form, "filter": batch_filter, "approvals": Approval.choices}
    if batch_filter is None:
        context["filter_error"] = form.error_message()
        template = "reviewer/batch_detail.html#results" if request.htmx else "reviewer/batch_detail.html"
        return render(request, template, context, status=400)

    chip_counts, item_ids = _page_numbers(batch, batch_filter)
    page = Paginator(item_ids, settings.ITEMS_PER_PAGE).get_page(batch_filter.page)
    page.object_list = batch_filter.page_items(list(page.object_list))
    context.update(
        chip_counts,
        page=page,
        shown_event_count=_selected_total(chip_counts["approval_chip_counts"], batch_filter.approval),
        last_run=batch.sync_runs.first(),
        can_review=can_review(request.user),
    )
    context.update(_columns(batch, context["can_review"]))
    template = "reviewer/batch_detail.html"
    if request.htmx and request.htmx.target == "results":
        template += "#results"
    return render(request, template, context)


@require_GET
def batch_export(request: HttpRequest, pk: int, file_format: str) -> HttpResponse:
    """The rows the batch page shows under the same query string, as a streamed file."""
    batch = get_object_or_404(Batch, pk=pk)
    batch_filter, form = filters.parse(request.GET, batch)
    if batch_filter is None:
        return HttpResponse(form.error_message(), status=400, content_type="text/plain; charset=utf-8")
    columns = request.GET.get("columns", "")
    if columns not in ("", "extended"):
        return HttpResponse(f"columns: {columns!r} is not one of the choices. Valid values: extended.", status=400,
                            content_type="text/plain; charset=utf-8")  # fmt: skip
    if file_format == "csv":
        extended = columns == "extended"
        chunks, content_type = exporters.csv_rows(batch_filter, extended=extended), "text/csv; charset=utf-8"
    else:
        chunks, content_type = exporters.json_chunks(batch_filter), "application/json"
    response = StreamingHttpResponse(chunks, content_type=content_type)
    name = exporters.file_name(batch_filter, file_format)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class AddBatchForm(forms.Form):
    source = forms.ModelChoiceField(queryset=Source.objects.all(), empty_label=None)
    batch_id = forms.CharField(max_length=128, label="Batch id")

    def clean(self):
        cleaned = super().clean()
        source, batch_id = cleaned.get("source"), cleaned.get("batch_id", "")
        if source and batch_id and not source.adapter.is_valid_id(batch_id):
            self.add_error("batch_id", source.adapter.id_hint)
        return cleaned


@require_http_methods(["GET", "POST"])
@reviewer_required
def batch_add(request: HttpRequest) -> HttpResponse:
    form = AddBatchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        source, batch_id = form.cleaned_data["source"], form.cleaned_data["batch_id"]
        batch, created = Batch.objects.get_or_create(
            source=source, provider_batch_id=batch_id, defaults={"provider": source.provider}
        )
        _enqueue_sync(batch)
        messages.info(request, f"Fetching {batch_id} from {source.name}…" if created else f"Syncing {batch_id} again…")
        return redirect(batch)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "reviewer/batch_add.html", {"form": form, "has_sources": Source.objects.exists()}, status=status
    )


@require_GET
@reviewer_required
def batch_recent(request: HttpRequest) -> HttpResponse:
    """The source's newest batches, loaded into the Add batch page (a provider call, so on demand)."""
    source_pk = _number(request.GET.get("source"))
    source = Source.objects.filter(pk=source_pk).first() if source_pk is not None else None
    context = {"source": source, "records": [], "error": ""}
    if source is None:
        context["error"] = "Choose a source."
    else:
        try:
            context["records"] = fetch.recent_batches(source)
        except (ProviderError, KeyUnreadable) as exc:
            context["error"] = str(exc)
        known = set(source.batches.values_list("provider_batch_id", flat=True))
        context["known"] = known
    return render(request, "reviewer/_recent_batches.html", context)


@require_POST
@reviewer_required
def batch_sync(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("source"), pk=pk)
    if batch.source is None:
        messages.error(request, "This batch was imported from a file: import the file again to update it.")
    else:
        _enqueue_sync(batch)
    if request.htmx:
        return _status_fragment(request, batch)
    return redirect(batch)


@require_GET
def batch_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The polled status panel; while a batch is unfinished and watched, it also re-syncs it."""
    batch = get_object_or_404(Batch.objects.select_related("source").with_last_decision(), pk=pk)
    # Only people who may change data make the server call the provider, and never more
    # often than the auto-sync interval (longer after failures): a viewer's page just polls.
    if can_review(request.user) and fetch.auto_sync_due(batch, timezone.now()):
        _enqueue_sync(batch)
    return _status_fragment(request, batch)


def _status_fragment(request: HttpRequest, batch: Batch) -> HttpResponse:
    response = render(
        request, "reviewer/batch_detail.html#status", {"batch": batch, "can_review": can_review(request.user)}
    )
    # "seen": the sync the page shows ("" for none yet); a newer one reloads the results list.
    seen = request.GET.get("seen")
    if batch.last_synced_at and seen is not None and seen != str(int(batch.last_synced_at.timestamp())):
        response["HX-Trigger"] = "batch-synced"
    return response


def _enqueue_sync(batch: Batch) -> None:
    from reviewer.tasks import sync_batch_task

    Batch.objects.filter(pk=batch.pk).update(sync_state=SyncState.QUEUED)
    sync_batch_task.enqueue(batch.source_id, batch.provider_batch_id)
    batch.refresh_from_db()  # "Queued", or already the outcome when the task ran inline


# --- Review: decisions on one event, on many, undo, history ---


def _shown_event(pk: int, *related: str) -> Event:
    """The event, or 404; also while its batch is loading (a load's rows are not shown before it ends)."""
    return get_object_or_404(Event.objects.select_related(*related).filter(batch__loading=Loading.NONE), pk=pk)


@require_POST
@reviewer_required
def event_decision(request: HttpRequest, pk: int) -> HttpResponse:
    """Set one event's approval. htmx gets the event back (row or focus card); a plain form is redirected."""
    event = _shown_event(pk, "batch")
    batch = event.batch
    revision = request.POST.get("revision", "")
    try:
        applied = review.decide(
            event,
            request.POST.get("decision", ""),
            request.user,
            note=_note(request),
            reason=_reason(request),
            revision=_number(revision),
            annotating=bool(request.POST.get("note_form")),
        )
        outcome, notice = ("applied" if applied.changed else "unchanged"), ""
    except review.StaleEvent as exc:
        outcome, notice = "stale", str(exc)
    except review.ReviewError as exc:
        return _refuse(request, batch, str(exc))
    if not request.htmx:
        if notice:
            messages.warning(request, notice)
        elif applied.changed:
            messages.success(request, f"“{event}” set to {Approval(request.POST['decision']).label.lower()}.")
        return redirect(_back(request, batch, anchor=f"event-{event.pk}"))
    batch = Batch.objects.with_last_decision().get(pk=batch.pk)
    # The filter the page shows travels with the decision (hidden fields, or hx-include).
    batch_filter, form = filters.parse(request.POST, batch)
    if request.POST.get("view") == "focus":
        batch_filter = batch_filter or filters.parse(QueryDict(), batch)[0]  # a mangled filter: the whole batch
        target = event if outcome == "stale" else _next_event(batch_filter, after=event, pending_only=True)
        response = _focus_response(request, batch_filter, target, notice=notice)
    else:
        context = {"batch": batch, "event": _event_for_row(event.pk), "notice": notice, "can_review": True,
                   "filter": filters.parse(QueryDict(), batch)[0], **_columns(batch, True)}  # fmt: skip
        if batch_filter is not None:  # the chips and the shown count follow the page's filter, out of band
            chip_counts = _chip_counts(batch_filter)
            shown = _selected_total(chip_counts["approval_chip_counts"], batch_filter.approval)
            context.update(filter=batch_filter, form=form, approvals=Approval.choices, shown_event_count=shown,
                           **chip_counts)  # fmt: skip
        response = render(request, "reviewer/batch_detail.html#decision_response", context)
    response["X-Review-Outcome"] = outcome
    return response


@require_POST
@reviewer_required
def batch_decisions(request: HttpRequest, pk: int) -> HttpResponse:
    """Decide many events: the selected ones (``event``) or all matching the filter (``all_matching=1``)."""
    batch = get_object_or_404(Batch, pk=pk)
    decision = request.POST.get("decision", "")
    expected = _number(request.POST.get("expected_count"))
    if batch.loading:
        return _refuse(request, batch, "This batch is still loading: nothing can be decided before it ends.")
    if request.POST.get("all_matching") == "1":
        batch_filter, form = filters.parse(request.POST, batch)
        if batch_filter is None:
            return _refuse(request, batch, form.error_message())
        if expected is None:  # the count the person confirmed is what keeps a bulk action honest
            return _refuse(request, batch, "The confirmed number of events is missing or not a number: nothing was "
                                           "changed. Open the confirmation again.")  # fmt: skip
        events = batch_filter.events()
    else:
        values = request.POST.getlist("event")
        ids = {_number(value) for value in values}
        if None in ids:
            return _refuse(request, batch, "That selection names something that is not an event: nothing was changed.")
        if not ids:
            return _refuse(request, batch, "Select at least one event first (x, or the checkboxes).")
        events = Event.objects.filter(pk__in=ids)
        expected = len(ids)  # every selected event must still be in this batch
    try:
        applied = review.decide_many(
            batch,
            events,
            decision,
            request.user,
            note=_note(request),
            reason=_reason(request),
            expected_count=expected,
        )
    except review.ReviewError as exc:
        return _refuse(request, batch, str(exc))
    label = Approval(decision).label.lower()
    text = f"{applied.changed:,} event{'s' if applied.changed != 1 else ''} set to {label}"
    if applied.unchanged:
        text += f" ({applied.unchanged:,} already were)"
    return _done(request, batch, text + "." + (" Press u to undo." if applied.changed else ""))


@require_POST
@reviewer_required
def batch_undo(request: HttpRequest, pk: int) -> HttpResponse:
    """Undo the user's last action on this batch, saying what it was.

    An action older than the page the person is looking at (made elsewhere, or long
    ago and off screen) is undone only after a confirmation naming it.
    """
    batch = get_object_or_404(Batch, pk=pk)
    action = review.last_action(batch, request.user)
    if action is None:
        return _done(request, batch, "Nothing to undo: you have no decision on this batch that is not undone.")
    page_shown_at = _number(request.POST.get("page_shown_at"))
    confirmed = request.POST.get("confirm") == str(action.group)
    if page_shown_at is not None and action.at.timestamp() < page_shown_at and not confirmed:
        context = {"batch": batch, "action": action, "next": request.POST.get("next", "")}
        if request.htmx:
            response = render(request, "reviewer/undo_confirm.html#dialog", context)
            response["HX-Retarget"], response["HX-Reswap"] = "#dialog-body", "innerHTML"
            return response
        return render(request, "reviewer/undo_confirm.html", context)
    applied = review.undo_last(batch, request.user, only_group=action.group)
    if applied is None:
        return _done(request, batch, "Nothing was undone: your last action changed meanwhile. Try again.")
    text = f"Undone: {applied.changed:,} event{'s' if applied.changed != 1 else ''} restored"
    if applied.skipped:
        text += f"; {applied.skipped:,} left as they are (someone changed them since)"
    return _done(request, batch, f"{text}. It was: {action.describe()}, {naturaltime(action.at)}.")


@require_GET
@reviewer_required
def bulk_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """The confirmation of "decide all N events matching this filter", stating N."""
    batch = get_object_or_404(Batch, pk=pk)
    decision = request.GET.get("decision", "")
    batch_filter, form = filters.parse(request.GET, batch)
    if batch_filter is None or decision not in Approval.values:
        error = form.error_message() if batch_filter is None else f"Unknown decision {decision!r}."
        return _refuse(request, batch, error)
    count = batch_filter.events().count()
    context = {
        "batch": batch, "filter": batch_filter, "filter_params": batch_filter.params(),
        "decision": Approval(decision), "count": count,
        "reasons": ReasonCode.objects.filter(active=True) if decision in review.REASONED else [],
    }  # fmt: skip
    template = "reviewer/bulk_confirm.html" + ("#dialog" if request.htmx else "")
    return render(request, template, context)


@require_GET
@reviewer_required
def event_note(request: HttpRequest, pk: int) -> HttpResponse:
    """The form that decides one event with a reason and a note (key c): a dialog, or a page without JavaScript.

    ``view=focus``: it came from review mode, whose card the answer replaces. The page's
    filter travels in the query string and on to the decision, as the page's own buttons do.
    """
    event = _shown_event(pk, "batch", "item")
    batch_filter = filters.parse(request.GET, event.batch)[0] or filters.parse(QueryDict(), event.batch)[0]
    focus = request.GET.get("view") == "focus"
    back = reverse("review_mode", args=[event.batch_id]) if focus else event.batch.get_absolute_url()
    context = {
        "event": event, "batch": event.batch, "focus": focus, "filter_params": batch_filter.params(),
        "next": f"{back}?{batch_filter.query_string()}", "reasons": ReasonCode.objects.filter(active=True),
        "choice": event.approval,  # Save alone keeps the approval; the note and reason are what change
    }  # fmt: skip
    return render(request, "reviewer/note_form.html" + ("#dialog" if request.htmx else ""), context)


@require_GET
def event_media(request: HttpRequest, pk: int) -> JsonResponse:
    """The event's playable video as JSON: ``{kind, url, start, end, expires_at, duration}``.

    Asks the provider only when the item's cached URL is missing, about to expire, or
    reported dead by the browser (``?refresh=1``). No video: ``{"error": …}`` with a 4xx
    (503 while the provider is unreachable). Any logged-in user may watch.
    """
    event = _shown_event(pk, "item__batch__source")
    try:
        answer = media.event_media(event, refresh=request.GET.get("refresh") == "1")
    except media.NoVideo as exc:
        response = JsonResponse({"error": exc.message}, status=exc.status)
        if exc.status == 503:
            response["Retry-After"] = "30"
        return response
    response = JsonResponse(answer)
    response["Cache-Control"] = "private, no-store"  # signed URLs: never from a cache
    return response


@require_GET
def event_pane(request: HttpRequest, pk: int) -> HttpResponse:
    """The event detail pane of the batch page: the event, its video player and its video's timeline."""
    event = _shown_event(pk, "item__batch", "decided_by")
    return render(request, "reviewer/_event_pane.html", _player_context(event))


def _player_context(event: Event) -> dict:
    """What the player and the timeline of ``event`` need (shared by the pane and review mode)."""
    item, batch = event.item, event.item.batch
    return {
        "event": event,
        "item": item,
        "batch": batch,
        "video_events": timeline_events(item),
        "item_viewer_url": batch.adapter.item_viewer_url(batch, item),
    }


def timeline_events(item) -> list[Event]:
    """The events of one video for its timeline, in time order (at most 500: a strip has no room for more)."""
    return list(
        item.events.order_by(F("start_seconds").asc(nulls_last=True), "position").only(
            "id", "item_id", "start_seconds", "end_seconds", "t_start", "t_end", "approval", "label", "category"
        )[:500]
    )


@require_GET
def stored_image(request: HttpRequest, name: str) -> HttpResponse:
    """A thumbnail stored by the worker (reviewer/media.py), for logged-in users only."""
    if ".." in name.split("/") or not name.startswith("thumbs/"):
        raise Http404("No such image.")
    extension = name.rsplit(".", 1)[-1].lower()
    content_type = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}.get(extension)
    if content_type is None or not default_storage.exists(name):
        raise Http404("No such image.")
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=86400"  # a stored name never changes content
    return response


@require_GET
def event_history(request: HttpRequest, pk: int) -> HttpResponse:
    event = _shown_event(pk)
    decisions = event.decisions.select_related("user").order_by("-created_at", "-id")[:200]
    return render(request, "reviewer/_history.html", {"event": event, "decisions": decisions})


@require_GET
def batch_activity(request: HttpRequest, pk: int) -> HttpResponse:
    """The batch's review actions, newest first (one line per action, naming its events), and each reviewer's pace."""
    batch = get_object_or_404(Batch, pk=pk)
    form = activity.ActivityFilterForm(request.GET, batch=batch)
    if not form.is_valid():
        context = {"batch": batch, "form": form, "error": form.error_message(), "pace": activity.pace(batch)}
        return render(request, "reviewer/activity.html", context, status=400)
    reviewer, decision = form.cleaned_data["reviewer"], form.cleaned_data["decision"]
    page = Paginator(activity.actions(batch, reviewer, decision), 50).get_page(request.GET.get("page"))
    activity.attach_first_events(page.object_list)
    context = {
        "batch": batch, "page": page, "form": form, "pace": activity.pace(batch),
        "filtered": bool(reviewer or decision), "query": activity.ActivityQuery(reviewer, decision),
    }  # fmt: skip
    return render(request, "reviewer/activity.html", context)


@require_GET
def review_mode(request: HttpRequest, pk: int) -> HttpResponse:
    """One event at a time, large, pending first; j/k move, a/r/i/p decide and go to the next pending."""
    batch = get_object_or_404(Batch, pk=pk)
    batch_filter, form = filters.parse(request.GET, batch)
    if batch_filter is None:
        return _refuse(request, batch, form.error_message())
    event = None
    event_id = _number(request.GET.get("event"))
    if event_id is not None:
        event = batch_filter.events().filter(pk=event_id).first()
        step = request.GET.get("step")
        if event is not None and step in ("next", "prev"):
            event = _next_event(batch_filter, after=event, backwards=step == "prev") or event
    if event is None:
        event = _next_event(batch_filter, after=None, pending_only=True) or _next_event(batch_filter, after=None)
    if request.htmx:
        return _focus_response(request, batch_filter, event)
    return render(request, "reviewer/review.html", _focus_context(request, batch_filter, event))


def _focus_response(
    request: HttpRequest, batch_filter: filters.BatchFilter, event: Event | None, notice: str = ""
) -> HttpResponse:
    response = render(request, "reviewer/review.html#card", _focus_context(request, batch_filter, event, notice))
    if event is not None:
        here = reverse("review_mode", args=[batch_filter.batch.pk])
        response["HX-Push-Url"] = f"{here}?{batch_filter.query_string(event=event.pk)}"
    return response


def _focus_context(request, batch_filter: filters.BatchFilter, event: Event | None, notice: str = "") -> dict:
    events = batch_filter.events()
    preload = _next_event(batch_filter, after=event, pending_only=True) if event else None
    event = _event_for_row(event.pk) if event else None
    return {
        **(_player_context(event) if event else {}),
        "batch": batch_filter.batch, "filter": batch_filter, "event": event,
        "preload": preload, "notice": notice, "can_review": can_review(request.user),
        **events.aggregate(pending_count=Count("pk", filter=_to_review(batch_filter)), total_count=Count("pk")),
    }  # fmt: skip


def _to_review(batch_filter: filters.BatchFilter) -> Q:
    """What review mode shows first and counts as pending: pending events.

    In a sample, every event a person has not decided: an event only the provider approved
    must be judged too, or the estimate would count the provider's decisions as a person's.
    """
    return Q(decided_at__isnull=True) if batch_filter.sample else Q(approval=Approval.PENDING)


def _next_event(
    batch_filter: filters.BatchFilter, *, after: Event | None, pending_only=False, backwards=False
) -> Event | None:
    """The event after (or before) ``after`` in the page's provider order, wrapping around; None when none is left.

    The order: item position, item, event position, event. Found by walking the items in
    order (their index) to the first holding a matching event, each looked up by its item
    (the item's index: with the batch's approval index, SQLite scanned every pending event
    for every item). Sorting 50,000 pending events to take one took 75 ms a card.
    """
    if batch_filter.batch.loading:
        return None
    condition = batch_filter.event_q() & (_to_review(batch_filter) if pending_only else Q())
    items = Item.objects.filter(batch=batch_filter.batch)
    if batch_filter.status:
        items = items.filter(status__in=batch_filter.status)
    if after is None:
        return _first_in_order(items, condition, backwards)
    key = (after.item.position, after.item_id, after.position, after.pk)
    return _first_in_order(items, condition, backwards, after=key) or _first_in_order(
        items, condition & ~Q(pk=after.pk), backwards
    )


def _first_in_order(items, condition: Q, backwards: bool, after: tuple | None = None) -> Event | None:
    op, sign = ("lt", "-") if backwards else ("gt", "")
    event_order = (f"{sign}position", f"{sign}pk")
    if after is not None:
        item_position, item_id, position, pk = after
        rest_of_item = Q(**{f"position__{op}": position}) | Q(position=position, **{f"pk__{op}": pk})
        if event := Event.objects.filter(condition, rest_of_item, item_id=item_id).order_by(*event_order).first():
            return event
        items = items.filter(
            Q(**{f"position__{op}": item_position}) | Q(position=item_position, **{f"pk__{op}": item_id})
        )
    item_id = (
        items.filter(Exists(Event.objects.filter(condition, item_id=OuterRef("pk"))))
        .order_by(f"{sign}position", f"{sign}pk")
        .values_list("pk", flat=True)
        .first()
    )
    return None if item_id is None else Event.objects.filter(condition, item_id=item_id).order_by(*event_order).first()


def _columns(batch: Batch, reviewer: bool) -> dict:
    """The optional columns of the event table (those the batch fills) and how many columns it has."""
    columns = batch.event_columns
    fixed = 3 + (2 if reviewer else 0)  # time, event, approval; select and decide for reviewers
    return {"columns": columns, "column_count": fixed + sum(columns.values())}


def _event_for_row(pk: int) -> Event:
    return Event.objects.select_related("decided_by", "item").get(pk=pk)


def _page_numbers(batch: Batch, batch_filter: filters.BatchFilter) -> tuple[dict, list[int]]:
    """The chips' counts and the ids of every item shown, in order: cached until the batch's next decision or sync.

    Both count or sort every event the filter matches (ordering by severity or
    confidence aggregates the whole batch: 150 ms at 100,000 events), and both change
    only with a decision (the batch's newest, ``with_last_decision``) or a sync. The page's
    items and events themselves are read fresh every time.
    """
    # The batch's newest decision and its sync time: its data version, read with the batch already.
    parts = (batch.pk, batch.last_decided_at, batch.last_synced_at, batch.loading, batch_filter.plain_query)

    def count() -> tuple[dict, list[int]]:
        ordered = batch_filter.ordered(batch_filter.item_queryset())
        return _chip_counts(batch_filter), list(ordered.values_list("pk", flat=True))

    return counted.remembered("batch-page", parts, count)


def _chip_counts(batch_filter: filters.BatchFilter) -> dict[str, dict[str, int]]:
    """Counts per chip value, each under every other filter (the batch page's chips)."""
    return {
        "approval_chip_counts": _counts(batch_filter.without("approval").events(), "approval"),
        "status_chip_counts": _counts(batch_filter.without("status").item_queryset(), "status"),
    }


def _done(request: HttpRequest, batch: Batch, text: str) -> HttpResponse:
    """After a bulk action or an undo: htmx gets a notice and reloads the results; a form is redirected."""
    if not request.htmx:
        messages.success(request, text)
        return redirect(_back(request, batch))
    batch = Batch.objects.with_last_decision().get(pk=batch.pk)
    response = render(request, "reviewer/batch_detail.html#action_notice", {"batch": batch, "text": text})
    response["HX-Trigger"] = "decisions-changed"
    return response


def _refuse(request: HttpRequest, batch: Batch, text: str) -> HttpResponse:
    """A review action that cannot be applied: 400 with the reason; nothing was changed."""
    if not request.htmx:
        messages.error(request, text)
        return redirect(_back(request, batch))
    response = render(request, "reviewer/batch_detail.html#action_notice", {"batch": batch, "text": text, "bad": True})
    response.status_code = 400
    response["HX-Retarget"], response["HX-Reswap"] = "#toast", "outerHTML"  # not into the row that asked
    return response


def _back(request: HttpRequest, batch: Batch, anchor: str = "") -> str:
    """Where a plain form returns to: the page it came from (same site only), else the batch page."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = batch.get_absolute_url()
    return f"{target}#{anchor}" if anchor else target


def _selected_total(counts: dict[str, int], selected: list[str]) -> int:
    return sum(counts.get(value, 0) for value in selected) if selected else sum(counts.values())


def _counts(queryset, field: str) -> dict[str, int]:
    rows = queryset.order_by().values(field).annotate(n=Count("id"))
    return {row[field]: row["n"] for row in rows}


class ImportForm(forms.Form):
    file = forms.FileField(help_text="TwelveLabs results (.jsonl), NomadicML batch analysis (.json) or CSV export.")
    provider = forms.ChoiceField(
        choices=[("", "Detect from the file"), *Provider.choices], required=False, label="Provider"
    )
    batch_id = forms.CharField(
        required=False,
        max_length=128,
        label="Batch id",
        help_text="For files whose rows carry no batch id (TwelveLabs JSONL, the NomadicML web app's CSV). "
        "Default: the file name.",
    )
    mode = forms.ChoiceField(
        choices=[
            ("", "As the batch was fetched or imported before"),
            ("time_based_metadata", "time_based_metadata: each segment is an event"),
            ("general", "general: each answer is text (even when it is JSON)"),
        ],
        required=False,
        label="TwelveLabs analysis mode",
        help_text="Needed only for a JSONL file of a new batch whose answers are JSON.",
    )
    skip_invalid = forms.BooleanField(
        required=False,
        label="Import the valid records and skip malformed ones",
        help_text="Skipped lines are listed on the batch page. Without this, a file with any "
        "malformed line is refused as a whole.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.MAX_UPLOAD_SIZE:
            raise forms.ValidationError(
                f"The file is larger than the {filesizeformat(settings.MAX_UPLOAD_SIZE)} limit."
            )
        return upload


@require_http_methods(["GET", "POST"])
@reviewer_required
def import_results(request: HttpRequest) -> HttpResponse:
    """The upload is saved and imported by the background worker; the page then follows its progress."""
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        run = _queue_import(form)
        return redirect("import_status", run.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "reviewer/import.html", {"form": form}, status=status)


def _queue_import(form: ImportForm) -> SyncRun:
    from reviewer.tasks import import_file_task

    upload = form.cleaned_data["file"]
    run = SyncRun.objects.create(trigger=SyncTrigger.IMPORT, file_name=upload.name[:255], outcome=SyncOutcome.RUNNING)
    stored = default_storage.save(f"uploads/{run.pk}-{uuid.uuid4().hex}.upload", upload)
    options = {
        "provider": form.cleaned_data["provider"] or None,
        "batch_id": form.cleaned_data["batch_id"] or None,
        "mode": form.cleaned_data["mode"] or None,
        "skip_invalid": form.cleaned_data["skip_invalid"],
    }
    transaction.on_commit(lambda: import_file_task.enqueue(run.pk, stored, options))
    return run


@require_GET
@reviewer_required
def import_status(request: HttpRequest, pk: int) -> HttpResponse:
    """An import's progress (polled while the worker runs it), then its result."""
    run = get_object_or_404(SyncRun.objects.select_related("batch"), pk=pk, trigger=SyncTrigger.IMPORT)
    if run.outcome == SyncOutcome.SUCCEEDED and run.batch is not None:
        messages.success(request, _import_summary(run))
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = run.batch.get_absolute_url()
            return response
        return redirect(run.batch)
    template = "reviewer/import_status.html" + ("#progress" if request.htmx else "")
    return render(request, template, {"run": run, "form": ImportForm()})


def _import_summary(run) -> str:
    text = (
        f"Imported {run.file_name}: {run.items_created} new and {run.items_updated} updated items, "
        f"{run.events_created} new and {run.events_updated} updated events"
    )
    if run.items_unchanged:
        text += f", {run.items_unchanged} items unchanged"
    if run.malformed_lines:
        text += f"; {len(run.malformed_lines)} malformed record(s) skipped (listed below)"
    return text + "."
