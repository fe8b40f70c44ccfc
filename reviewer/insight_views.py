"""Insights: how good the model is, from the review (reviewer/quality.py), per batch and across batches."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from reviewer import activity, charts, counted, quality, sampling
from reviewer.exporters import safe_file_name
from reviewer.filters import ExplainedForm
from reviewer.models import Approval, Batch, Loading, Sample, SecondReview, SecondReviewItem
from reviewer.views import REVIEWER_GROUP, reviewer_required

TABLE_ROWS = 200  # groups shown in a table (the largest first; the CSV has them all: 5,000 videos would be a slow page)
PACE_WINDOW = timedelta(days=30)  # throughput across all batches: the last 30 days (a whole history is unbounded)

GROUP_LABELS = {
    "category": "Category", "severity": "Severity", "confidence": "Confidence", "video": "Video",
    "prompt": "Prompt", "provider": "Provider", "model": "Model",
}  # fmt: skip


class InsightsForm(ExplainedForm):
    by = forms.ChoiceField(choices=(), required=False)
    category = forms.ChoiceField(choices=(), required=False)
    target = forms.FloatField(required=False, min_value=0.5, max_value=0.99)

    def __init__(self, data, *, groups: tuple[str, ...], categories: list[str]) -> None:
        super().__init__(data)
        self.fields["by"].choices = [(name, GROUP_LABELS[name]) for name in groups]
        self.fields["category"].choices = [("", "All categories"), *((name, name) for name in categories)]


def _categories(batch: Batch | None) -> list[str]:
    if batch is not None and batch.event_facets is not None:
        return list(batch.event_facets.get("category", []))
    return sorted(c for c in quality.shown_events(batch).order_by().values_list("category", flat=True).distinct() if c)


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
    parts = (batch.pk if batch else "all", counted.data_version(batch), sorted(options.items()))
    context.update(
        counted.remembered("insights", parts, lambda: _numbers(batch, options)),
        options=options,
        pace=activity.pace(batch) if batch is not None else activity.pace(None, since=timezone.now() - PACE_WINDOW),
        groups=quality.BATCH_GROUPS if batch is not None else quality.ALL_GROUPS,
    )
    second_reviews = SecondReview.objects.filter(batch=batch) if batch else SecondReview.objects.all()
    items = list(sampling.decided_items(second_reviews))
    context["by_pair"], context["by_category"] = sampling.agreements(items)
    context["disagreement_count"] = len(sampling.disagreements(items))
    if batch is not None:
        context.update(
            samples=batch.samples.select_related("created_by")[:20], sample_form=SampleForm(),
            second_reviews=second_reviews.select_related("reviewer")[:20], second_form=SecondReviewForm(),
        )  # fmt: skip
    return render(request, "reviewer/insights.html", context)


def _numbers(batch: Batch | None, options: dict) -> dict:
    """The page's aggregates: about 15 queries over every event (600 ms at 100,000 events; reviewer/counted.py)."""
    events = quality.shown_events(batch)
    rows = quality.table(events, options["by"])
    by_confidence = quality.table(events, "confidence")
    threshold_events = events.filter(category=options["category"]) if options["category"] else events
    threshold_rows = quality.thresholds(threshold_events)
    numbers = {
        "overall": quality.overall(events), "rows": rows[:TABLE_ROWS], "rows_total": len(rows),
        "chart": charts.interval_chart(rows), "by_confidence": by_confidence,
        "confidence_chart": charts.interval_chart(by_confidence), "thresholds": threshold_rows,
        "threshold_chart": charts.threshold_chart(threshold_rows),
        "recommended": quality.lowest_threshold_for(threshold_rows, options["target"]), "progress": _progress(events),
    }  # fmt: skip
    if batch is None:
        numbers["trend"] = quality.table(events, "week")
        numbers["trend_chart"] = charts.interval_chart(numbers["trend"], max_rows=52)
    return numbers


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
    events = quality.shown_events(batch)
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
    response["Content-Disposition"] = f'attachment; filename="{safe_file_name(stem, "csv")}"'
    return response


def _cell(value) -> str:
    return "" if value is None else str(round(value, 4) if isinstance(value, float) else value)


def _errors(form: forms.Form) -> str:
    return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())


# --- Estimates from a sample ----------------------------------------------------------------------


class SampleForm(forms.Form):
    by = forms.ChoiceField(choices=Sample.BY_CHOICES, label="One stratum per")
    per_stratum = forms.IntegerField(min_value=1, max_value=1000, initial=20, label="Events per stratum")


