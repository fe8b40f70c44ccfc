"""Result files in: TwelveLabs JSONL, NomadicML JSON and NomadicML CSV.

One code path for the import page and ``manage.py import_results``. Files are read as
streams (line by line, or element by element for JSON), never whole into memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from reviewer import sync
from reviewer.models import Provider, SyncRun, SyncTrigger
from reviewer.providers import nomadicml, twelvelabs, wire
from reviewer.records import BatchRecord, EventRecord, ItemRecord, Malformed, RecordError
from reviewer.timecodes import parse_seconds

FORMAT_TWELVELABS_JSONL = "twelvelabs-jsonl"
FORMAT_BATCH_JSON = "batch-json"
FORMAT_NOMADICML_CSV = "nomadicml-csv"

CSV_COLUMNS = [
    "Query", "Video", "Approval Status", "Timestamp", "Category", "Label", "AI Analysis",
    "Severity", "Video ID", "Analysis ID", "Batch ID", "Batch Viewer URL", "Status",
    "Confidence", "Annotated Thumbnail URL", "Import Source URI", "Summary",
]  # fmt: skip
_CSV_REQUIRED = {"Video ID", "Batch ID", "Approval Status", "Timestamp", "Category"}
_FORMULA_PREFIXES = ("=", "+", "-", "@")
_SNIFF_BYTES = 64 * 1024


def import_file(
    binary: IO[bytes],
    *,
    name: str,
    provider: str | None = None,
    batch_id: str | None = None,
    skip_invalid: bool = False,
) -> SyncRun:
    """Import one results file; returns the saved SyncRun (check ``outcome``).

    ``binary`` must be seekable (a file on disk or an upload). The format is detected
    from the content; ``provider`` narrows the choice. ``batch_id`` names the batch of a
    TwelveLabs JSONL file (whose lines carry no batch id); default: the file's stem.
    """
    run = SyncRun(trigger=SyncTrigger.IMPORT, file_name=name[:255])
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        file_format = detect_format(text, provider)
        if file_format == FORMAT_TWELVELABS_JSONL:
            batch_record, records = read_twelvelabs_jsonl(text, batch_id or Path(name).stem)
        elif file_format == FORMAT_BATCH_JSON:
            batch_record, records = read_batch_json(text)
        else:
            batch_record, records = read_nomadicml_csv(text)
        if provider and batch_record.provider != provider:
            raise RecordError(
                f"This is a {Provider(batch_record.provider).label} file, not {Provider(provider).label}."
            )
        return sync.write_records(
            batch_record,
            _decode_guard(records),
            trigger=SyncTrigger.IMPORT,
            file_name=name,
            skip_invalid=skip_invalid,
        )
    except RecordError as exc:
        return sync.record_failure(run, str(exc))
    finally:
        text.detach()


def _decode_guard(records: Iterator) -> Iterator:
    """Turn a decoding error mid-file into a RecordError the writer reports."""
    try:
        yield from records
    except UnicodeDecodeError:
        raise RecordError("The file is not UTF-8 text.") from None


def detect_format(text: IO[str], provider: str | None = None) -> str:
    """Return the file's format; raises RecordError when it is none of the three."""
    try:
        head = text.read(_SNIFF_BYTES)
    except UnicodeDecodeError:
        raise RecordError("The file is not UTF-8 text.") from None
    text.seek(0)
    stripped = head.lstrip()
    if not stripped:
        raise RecordError("The file is empty.")
    if stripped.startswith("{"):
        first_line = stripped.split("\n", 1)[0]
        try:
            first = json.loads(first_line)
        except json.JSONDecodeError:
            first = None
        if isinstance(first, dict) and "task_id" in first:
            found = FORMAT_TWELVELABS_JSONL
        elif '"batch_metadata"' in head or '"results"' in head:
            found = FORMAT_BATCH_JSON
        elif provider == Provider.TWELVELABS:
            found = FORMAT_TWELVELABS_JSONL  # a first line that is itself malformed
        else:
            raise RecordError(
                "Unrecognized JSON: expected TwelveLabs results (one object per line with "
                "task_id) or a NomadicML batch analysis (batch_metadata and results)."
            )
    else:
        header = next(csv.reader(io.StringIO(stripped.split("\n", 1)[0])), [])
        if not _CSV_REQUIRED.issubset(column.strip() for column in header):
            raise RecordError(
                "Unrecognized file: expected TwelveLabs JSONL, NomadicML JSON, or a NomadicML "
                f"CSV export with the columns {', '.join(CSV_COLUMNS)}."
            )
        found = FORMAT_NOMADICML_CSV
    return found


