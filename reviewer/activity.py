"""A batch's review activity: one line per action (naming its events), filters, and each reviewer's pace.

An action is one group of Decision rows (a single decision, a bulk one, an undo). Its
line names its first event (video, time, label) and links to it; a bulk action says
how many more. Pace per reviewer: actions, events decided, active time (the gaps
between their consecutive actions, a pause longer than IDLE_GAP not counted) and events
decided per active hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone

from reviewer.filters import ExplainedForm
from reviewer.models import Approval, Batch, Decision

IDLE_GAP = timedelta(minutes=5)  # a longer pause between two actions is a break, not review time


class ActivityFilterForm(ExplainedForm):
    reviewer = forms.ChoiceField(required=False)
    decision = forms.ChoiceField(choices=[("", "Any"), *Approval.choices, ("undo", "Undo")], required=False)

    def __init__(self, data, *, batch: Batch) -> None:
        super().__init__(data)
        names = (
            get_user_model()
            .objects.filter(pk__in=Decision.objects.filter(batch=batch).values("user"))
            .order_by("username")
            .values_list("username", flat=True)
        )
        self.fields["reviewer"].choices = [("", "Anyone"), *((name, name) for name in names)]


@dataclass
class ActivityQuery:
    """The activity filter, for the pager's links."""

    reviewer: str = ""
    decision: str = ""

    def query_string(self, **overrides: object) -> str:
        values = {"reviewer": self.reviewer, "decision": self.decision, **overrides}
        return urlencode({name: value for name, value in values.items() if value not in ("", None)})


def actions(batch: Batch, reviewer: str = "", decision: str = "") -> QuerySet:
    """The batch's actions newest first, as dicts: group, user__username, undoes, note, reason, count, at, to_approval.

    ``reason`` and ``to_approval`` are the action's (one per decision group); an undo's are not shown.
    """
    rows = Decision.objects.filter(batch=batch)
    if reviewer:
        rows = rows.filter(user__username=reviewer)
    if decision == "undo":
        rows = rows.filter(undoes__isnull=False)
    elif decision:
        rows = rows.filter(to_approval=decision, undoes__isnull=True)
    return (
        rows.values("group", "user__username", "undoes", "note")
        # One reason and one approval per decision group; an undo restores several (its line says so).
        .annotate(
            count=Count("id"),
            at=Max("created_at"),
            to_approval=Max("to_approval"),
            reason=Max("reason"),
            first=Min("id"),
        )  # fmt: skip
        .order_by("-at", "-first")
    )


def attach_first_events(page_of_actions: list[dict]) -> None:
    """Give each action its first Decision's event (with its item) as ``event``: two queries for the whole page."""
    firsts = {row["first"]: row for row in page_of_actions}
    for decision in Decision.objects.filter(pk__in=firsts).select_related("event__item"):
        firsts[decision.pk]["event"] = decision.event


@dataclass
class Pace:
    reviewer: str
    actions: int
    events: int
    active: timedelta
    median_gap: timedelta | None  # between two actions in a row, breaks left out
    days: int = 1  # days with at least one action

    @property
    def events_per_day(self) -> float:
        return round(self.events / self.days, 1)

    @property
    def events_per_hour(self) -> float | None:
        """None under a minute of active time: a rate over a few seconds says nothing."""
        if self.active < timedelta(minutes=1):
            return None
        return round(self.events / (self.active.total_seconds() / 3600), 1)


def pace(batch: Batch | None, since: datetime | None = None) -> list[Pace]:
    """Each reviewer's pace on the batch (None: on every batch; undos not counted), most events first.

    ``since``: only the actions from then on.
    """
    decisions = Decision.objects.filter(batch=batch) if batch is not None else Decision.objects.all()
    if since is not None:
        decisions = decisions.filter(created_at__gte=since)
    groups = (
        decisions.filter(undoes__isnull=True, user__isnull=False)
        .values("user__username", "group")
        .annotate(events=Count("id"), at=Max("created_at"))
        .order_by("user__username", "at")
    )
    by_reviewer: dict[str, list[tuple[datetime, int]]] = {}
    for row in groups:
        by_reviewer.setdefault(row["user__username"], []).append((row["at"], row["events"]))
    result = []
    for name, rows in by_reviewer.items():
        gaps = [later[0] - earlier[0] for earlier, later in zip(rows, rows[1:], strict=False)]
        working = [gap for gap in gaps if gap <= IDLE_GAP]
        result.append(
            Pace(
                reviewer=name,
                actions=len(rows),
                events=sum(events for _, events in rows),
                active=sum(working, timedelta()),
                median_gap=median(working) if working else None,
                days=len({timezone.localdate(at) for at, _ in rows}),
            )
        )
    return sorted(result, key=lambda entry: (-entry.events, entry.reviewer))
