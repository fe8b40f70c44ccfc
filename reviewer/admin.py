from urllib.parse import urlsplit

from django import forms
from django.contrib import admin
from django.utils import timezone

from reviewer.models import ApiToken, Batch, Decision, Event, Item, ReasonCode, Source, SyncRun


class SourceForm(forms.ModelForm):
    # Write-only: the stored key is never rendered back, not even masked in the input.
    api_key = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave blank to keep the current key.",
    )

    class Meta:
        model = Source
        fields = ["name", "provider", "base_url", "viewer_base_url"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("api_key"):
            self.add_error("api_key", "An API key is required for a new source.")
        elif self.instance.pk and not cleaned.get("api_key") and self._destination_changed(cleaned):
            # The stored key must never be sent to a host (or provider) it was not given for.
            self.add_error("api_key", "Enter the API key again: the provider or the host of the API base URL changed.")
        return cleaned

    def _destination_changed(self, cleaned: dict) -> bool:
        before = Source.objects.filter(pk=self.instance.pk).values("provider", "base_url").first() or {}
        new_url = cleaned.get("base_url") or ""
        return cleaned.get("provider") != before.get("provider") or _origin(new_url) != _origin(before.get("base_url"))

    def save(self, commit=True):
        if self.cleaned_data.get("api_key"):
            self.instance.set_api_key(self.cleaned_data["api_key"])
        return super().save(commit)


def _origin(url: str | None) -> tuple[str, str]:
    parts = urlsplit(url or "")
    return parts.scheme.lower(), parts.netloc.lower()


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceForm
    list_display = ["name", "provider", "base_url", "masked_key", "created_at"]
    readonly_fields = ["masked_key"]


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["provider_batch_id", "provider", "source", "status", "item_total", "event_total", "last_synced_at"]
    list_filter = ["provider", "status", "gone_upstream"]
    search_fields = ["provider_batch_id", "prompt"]
    readonly_fields = ["item_counts", "approval_counts", "item_total", "event_total"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["provider_item_id", "video_name", "custom_id", "status", "batch"]
    list_filter = ["status"]
    search_fields = ["provider_item_id", "custom_id", "video_name"]
    raw_id_fields = ["batch"]

    # The cached copy of the provider's data: a sync or an import rewrites it.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["label", "category", "severity", "approval", "provider_approval", "item"]
    list_filter = ["approval", "severity"]
    search_fields = ["label", "category"]
    raw_id_fields = ["item", "batch", "decided_by"]

    # Approvals change through the review pages only, so each change has its Decision row.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReasonCode)
class ReasonCodeAdmin(admin.ModelAdmin):
    """The reasons reviewers pick from when they reject an event or mark it invalid."""

    list_display = ("label", "active", "position")
    list_editable = ("active", "position")
    ordering = ("position", "label")


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ["event", "user", "from_approval", "to_approval", "created_at"]
    raw_id_fields = ["event", "user"]

    def has_change_permission(self, request, obj=None):
        return False  # the audit trail is append-only

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "batch", "trigger", "outcome", "items_created", "events_created", "error"]
    list_filter = ["outcome", "trigger"]
    raw_id_fields = ["batch"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Everyone's tokens, to revoke one (e.g. when someone leaves); tokens are made by their owners."""

    list_display = ["name", "user", "hint", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username"]
    readonly_fields = ["user", "name", "hint", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # a token is shown only to whoever creates it: on their API tokens page

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).")
