"""How good the model is, from the review: precision per group with a Wilson interval, and a confidence threshold helper.

Only a person's decisions count as reviewed (``decided_at`` set): an event only the
provider approved or rejected is not reviewed, and is counted apart
(``provider_approved``, ``provider_rejected``). Precision is approved / (approved +
rejected) among reviewed events; invalid events (a broken video, not a model error) are
left out of it and reported as the invalid rate, invalid / reviewed.

One aggregate query per table, whatever the number of events.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from django.db.models import Case, CharField, Count, F, Q, QuerySet, Value, When
from django.db.models.functions import TruncWeek

from reviewer.models import Approval, Event, Item, Loading

Z95 = 1.959963984540054  # the normal quantile of a 95 % two-sided interval

# Confidence buckets (lower bound inclusive, upper exclusive; the last includes 1.0), then "unknown".
BUCKETS = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 0.95), (0.95, 1.0)]
UNKNOWN = "unknown"
THRESHOLDS = [0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]

# What a table can be grouped by: within a batch, and across batches.
BATCH_GROUPS = ("category", "severity", "confidence", "video")
ALL_GROUPS = ("category", "severity", "confidence", "video", "prompt", "provider", "model")
COLUMNS = ("group", "approved", "rejected", "invalid", "pending", "precision", "precision_low", "precision_high",
           "invalid_rate")  # fmt: skip


def shown_events(batch=None) -> QuerySet[Event]:
    """The events the numbers count: a batch's (None: every batch's), never a load in progress (it is not shown)."""
    events = Event.objects.filter(batch__loading=Loading.NONE)
    return events.filter(batch=batch) if batch is not None else events


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (None with no trials): good at 0, 1 and small n."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def bucket_label(low: float, high: float) -> str:
    return f"{low:g}–{high:g}"


@dataclass
class Row:
    group: str
    approved: int
    rejected: int
    invalid: int
    pending: int
    provider_approved: int = 0  # not reviewed by a person: the provider's own decisions, apart
    provider_rejected: int = 0

    @property
    def reviewed(self) -> int:
        return self.approved + self.rejected + self.invalid

    @property
    def total(self) -> int:
        return self.reviewed + self.pending

    @property
    def precision(self) -> float | None:
        judged = self.approved + self.rejected
        return self.approved / judged if judged else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.approved, self.approved + self.rejected)

    @property
    def invalid_rate(self) -> float | None:
        return self.invalid / self.reviewed if self.reviewed else None

    def as_dict(self) -> dict:
        """The report's columns (COLUMNS), numbers rounded to 4 places; None where nothing was reviewed."""
        interval = self.interval or (None, None)
        values = {**asdict(self), "precision": self.precision, "precision_low": interval[0],
                  "precision_high": interval[1], "invalid_rate": self.invalid_rate}  # fmt: skip
        return {name: _rounded(values[name]) for name in COLUMNS}


def _rounded(value):
    return round(value, 4) if isinstance(value, float) else value


def _counts() -> dict:
    human = Q(decided_at__isnull=False)
    return {
        "approved": Count("id", filter=human & Q(approval=Approval.APPROVED)),
        "rejected": Count("id", filter=human & Q(approval=Approval.REJECTED)),
        "invalid": Count("id", filter=human & Q(approval=Approval.INVALID)),
        "all": Count("id"),
        "provider_approved": Count("id", filter=~human & Q(approval=Approval.APPROVED)),
        "provider_rejected": Count("id", filter=~human & Q(approval=Approval.REJECTED)),
    }


def confidence_bucket() -> Case:
    """An event's confidence bucket's label, in SQL (\"unknown\" without a confidence)."""
    whens = [
        When(confidence__gte=low, **({"confidence__lte": high} if high == 1.0 else {"confidence__lt": high}),
             then=Value(bucket_label(low, high)))
        for low, high in BUCKETS
    ]  # fmt: skip
    return Case(*whens, default=Value(UNKNOWN), output_field=CharField())


