"""Search across all batches: the events whose words match, grouped by batch (reviewer/search.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.core.paginator import Paginator
from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reviewer import counted, search
from reviewer.filters import SEVERITY_RANK, ExplainedForm
from reviewer.models import Approval, Batch, Event, Loading

BATCHES_PER_PAGE = 20
EVENTS_PER_BATCH = 5  # the rest are one click away, on the batch page with the same search


class SearchForm(ExplainedForm):
    q = forms.CharField(required=False, max_length=200, strip=True)
    approval = forms.MultipleChoiceField(choices=Approval.choices, required=False)
    severity = forms.MultipleChoiceField(choices=(), required=False)
    category = forms.MultipleChoiceField(choices=(), required=False)
    page = forms.IntegerField(required=False, min_value=1)

    def __init__(self, data: QueryDict) -> None:
        super().__init__(data)
        severities, categories = _facets()
        self.fields["severity"].choices = [(value, value) for value in severities]
        self.fields["category"].choices = [(value, value) for value in categories]


def _facets() -> tuple[list[str], list[str]]:
    """Every severity and category of the cached batches (each sync stores its batch's)."""
    severities, categories = set(), set()
    for facets in Batch.objects.exclude(event_facets=None).values_list("event_facets", flat=True):
        severities.update(value for value in facets.get("severity", []) if value)
        categories.update(value for value in facets.get("category", []) if value)
    return sorted(severities, key=lambda s: (-SEVERITY_RANK.get(s.lower(), 0), s)), sorted(categories)


@dataclass
class SearchParams:
    """The search's query string, for the pager and the links to each batch's page."""

    params: QueryDict

    @classmethod
    def of(cls, cleaned: dict) -> SearchParams:
        params = QueryDict(mutable=True)
        params["q"] = cleaned["q"]
        for name in ("approval", "severity", "category"):
            params.setlist(name, cleaned[name])
        return cls(params)

    def query_string(self, **overrides: object) -> str:
        params = self.params.copy()
        for name, value in overrides.items():
            params[name] = str(value)
        return params.urlencode()


@dataclass
class BatchHits:
    batch: Batch
    count: int
    events: list[Event]
    query_string: str  # the batch page showing all of them

    @property
    def more(self) -> int:
        return self.count - len(self.events)


def matching_events(query: search.Query, cleaned: dict) -> QuerySet[Event]:
    """The events matching the words and the chips, in batches people can see (not loading)."""
    events = Event.objects.filter(search.event_q(query), batch__loading=Loading.NONE)
    for name in ("approval", "severity", "category"):
        if cleaned[name]:
            events = events.filter(**{f"{name}__in": cleaned[name]})
    return events


@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    if not form.is_valid():
        return render(request, "reviewer/search.html", {"form": form, "error": form.error_message()}, status=400)
    cleaned = form.cleaned_data
    query = search.Query.parse(cleaned["q"])
    context = {"form": form, "query": query, "cleaned": cleaned, "params": SearchParams.of(cleaned)}
    if query:
        events = matching_events(query, cleaned)
        counts, shown = _hits(events, context["params"], cleaned["page"] or 1)
        page = Paginator(counts, BATCHES_PER_PAGE).get_page(cleaned["page"] or 1)
        hits = dict(page.object_list)
        context |= {"page": page, "total": sum(n for _, n in counts), "groups": _groups(shown, hits, context["params"])}
    return render(request, "reviewer/search.html", context)


def _hits(events: QuerySet[Event], params: SearchParams, page: int) -> tuple[list[tuple[int, int]], list[int]]:
    """(batch, matches) for every batch with a match, newest first, and the ids of the page's shown events.

    Both count every match (tens of thousands for a common word), and change only with a
    decision or a sync: cached until then (reviewer/counted.py).
    """

    def count() -> tuple[list[tuple[int, int]], list[int]]:
        # One row per batch with a match (a few hundred at most): counted once, paged in Python.
        counts = list(events.order_by().values_list("batch").annotate(hits=Count("id")).order_by("-batch"))
        shown_batches = [pk for pk, _ in Paginator(counts, BATCHES_PER_PAGE).get_page(page).object_list]
        first = (
            events.filter(batch_id__in=shown_batches)
            .annotate(
                rank=Window(RowNumber(), partition_by=F("batch_id"), order_by=[F("item__position"), F("position")])
            )
            .filter(rank__lte=EVENTS_PER_BATCH)
            .order_by("batch_id", "rank")
            .values_list("pk", flat=True)
        )
        return counts, list(first)

    return counted.remembered("search", (params.query_string(page=page), counted.data_version()), count)


def _groups(shown: list[int], hits: dict[int, int], params: SearchParams) -> list[BatchHits]:
    """The shown batches, newest first, each with its first events in the batch page's order."""
    order = {pk: index for index, pk in enumerate(shown)}
    by_batch: dict[int, list[Event]] = {}
    for event in sorted(Event.objects.filter(pk__in=shown).select_related("item"), key=lambda e: order[e.pk]):
        by_batch.setdefault(event.batch_id, []).append(event)
    batches = Batch.objects.filter(pk__in=hits).select_related("source").order_by("-pk")
    return [BatchHits(batch, hits[batch.pk], by_batch.get(batch.pk, []), params.query_string()) for batch in batches]
