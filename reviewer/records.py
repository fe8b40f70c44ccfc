"""Plain normalized records: what providers and files turn into before the database.

Provider modules and importers produce these; only ``reviewer/sync.py`` writes them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime


class RecordError(ValueError):
    """A provider record or file record that cannot be used, with a readable reason."""


class StopRead(RecordError):
    """An error that stops the whole read: never reported as one malformed line and skipped."""


@dataclass
class EventRecord:
    category: str = ""
    label: str = ""
    severity: str = ""
    confidence: float | None = None
    ai_analysis: str = ""
    start_seconds: float | None = None
    end_seconds: float | None = None
    t_start: str = ""
    t_end: str = ""
    thumbnail_url: str = ""
    overlay: dict = field(default_factory=dict)
    # Fields the provider sent that have no column of their own: a TwelveLabs segment's
    # whole ``metadata`` object, the extra columns of a NomadicML web-app CSV. Shown on
    # the event and carried in the JSON export.
    metadata: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    provider_approval: str = "pending"

    def identity(self) -> str:
        """What makes two events "the same event" across syncs and files (see sync.event_keys).

        Built only from what every path keeps: the category, the start and end at whole
        seconds (as displayed: a CSV export keeps no fractions), and the label unless it
        merely repeats the category (the CSV leaves such a label blank).
        """
        return event_identity(self.category, self.start_seconds, self.end_seconds, self.label)


@dataclass
class ItemRecord:
    provider_item_id: str
    status: str
    custom_id: str = ""
    analysis_id: str = ""
    video_name: str = ""
    text: str = ""
    error_code: str = ""
    error_message: str = ""
    finish_reason: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    import_source_uri: str = ""
    thumbnail_url: str = ""
    raw: dict = field(default_factory=dict)
    events: list[EventRecord] = field(default_factory=list)
    # The events' keys when a file import matched them to cached events (sync._match_cached);
    # None: keys by identity and order (sync.event_keys). Not provider data: not hashed.
    event_keys: list[str] | None = None

    def content_hash(self) -> str:
        """SHA-256 of every provider field, events included: equal hash => nothing to write."""
        return hashlib.sha256(self.content_json().encode()).hexdigest()

    def content_json(self) -> str:
        """Every provider field as canonical JSON (what content_hash hashes)."""
        return self.content_parts()[0]

    def content_parts(self) -> tuple[str, list[str]]:
        """content_json, and the canonical JSON of each event in it (what event_hash hashes).

        Built from the instances' own dicts, not ``dataclasses.asdict``: its deep copy
        was half the time of a sync. The events' JSON is put where "events" sorts among
        the item's keys: the same text as encoding the whole, without encoding every
        event a second time for its own hash.
        """
        events = [canonical_json(vars(event)) for event in self.events]
        fields = {name: value for name, value in vars(self).items() if name not in ("events", "event_keys")}
        before = canonical_json({name: value for name, value in fields.items() if name < "events"})[:-1]
        after = canonical_json({name: value for name, value in fields.items() if name > "events"})[1:]
        head = before if before == "{" else before + ","
        tail = after if after == "}" else "," + after
        return f'{head}"events":[{",".join(events)}]{tail}', events


@dataclass
class BatchRecord:
    provider: str
    provider_batch_id: str
    provider_status: str = ""
    # Normalized status; None when unknown (file imports): derived from item statuses.
    status: str | None = None
    mode: str = ""
    analysis_type: str = ""
    model_name: str = ""
    prompt: str = ""
    category: str = ""
    metadata: dict = field(default_factory=dict)
    provider_review_status: str = ""
    provider_review_status_updated_at: str = ""
    viewer_url: str = ""
    provider_created_at: datetime | None = None
    expires_at: datetime | None = None
    completed_at: datetime | None = None
    # What a file carries, for a file import over a cached copy (None: everything, as
    # a provider fetch): fields not carried keep their cached values (sync._merge_cached).
    carried_item_fields: frozenset[str] | None = None
    carried_event_fields: frozenset[str] | None = None
    # False when the records may hold only some events of an item (a CSV, a filtered
    # export): cached events they do not mention are kept.
    complete: bool = True


@dataclass
class Malformed:
    """A line or record that could not be used: never dropped, always reported."""

    line: int
    error: str


def event_identity(category: str, start: float | None, end: float | None, label: str) -> str:
    """The identity of an event from its stored fields (also used to re-key cached events)."""
    end = start if end is None else end  # a CSV writes a lone time for both ends
    whole = [None if value is None else int(value) for value in (start, end)]
    return _IDENTITY.encode([category, *whole, "" if label == category else label])


# Built once: json.dumps with options builds an encoder per call, a fifth of its time on an event.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
_IDENTITY = json.JSONEncoder(ensure_ascii=False)


def canonical_json(value: object) -> str:
    return _CANONICAL.encode(value)


def content_hash(value: object) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def event_hash(event_json: str, position: int) -> str:
    """``content_hash([vars(event), position])`` from the event's canonical JSON (see ItemRecord.content_parts)."""
    return hashlib.sha256(f"[{event_json},{position}]".encode()).hexdigest()
