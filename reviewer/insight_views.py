"""Insights: how good the model is, from the review (reviewer/quality.py), per batch and across batches."""

from __future__ import annotations

import csv
import io

from django import forms
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from reviewer import activity, charts, quality
from reviewer.models import Approval, Batch, Event, Loading

GROUP_LABELS = {
    "category": "Category", "severity": "Severity", "confidence": "Confidence", "video": "Video",
    "prompt": "Prompt", "provider": "Provider", "model": "Model",
}  # fmt: skip


class InsightsForm(forms.Form):
    by = forms.ChoiceField(choices=(), required=False)
    category = forms.ChoiceField(choices=(), required=False)
    target = forms.FloatField(required=False, min_value=0.5, max_value=0.99)

    def __init__(self, data, *, groups: tuple[str, ...], categories: list[str]) -> None:
        super().__init__(data)
        self.fields["by"].choices = [(name, GROUP_LABELS[name]) for name in groups]
        self.fields["category"].choices = [("", "All categories"), *((name, name) for name in categories)]

    def error_message(self) -> str:
        lines = []
        for name, errors in self.errors.items():
            choices = getattr(self.fields.get(name), "choices", None)
            valid = f" Valid values: {', '.join(str(value) for value, _ in choices if value)}." if choices else ""
            lines += [f"{name}: {error}{valid}" for error in errors]
        return " ".join(lines)


def _events(batch: Batch | None):
    events = Event.objects.filter(batch__loading=Loading.NONE)  # a load in progress is not shown anywhere
    return events.filter(batch=batch) if batch is not None else events


def _categories(batch: Batch | None) -> list[str]:
    if batch is not None and batch.event_facets is not None:
        return list(batch.event_facets.get("category", []))
    return sorted(c for c in _events(batch).order_by().values_list("category", flat=True).distinct() if c)


def _parse(request: HttpRequest, batch: Batch | None):
    groups = quality.BATCH_GROUPS if batch is not None else quality.ALL_GROUPS
    form = InsightsForm(request.GET, groups=groups, categories=_categories(batch))
    if not form.is_valid():
        return None, form
    cleaned = form.cleaned_data
    return {"by": cleaned["by"] or groups[0], "category": cleaned["category"],
            "target": cleaned["target"] or 0.9}, form  # fmt: skip


@require_GET
def batch_insights(request: HttpRequest, pk: int) -> HttpResponse:
    return _insights(request, get_object_or_404(Batch, pk=pk))


@require_GET
def all_insights(request: HttpRequest) -> HttpResponse:
    return _insights(request, None)


def _insights(request: HttpRequest, batch: Batch | None) -> HttpResponse:
    options, form = _parse(request, batch)
    context = {"batch": batch, "form": form, "group_labels": GROUP_LABELS}
    if options is None:
        context["error"] = form.error_message()
        return render(request, "reviewer/insights.html", context, status=400)
    events = _events(batch)
    rows = quality.table(events, options["by"])
    by_confidence = quality.table(events, "confidence")
    threshold_events = events.filter(category=options["category"]) if options["category"] else events
    threshold_rows = quality.thresholds(threshold_events)
    context.update(
        options=options,
        overall=quality.overall(events),
        rows=rows,
        chart=charts.interval_chart(rows),
        by_confidence=by_confidence,
        confidence_chart=charts.interval_chart(by_confidence),
        thresholds=threshold_rows,
        threshold_chart=charts.threshold_chart(threshold_rows),
        recommended=quality.lowest_threshold_for(threshold_rows, options["target"]),
        pace=activity.pace(batch),
        progress=_progress(events),
        groups=quality.BATCH_GROUPS if batch is not None else quality.ALL_GROUPS,
    )
    if batch is None:
        context["trend"] = quality.table(events, "week")
        context["trend_chart"] = charts.interval_chart(context["trend"], max_rows=52)
    return render(request, "reviewer/insights.html", context)


def _progress(events) -> dict:
    """Events decided by a person so far, by the day of their decision (cumulative), as a chart."""
    decided = events.filter(decided_at__isnull=False).exclude(approval=Approval.PENDING)
    days = list(
        decided.order_by()
        .annotate(day=TruncDate("decided_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    chart = charts.progress_chart(days, events.count())
    chart["days"] = days
    return chart


@require_GET
def insights_csv(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """The table of the insights page as CSV: ``?by=`` groups (the report's columns), or ``?table=thresholds``."""
    batch = get_object_or_404(Batch, pk=pk) if pk is not None else None
    options, form = _parse(request, batch)
    if options is None:
        return HttpResponse(form.error_message(), status=400, content_type="text/plain; charset=utf-8")
    events = _events(batch)
    out = io.StringIO()
    writer = csv.writer(out)
    if request.GET.get("table") == "thresholds":
        events = events.filter(category=options["category"]) if options["category"] else events
        writer.writerow(["threshold", "kept", "approved", "rejected", "precision", "precision_low", "precision_high"])
        for row in quality.thresholds(events):
            low, high = row.interval or (None, None)
            writer.writerow([row.threshold, row.kept, row.approved, row.rejected,
                             *(_cell(value) for value in (row.precision, low, high))])  # fmt: skip
        name = "thresholds"
    else:
        by = "week" if request.GET.get("table") == "trend" and batch is None else options["by"]
        writer.writerow(quality.COLUMNS)
        for row in quality.table(events, by):
            writer.writerow([_cell(value) for value in row.as_dict().values()])
        name = f"quality-by-{by}"
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    stem = f"{batch.provider_batch_id}-{name}" if batch else name
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in stem)[:150]
    response["Content-Disposition"] = f'attachment; filename="{safe}.csv"'
    return response


def _cell(value) -> str:
    return "" if value is None else str(round(value, 4) if isinstance(value, float) else value)
