"""The video at an event, and images that outlive the provider.

Videos: an item's playable URL is asked of the provider (through its adapter) only when
the cached one is missing or about to expire, and cached on the item. The API key stays
here: the browser gets the signed media URL only.

Images: after a sync or an import the worker downloads every item and event thumbnail
into Django's storage (``FileSystemStorage`` under MEDIA_ROOT by default), so the pages
keep showing them after the provider deletes the batch. Only images, at most
MAX_IMAGE_BYTES; a failed download is retried later and never fails the sync.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from reviewer.crypto import KeyUnreadable
from reviewer.models import Batch, Event, Item
from reviewer.providers.base import MediaUnavailable, VideoLink, kind_of
from reviewer.providers.http import ProviderError

logger = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=2)  # a URL this close to its expiry is asked for again
PRE_ROLL = 2.0  # seconds of video shown before an event starts (the player's starting point)
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_ATTEMPTS = 5  # failed downloads of one image before the worker stops trying
IMAGE_RETRY_DELAY = timedelta(minutes=5)
_DOWNLOAD_TIMEOUT = (5.0, 20.0)
# Image types by their first bytes (a Content-Type header alone is not trusted).
_SIGNATURES = {b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png", b"GIF87a": "gif", b"GIF89a": "gif"}


class NoVideo(Exception):
    """No video can be played for this event; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def event_media(event: Event, *, refresh: bool = False, now: datetime | None = None) -> dict:
    """The JSON answer of ``/events/<id>/media``; raises NoVideo.

    ``refresh``: the browser found the cached URL dead (expired early): ask again.
    """
    link = video_for_item(event.item, refresh=refresh, now=now)
    return {
        "kind": link.kind,
        "url": link.url,
        "start": event.start_seconds,
        "end": event.end_seconds if event.end_seconds is not None else event.start_seconds,
        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
        "duration": link.duration,
    }


def video_for_item(item: Item, *, refresh: bool = False, now: datetime | None = None) -> VideoLink:
    """The item's playable video, from the cache when it stays valid a while; raises NoVideo."""
    now = now or timezone.now()
    cached_valid = item.video_url and (item.video_expires_at is None or item.video_expires_at - now > REFRESH_MARGIN)
    if cached_valid and not refresh:
        return VideoLink(item.video_kind, item.video_url, item.video_expires_at, item.video_duration)
    link = _ask_for_video(item, now)
    Item.objects.filter(pk=item.pk).update(
        video_kind=link.kind, video_url=link.url, video_expires_at=link.expires_at, video_duration=link.duration
    )
    return link


def _playable_address(uri: str) -> bool:
    """An http(s) URL, or a path on this site (what a browser may be pointed at)."""
    if uri.startswith("/") and not uri.startswith("//") and "\\" not in uri:
        return True
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _ask_for_video(item: Item, now: datetime) -> VideoLink:
    batch = item.batch
    if batch.source_id is None:
        # A file import has no account to ask: its source URI plays when it is a web address.
        uri = item.import_source_uri.strip()
        if not _playable_address(uri):
            shown = f" ({uri})" if uri else ""
            raise NoVideo(f"No video is available: this batch was imported from a file and names no web address "
                          f"for this {batch.adapter.item_word}{shown}.", 404)  # fmt: skip
        return VideoLink(kind_of(uri), uri, None)
    if batch.gone_upstream:
        raise NoVideo(f"{batch.adapter.label} no longer has this batch, so its videos cannot be played.", 410)
    try:
        client = batch.source.client()
    except KeyUnreadable as exc:
        raise NoVideo(str(exc), 424) from None
    try:
        return batch.adapter.video_link(client, item, now)
    except MediaUnavailable as exc:
        raise NoVideo(str(exc), 409) from None
    except ProviderError as exc:
        # A refused key or an unknown video will not mend by itself (424); an outage may (503).
        raise NoVideo(exc.message, 424 if exc.permanent else 503) from None
    finally:
        client.close()


# --- Images ----------------------------------------------------------------------------


@dataclass
class StoredCounts:
    stored: int = 0
    kept: int = 0
    failed: int = 0


def schedule_image_storage(batch: Batch) -> None:
    """Have the worker store the batch's images once the current transaction commits."""
    from reviewer.tasks import store_images_task

    transaction.on_commit(lambda: store_images_task.enqueue(batch.pk))


