"""Cursor pagination for the API's lists, in exactly the batch page's order.

Orders made of plain columns page by keyset: the cursor holds the last row's sort key
and the next page starts strictly after it, so a page costs the same on page 1 and on
page 2,000, and deciding events while paging through "pending" skips none of the rest.
The confidence and severity orders rank a video by its best event (a window over the
video's rows), which SQL cannot filter by in an OR, so they page by position; their
cursor says so. Cursors are opaque: base64 of a small JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import operator
from dataclasses import dataclass
from functools import reduce

from django.db.models import F, FloatField, Max, Q, QuerySet, Value, Window
from django.db.models.functions import Coalesce

from reviewer.filters import BatchFilter, severity_rank

MAX_OFFSET = 1_000_000_000  # an offset cursor past this is not one this API made
LAST = Value(1e300, output_field=FloatField())  # NULLs sort last: the page's nulls_last orders


class BadCursor(ValueError):
    """A cursor this API did not make (or made for another order)."""


@dataclass
class Page:
    rows: list
    next_cursor: str | None


def event_order(batch_filter: BatchFilter) -> tuple[list, bool]:
    """The batch page's event order as ascending SQL expressions, and whether it pages by keyset.

    Videos in the page's order, then each video's events in the page's order (the CSV
    export writes the same order).
    """
    sort = batch_filter.sort
    if sort == "video":
        item = [F("item__video_name"), F("item__custom_id"), F("item__provider_item_id"), F("item_id")]
        return [*item, F("position"), F("pk")], True
    if sort == "time":
        return [F("item__position"), F("item_id"), Coalesce(F("start_seconds"), LAST), F("position"), F("pk")], True
    if sort == "confidence":
        best = Window(Max("confidence"), partition_by=[F("item_id")])
        return [Coalesce(-best, LAST), F("item__position"), F("item_id"), Coalesce(-F("confidence"), LAST),
                F("position"), F("pk")], False  # fmt: skip
    if sort == "severity":
        rank = severity_rank("severity")
        best = Window(Max(rank), partition_by=[F("item_id")])
        return [-best, F("item__position"), F("item_id"), -rank, F("position"), F("pk")], False
    return [F("item__position"), F("item_id"), F("position"), F("pk")], True


def item_order(batch_filter: BatchFilter) -> tuple[list, bool]:
    """The batch page's video order (filters.BatchFilter.ordered) as ascending expressions."""
    if batch_filter.sort == "video":
        return [F("video_name"), F("custom_id"), F("provider_item_id"), F("pk")], True
    if batch_filter.sort in ("confidence", "severity"):
        return [], False  # ranked by an aggregate: BatchFilter.ordered orders them; paged by position
    return [F("position"), F("pk")], True


def paginate(queryset: QuerySet, order: list, keyset: bool, cursor: str, limit: int) -> Page:
    """One page of ``queryset`` in ``order`` after ``cursor`` ('' for the first page).

    An empty ``order`` keeps the queryset's own order (then ``keyset`` is False).
    """
    if not keyset:
        offset = _decode(cursor, "o") if cursor else 0
        if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
            raise BadCursor
        ordered = queryset.order_by(*order) if order else queryset
        rows = list(ordered[offset : offset + limit + 1])
        more = len(rows) > limit
        return Page(rows[:limit], _encode("o", offset + limit) if more else None)
    names = [f"cursor_{index}" for index in range(len(order))]
    ordered = queryset.annotate(**dict(zip(names, order, strict=True))).order_by(*names)
    if cursor:
        after = _decode(cursor, "k")
        if not isinstance(after, list) or len(after) != len(names):
            raise BadCursor
        try:  # a value of the wrong type for its column ("x" for a position) is refused as Django builds the query
            ordered = ordered.filter(_after(names, after))
        except (ValueError, TypeError, OverflowError):
            raise BadCursor from None
    rows = list(ordered[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _encode("k", [getattr(rows[-1], name) for name in names]) if more else None)


def _after(names: list[str], values: list) -> Q:
    """Rows strictly after ``values`` in the lexicographic order of the ``names`` columns."""
    alternatives = []
    for index, name in enumerate(names):
        equal = {names[earlier]: values[earlier] for earlier in range(index)}
        alternatives.append(Q(**equal, **{f"{name}__gt": values[index]}))
    return reduce(operator.or_, alternatives)


def _encode(kind: str, value) -> str:
    return base64.urlsafe_b64encode(json.dumps({kind: value}, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str, kind: str):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        raise BadCursor from None
    if not isinstance(data, dict) or set(data) != {kind}:
        raise BadCursor
    value = data[kind]
    if not all(_storable(part) for part in (value if isinstance(value, list) else [value])):
        raise BadCursor
    return value


def _storable(value) -> bool:
    """A value a database column can be compared with (a 30-digit integer cannot: an error, not an answer)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and "\x00" not in value
