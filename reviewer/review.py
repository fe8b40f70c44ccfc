"""Review decisions: one event, many events, and undo, each audited as one group of Decision rows.

Every action is one transaction that locks its batch row, then the events it changes
(``select_for_update`` on PostgreSQL; on SQLite the IMMEDIATE transactions already
serialize writers), reads each event's current value inside it, then writes the events,
one Decision row per change and the batch's approval counters. So two reviewers
deciding the same event both get a history row with the right "from", an undo restores
exactly what was there, and a sync (which locks the batch, then the events it rewrites)
never sees half an action.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from reviewer import search, webhooks
from reviewer.models import Approval, Batch, Decision, Event, ReasonCode

CHUNK_SIZE = 2000  # events per UPDATE / INSERT (well under SQLite's limit of query parameters)
# The Decision columns an action writes, in the order of the INSERT ... SELECT statements below.
_AUDIT_FIELDS = (
    "event", "batch", "user", "from_approval", "to_approval", "previous_decided_by", "previous_decided_at",
    "note", "reason", "previous_reason", "previous_note", "group", "created_at",
)  # fmt: skip
# Decisions that may give a reason (a ReasonCode): the ones that say the model was wrong.
REASONED = (Approval.REJECTED, Approval.INVALID)


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


class CountChanged(ReviewError):
    """A bulk action's events are no longer the number the user confirmed."""


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
    reason: str = ""
    note: str = ""


_CURRENT_FIELDS = ("pk", "approval", "decided_by_id", "decided_at", "reason", "note")


def decide(
    event: Event,
    decision: str,
    user,
    *,
    note: str = "",
    reason: str = "",
    revision: int | None = None,
    annotating: bool = False,
) -> Applied:
    """Set one event's approval, with an optional note and reason (reject and invalid only).

    ``revision`` is the one the user saw: a mismatch raises StaleEvent. The same decision
    with another note or reason is recorded too (a note added later). ``annotating``: the
    note form sent them, so an empty note or reason clears the event's.
    """
    _check_decision(decision, reason)
    with transaction.atomic():
        _lock_batch(event.batch_id)
        locked = Event.objects.select_for_update(of=("self",)).select_related("decided_by").get(pk=event.pk)
        if revision is not None and locked.revision != revision:
            raise StaleEvent(locked)
        return _apply(locked.batch_id, [_current(locked)], decision, user, note, reason, annotating=annotating)


def decide_many(
    batch: Batch,
    events: QuerySet[Event],
    decision: str,
    user,
    *,
    note: str = "",
    reason: str = "",
    expected_count: int | None = None,
) -> Applied:
    """Set the approval of every event in ``events`` (limited to ``batch``) as one undoable group.

    ``expected_count`` is the number the user confirmed: when the events matching now
    are a different number, nothing is applied (ReviewError says both numbers).
    """
    _check_decision(decision, reason)
    with transaction.atomic():
        _lock_batch(batch.pk)
        rows = events.filter(batch=batch).select_for_update(of=("self",)).order_by("pk").values_list(*_CURRENT_FIELDS)
        current = [_Current(*row) for row in rows]
        if expected_count is not None and len(current) != expected_count:
            raise CountChanged(
                f"You confirmed {expected_count:,} events, but {len(current):,} match now "
                "(someone else or a sync changed them meanwhile). Nothing was changed: check and confirm again."
            )
        return _apply(batch.pk, current, decision, user, note, reason)


@dataclass
class LastAction:
    """``user``'s last action on a batch that is not undone: what an undo would take back."""

    group: uuid.UUID
    to_approval: str
    count: int
    at: datetime
    labels: list[str]  # of its first few events, for people to recognise it

    def describe(self) -> str:
        """'approved 12 events (walker 1, walker 2 and 10 more)'."""
        shown = ", ".join(self.labels[:2])
        more = f" and {self.count - 2:,} more" if self.count > 2 else ""
        noun = "event" if self.count == 1 else "events"
        return (
            f"{self.to_approval} {self.count:,} {noun} ({shown}{more})"
            if shown
            else f"{self.to_approval} {self.count:,} {noun}"
        )


def _last_group(batch: Batch, user) -> uuid.UUID | None:
    undone = Decision.objects.filter(batch=batch, undoes__isnull=False).values("undoes")
    return (
        Decision.objects.filter(batch=batch, user=user, undoes__isnull=True)
        .exclude(group__in=undone)
        .order_by("-created_at", "-id")
        .values_list("group", flat=True)
        .first()
    )