# --- TwelveLabs JSONL ---------------------------------------------------------------


def read_twelvelabs_jsonl(text: IO[str], batch_id: str) -> tuple[BatchRecord, Iterator]:
    """Return the batch record and a lazy stream of its item records.

    The lines carry no batch metadata: the mode is learned while reading (any segment
    output makes it ``time_based_metadata``) and written at the end of the sync.
    """
    if not batch_id:
        raise RecordError("A batch id is needed for a TwelveLabs results file.")
    batch_record = BatchRecord(provider=Provider.TWELVELABS, provider_batch_id=batch_id)

    def records() -> Iterator[ItemRecord | Malformed]:
        for record in twelvelabs.parse_lines(text):
            if isinstance(record, Malformed):
                yield record
                continue
            batch_record.mode = (
                twelvelabs.MODE_TIME_BASED
                if twelvelabs.is_time_based(record) or batch_record.mode == twelvelabs.MODE_TIME_BASED
                else batch_record.mode or (twelvelabs.MODE_GENERAL if record.status == "ready" else "")
            )
            yield record

    return batch_record, records()


# --- NomadicML JSON -----------------------------------------------------------------


def read_batch_json(text: IO[str]) -> tuple[BatchRecord, Iterator]:
    """Return the batch record and a lazy stream of item records of a batch JSON file.

    The shape of NomadicML's ``get_batch_analysis`` (which our JSON export also writes,
    for TwelveLabs batches too, marked ``"provider": "twelvelabs"``). ``batch_metadata``
    must come before ``results``, as both write it.
    """
    members = _JsonObjectStream(text).members(stream_key="results")
    batch_metadata = None
    pending: tuple | None = None
    for member in members:
        if member[0] == "member" and member[1] == "batch_metadata":
            batch_metadata = member[2]
        elif member[0] == "element":
            pending = member
            break
    if batch_metadata is None:
        raise RecordError("The file has no batch_metadata before its results.")
    is_twelvelabs = isinstance(batch_metadata, dict) and batch_metadata.get("provider") == Provider.TWELVELABS
    batch_record = (
        _twelvelabs_export_metadata(batch_metadata) if is_twelvelabs else nomadicml.parse_batch_metadata(batch_metadata)
    )
    parse = _twelvelabs_export_result if is_twelvelabs else nomadicml.parse_result
    id_name = "task_id" if is_twelvelabs else "video_id"

    def records() -> Iterator[ItemRecord | Malformed]:
        seen: dict[str, int] = {}
        stream = members if pending is None else _chain([pending], members)
        for kind, index, value, line in stream:
            if kind != "element":
                continue
            try:
                record = parse(value)
            except RecordError as exc:
                yield Malformed(line, f"result {index}: {exc}")
                continue
            if record.provider_item_id in seen:
                first = seen[record.provider_item_id]
                yield Malformed(
                    line, f"result {index}: duplicate {id_name} {record.provider_item_id} (first on line {first})"
                )
                continue
            seen[record.provider_item_id] = line
            yield record

    return batch_record, records()


def _twelvelabs_export_metadata(metadata: dict) -> BatchRecord:
    record = twelvelabs.parse_batch(metadata)
    record.viewer_url = wire.text(metadata, "batch_viewer_url")
    record.metadata = wire.mapping(metadata, "metadata")
    return record


