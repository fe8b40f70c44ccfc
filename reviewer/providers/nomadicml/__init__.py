"""NomadicML batch analysis: the adapter (vocabulary, fetching, JSON export shape)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from reviewer.providers.base import Adapter, RecordStream, VideoLink
from reviewer.providers.events import parse_approval
from reviewer.providers.nomadicml.api import (
    ITEM_STATUSES,
    PROVIDER,
    NomadicMLClient,
    is_valid_id,
    parse_batch_metadata,
    parse_bulk_entry,
    parse_result,
    parse_status,
    viewer_url,
)
from reviewer.records import BatchRecord, ItemRecord

__all__ = [
    "ADAPTER", "ITEM_STATUSES", "PROVIDER", "NomadicMLClient", "is_valid_id", "parse_approval",
    "parse_batch_metadata", "parse_bulk_entry", "parse_result", "parse_status", "viewer_url",
]  # fmt: skip


class NomadicMLAdapter(Adapter):
    name = PROVIDER
    label = "NomadicML"
    item_word = "video"
    mode_label = "Batch type"
    item_statuses = ITEM_STATUSES
    terminal_item_statuses = frozenset({"completed", "failed", "cancelled", "canceled"})
    result_statuses = frozenset({"completed"})
    default_base_url = "https://api-prod.nomadicml.com"
    default_viewer_base_url = "https://app.nomadicml.com"
    id_hint = "A batch id has only letters, digits, '-', '_' and '.'."

    def is_valid_id(self, batch_id: str) -> bool:
        return is_valid_id(batch_id)

    def make_client(self, base_url: str, api_key: str, viewer_base_url: str = "") -> NomadicMLClient:
        return NomadicMLClient(base_url, api_key, viewer_base=viewer_base_url)

    def open_batch(self, client: NomadicMLClient, batch_id: str) -> tuple[BatchRecord, RecordStream]:
        report = client.get_status(batch_id)
        return report.record, client.iter_results(batch_id, report.videos)

    signed_url_seconds = 900  # what the SDK asks for; the page refreshes the URL before it runs out

    def video_link(self, client: NomadicMLClient, item, now: datetime) -> VideoLink:
        url = client.signed_video_url(item.provider_item_id, self.signed_url_seconds)
        return VideoLink("mp4", url, now + timedelta(seconds=self.signed_url_seconds))

    def item_viewer_url(self, batch, item) -> str:
        """The web app's page of one analysed video (the web app's CSV calls it the Share Link)."""
        viewer = urlsplit(batch.viewer_url or "")
        if not (item.analysis_id and viewer.scheme in ("http", "https") and viewer.netloc):
            return ""
        return f"{viewer.scheme}://{viewer.netloc}/events/{item.provider_item_id}/{item.analysis_id}"

    def mode_from_prompt(self, prompt: str) -> str:
        return "ask" if prompt else ""  # only ask (rapid review) batches have a prompt

    def export_metadata(self, batch) -> dict:
        metadata = {
            "batch_type": batch.mode,
            "analysis_type": batch.analysis_type,
            "review_status": batch.provider_review_status,
            "review_status_updated_at": batch.provider_review_status_updated_at or "N/A",
        }
        if batch.mode == "ask" or batch.prompt:
            metadata.update(prompt=batch.prompt, category=batch.category)
        return metadata

    def export_result(self, batch, item) -> dict:
        result = {
            "video_id": item.provider_item_id,
            "analysis_id": item.analysis_id or None,
            "mode": batch.mode,
            "status": item.status,
            "video_name": item.video_name,
            "import_source_uri": item.import_source_uri,
            "summary": item.text,
        }
        if item.error_message:
            result["error"] = item.error_message
        return result

    def read_export_metadata(self, metadata: dict) -> BatchRecord:
        return parse_batch_metadata(metadata)

    def read_export_result(self, result: object, batch: BatchRecord) -> ItemRecord:
        return parse_result(result)


ADAPTER = NomadicMLAdapter()
