"""TwelveLabs Analyze API v1.3 batches: the adapter (vocabulary, fetching, JSON export shape)."""

from __future__ import annotations

from datetime import datetime

from reviewer.providers import events as sdk_events
from reviewer.providers import wire
from reviewer.providers.base import Adapter, MediaUnavailable, RecordStream, VideoLink, url_expiry
from reviewer.providers.twelvelabs.api import (
    BATCH_STATUS,
    ITEM_STATUSES,
    MODE_GENERAL,
    MODE_TIME_BASED,
    PROVIDER,
    AssetInfo,
    ModeUnknown,
    TaskInfo,
    TwelveLabsClient,
    is_valid_id,
    parse_asset,
    parse_batch,
    parse_lines,
    parse_result,
    parse_task,
)
from reviewer.records import BatchRecord, ItemRecord, RecordError

__all__ = [
    "ADAPTER", "BATCH_STATUS", "ITEM_STATUSES", "MODE_GENERAL", "MODE_TIME_BASED", "PROVIDER", "ModeUnknown",
    "TaskInfo", "TwelveLabsClient", "is_valid_id", "AssetInfo", "parse_asset", "parse_batch", "parse_lines",
    "parse_result", "parse_task",
]  # fmt: skip

# The provider's own fields of a result line, as the stream sent them (kept in Item.raw).
_RESULT_KEYS = ("task_id", "custom_id", "status", "data", "error")


class TwelveLabsAdapter(Adapter):
    name = PROVIDER
    label = "TwelveLabs"
    item_word = "task"
    mode_label = "Analysis mode"
    item_statuses = ITEM_STATUSES
    terminal_item_statuses = frozenset({"ready", "failed", "canceled"})
    result_statuses = frozenset({"ready"})
    default_base_url = "https://api.twelvelabs.io/v1.3"
    default_viewer_base_url = "https://playground.twelvelabs.io"
    id_hint = "A TwelveLabs batch id is 24 hexadecimal characters, e.g. 68f4ddaf8aaa60d33df0e800."
    can_list_batches = True
    reads_jsonl = True
    csv_name_field = "custom_id"  # our CSV's Video column: custom_id, else the task id

    def is_valid_id(self, batch_id: str) -> bool:
        return is_valid_id(batch_id)

    def make_client(self, base_url: str, api_key: str, viewer_base_url: str = "") -> TwelveLabsClient:
        return TwelveLabsClient(base_url, api_key)

    def open_batch(self, client: TwelveLabsClient, batch_id: str) -> tuple[BatchRecord, RecordStream]:
        record = client.get_batch(batch_id)
        # A batch without a mode would be read as text: say general, never guess from an answer.
        return record, client.iter_results(batch_id, record.mode or MODE_GENERAL)

    def recent_batches(self, client: TwelveLabsClient, limit: int) -> list[BatchRecord]:
        return client.list_batches(page_limit=limit, max_pages=1)

    def video_link(self, client: TwelveLabsClient, item, now: datetime) -> VideoLink:
        """The task's asset's HLS stream: task -> video_source.asset_id -> asset."""
        asset = self._asset(client, item)
        if not asset.hls_url:
            raise MediaUnavailable("TwelveLabs is still preparing this video's stream: try again in a minute.")
        return VideoLink("hls", asset.hls_url, url_expiry(asset.hls_url, now), asset.duration)

    def thumbnail_source(self, client: TwelveLabsClient, item) -> str:
        # Results carry no thumbnail: the asset has one (a segment has none of its own).
        try:
            return item.thumbnail_url or self._asset(client, item).thumbnail_url
        except MediaUnavailable:
            return ""

    def _asset(self, client: TwelveLabsClient, item):
        task = client.get_task(item.provider_item_id)
        if not task.asset_id:
            raise MediaUnavailable("TwelveLabs names no video asset for this task.")
        return client.get_asset(task.asset_id)

    def parse_jsonl(self, lines, mode: str) -> RecordStream:
        return parse_lines(lines, mode)

    def export_metadata(self, batch) -> dict:
        return {"analysis_mode": batch.mode, "model_name": batch.model_name}

    def export_result(self, batch, item) -> dict:
        # The provider's own fields, as the results stream gave them.
        result = {key: item.raw[key] for key in _RESULT_KEYS if key in item.raw}
        result.setdefault("task_id", item.provider_item_id)
        result.setdefault("status", item.status)
        if item.import_source_uri:  # ours, not the stream's: where a file import's video is
            result["import_source_uri"] = item.import_source_uri
        return result

    def read_export_metadata(self, metadata: dict) -> BatchRecord:
        record = parse_batch(metadata)
        record.viewer_url = wire.text(metadata, "batch_viewer_url")
        record.metadata = wire.mapping(metadata, "metadata")
        return record

    def read_export_result(self, result: object, batch: BatchRecord) -> ItemRecord:
        """The provider's fields are read as from the stream; the exported events (with their approvals) win."""
        result = wire.require_object(result, "result")
        record = parse_result({key: value for key, value in result.items() if key in _RESULT_KEYS}, batch.mode)
        record.thumbnail_url = wire.text(result, "thumbnail_url")
        record.import_source_uri = wire.text(result, "import_source_uri")
        if "events" in result:
            exported = result["events"]
            if not isinstance(exported, list):
                raise RecordError("'events' must be a list")
            record.events = [sdk_events.from_json(wire.require_object(event, "event")) for event in exported]
        return record


ADAPTER = TwelveLabsAdapter()