def _twelvelabs_export_result(value: object) -> ItemRecord:
    """A TwelveLabs result of our JSON export: the provider's fields plus reviewed events."""
    record = twelvelabs.parse_result(value)
    extra = {key: record.raw.pop(key) for key in ("events", "thumbnail_url") if key in record.raw}
    record.thumbnail_url = wire.text(extra, "thumbnail_url")
    if "events" in extra:
        if not isinstance(extra["events"], list):
            raise RecordError("'events' must be a list")
        record.events = [nomadicml.parse_sdk_event(wire.require_object(event, "event")) for event in extra["events"]]
    return record


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


class _JsonObjectStream:
    """Reads one top-level JSON object, yielding the elements of one array member lazily.

    Yields ``("member", key, value, line)`` for ordinary members and
    ``("element", index, value, line)`` for each element of ``stream_key``. Only one
    element at a time is held in memory. Raises RecordError with a line number for
    invalid JSON.
    """

    _CHUNK = 64 * 1024

    def __init__(self, text: IO[str]) -> None:
        self.text = text
        self.buf = ""
        self.pos = 0
        self.line_base = 1  # line number of buf[0]
        self.eof = False
        self.decoder = json.JSONDecoder()

    def members(self, stream_key: str) -> Iterator[tuple]:
        self._expect("{")
        if self._peek() == "}":
            self.pos += 1
            return
        while True:
            self._skip_ws()
            line = self._line()
            key = self._value()
            if not isinstance(key, str):
                raise RecordError(f"Invalid JSON on line {line}: expected a member name.")
            self._expect(":")
            if key == stream_key and self._peek() == "[":
                yield from self._elements()
            else:
                yield ("member", key, self._value(), line)
            separator = self._next_char()
            if separator == "}":
                return
            if separator != ",":
                raise RecordError(f"Invalid JSON on line {self._line()}: expected ',' or '}}'.")

    def _elements(self) -> Iterator[tuple]:
        self._expect("[")
        if self._peek() == "]":
            self.pos += 1
            return
        index = 0
        while True:
            self._skip_ws()
            line = self._line()
            yield ("element", index, self._value(), line)
            index += 1
            separator = self._next_char()
            if separator == "]":
                return
            if separator != ",":
                raise RecordError(f"Invalid JSON on line {self._line()}: expected ',' or ']'.")

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.text.read(self._CHUNK)
        if not data:
            self.eof = True
            return False
        self.line_base += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def _skip_ws(self) -> None:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self._fill():
                return

    def _peek(self) -> str:
        self._skip_ws()
        return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def _next_char(self) -> str:
        char = self._peek()
        self.pos += 1
        return char

    def _expect(self, char: str) -> None:
        found = self._next_char()
        if found != char:
            shown = repr(found) if found else "the end of the file"
            raise RecordError(f"Invalid JSON on line {self._line()}: expected {char!r}, found {shown}.")

    def _line(self) -> int:
        return self.line_base + self.buf.count("\n", 0, self.pos)

    def _value(self) -> object:
        self._skip_ws()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # Maybe only incomplete: read more and try again, until the end of file.
                if self._fill():
                    continue
                line = self.line_base + self.buf.count("\n", 0, exc.pos)
                raise RecordError(f"Invalid JSON on line {line}: {exc.msg}.") from None
            # A number at the very end of the buffer may continue in the next chunk.
            if end == len(self.buf) and not self.eof and self._fill():
                continue
            self.pos = end
            return value


# --- NomadicML CSV ------------------------------------------------------------------