def last_action(batch: Batch, user) -> LastAction | None:
    """What ``undo_last`` would undo now, None when nothing."""
    group = _last_group(batch, user)
    if group is None:
        return None
    rows = Decision.objects.filter(group=group).order_by("pk")
    first = rows.select_related("event").first()
    labels = [str(decision.event) for decision in rows.select_related("event")[:3]]
    return LastAction(group, first.to_approval, rows.count(), first.created_at, labels)


def undo_last(batch: Batch, user, *, only_group: uuid.UUID | None = None) -> Applied | None:
    """Undo ``user``'s last action on ``batch`` that is not undone yet; None when there is none.

    ``only_group``: undo only if the last action is still that one (the one the person was
    shown); else None. Each event gets back its previous approval and who had decided it.
    An event that someone else changed since is left as it is and counted in ``skipped``.
    """
    with transaction.atomic():
        _lock_batch(batch.pk)
        group = _last_group(batch, user)
        if group is None or (only_group is not None and group != only_group):
            return None
        rows = list(
            Decision.objects.filter(group=group)
            .order_by("pk")
            .values_list("event_id", "from_approval", "to_approval", "previous_decided_by_id",
                         "previous_decided_at", "previous_reason", "previous_note", "user_id", "created_at")
        )  # fmt: skip
        locked = {
            pk: (approval, by, at)
            for pk, approval, by, at in Event.objects.select_for_update(of=("self",))
            .filter(pk__in=[row[0] for row in rows])
            .values_list("pk", "approval", "decided_by_id", "decided_at")
        }
        restores: dict[tuple, list[int]] = defaultdict(list)
        for event_id, from_approval, to_approval, *previous, user_id, created_at in rows:
            # Left alone: deleted, or decided again since by someone (or something) else.
            if locked.get(event_id) == (to_approval, user_id, created_at):
                restores[(from_approval, *previous)].append(event_id)
        now, undo_group = timezone.now(), uuid.uuid4()
        restored = [pk for pks in restores.values() for pk in pks]
        for chunk in _chunks(restored):
            _audit_undo(chunk, group, user=user, undo_group=undo_group, now=now)
        for (approval, decided_by_id, decided_at, reason, note), pks in restores.items():
            for chunk in _chunks(pks):
                Event.objects.filter(pk__in=chunk).update(
                    # Back to "nobody decided": the provider's value now, which a sync may have changed since.
                    approval=approval if decided_at is not None else F("provider_approval"),
                    decided_by_id=decided_by_id, decided_at=decided_at, reason=reason, note=note,
                    search_note=search.fold(note), revision=F("revision") + 1,
                )  # fmt: skip
        batch = Batch.objects.get(pk=batch.pk)
        was_reviewed = batch.is_reviewed
        batch.refresh_approval_counts()
        if restored:
            webhooks.decision_created(batch, was_reviewed, group=undo_group, user=user, decision="undo",
                                      event_ids=restored, undo=True)  # fmt: skip
        return Applied(undo_group if restored else None, changed=len(restored), skipped=len(rows) - len(restored))


def _lock_batch(batch_id: int) -> None:
    """Lock the batch row before any of its events: the order a sync takes them in.

    A sync writes the batch row first, then locks the events it rewrites; an action ends
    by rewriting the batch's counters. Taking the event locks first deadlocked with a sync
    on PostgreSQL, and two actions at once each stored counters missing the other's
    change. (A no-op on SQLite, whose IMMEDIATE transaction already holds the write lock.)
    """
    list(Batch.objects.select_for_update().filter(pk=batch_id).values_list("pk", flat=True))


def _apply(
    batch_id: int, current: list[_Current], decision: str, user, note: str, reason: str = "", *, annotating=False
) -> Applied:
    now, group = timezone.now(), uuid.uuid4()
    changing = [event.pk for event in current if _changes(event, decision, reason, note, annotating)]
    for chunk in _chunks(changing):
        _audit_from_events(chunk, user=user, decision=decision, note=note, reason=reason, group=group, now=now)
        Event.objects.filter(pk__in=chunk).update(
            approval=decision,
            decided_by=user,
            decided_at=now,
            reason=reason,
            note=note,
            search_note=search.fold(note),
            revision=F("revision") + 1,
        )
    if changing:
        batch = Batch.objects.get(pk=batch_id)
        was_reviewed = batch.is_reviewed
        batch.refresh_approval_counts()
        webhooks.decision_created(batch, was_reviewed, group=group, user=user, decision=decision, event_ids=changing,
                                  reason=reason, note=note)  # fmt: skip
    return Applied(group if changing else None, changed=len(changing), unchanged=len(current) - len(changing))


