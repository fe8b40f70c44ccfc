"""The one GET form of the batch page, shared by the page, its fragments and the exports.

Semantics (the NomadicML seed page): with no event filter every item is listed, with
or without events; with one, only matching events are listed and items without a match
are left out. ``q`` also finds items by their own text (name, ids, summary).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from functools import cached_property, reduce

from django import forms
from django.db.models import Case, Exists, F, IntegerField, Max, OuterRef, Prefetch, Q, QuerySet, Value, When
from django.http import QueryDict

from reviewer import search
from reviewer.models import Approval, Batch, Event, Item, ReasonCode, Sample

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
SORTS = {
    "time": "Time",
    "severity": "Severity",
    "confidence": "Confidence",
    "video": "Video",
}


# Who decided an event: a person, only the provider, or a person against the provider.
DECIDED = {
    "human": "By a person",
    "provider": "By the provider only",
    "disagree": "Person ≠ provider",
}
_DECIDED_Q = {
    "human": Q(decided_at__isnull=False),
    "provider": Q(decided_at__isnull=True) & ~Q(provider_approval=Approval.PENDING),
    "disagree": Q(decided_at__isnull=False)
    & ~Q(provider_approval=Approval.PENDING)
    & ~Q(approval=F("provider_approval")),
}


class ExplainedForm(forms.Form):
    """A GET form whose errors read as one line per bad parameter, with the valid values."""

    def error_message(self) -> str:
        """One readable line per invalid parameter, naming the parameter and the valid values."""
        lines = []
        for name, errors in self.errors.items():
            choices = getattr(self.fields.get(name), "choices", None)
            valid = f" Valid values: {', '.join(str(value) for value, _ in choices if value)}." if choices else ""
            lines += [f"{name}: {error}{valid}" for error in errors]
        return " ".join(lines)


class BatchFilterForm(ExplainedForm):
    approval = forms.MultipleChoiceField(choices=Approval.choices, required=False)
    decided = forms.MultipleChoiceField(choices=list(DECIDED.items()), required=False)
    reason = forms.MultipleChoiceField(choices=(), required=False)
    status = forms.MultipleChoiceField(choices=(), required=False)
    severity = forms.MultipleChoiceField(choices=(), required=False)
    category = forms.MultipleChoiceField(choices=(), required=False)
    q = forms.CharField(required=False, max_length=200, strip=True)
    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False)
    page = forms.IntegerField(required=False, min_value=1)
    sample = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)  # reviewer/sampling.py

    def __init__(self, data: QueryDict, *, batch: Batch, facets: dict[str, list[str]]) -> None:
        super().__init__(data)
        self.batch = batch
        # Valid values are what the batch holds (plus the provider's documented statuses),
        # so a shared URL keeps working and a typo is a clear error.
        self.fields["status"].choices = [(value, value) for value in facets["status"]]
        self.fields["severity"].choices = [(value, value) for value in facets["severity"]]
        self.fields["category"].choices = [(value, value) for value in facets["category"]]
        self.fields["reason"].choices = [(value, value) for value in facets["reason"]]

    def clean_sample(self) -> int | None:
        sample = self.cleaned_data.get("sample")
        if sample is not None and not Sample.objects.filter(pk=sample, batch=self.batch).exists():
            raise forms.ValidationError(f"there is no sample {sample} of this batch.")
        return sample


_NOT_ON_PAGE = ("raw", "search_text", "search_note")


@dataclass
class BatchFilter:
    """Validated filter values; builds the item and event querysets the page shows."""

    batch: Batch
    approval: list[str]
    status: list[str]
    severity: list[str]
    category: list[str]
    q: str
    sort: str
    page: int
    decided: list[str] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)
    sample: int | None = None  # only the events of this sample (reviewer/sampling.py)

    @property
    def filters_events(self) -> bool:
        return bool(self.approval or self.severity or self.category or self.decided or self.reason or self.sample)

    @property
    def is_active(self) -> bool:
        return bool(self.filters_events or self.status or self.query)

    def event_q(self, prefix: str = "") -> Q:
        """The condition an event must meet to be shown (not counting item status).

        ``prefix``: the path to the event (``"events__"`` from an item).
        """
        condition = Q()
        if self.approval:
            condition &= Q(approval__in=self.approval)
        if self.severity:
            condition &= Q(severity__in=self.severity)
        if self.category:
            condition &= Q(category__in=self.category)
        if self.decided:
            condition &= reduce(operator.or_, (_DECIDED_Q[value] for value in self.decided))
        if self.reason:
            condition &= Q(reason__in=self.reason)
        if self.sample:
            condition &= Q(sample_memberships__sample_id=self.sample)
        if prefix:
            condition = _prefixed(condition, prefix)
        if self.query:
            condition &= search.event_q(self.query, prefix)
        return condition

    @cached_property
    def query(self) -> search.Query:
        """``q`` parsed: words and phrases (reviewer/search.py)."""
        return search.Query.parse(self.q)

    def events(self) -> QuerySet[Event]:
        """The events shown, across the shown items (what the exports write)."""
        events = Event.objects.filter(batch=self.batch).filter(self.event_q())
        if self.batch.loading:  # its first load is being written: nothing is shown before it ends
            return events.none()
        if self.status:
            events = events.filter(item__status__in=self.status)
        return events

    def item_queryset(self) -> QuerySet[Item]:
        """The items shown, unordered and without their events (for counting)."""
        items = Item.objects.filter(batch=self.batch)
        if self.batch.loading:
            return items.none()
        if self.status:
            items = items.filter(status__in=self.status)
        matching = Event.objects.filter(item=OuterRef("pk")).filter(self.event_q())
        if self.filters_events:
            items = items.filter(Exists(matching))
        elif self.query:
            items = items.filter(search.item_q(self.query) | Exists(matching))
        return items

    def items(self) -> QuerySet[Item]:
        """The items shown, ordered by ``sort``, with their shown events in ``shown_events``."""
        return self.ordered(self.item_queryset()).prefetch_related(self._shown_events())

    def page_items(self, ids: list[int]) -> list[Item]:
        """The items ``ids`` (a page, in order) with their shown events in ``shown_events``.

        Without the columns a page never shows (the provider's raw payloads, the search
        words): decoding 500 raw payloads was a fifth of the batch page.
        """
        items = Item.objects.filter(pk__in=ids).defer(*_NOT_ON_PAGE[:2])
        by_id = {item.pk: item for item in items.prefetch_related(self._shown_events(*_NOT_ON_PAGE))}
        return [by_id[pk] for pk in ids if pk in by_id]

    def _shown_events(self, *deferred: str) -> Prefetch:
        shown = Event.objects.filter(self.event_q()).select_related("decided_by").order_by(*self.event_order())
        return Prefetch("events", queryset=shown.defer(*deferred), to_attr="shown_events")

    def without(self, name: str) -> BatchFilter:
        """A copy with one multi-select filter cleared (chip counts follow the others)."""
        return replace(self, **{name: []})

    def ordered(self, items: QuerySet[Item]) -> QuerySet[Item]:
        # NULLs (no confidence, no event) go last explicitly: SQLite and PostgreSQL
        # otherwise put them at opposite ends.
        if self.sort == "video":
            return items.order_by("video_name", "custom_id", "provider_item_id")
        if self.sort == "confidence":
            best = Max("events__confidence", filter=self.event_q("events__"))
            return items.annotate(best_confidence=best).order_by(F("best_confidence").desc(nulls_last=True), "position")
        if self.sort == "severity":
            best = Max(severity_rank("events__severity"), filter=self.event_q("events__"))
            return items.annotate(best_severity=best).order_by(F("best_severity").desc(nulls_last=True), "position")
        return items.order_by("position", "id")

    def event_order(self) -> list:
        """The order of an item's events on the page (and in the exports)."""
        if self.sort == "confidence":
            return [F("confidence").desc(nulls_last=True), "position"]
        if self.sort == "severity":
            return [severity_rank("severity").desc(), "position"]
        return [F("start_seconds").asc(nulls_last=True), "position"] if self.sort == "time" else ["position"]

    def query_string(self, **overrides: object) -> str:
        """The URL query of this filter with some values replaced (e.g. ``page=2``)."""
        params = QueryDict(mutable=True)
        values = {
            "approval": self.approval, "decided": self.decided, "reason": self.reason, "status": self.status,
            "severity": self.severity, "category": self.category, "q": self.q, "sort": self.sort,
            "sample": self.sample,
        }  # fmt: skip
        values.update(overrides)
        for name, value in values.items():
            if isinstance(value, list):
                params.setlist(name, value)
            elif value not in ("", None):
                params[name] = str(value)
        return params.urlencode()

    @cached_property
    def plain_query(self) -> str:
        """``query_string()``, computed once (each of a page's 500 rows links to it)."""
        return self.query_string()

    def params(self) -> list[tuple[str, str]]:
        """The filter as (name, value) pairs, e.g. for the hidden fields of a form acting on it."""
        return [(name, value) for name, values in QueryDict(self.query_string()).lists() for value in values]

    def describe(self) -> str:
        """A short slug of the active filters, for export file names."""
        parts = [*self.approval, *self.decided, *self.reason, *self.status, *self.severity, *self.category]
        if self.q:
            parts.append("search")
        if self.sample:
            parts.append(f"sample{self.sample}")
        return "-".join(parts) or "all"