def store_images(batch: Batch) -> StoredCounts:
    """Download every item and event thumbnail of ``batch`` not stored yet; returns the counts.

    Never raises for a provider or download problem: the image keeps its provider URL
    and its attempt count goes up (see MAX_IMAGE_ATTEMPTS).
    """
    counts = StoredCounts()
    client = _client_or_none(batch)
    try:
        for item in batch.items.filter(thumbnail_attempts__lt=MAX_IMAGE_ATTEMPTS).order_by("position", "id"):
            if item.thumbnail_file and not item.thumbnail_url:
                # Stored from an adapter lookup (a TwelveLabs asset): asking again on every sync
                # would cost two provider calls per item for the same picture.
                counts.kept += 1
                continue
            try:
                url = batch.adapter.thumbnail_source(client, item) if client else item.thumbnail_url
            except ProviderError as exc:
                logger.info("no thumbnail of %s: %s", item, exc.message)
                url = ""
            _store(item, url, f"thumbs/{batch.pk}/item-{item.pk}", counts)
        events = batch.events.exclude(thumbnail_url="").filter(thumbnail_attempts__lt=MAX_IMAGE_ATTEMPTS)
        for event in events.order_by("id").iterator(chunk_size=500):
            _store(event, event.thumbnail_url, f"thumbs/{batch.pk}/event-{event.pk}", counts)
    finally:
        if client is not None:
            client.close()
    return counts


def _client_or_none(batch: Batch):
    if batch.source_id is None or batch.gone_upstream:
        return None  # a file import, or a batch the provider deleted: only the URLs it holds
    try:
        return batch.source.client()
    except KeyUnreadable:
        return None


def _store(row: Item | Event, url: str, stem: str, counts: StoredCounts) -> None:
    if not url or urlsplit(url).scheme not in ("http", "https"):
        return  # nothing to fetch (no image, or a path on this site such as the demo's)
    if row.thumbnail_file and _same_file(row.thumbnail_file_source, url):
        counts.kept += 1
        return
    try:
        content, extension = download_image(url)
    except ImageRefused as exc:
        counts.failed += 1
        logger.info("thumbnail %s not stored: %s", url[:200], exc)
        type(row).objects.filter(pk=row.pk).update(thumbnail_attempts=row.thumbnail_attempts + 1)
        return
    path_digest = hashlib.sha1(urlsplit(url)._replace(query="", fragment="").geturl().encode()).hexdigest()[:10]
    name = default_storage.save(f"{stem}-{path_digest}.{extension}",
                                ContentFile(content))  # fmt: skip
    if row.thumbnail_file and row.thumbnail_file != name:
        default_storage.delete(row.thumbnail_file)  # the provider's image changed: the old copy goes
    type(row).objects.filter(pk=row.pk).update(thumbnail_file=name, thumbnail_file_source=url, thumbnail_attempts=0)
    counts.stored += 1


def _same_file(stored_from: str, url: str) -> bool:
    """Whether two URLs name the same file: signed URLs differ only in their query (the signature)."""
    a, b = urlsplit(stored_from), urlsplit(url)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)


class ImageRefused(Exception):
    """An image that could not be downloaded or is not an image (a readable reason)."""


def download_image(url: str) -> tuple[bytes, str]:
    """Return (bytes, extension) of the image at ``url``; raises ImageRefused."""
    _check_host(url)
    try:
        with requests.get(url, stream=True, timeout=_DOWNLOAD_TIMEOUT, allow_redirects=False) as response:
            if response.status_code != 200:
                raise ImageRefused(f"HTTP {response.status_code}")
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > MAX_IMAGE_BYTES:
                raise ImageRefused(f"{declared} bytes is over the {MAX_IMAGE_BYTES}-byte cap")
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_IMAGE_BYTES:
                    raise ImageRefused(f"over the {MAX_IMAGE_BYTES}-byte cap")
    except requests.RequestException as exc:
        raise ImageRefused(type(exc).__name__) from None
    extension = image_type(bytes(body[:16]))
    if extension is None:
        raise ImageRefused("not a JPEG, PNG, GIF or WebP image")
    return bytes(body), extension


def image_type(head: bytes) -> str | None:
    """The extension of an image from its first bytes, None when it is no image we keep."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((extension for magic, extension in _SIGNATURES.items() if head.startswith(magic)), None)


def _check_host(url: str) -> None:
    """Refuse addresses inside this network: a provider's text must not make the server fetch them.

    ``MEDIA_FETCH_PRIVATE_HOSTS`` allows them (tests, or a provider mirror on the LAN).
    """
    # One reading of the URL for the check and the fetch: "http://10.0.0.1\\@8.8.8.8/" is
    # 8.8.8.8 to urlsplit and 10.0.0.1 to urllib3, which would defeat the check.
    try:
        ambiguous = (
            any(char in url for char in "\\ \t\r\n") or urllib3.util.parse_url(url).host != urlsplit(url).hostname
        )
    except ValueError:  # urllib3's LocationParseError: not an address at all
        ambiguous = True
    if ambiguous:
        raise ImageRefused("the address is ambiguous")
    if settings.MEDIA_FETCH_PRIVATE_HOSTS:
        return
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        raise ImageRefused(f"cannot resolve {host!r}") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise ImageRefused(f"{host} is an address inside this network")