@require_POST
@reviewer_required
def sample_create(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch, pk=pk, loading=Loading.NONE)
    form = SampleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The sample was not drawn: " + _errors(form))
        return redirect(reverse("batch_insights", args=[batch.pk]) + "#sample")
    sample = sampling.create_sample(batch, form.cleaned_data["by"], form.cleaned_data["per_stratum"], request.user)
    if not sample.members.exists():
        messages.warning(request, "Nothing is pending in this batch: there is nothing to sample.")
    return redirect(sample)


@require_GET
def sample_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sample = get_object_or_404(Sample.objects.select_related("batch", "created_by"), pk=pk)
    strata = sampling.estimate(sample)
    context = {
        "sample": sample, "batch": sample.batch, "strata": strata, "combined": sampling.combined(strata),
        "chart": charts.interval_chart([_as_row(stratum) for stratum in strata]),
        "sampled": sum(s.sampled for s in strata), "reviewed": sum(s.reviewed for s in strata),
        "margin_points": round(sampling.MARGIN * 100),
    }  # fmt: skip
    return render(request, "reviewer/sample.html", context)


def _as_row(stratum: sampling.Stratum) -> quality.Row:
    return quality.Row(stratum.name, stratum.approved, stratum.rejected, stratum.invalid,
                       stratum.sampled - stratum.reviewed)  # fmt: skip


# --- Second reviews (blind) ---------------------------------------------------------------------------


class SecondReviewForm(forms.Form):
    reviewer = forms.ModelChoiceField(queryset=None, label="Second reviewer", empty_label=None)
    share = forms.IntegerField(min_value=1, max_value=100, initial=10, label="Share of the decided events (%)")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True)
        self.fields["reviewer"].queryset = (
            users.filter(Q(is_staff=True) | Q(groups__name=REVIEWER_GROUP)).distinct().order_by("username")
        )


@require_POST
@reviewer_required
def second_review_create(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch, pk=pk, loading=Loading.NONE)
    form = SecondReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "No second review was assigned: " + _errors(form))
        return redirect(reverse("batch_insights", args=[batch.pk]) + "#second-review")
    reviewer = form.cleaned_data["reviewer"]
    second = sampling.create_second_review(batch, reviewer, form.cleaned_data["share"] / 100, request.user)
    count = second.items.count()
    if count:
        messages.success(request, f"{count:,} event{pluralize(count)} assigned to {reviewer.get_username()}, "
                                  "who will not see the first decisions.")  # fmt: skip
    else:
        messages.warning(request, f"No event was assigned: nobody but {reviewer.get_username()} has decided an "
                                  "event of this batch yet.")  # fmt: skip
    return redirect(second)


@require_GET
def second_review_results(request: HttpRequest, pk: int) -> HttpResponse:
    second = get_object_or_404(SecondReview.objects.select_related("batch", "reviewer"), pk=pk)
    items = list(sampling.decided_items([second]))
    by_pair, by_category = sampling.agreements(items)
    context = {
        "second": second, "batch": second.batch, "by_pair": by_pair, "by_category": by_category,
        "overall": sampling.Agreement("all", [(i.first_approval, i.second_approval) for i in items]),
        "disagreements": sampling.disagreements(items), "total": second.items.count(), "done": len(items),
        "is_assignee": request.user == second.reviewer,
    }  # fmt: skip
    # The assignee sees the results only once every event is judged: before, they would show the first decisions.
    context["hidden"] = context["is_assignee"] and context["done"] < context["total"]
    return render(request, "reviewer/second_review.html", context)


def _assignee_only(request: HttpRequest, second: SecondReview) -> None:
    if request.user != second.reviewer:
        raise PermissionDenied("This second review is assigned to someone else.")


@require_GET
def second_review_next(request: HttpRequest, pk: int) -> HttpResponse:
    """The blind screen: the next event to judge, without its first decision, its history or its note."""
    second = get_object_or_404(SecondReview.objects.select_related("batch", "reviewer"), pk=pk)
    _assignee_only(request, second)
    item = sampling.next_item(second)
    if item is None:
        messages.success(request, "You have judged every event of this second review: here is how you agreed.")
        return redirect(second)
    event = item.event
    context = {
        "second": second, "assignment": item, "event": event, "item": event.item, "batch": second.batch, "blind": True,
        "video_events": [], "item_viewer_url": "",  # nothing that shows a decision: not even the timeline's colours
        "left": second.items.filter(second_approval="").count(), "total": second.items.count(),
    }  # fmt: skip
    return render(request, "reviewer/second_review_blind.html", context)


@require_POST
def second_review_decide(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    second = get_object_or_404(SecondReview, pk=pk)
    _assignee_only(request, second)
    item = get_object_or_404(SecondReviewItem, pk=item_pk, second_review=second)
    try:
        sampling.record(item, request.POST.get("decision", ""))
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("second_review_next", second.pk)
