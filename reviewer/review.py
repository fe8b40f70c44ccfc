"""Review decisions: one event, many events, and undo, each audited as one group of Decision rows.

Every action is one transaction that locks the events it changes (``select_for_update``
on PostgreSQL; on SQLite the IMMEDIATE transactions already serialize writers), reads
each event's current value inside it, then writes the events, one Decision row per
change and the batch's approval counters. So two reviewers deciding the same event
both get a history row with the right "from", an undo restores exactly what was there,
and a sync (which locks the events it rewrites) never sees half an action.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from reviewer.models import Approval, Batch, Decision, Event

CHUNK_SIZE = 2000  # events per UPDATE / Decision rows per INSERT


class ReviewError(Exception):
    """An action that cannot be applied as asked; the message says why, nothing was changed."""


class StaleEvent(ReviewError):
    """The event changed since the page showing it was rendered."""

    def __init__(self, event: Event) -> None:
        who = event.decided_by.get_username() if event.decided_by_id else "a sync"
        super().__init__(
            f"{who} changed this event to {event.get_approval_display().lower()} since you loaded the page; "
            "your decision was not applied. Decide again to override."
        )
        self.event = event


@dataclass
class Applied:
    """What an action did: its group (None when nothing changed) and how many events it changed."""

    group: uuid.UUID | None
    changed: int
    unchanged: int = 0  # already had that value
    skipped: int = 0  # undo only: changed by someone else since, left as they are


@dataclass
class _Current:
    pk: int
    approval: str
    decided_by_id: int | None
    decided_at: datetime | None


def decide(event: Event, decision: str, user, *, note: str = "", revision: int | None = None) -> Applied:
    """Set one event's approval. ``revision`` is the one the user saw: a mismatch raises StaleEvent."""
    _check_decision(decision)
    with transaction.atomic():
        locked = Event.objects.select_for_update(of=("self",)).select_related("decided_by").get(pk=event.pk)
        if revision is not None and locked.revision != revision:
            raise StaleEvent(locked)
        return _apply(locked.batch_id, [_current(locked)], decision, user, note)


def decide_many(
    batch: Batch, events: QuerySet[Event], decision: str, user, *, note: str = "", expected_count: int | None = None
) -> Applied:
    """Set the approval of every event in ``events`` (limited to ``batch``) as one undoable group.

    ``expected_count`` is the number the user confirmed: when the events matching now
    are a different number, nothing is applied (ReviewError says both numbers).
    """
    _check_decision(decision)
    with transaction.atomic():
        rows = (
            events.filter(batch=batch)
            .select_for_update(of=("self",))
            .order_by("pk")
            .values_list("pk", "approval", "decided_by_id", "decided_at")
        )
        current = [_Current(*row) for row in rows]
        if expected_count is not None and len(current) != expected_count:
            raise ReviewError(
                f"You confirmed {expected_count:,} events, but {len(current):,} match now "
                "(someone else or a sync changed them meanwhile). Nothing was changed: check and confirm again."
            )
        return _apply(batch.pk, current, decision, user, note)


def undo_last(batch: Batch, user) -> Applied | None:
    """Undo ``user``'s last action on ``batch`` that is not undone yet; None when there is none.

    Each event gets back its previous approval and who had decided it. An event that
    someone else changed since is left as it is and counted in ``skipped``.
    """
    with transaction.atomic():
        undone = Decision.objects.filter(batch=batch, undoes__isnull=False).values("undoes")
        group = (
            Decision.objects.filter(batch=batch, user=user, undoes__isnull=True)
            .exclude(group__in=undone)
            .order_by("-created_at", "-id")
            .values_list("group", flat=True)
            .first()
        )
        if group is None:
            return None
        rows = list(Decision.objects.filter(group=group).order_by("pk"))
        locked = {
            pk: _Current(pk, approval, by, at)
            for pk, approval, by, at in Event.objects.select_for_update(of=("self",))
            .filter(pk__in=[row.event_id for row in rows])
            .values_list("pk", "approval", "decided_by_id", "decided_at")
        }
        now, undo_group = timezone.now(), uuid.uuid4()
        restores: dict[tuple, list[int]] = defaultdict(list)
        audit: list[Decision] = []
        for row in rows:
            event = locked.get(row.event_id)
            if event is None or (event.approval, event.decided_by_id, event.decided_at) != (
                row.to_approval, row.user_id, row.created_at,
            ):  # fmt: skip
                continue  # deleted, or decided again since by someone (or something) else
            restores[(row.from_approval, row.previous_decided_by_id, row.previous_decided_at)].append(event.pk)
            audit.append(
                Decision(
                    event_id=event.pk, batch_id=batch.pk, user=user, from_approval=row.to_approval,
                    to_approval=row.from_approval, previous_decided_by_id=row.user_id,
                    previous_decided_at=row.created_at, note="undo", group=undo_group, undoes=group, created_at=now,
                )
            )  # fmt: skip
        for (approval, decided_by_id, decided_at), pks in restores.items():
            for chunk in _chunks(pks):
                Event.objects.filter(pk__in=chunk).update(
                    approval=approval, decided_by_id=decided_by_id, decided_at=decided_at, revision=F("revision") + 1
                )
        Decision.objects.bulk_create(audit, batch_size=CHUNK_SIZE)
        Batch.objects.get(pk=batch.pk).refresh_approval_counts()
        return Applied(undo_group if audit else None, changed=len(audit), skipped=len(rows) - len(audit))


def _apply(batch_id: int, current: list[_Current], decision: str, user, note: str) -> Applied:
    now, group = timezone.now(), uuid.uuid4()
    changing = [event for event in current if _changes(event, decision)]
    for chunk in _chunks(changing):
        Event.objects.filter(pk__in=[event.pk for event in chunk]).update(
            approval=decision, decided_by=user, decided_at=now, revision=F("revision") + 1
        )
        Decision.objects.bulk_create(
            [
                Decision(
                    event_id=event.pk, batch_id=batch_id, user=user, from_approval=event.approval,
                    to_approval=decision, previous_decided_by_id=event.decided_by_id,
                    previous_decided_at=event.decided_at, note=note, group=group, created_at=now,
                )
                for event in chunk
            ]
        )  # fmt: skip
    if changing:
        Batch.objects.get(pk=batch_id).refresh_approval_counts()
    return Applied(group if changing else None, changed=len(changing), unchanged=len(current) - len(changing))


def _changes(event: _Current, decision: str) -> bool:
    """A decision changes an event unless it already holds it by a person's hand.

    Approving an event the provider already marked approved is still a change: it
    records that a person confirmed it. "Pending" on an undecided pending event is not.
    """
    if event.approval != decision:
        return True
    return event.decided_at is None and decision != Approval.PENDING


def _current(event: Event) -> _Current:
    return _Current(event.pk, event.approval, event.decided_by_id, event.decided_at)


def _check_decision(decision: str) -> None:
    if decision not in Approval.values:
        raise ReviewError(f"Unknown decision {decision!r}: use one of {', '.join(Approval.values)}.")


def _chunks(values: list) -> list[list]:
    return [values[start : start + CHUNK_SIZE] for start in range(0, len(values), CHUNK_SIZE)]
