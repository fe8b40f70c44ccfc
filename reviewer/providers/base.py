"""What every provider adapter offers: the one place the rest of the project asks about a provider.

An adapter turns the provider's wire data into normalized records (``reviewer/records.py``)
and back into the provider's JSON shape for exports. No ORM in here: callers pass model
instances in for reading only. A new provider is one package with an ``ADAPTER`` plus
one line in ``reviewer/providers/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reviewer.records import BatchRecord, ItemRecord, Malformed

RecordStream = Iterator[ItemRecord | Malformed]

# How long a media URL without a stated expiry is trusted (providers sign them for minutes to hours).
ASSUMED_URL_LIFETIME = timedelta(minutes=10)


@dataclass
class VideoLink:
    """A playable video of an item: an HLS manifest or an MP4, usually signed and expiring."""

    kind: str  # "hls" | "mp4"
    url: str
    expires_at: datetime | None  # None: does not expire
    duration: float | None = None  # seconds, when the provider says


class MediaUnavailable(Exception):
    """The provider has no playable video for this item now (not ready, no asset): a message for people."""


def url_expiry(url: str, now: datetime) -> datetime:
    """When a signed URL stops working: its own ``Expires`` (CloudFront, GCS) or
    ``X-Amz-Date`` + ``X-Amz-Expires`` (S3), else ``now`` + ASSUMED_URL_LIFETIME."""
    query = {key.lower(): values[-1] for key, values in parse_qs(urlsplit(url).query).items()}
    try:
        if "expires" in query:
            return datetime.fromtimestamp(int(query["expires"]), UTC)
        if "x-amz-date" in query and "x-amz-expires" in query:
            signed = datetime.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return signed + timedelta(seconds=int(query["x-amz-expires"]))
    except (ValueError, OverflowError, OSError):
        pass
    return now + ASSUMED_URL_LIFETIME


def kind_of(url: str) -> str:
    """ "hls" for an .m3u8 playlist, else "mp4" (what a <video> plays natively)."""
    return "hls" if urlsplit(url).path.lower().endswith(".m3u8") else "mp4"


class Adapter:
    """Base class: vocabulary as class attributes, behaviour as methods to override."""

    name: str = ""  # the value stored in Batch.provider / Source.provider
    label: str = ""  # how people write the provider's name
    item_word: str = "item"  # "task", "video": what one item of a batch is called
    mode_label: str = "Mode"  # what Batch.mode means for this provider
    # Item statuses the provider documents (the filter offers them even when absent).
    item_statuses: tuple[str, ...] = ()
    # Item statuses after which the provider will not change an item.
    terminal_item_statuses: frozenset[str] = frozenset()
    # Item statuses whose item carries results (events or text).
    result_statuses: frozenset[str] = frozenset()
    default_base_url: str = ""
    default_viewer_base_url: str = ""
    id_hint: str = ""  # the form error for a malformed batch id
    can_list_batches: bool = False
    # Files: whether the provider's results stream saved as a file (JSONL) can be imported,
    # and which item field an event CSV's "Video" column is when it is not the item id.
    reads_jsonl: bool = False
    csv_name_field: str = "video_name"

    def is_valid_id(self, batch_id: str) -> bool:
        raise NotImplementedError

    # --- Fetching ---------------------------------------------------------------------

    def make_client(self, base_url: str, api_key: str, viewer_base_url: str = "") -> Any:
        """Return the provider's HTTP client (a ``providers.http.ProviderClient``)."""
        raise NotImplementedError

    def open_batch(self, client: Any, batch_id: str) -> tuple[BatchRecord, RecordStream]:
        """Return the batch record and a lazy stream of its items; raises ProviderError.

        Every request that can fail before the first result is made here.
        """
        raise NotImplementedError

    def recent_batches(self, client: Any, limit: int) -> list[BatchRecord]:
        """The account's newest batches (for the Add batch picker); raises ProviderError."""
        return []

    def parse_jsonl(self, lines: Any, mode: str) -> RecordStream:
        """The records of a saved results stream (only when ``reads_jsonl``)."""
        raise NotImplementedError

    def mode_from_prompt(self, prompt: str) -> str:
        """The batch mode an event CSV implies (its rows carry only the prompt)."""
        return ""

    # --- Media: the video at an event, thumbnails, deep links ---------------------------

    def video_link(self, client: Any, item: Any, now: datetime) -> VideoLink:
        """The item's playable video; raises ProviderError or MediaUnavailable."""
        raise MediaUnavailable(f"{self.label} offers no video to play.")

    def thumbnail_source(self, client: Any, item: Any) -> str:
        """The URL of the item's thumbnail to store ('' when none); raises ProviderError."""
        return item.thumbnail_url

    def item_viewer_url(self, batch: Any, item: Any) -> str:
        """The provider's page for one item, '' when it has none (the batch viewer is used)."""
        return ""

    # --- The JSON export (``get_batch_analysis`` shape) and reading it back -------------

    def export_metadata(self, batch: Any) -> dict:
        """The provider-specific part of an exported ``batch_metadata``."""
        return {}

    def export_result(self, batch: Any, item: Any) -> dict:
        """One exported result without its ``events`` (the exporter adds them)."""
        raise NotImplementedError

    def read_export_metadata(self, metadata: dict) -> BatchRecord:
        """The BatchRecord of an exported (or provider-written) ``batch_metadata``; raises RecordError."""
        raise NotImplementedError

    def read_export_result(self, result: object, batch: BatchRecord) -> ItemRecord:
        """The ItemRecord of one exported result; raises RecordError."""
        raise NotImplementedError