def read_nomadicml_csv(text: IO[str]) -> tuple[BatchRecord, Iterator]:
    """Return the batch record and a lazy stream of item records of a CSV export.

    Rows are events; consecutive rows of one video form one item. The batch comes from
    the first row's Batch ID, so a CSV without rows cannot be imported.
    """
    reader = csv.DictReader(text)
    if reader.fieldnames is None:
        raise RecordError("The CSV file is empty.")
    reader.fieldnames = [name.strip() for name in reader.fieldnames]
    missing = _CSV_REQUIRED - set(reader.fieldnames)
    if missing:
        raise RecordError(f"The CSV header lacks {', '.join(sorted(missing))}.")
    first_row = next(reader, None)
    if first_row is None:
        raise RecordError("The CSV file has a header but no rows: nothing to import.")
    first_line = reader.line_num
    batch_id = _cell(first_row, "Batch ID")
    if not batch_id:
        raise RecordError(f"Line {first_line}: Batch ID is empty.")
    batch_record = BatchRecord(
        provider=Provider.NOMADICML,
        provider_batch_id=batch_id,
        prompt=_cell(first_row, "Query"),
        viewer_url=_cell(first_row, "Batch Viewer URL"),
        mode="ask" if _cell(first_row, "Query") else "",
    )

    def rows() -> Iterator[tuple[int, dict]]:
        yield first_line, first_row
        for row in reader:
            yield reader.line_num, row

    def records() -> Iterator[ItemRecord | Malformed]:
        current: ItemRecord | None = None
        finished: dict[str, int] = {}
        for line, row in rows():
            try:
                video_id, event = _csv_event(row, batch_id)
            except RecordError as exc:
                yield Malformed(line, str(exc))
                continue
            if current is not None and current.provider_item_id == video_id:
                current.events.append(event)
                continue
            if video_id in finished:
                yield Malformed(
                    line, f"rows of video {video_id} are not together (first seen on line {finished[video_id]})"
                )
                continue
            if current is not None:
                yield current
            finished[video_id] = line
            current = ItemRecord(
                provider_item_id=video_id,
                status=_cell(row, "Status") or "completed",
                analysis_id=_cell(row, "Analysis ID"),
                video_name=_cell(row, "Video") or _cell(row, "Video Name"),
                text=_cell(row, "Summary"),
                import_source_uri=_cell(row, "Import Source URI"),
                events=[event],
            )
            if current.video_name == video_id:
                current.video_name = ""
        if current is not None:
            yield current

    return batch_record, records()


def _csv_event(row: dict, batch_id: str) -> tuple[str, EventRecord]:
    if None in row:
        raise RecordError("more cells than header columns")
    video_id = _cell(row, "Video ID")
    if not video_id:
        raise RecordError("Video ID is empty")
    if _cell(row, "Batch ID") != batch_id:
        raise RecordError(f"Batch ID {_cell(row, 'Batch ID')!r} differs from the first row's {batch_id!r}")
    t_start, _, t_end = _cell(row, "Timestamp").partition("-")
    t_end = t_end or t_start
    confidence = _cell(row, "Confidence")
    try:
        confidence_value = float(confidence) if confidence else None
    except ValueError:
        raise RecordError(f"Confidence {confidence!r} is not a number") from None
    category = _cell(row, "Category")
    return video_id, EventRecord(
        category=category,
        label=_cell(row, "Label") or category,
        severity=_cell(row, "Severity"),
        confidence=confidence_value,
        ai_analysis=_cell(row, "AI Analysis"),
        start_seconds=parse_seconds(t_start),
        end_seconds=parse_seconds(t_end),
        t_start=t_start,
        t_end=t_end,
        thumbnail_url=_cell(row, "Annotated Thumbnail URL"),
        provider_approval=nomadicml.parse_approval(_cell(row, "Approval Status")),
    )


def _cell(row: dict, column: str) -> str:
    """Return a cell, undoing the formula guard our CSV export adds ('=… becomes '=…)."""
    value = (row.get(column) or "").strip()
    if len(value) > 1 and value[0] == "'" and value[1] in _FORMULA_PREFIXES:
        return value[1:]
    return value