def facets(batch: Batch) -> dict[str, list[str]]:
    """The values each multi-select filter can take in this batch (stored on the batch by each sync)."""
    documented = batch.adapter.item_statuses
    statuses = list(documented) + sorted(set(batch.item_counts) - set(documented))
    if batch.event_facets is not None:
        severities, categories = batch.event_facets["severity"], batch.event_facets["category"]
    else:
        severities = batch.events.order_by().values_list("severity", flat=True).distinct()
        categories = batch.events.order_by().values_list("category", flat=True).distinct()
    return {
        "status": statuses,
        "severity": sorted((s for s in severities if s), key=lambda s: (-SEVERITY_RANK.get(s.lower(), 0), s)),
        "category": sorted(c for c in categories if c),
        "reason": list(ReasonCode.objects.values_list("label", flat=True)),
    }


def parse(data: QueryDict, batch: Batch) -> tuple[BatchFilter | None, BatchFilterForm]:
    """Validate the query string; returns (filter, form), filter None when invalid."""
    form = BatchFilterForm(data, batch=batch, facets=facets(batch))
    if not form.is_valid():
        return None, form
    cleaned = form.cleaned_data
    return BatchFilter(
        batch=batch,
        approval=cleaned["approval"],
        status=cleaned["status"],
        severity=cleaned["severity"],
        category=cleaned["category"],
        decided=cleaned["decided"],
        reason=cleaned["reason"],
        q=cleaned["q"],
        sort=cleaned["sort"] or "",
        page=cleaned["page"] or 1,
        sample=cleaned["sample"],
    ), form


def _prefixed(condition: Q, prefix: str) -> Q:
    """Return ``condition`` with every lookup moved under ``prefix`` (event -> item.events)."""
    result = Q()
    result.connector = condition.connector
    result.negated = condition.negated
    for child in condition.children:
        if isinstance(child, Q):
            result.children.append(_prefixed(child, prefix))
        else:
            lookup, value = child
            if isinstance(value, F):  # a column of the same row: under the prefix too
                value = F(prefix + value.name)
            result.children.append((prefix + lookup, value))
    return result


def severity_rank(field: str) -> Case:
    return Case(
        *[When(**{f"{field}__iexact": name}, then=Value(rank)) for name, rank in SEVERITY_RANK.items()],
        default=Value(0),
        output_field=IntegerField(),
    )