def _audit_from_events(
    pks: list[int], *, user, decision: str, note: str, reason: str, group: uuid.UUID, now: datetime
) -> None:
    """Append one Decision row per event, its "from" read from the event row itself (before the update).

    One INSERT ... SELECT per chunk: building 50,000 Decision objects in Python to
    bulk_create them took most of a bulk action's time.
    """
    meta, quote = Decision._meta, connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in _AUDIT_FIELDS)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "
        f"SELECT id, batch_id, %s, approval, %s, decided_by_id, decided_at, %s, %s, reason, note, %s, %s "
        f"FROM {quote(Event._meta.db_table)} WHERE id IN ({_placeholders(pks)})"
    )
    params = [
        user.pk, decision, note, reason,
        meta.get_field("group").get_db_prep_value(group, connection),
        meta.get_field("created_at").get_db_prep_value(now, connection),
        *pks,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _audit_undo(pks: list[int], group: uuid.UUID, *, user, undo_group: uuid.UUID, now: datetime) -> None:
    """Append the reverse of ``group``'s rows for the events ``pks`` (one INSERT ... SELECT)."""
    meta, quote = Decision._meta, connection.ops.quote_name
    column = {name: quote(meta.get_field(name).column) for name in _AUDIT_FIELDS + ("undoes",)}
    # The restored value: the earlier decision's, or (nobody had decided) the provider's current one.
    restored = (
        f"CASE WHEN d.{column['previous_decided_at']} IS NULL THEN (SELECT e.provider_approval FROM "
        f"{quote(Event._meta.db_table)} e WHERE e.id = d.{column['event']}) ELSE d.{column['from_approval']} END"
    )
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(column.values())}) "
        f"SELECT d.{column['event']}, d.{column['batch']}, %s, d.{column['to_approval']}, {restored}, "
        f"d.{column['user']}, d.{column['created_at']}, 'undo', d.{column['previous_reason']}, "
        f"d.{column['reason']}, d.{column['note']}, %s, %s, %s "
        f"FROM {quote(meta.db_table)} d WHERE d.{column['group']} = %s AND d.{column['event']} IN ({_placeholders(pks)})"
    )
    prep_uuid = meta.get_field("group").get_db_prep_value
    params = [
        user.pk, prep_uuid(undo_group, connection), meta.get_field("created_at").get_db_prep_value(now, connection),
        prep_uuid(group, connection), prep_uuid(group, connection), *pks,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def _changes(event: _Current, decision: str, reason: str = "", note: str = "", annotating: bool = False) -> bool:
    """A decision changes an event unless it already holds it by a person's hand (with that reason and note).

    Approving an event the provider already marked approved is still a change: it
    records that a person confirmed it. "Pending" on an undecided pending event is not.
    The same decision with a new reason or note is a change (a note added later).
    """
    if event.approval != decision:
        return True
    if event.decided_at is None:
        return decision != Approval.PENDING or bool(note)
    if annotating:  # the note form shows the event's note and reason: what it sends replaces them
        return (reason, note) != (event.reason, event.note)
    return bool(reason or note) and (reason, note) != (event.reason, event.note)


def _current(event: Event) -> _Current:
    return _Current(*(getattr(event, name) for name in _CURRENT_FIELDS))


def _check_decision(decision: str, reason: str = "") -> None:
    if decision not in Approval.values:
        raise ReviewError(f"Unknown decision {decision!r}: use one of {', '.join(Approval.values)}.")
    if not reason:
        return
    if decision not in REASONED:
        raise ReviewError("A reason goes with a rejection or an invalid event, not with this decision.")
    if not ReasonCode.objects.filter(label=reason, active=True).exists():
        offered = ", ".join(ReasonCode.objects.filter(active=True).values_list("label", flat=True)) or "none yet"
        raise ReviewError(f"Unknown reason {reason!r}: the reasons offered are {offered}.")


def _chunks(values: list) -> list[list]:
    return [values[start : start + CHUNK_SIZE] for start in range(0, len(values), CHUNK_SIZE)]
