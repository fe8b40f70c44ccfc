"""The event-level CSV: one column table, used by the exporter to write and by the importer to read.

Columns and values follow the NomadicML seed page (PROVIDERS.md, "CSV"). Each column
says how its cell is made from a row's values and how a cell is read back into them,
so the two directions cannot drift. The readers of the other layouts met in real files
(the SDK's ``as_csv=True``, the NomadicML web app's export) are at the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from reviewer.providers.events import parse_approval
from reviewer.records import RecordError

# A cell starting with one of these is a formula to a spreadsheet: written with a leading
# "'" (OWASP's advice). A cell that itself starts with "'" before one of them, or before
# another "'", gets one too, so reading back removes exactly what writing added.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_GUARDED = (*FORMULA_PREFIXES, "'")


def neutralize(value: str) -> str:
    """The cell for ``value``: safe to open in a spreadsheet; ``restore`` gives ``value`` back."""
    if value and (value[0] in FORMULA_PREFIXES or (value[0] == "'" and value[1:2] in _GUARDED and value[1:2])):
        return "'" + value
    return value


def restore(cell: str) -> str:
    """Undo ``neutralize``."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _GUARDED:
        return cell[1:]
    return cell


def _timestamp(values: dict) -> str:
    t_start, t_end = values["t_start"], values["t_end"]
    return t_start if t_start == t_end or not t_end else f"{t_start}-{t_end}"


# "00:01-00:02", "12.0-15.0", "t=12.00-t=15.00", the web app's "1:47–1:56" (en dash).
_RANGE = re.compile(r"^\s*(?P<start>[^–-]*?)\s*(?:[–-]\s*(?P<end>[^–-]*?))?\s*$")


def _read_timestamp(cell: str) -> dict:
    if not cell.strip():
        return {"t_start": "", "t_end": ""}
    match = _RANGE.match(cell)
    if match is None:
        raise RecordError(f"Timestamp {cell!r} is not a time or a range")
    start = match["start"]
    # "-00:05": an event whose start is unknown (we write it so); "00:01": one moment.
    return {"t_start": start, "t_end": match["end"] if match["end"] is not None else start}


def _read_confidence(cell: str) -> dict:
    if not cell.strip():
        return {"confidence": None}
    try:
        value = float(cell)
    except ValueError:
        raise RecordError(f"Confidence {cell!r} is not a number") from None
    if value != value or abs(value) == float("inf"):
        raise RecordError(f"Confidence {cell!r} is not a finite number")
    return {"confidence": value}


@dataclass(frozen=True)
class Column:
    name: str
    key: str  # the row value it writes (see exporters.csv_rows) and reads back
    write: Callable[[dict], str] | None = None  # default: the value as text
    read: Callable[[str], dict] | None = None  # default: {key: cell}

    def cell(self, values: dict) -> str:
        value = self.write(values) if self.write else values[self.key]
        return neutralize("" if value is None else str(value))

    def values(self, cell: str) -> dict:
        text = restore(cell)
        return self.read(text) if self.read else {self.key: text}


COLUMNS: tuple[Column, ...] = (
    Column("Query", "prompt"),
    Column("Video", "video_name", write=lambda v: v["video_name"] or v["custom_id"] or v["provider_item_id"]),
    Column("Approval Status", "approval", read=lambda cell: {"approval": parse_approval(cell)}),
    Column("Timestamp", "t_start", write=_timestamp, read=_read_timestamp),
    Column("Category", "category"),
    Column("Label", "label", write=lambda v: "" if v["label"] == v["category"] else v["label"]),
    Column("AI Analysis", "ai_analysis"),
    Column("Severity", "severity"),
    Column("Video ID", "provider_item_id"),
    Column("Analysis ID", "analysis_id"),
    Column("Batch ID", "batch_id"),
    Column("Batch Viewer URL", "viewer_url"),
    Column("Status", "status"),
    Column(
        "Confidence",
        "confidence",
        write=lambda v: "" if v["confidence"] is None else repr(v["confidence"]),
        read=_read_confidence,
    ),  # fmt: skip
    Column("Annotated Thumbnail URL", "thumbnail_url"),
    Column("Import Source URI", "import_source_uri"),
    Column("Summary", "text"),
)
HEADER: list[str] = [column.name for column in COLUMNS]
_BY_NAME = {column.name: column for column in COLUMNS}

# The review columns of ``?columns=extended`` after the seed page's: what people decided.
# Written only; a re-import skips them (decisions never come from a file).
REVIEW_COLUMNS: tuple[Column, ...] = (
    Column("Event ID", "event_id"),
    Column("Provider Approval", "provider_approval"),
    Column("Decided By", "decided_by"),
    Column("Decided At", "decided_at", write=lambda v: v["decided_at"].isoformat() if v["decided_at"] else ""),
    Column("Reason", "reason"),
    Column("Note", "note"),
)
EXTENDED_HEADER: list[str] = HEADER + [column.name for column in REVIEW_COLUMNS]
_REVIEW_NAMES = frozenset(column.name for column in REVIEW_COLUMNS)

# What a file must have to be read as an event CSV (the message for any other file names these).
REQUIRED = ("Video ID", "Timestamp", "Category")

# Other layouts: the SDK's CSV calls the second column "Video Name"; the SDK and the web app
# add overlay columns ("unix_timestamp_start", "Frame Gps Lat End", ...).
_ALIASES = {"Video Name": _BY_NAME["Video"]}
_OVERLAY_COLUMN = re.compile(r"^(?:(?P<unix>unix_timestamp)|Frame (?P<frame>.+?))[ _](?P<side>start|end)$", re.I)


def write_row(values: dict, *, extended: bool = False) -> list[str]:
    """The cells of one event row, in HEADER order (EXTENDED_HEADER's when ``extended``)."""
    return [column.cell(values) for column in (COLUMNS + REVIEW_COLUMNS if extended else COLUMNS)]


def read_row(row: dict[str, str]) -> tuple[dict, dict, dict]:
    """Return (values, overlay, extra) from one row of any known layout; raises RecordError.

    ``values`` uses the column keys; ``overlay`` is ``{name: {"start", "end"}}`` from the
    overlay columns; ``extra`` holds every other non-empty cell under its column name.
    """
    values: dict = {}
    overlay: dict[str, dict] = {}
    extra: dict[str, str] = {}
    for name, cell in row.items():
        if name is None:  # csv.DictReader's key for cells beyond the header
            raise RecordError("more cells than header columns")
        cell = cell or ""
        column = _BY_NAME.get(name) or _ALIASES.get(name)
        if column is not None:
            values.update(column.values(cell))
            continue
        if name in _REVIEW_NAMES:
            continue
        match = _OVERLAY_COLUMN.match(name)
        if match:
            key = "unix_timestamp" if match["unix"] else "frame_" + "_".join(match["frame"].lower().split())
            ends = overlay.setdefault(key, {"start": None, "end": None})
            ends[match["side"].lower()] = _number_or_text(restore(cell))
        elif cell.strip():
            extra[name] = restore(cell)
    overlay = {key: ends for key, ends in overlay.items() if ends != {"start": None, "end": None}}
    return values, overlay, extra


def _number_or_text(cell: str) -> object:
    if not cell.strip():
        return None  # an empty cell means none
    try:
        return float(cell)
    except ValueError:
        return cell
