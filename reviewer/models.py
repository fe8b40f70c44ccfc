"""The cached copy of provider batches, and the review decisions made on them.

Provider fields are rewritten by every sync; human fields (``Event.approval`` when a
person decided it, ``decided_by``/``decided_at`` and the ``Decision`` rows) are never
touched by a sync. See ``reviewer/sync.py``.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from reviewer import crypto, providers, redaction
from reviewer.providers.base import Adapter


def stored_image_url(name: str) -> str:
    """The URL of an image stored by reviewer/media.py ('' for none), served behind the login."""
    return reverse("stored_image", args=[name]) if name else ""


# The provider names and labels, from the registry of adapters (reviewer/providers/__init__.py).
Provider = models.TextChoices("Provider", [(name.upper(), (name, label)) for name, label in providers.CHOICES])


class Approval(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    INVALID = "invalid", "Invalid"


class BatchStatus(models.TextChoices):
    """The provider's batch status, normalized across providers."""

    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"


TERMINAL_BATCH_STATUSES = {BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELED, BatchStatus.EXPIRED}

# Item statuses after which the provider will not change an item (every provider's words).
TERMINAL_ITEM_STATUSES = providers.TERMINAL_ITEM_STATUSES


class Source(models.Model):
    """A provider account: where to fetch from and with which key."""

    name = models.SlugField(max_length=64, unique=True)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    base_url = models.URLField(max_length=300)
    viewer_base_url = models.URLField(max_length=300, blank=True)
    api_key_encrypted = models.TextField(editable=False)
    api_key_last4 = models.CharField(max_length=4, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def adapter(self) -> Adapter:
        return providers.adapter_for(self.provider)

    def client(self):
        """A client of this account's provider (a providers.http.ProviderClient); raises crypto.KeyUnreadable."""
        return self.adapter.make_client(self.base_url, self.get_api_key(), self.viewer_base_url)

    def set_api_key(self, key: str) -> None:
        redaction.remember(key)
        self.api_key_encrypted = crypto.encrypt(key)
        self.api_key_last4 = key[-4:]

    def get_api_key(self) -> str:
        """Return the decrypted key; raises crypto.KeyUnreadable. Messages are redacted of it from now on."""
        key = crypto.decrypt(self.api_key_encrypted)
        redaction.remember(key)
        return key

    @property
    def masked_key(self) -> str:
        return f"••••{self.api_key_last4}" if self.api_key_last4 else "—"


# How long a running sync may go without renewing its heartbeat before it counts as dead.
SYNC_LEASE = timedelta(seconds=60)


def _expired(beat) -> bool:
    return beat is None or timezone.now() - beat > SYNC_LEASE


class Loading(models.TextChoices):
    NONE = "", "Not loading"
    FIRST = "first", "First load"
    NEW = "new", "First load of a new batch"


class SyncState(models.TextChoices):
    IDLE = "idle", "Idle"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Syncing"
    FAILED = "failed", "Last sync failed"


class BatchQuerySet(models.QuerySet):
    def with_last_decision(self) -> BatchQuerySet:
        """Annotate who made the latest review decision and when (``last_decided_by``/``_at``)."""
        latest = Decision.objects.filter(batch=models.OuterRef("pk")).order_by("-created_at", "-id")
        return self.annotate(
            last_decided_at=models.Subquery(latest.values("created_at")[:1]),
            last_decided_by=models.Subquery(latest.values("user__username")[:1]),
        )


class Batch(models.Model):
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.PROTECT, related_name="batches")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    provider_batch_id = models.CharField(max_length=128)
    provider_status = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.PROCESSING)
    # TwelveLabs analysis_mode (general | time_based_metadata); NomadicML batch_type (ask | agent).
    mode = models.CharField(max_length=32, blank=True)
    analysis_type = models.CharField(max_length=64, blank=True)
    model_name = models.CharField(max_length=64, blank=True)
    prompt = models.TextField(blank=True)
    category = models.CharField(max_length=128, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    provider_review_status = models.CharField(max_length=64, blank=True)
    provider_review_status_updated_at = models.CharField(max_length=64, blank=True)
    viewer_url = models.CharField(max_length=500, blank=True)
    provider_created_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    # Stored counters, refreshed by sync and review (one aggregate query each), so the
    # batch list never counts rows: {"ready": 12, "failed": 1} and {"pending": 40, ...}.
    item_counts = models.JSONField(default=dict, blank=True)
    approval_counts = models.JSONField(default=dict, blank=True)
    # Of approval_counts, the events a person decided ("reviewed"); the rest are the provider's.
    human_counts = models.JSONField(default=dict, blank=True)
    item_total = models.PositiveIntegerField(default=0)
    event_total = models.PositiveIntegerField(default=0)
    # The distinct severities and categories of the events (the filter chips), kept by
    # refresh_counts: scanning 100,000 events for them on every page view was slow.
    # None: not computed yet (a batch from before this field), read live instead.
    event_facets = models.JSONField(null=True, blank=True)

    imported_from = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    sync_state = models.CharField(max_length=16, choices=SyncState.choices, default=SyncState.IDLE)
    # Renewed every few seconds by the process running a sync (fetch._Heartbeat): a sync
    # whose heartbeat stopped (its worker was killed) no longer blocks the batch.
    sync_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The last sync failed in a way a retry cannot mend (a refused key, a wrong id):
    # automatic re-syncs stop until someone syncs by hand or a sync succeeds.
    sync_paused = models.BooleanField(default=False)
    gone_upstream = models.BooleanField(default=False)
    # A first sync or import writes a batch's items in short committed chunks (sync.py), so
    # reviewers of other batches never wait on a long write; until it finishes they are
    # not shown ("first": the batch was there, empty; "new": the load made the row and a
    # failed load removes it).
    loading = models.CharField(max_length=8, choices=Loading.choices, default=Loading.NONE, blank=True)
    # The run writing the load (a token of its own) and its last sign of life: a load whose
    # heartbeat is older than SYNC_LEASE is dead, and whoever claims it first owns it.
    load_owner = models.CharField(max_length=32, blank=True)
    load_heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = BatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"
        constraints = [
            models.UniqueConstraint(
                fields=["source", "provider_batch_id"],
                condition=models.Q(source__isnull=False),
                name="batch_unique_per_source",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_batch_id"],
                condition=models.Q(source__isnull=True),
                name="imported_batch_unique_per_provider",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.provider_batch_id}"

    def get_absolute_url(self) -> str:
        return reverse("batch_detail", args=[self.pk])

    @property
    def adapter(self) -> Adapter:
        """The provider's adapter: its vocabulary ("task"/"video"), client and export shape."""
        return providers.adapter_for(self.provider)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_BATCH_STATUSES

    @property
    def is_syncing(self) -> bool:
        return self.sync_state in (SyncState.QUEUED, SyncState.RUNNING) and not self.sync_stalled

    @property
    def sync_stalled(self) -> bool:
        """A sync marked running whose process stopped renewing its heartbeat (killed, or the machine died)."""
        return self.sync_state == SyncState.RUNNING and self.heartbeat_expired

    @property
    def heartbeat_expired(self) -> bool:
        return _expired(self.sync_heartbeat_at)

    @property
    def load_expired(self) -> bool:
        """A load whose run stopped renewing its heartbeat (reviewer/sync.py reclaims it)."""
        return _expired(self.load_heartbeat_at)

    @property
    def needs_watching(self) -> bool:
        """Whether an open batch page polls this batch (used by batch_detail.html#status)."""
        if self.loading:
            return True
        if self.source_id is None or self.gone_upstream:
            return False
        return self.is_syncing or not (self.is_terminal or self.sync_paused)

    @property
    def items_loaded(self) -> int:
        """How many items a running load has written so far (its progress)."""
        return Item.objects.filter(batch=self).count() if self.loading else 0

    @property
    def pending_total(self) -> int:
        return self.approval_counts.get(Approval.PENDING, 0)

    @property
    def reviewed_total(self) -> int:
        """Events a person decided (approved, rejected or invalid): "reviewed" means by a person."""
        return sum(count for approval, count in self.human_counts.items() if approval != Approval.PENDING)

    @property
    def provider_decided_total(self) -> int:
        """Events nobody reviewed yet that the provider itself approved, rejected or marked invalid."""
        decided = sum(count for approval, count in self.approval_counts.items() if approval != Approval.PENDING)
        return decided - self.reviewed_total

    @property
    def review_progress(self) -> list[dict]:
        """Segments of the review progress bar in display order: percentages and where each starts.

        A person's decisions first (solid), then the provider's own approvals nobody reviewed
        yet (``by_provider``, drawn apart), then what is pending.
        """
        total = self.event_total or 1
        decided = [value for value in Approval.values if value != Approval.PENDING]
        parts = [(value, self.human_counts.get(value, 0), False) for value in decided]
        parts += [
            (value, self.approval_counts.get(value, 0) - self.human_counts.get(value, 0), True) for value in decided
        ]
        segments, offset = [], 0.0
        for value, count, by_provider in parts:
            percent = round(100 * count / total, 2)
            label = Approval(value).label.lower() + (" by the provider, not reviewed" if by_provider else "")
            segments.append(
                {"approval": value, "label": label, "count": count, "percent": percent, "offset": round(offset, 2),
                 "by_provider": by_provider}
            )  # fmt: skip
            offset += percent
        return segments

    @property
    def reviewers(self) -> list[tuple[str, int]]:
        """Who decided this batch's events and how many times each, most first (undos not counted)."""
        if not hasattr(self, "_reviewers"):
            Batch.attach_reviewers([self])
        return self._reviewers

    @staticmethod
    def attach_reviewers(batches: list[Batch]) -> None:
        """Fill ``reviewers`` of many batches with one aggregate query (the batch list)."""
        by_batch: dict[int, list[tuple[str, int]]] = {batch.pk: [] for batch in batches}
        rows = (
            Decision.objects.filter(batch__in=list(by_batch), undoes__isnull=True, user__isnull=False)
            .values_list("batch_id", "user__username")
            .annotate(n=models.Count("id"))
            .order_by("batch_id", "-n", "user__username")
        )
        for batch_id, username, count in rows:
            by_batch[batch_id].append((username, count))
        for batch in batches:
            batch._reviewers = by_batch[batch.pk]

    @property
    def is_reviewed(self) -> bool:
        """Every event decided by a person."""
        return self.event_total > 0 and self.reviewed_total == self.event_total

    def refresh_counts(self) -> None:
        """Recompute the stored counters with one aggregate query per table."""
        self.set_counts(self.counted())
        self.save(update_fields=list(self.counted_fields))

    counted_fields = ("item_counts", "item_total", "event_facets", "approval_counts", "human_counts", "event_total")

    def counted(self) -> dict:
        """The stored counters as the rows are now (reads only): what refresh_counts stores."""
        item_rows = self.items.values("status").annotate(n=models.Count("id")).order_by()
        item_counts = {row["status"]: row["n"] for row in item_rows}
        return {
            "item_counts": item_counts,
            "item_total": sum(item_counts.values()),
            "event_facets": {
                **{
                    name: sorted(set(self.events.order_by().values_list(name, flat=True).distinct()) - {""})
                    for name in ("severity", "category")
                },
                "columns": self._columns_in_use(),
            },
            **self._approval_counts(),
        }

    @property
    def event_columns(self) -> dict[str, bool]:
        """The optional columns of the batch page's event table that some event of the batch fills.

        Per batch, not per page, so columns stay put from page to page (stored by refresh_counts).
        """
        stored = (self.event_facets or {}).get("columns")
        return stored if stored is not None else self._columns_in_use()

    def _columns_in_use(self) -> dict[str, bool]:
        def filled(condition: models.Q) -> models.Count:
            return models.Count("id", filter=condition)

        counts = self.events.aggregate(
            thumb=filled(~models.Q(thumbnail_url="") | ~models.Q(thumbnail_file="")),
            severity=filled(~models.Q(severity="")),
            confidence=filled(models.Q(confidence__isnull=False)),
            analysis=filled(~models.Q(ai_analysis="") | ~models.Q(metadata={}) | ~models.Q(overlay={})),
        )
        return {name: bool(count) for name, count in counts.items()}

    def set_counts(self, counts: dict) -> None:
        for name, value in counts.items():
            setattr(self, name, value)

    def refresh_approval_counts(self) -> None:
        """Recompute the per-approval counters (after a review action or a sync)."""
        self.set_counts(self._approval_counts())
        self.save(update_fields=["approval_counts", "human_counts", "event_total"])

    def _approval_counts(self) -> dict:
        event_rows = (
            self.events.values("approval")
            .annotate(n=models.Count("id"), human=models.Count("id", filter=models.Q(decided_at__isnull=False)))
            .order_by()
        )
        approval_counts = {row["approval"]: row["n"] for row in event_rows}
        return {
            "approval_counts": approval_counts,
            "human_counts": {row["approval"]: row["human"] for row in event_rows if row["human"]},
            "event_total": sum(approval_counts.values()),
        }


class Item(models.Model):
    """One video (NomadicML) or one analysis task (TwelveLabs) of a batch."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    # task_id (TwelveLabs) or video_id (NomadicML): unique within the batch.
    provider_item_id = models.CharField(max_length=128)
    custom_id = models.CharField(max_length=255, blank=True)
    analysis_id = models.CharField(max_length=128, blank=True)
    video_name = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=32)
    text = models.TextField(blank=True)  # NomadicML summary, TwelveLabs generated text
    error_code = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    import_source_uri = models.CharField(max_length=1000, blank=True)
    thumbnail_url = models.CharField(max_length=1000, blank=True)
    position = models.PositiveIntegerField(default=0)  # order in the provider's results
    raw = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64)
    search_text = models.TextField(blank=True, default="")  # folded words of name, ids, summary (reviewer/search.py)
    # The provider's last complete listing of the batch did not name this item: it is
    # kept (with its decisions) and marked on the page; set by sync._mark_unlisted.
    gone_upstream = models.BooleanField(default=False)
    # The playable video, asked of the provider on demand and cached until shortly
    # before it expires (reviewer/media.py); never rewritten by a sync.
    video_kind = models.CharField(max_length=8, blank=True)  # "hls" | "mp4"
    video_url = models.CharField(max_length=2000, blank=True)
    video_expires_at = models.DateTimeField(null=True, blank=True)
    video_duration = models.FloatField(null=True, blank=True)
    # The thumbnail stored through Django's storage, so the archive outlives the provider.
    thumbnail_file = models.CharField(max_length=300, blank=True)  # a storage name
    thumbnail_file_source = models.CharField(max_length=1000, blank=True)  # the URL it was downloaded from
    thumbnail_attempts = models.PositiveSmallIntegerField(default=0)  # failed downloads since the last success

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "provider_item_id"], name="item_unique_per_batch"),
        ]
        indexes = [
            # Used by the item-status filter and the per-status counters.
            models.Index(fields=["batch", "status"], name="item_batch_status"),
            models.Index(fields=["batch", "position"], name="item_batch_position"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.video_name or self.custom_id or self.provider_item_id

    @property
    def has_finished(self) -> bool:
        """Whether the provider is done with this item (TwelveLabs' queued/pending/processing are not)."""
        return self.status in TERMINAL_ITEM_STATUSES

    @property
    def has_results(self) -> bool:
        return self.status in providers.RESULT_ITEM_STATUSES

    @property
    def thumbnail(self) -> str:
        """The image to show: the stored copy, else the provider's URL (pages pass it through safe_url)."""
        return stored_image_url(self.thumbnail_file) or self.thumbnail_url

    @property
    def error_is_warning(self) -> bool:
        """An error next to a result (a partial or truncated answer) warns; it does not fail the item."""
        return self.has_results


class Event(models.Model):
    """One detected event (a NomadicML event, a TwelveLabs segment) to review."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="events")
    # Denormalized from item.batch so filters and counters need no join.
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="events")
    # Same event => same key on every sync (see sync.event_key); unique within the item.
    key = models.CharField(max_length=64)
    position = models.PositiveIntegerField(default=0)
    category = models.CharField(max_length=255, blank=True)
    label = models.TextField(blank=True)
    severity = models.CharField(max_length=64, blank=True)
    confidence = models.FloatField(null=True, blank=True)  # never invented when absent
    ai_analysis = models.TextField(blank=True)
    start_seconds = models.FloatField(null=True, blank=True)
    end_seconds = models.FloatField(null=True, blank=True)
    t_start = models.CharField(max_length=32, blank=True)
    t_end = models.CharField(max_length=32, blank=True)
    thumbnail_url = models.CharField(max_length=1000, blank=True)
    overlay = models.JSONField(default=dict, blank=True)
    # The provider's fields without a column of their own (records.EventRecord.metadata).
    metadata = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    provider_approval = models.CharField(max_length=16, choices=Approval.choices, default=Approval.PENDING)
    # Effective approval: the latest human decision, else the provider's.
    approval = models.CharField(max_length=16, choices=Approval.choices, default=Approval.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # The current decision's reason (a ReasonCode label, for reject and invalid) and note.
    reason = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)
    # Bumped by every human change: a form carries the revision it showed, so a
    # decision made on a stale view is caught instead of silently overriding another's.
    revision = models.PositiveIntegerField(default=0)
    content_hash = models.CharField(max_length=64)
    # Folded words for full-text search (reviewer/search.py): its own text and its item's,
    # written with the event; the note's, written with each decision.
    search_text = models.TextField(blank=True, default="")
    search_note = models.TextField(blank=True, default="")
    # The annotated thumbnail stored through Django's storage (see Item.thumbnail_file).
    thumbnail_file = models.CharField(max_length=300, blank=True)
    thumbnail_file_source = models.CharField(max_length=1000, blank=True)
    thumbnail_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "key"], name="event_unique_per_item"),
        ]
        indexes = [
            # Used by the approval filter and the approval counters.
            models.Index(fields=["batch", "approval"], name="event_batch_approval"),
            models.Index(fields=["item", "position"], name="event_item_position"),
            # The severity and category filters and their counts, without a scan of the batch.
            models.Index(fields=["batch", "severity"], name="event_batch_severity"),
            models.Index(fields=["batch", "category"], name="event_batch_category"),
        ]

    def __str__(self) -> str:
        return self.label or self.category or self.key

    @property
    def is_human_decided(self) -> bool:
        return self.decided_at is not None

    @property
    def approval_differs_from_provider(self) -> bool:
        return self.is_human_decided and self.approval != self.provider_approval

    @property
    def thumbnail(self) -> str:
        """The image to show: the stored copy, else the provider's URL."""
        return stored_image_url(self.thumbnail_file) or self.thumbnail_url

    @property
    def time_range(self) -> str:
        if self.t_start and self.t_end and self.t_start != self.t_end:
            return f"{self.t_start}–{self.t_end}"
        return self.t_start or self.t_end


class ReasonCode(models.Model):
    """A reason reviewers can give when they reject an event or mark it invalid; staff keep the list (admin)."""

    label = models.CharField(max_length=100, unique=True)
    active = models.BooleanField(
        default=True, help_text="Offered to reviewers. An inactive reason stays on the decisions that gave it."
    )
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in the list (and its number key).")

    class Meta:
        ordering = ["position", "label"]

    def __str__(self) -> str:
        return self.label


class Decision(models.Model):
    """Append-only audit row: one per change of an event's approval (an undo adds rows too)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="decisions")
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="decisions")  # the activity log
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    from_approval = models.CharField(max_length=16, choices=Approval.choices)
    to_approval = models.CharField(max_length=16, choices=Approval.choices)
    # Who had decided the event before this change (None: the provider's value), so an
    # undo restores the event exactly as it was.
    previous_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    reason = models.CharField(max_length=100, blank=True)
    # The event's reason and note before this change: an undo puts them back.
    previous_reason = models.CharField(max_length=100, blank=True)
    previous_note = models.TextField(blank=True)
    group = models.UUIDField(db_index=True)  # one action (single or bulk) = one group, undone as one
    undoes = models.UUIDField(null=True, blank=True, db_index=True)  # set on the rows of an undo
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["batch", "user", "-created_at"], name="decision_batch_user_recent"),
            # The batch's latest decision, on every batch page and the list (Batch.with_last_decision).
            models.Index(fields=["batch", "-created_at", "-id"], name="decision_batch_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.from_approval} → {self.to_approval}"


class SyncTrigger(models.TextChoices):
    IMPORT = "import", "File import"
    FETCH = "fetch", "Fetch"
    REFRESH = "refresh", "Scheduled refresh"
    DEMO = "demo", "Demo data"


class SyncOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SyncRun(models.Model):
    """The record of one sync or file import, successful or not."""

    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.CASCADE, related_name="sync_runs")
    trigger = models.CharField(max_length=16, choices=SyncTrigger.choices)
    file_name = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=SyncOutcome.choices, default=SyncOutcome.RUNNING)
    items_created = models.PositiveIntegerField(default=0)
    items_updated = models.PositiveIntegerField(default=0)
    items_unchanged = models.PositiveIntegerField(default=0)
    events_created = models.PositiveIntegerField(default=0)
    events_updated = models.PositiveIntegerField(default=0)
    events_unchanged = models.PositiveIntegerField(default=0)
    events_removed = models.PositiveIntegerField(default=0)
    # [{"line": 12, "error": "..."}] — every skipped or refused line, never silently dropped.
    malformed_lines = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"

    def save(self, *args, **kwargs) -> None:
        # Provider text reaches these fields: no form of a key is ever stored (reviewer/redaction.py).
        self.error = redaction.redact(self.error)
        for bad in self.malformed_lines:
            bad["error"] = redaction.redact(bad.get("error", ""))
        super().save(*args, **kwargs)

    def as_dict(self) -> dict:
        return {
            "id": self.pk,
            "batch": self.batch.provider_batch_id if self.batch_id else None,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "error": self.error,
            "items_created": self.items_created,
            "items_updated": self.items_updated,
            "items_unchanged": self.items_unchanged,
            "events_created": self.events_created,
            "events_updated": self.events_updated,
            "events_unchanged": self.events_unchanged,
            "events_removed": self.events_removed,
            "malformed_lines": self.malformed_lines,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


# --- The API's tokens and the webhooks (reviewer/api, reviewer/webhooks.py) -------------------


class ApiToken(models.Model):
    """A personal API token: sent as ``Authorization: Bearer <token>``, acting as its user with their role.

    Only a SHA-256 digest is stored: the token is 32 random bytes, so a digest cannot be
    reversed by guessing, and a slow password hash would cost every API request.
    """

    PREFIX = "rvw_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=16, editable=False)  # the first characters, to tell tokens apart
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def digest_of(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str) -> tuple[ApiToken, str]:
        """A new token for ``user``; returns the row and the token itself (shown once, never stored)."""
        token = cls.PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(user=user, name=name, digest=cls.digest_of(token), hint=token[:8])
        return row, token

    @classmethod
    def active(cls, token: str) -> ApiToken | None:
        """The unrevoked token of an active user, or None."""
        return (
            cls.objects.select_related("user")
            .filter(digest=cls.digest_of(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class WebhookEvent(models.TextChoices):
    DECISION_CREATED = "decision.created", "decision.created: a review action changed events"
    BATCH_REVIEWED = "batch.reviewed", "batch.reviewed: every event of a batch is decided by a person"
    SYNC_SUCCEEDED = "sync.succeeded", "sync.succeeded: a sync or import finished"
    SYNC_FAILED = "sync.failed", "sync.failed: a sync or import failed"


class Webhook(models.Model):
    """An endpoint that receives signed JSON deliveries of the events it subscribed to."""

    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)  # WebhookEvent values
    secret_encrypted = models.TextField(editable=False)  # signs the deliveries; readable again to sign
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    def get_absolute_url(self) -> str:
        return reverse("webhook_detail", args=[self.pk])

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = crypto.encrypt(secret)

    def get_secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One event for one endpoint: written in the transaction that caused it, sent later by the worker."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)
    body = models.TextField()  # the exact JSON that is signed and sent
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook_id} ({self.state})"


# --- Estimates from a sample, and second reviews (reviewer/sampling.py) ----------------------------


class Sample(models.Model):
    """A stratified random sample of a batch's pending events, to estimate precision before reviewing everything."""

    BY_CHOICES = [("category", "Category"), ("confidence", "Confidence bucket")]

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="samples")
    by = models.CharField(max_length=16, choices=BY_CHOICES)
    per_stratum = models.PositiveIntegerField()
    seed = models.BigIntegerField()  # the draw again from the same events gives the same sample
    populations = models.JSONField(default=dict)  # stratum -> pending events it was drawn from
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Sample {self.pk} of {self.batch}"

    def get_absolute_url(self) -> str:
        return reverse("sample_detail", args=[self.pk])


class SampleEvent(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="members")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="sample_memberships")
    stratum = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "event"], name="sample_event_once")]

    def __str__(self) -> str:
        return f"{self.event_id} in sample {self.sample_id} ({self.stratum})"


class SecondReview(models.Model):
    """A random share of a batch's decided events, judged again by another reviewer who does not see the first decision."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="second_reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="second_reviews")
    share = models.FloatField()
    seed = models.BigIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Second review {self.pk} of {self.batch} by {self.reviewer}"

    def get_absolute_url(self) -> str:
        return reverse("second_review_results", args=[self.pk])


class SecondReviewItem(models.Model):
    """One event of a second review: the first decision as it was when assigned, and the blind second one."""

    second_review = models.ForeignKey(SecondReview, on_delete=models.CASCADE, related_name="items")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    first_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    first_approval = models.CharField(max_length=16, choices=Approval.choices)
    second_approval = models.CharField(max_length=16, choices=Approval.choices, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["second_review", "event"], name="second_review_event_once")]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.first_approval} then {self.second_approval or '(not yet)'}"