# The expression each grouping groups by (on Event).
_GROUP_BY = {
    "category": F("category"),
    "severity": F("severity"),
    "confidence": confidence_bucket(),
    "video": F("item_id"),
    "prompt": F("batch__prompt"),
    "provider": F("batch__provider"),
    "model": F("batch__model_name"),
    "week": TruncWeek("batch__created_at"),  # the trend across batches: by the week a batch was created
}


def table(events: QuerySet[Event], by: str) -> list[Row]:
    """One row per value of ``by`` among ``events`` (one aggregate query), in a stable order."""
    rows = events.order_by().annotate(group_key=_GROUP_BY[by]).values("group_key").annotate(**_counts())
    result = [
        Row(
            group=_label(row["group_key"]),
            approved=row["approved"], rejected=row["rejected"], invalid=row["invalid"],
            pending=row["all"] - row["approved"] - row["rejected"] - row["invalid"],
            provider_approved=row["provider_approved"], provider_rejected=row["provider_rejected"],
        )
        for row in rows
    ]  # fmt: skip
    if by == "video":
        _name_videos(result)
    return sorted(result, key=_order(by))


def _label(value) -> str:
    if value in (None, ""):
        return "(none)"
    return value.date().isoformat() if hasattr(value, "date") else str(value)


def _order(by: str):
    if by == "confidence":
        labels = [bucket_label(low, high) for low, high in BUCKETS] + [UNKNOWN]
        return lambda row: labels.index(row.group) if row.group in labels else len(labels)
    if by == "week":
        return lambda row: row.group
    return lambda row: (-row.total, row.group)


def _name_videos(rows: list[Row]) -> None:
    """A video row is named by the video, not by its database id."""
    names = {
        str(pk): name or custom or provider_id
        for pk, name, custom, provider_id in Item.objects.filter(pk__in=[row.group for row in rows]).values_list(
            "pk", "video_name", "custom_id", "provider_item_id"
        )
    }
    for row in rows:
        row.group = names.get(row.group, row.group)


def overall(events: QuerySet[Event]) -> Row:
    """The whole selection as one row."""
    counts = events.order_by().aggregate(**_counts())
    reviewed = counts["approved"] + counts["rejected"] + counts["invalid"]
    return Row("all", counts["approved"], counts["rejected"], counts["invalid"], counts["all"] - reviewed,
               counts["provider_approved"], counts["provider_rejected"])  # fmt: skip


@dataclass
class Threshold:
    threshold: float
    kept: int  # events with confidence ≥ threshold (reviewed or not)
    approved: int
    rejected: int

    @property
    def precision(self) -> float | None:
        return self.approved / (self.approved + self.rejected) if self.approved + self.rejected else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.approved, self.approved + self.rejected)


def thresholds(events: QuerySet[Event]) -> list[Threshold]:
    """Precision and events kept at each confidence cut-off (one aggregate query); events without a confidence never pass."""
    human = Q(decided_at__isnull=False)
    aggregates = {}
    for index, cut in enumerate(THRESHOLDS):
        above = Q(confidence__gte=cut)
        aggregates[f"kept{index}"] = Count("id", filter=above)
        aggregates[f"approved{index}"] = Count("id", filter=above & human & Q(approval=Approval.APPROVED))
        aggregates[f"rejected{index}"] = Count("id", filter=above & human & Q(approval=Approval.REJECTED))
    counts = events.order_by().aggregate(**aggregates)
    return [
        Threshold(cut, counts[f"kept{index}"], counts[f"approved{index}"], counts[f"rejected{index}"])
        for index, cut in enumerate(THRESHOLDS)
    ]


def lowest_threshold_for(rows: list[Threshold], target: float) -> Threshold | None:
    """The lowest cut-off whose interval's lower bound reaches ``target`` (keeps the most events), or None."""
    for row in rows:
        if row.interval and row.interval[0] >= target:
            return row
    return None
