"""Result files in: TwelveLabs JSONL, batch JSON (NomadicML's and ours) and event CSVs.

One code path for the import page and ``manage.py import_results``. Files are read as
streams (line by line, or element by element for JSON); a CSV's rows are grouped by
video in memory, since the web app's export does not keep them together.

A file goes into the batch it names when one is cached (fetched or imported), so a
re-import of any of our exports updates that batch: same events, same decisions. A
file only rewrites what it carries (a CSV has no raw payloads, no exact seconds).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from reviewer import csv_columns, media, sync
from reviewer.models import Batch, Provider, SyncOutcome, SyncRun, SyncTrigger
from reviewer.providers import FILE_FORMAT_OWNER, JSONL_OWNER, adapter_for, wire
from reviewer.records import BatchRecord, EventRecord, ItemRecord, Malformed, RecordError, StopRead
from reviewer.timecodes import format_timestamp, parse_seconds

FORMAT_TWELVELABS_JSONL = "twelvelabs-jsonl"
FORMAT_BATCH_JSON = "batch-json"
FORMAT_EVENT_CSV = "event-csv"

_SNIFF_BYTES = 64 * 1024
# The start of a TwelveLabs result line (its keys come in this order in the stream).
_LOOKS_LIKE_RESULT = re.compile(r'^\{\s*"task_id"\s*:\s*"[0-9a-fA-F]{24}"')
# What a file import writes over a cached copy; the rest (raw payloads, and for a CSV the
# exact seconds, errors and tokens) stays as cached. None: everything.
_JSON_CARRIES = {"item": frozenset(sync.ITEM_FIELDS) - {"raw"}, "event": frozenset(sync.EVENT_FIELDS) - {"raw"}}
_CSV_CARRIES = {
    "item": frozenset({"status", "custom_id", "analysis_id", "video_name", "text", "import_source_uri"}),
    "event": frozenset(
        {
            "category",
            "label",
            "severity",
            "confidence",
            "ai_analysis",
            "t_start",
            "t_end",
            "thumbnail_url",
            "overlay",
            "metadata",
        }
    ),  # fmt: skip
}


def import_file(
    binary: IO[bytes],
    *,
    name: str,
    provider: str | None = None,
    batch_id: str | None = None,
    mode: str | None = None,
    skip_invalid: bool = False,
    run: SyncRun | None = None,
) -> SyncRun:
    """Import one results file; returns the saved SyncRun (check ``outcome``).

    The whole file is read and checked before the write transaction opens (reviewers'
    decisions do not wait for the parsing). ``run``: the queued import's SyncRun to complete.

    ``binary`` must be seekable (a file on disk or an upload). The format is detected
    from the content; ``provider`` narrows the choice. ``batch_id`` names the batch of a
    file whose rows carry none (TwelveLabs JSONL, the web app's CSV); default: the
    file's stem. ``mode`` is a TwelveLabs batch's analysis mode, needed for a JSONL file
    of a batch not cached yet whose answers are JSON.
    """
    run = run or SyncRun(trigger=SyncTrigger.IMPORT, file_name=name[:255])
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    default_id = batch_id or Path(name).stem
    try:
        file_format = detect_format(text, provider)
        if file_format == FORMAT_TWELVELABS_JSONL:
            batch_record, records = read_twelvelabs_jsonl(text, default_id, mode)
        elif file_format == FORMAT_BATCH_JSON:
            batch_record, records = read_batch_json(text)
        else:
            batch_record, records = read_event_csv(text, default_id, provider)
        if provider and batch_record.provider != provider:
            raise RecordError(
                f"This is a {Provider(batch_record.provider).label} file, not {Provider(provider).label}."
            )
        target = _cached_batch(batch_record.provider, batch_record.provider_batch_id)
        parsed = sync.spooled(_decode_guard(records))
        run = sync.write_records(
            batch_record,
            parsed,
            trigger=SyncTrigger.IMPORT,
            source=target.source if target else None,
            file_name=name,
            skip_invalid=skip_invalid,
            run=run,
        )
        if run.outcome == SyncOutcome.SUCCEEDED:
            media.schedule_image_storage(run.batch)
        return run
    except RecordError as exc:
        return sync.record_failure(run, str(exc))
    except UnicodeDecodeError:  # past the sniffed part, where no reader was watching for it
        return sync.record_failure(run, "The file is not UTF-8 text.")
    finally:
        text.detach()


def _cached_batch(provider: str, batch_id: str) -> Batch | None:
    """The cached batch a file of ``batch_id`` updates: the imported copy, else the only fetched one."""
    batches = list(Batch.objects.filter(provider=provider, provider_batch_id=batch_id).order_by("-source_id")[:3])
    imported = [batch for batch in batches if batch.source_id is None]
    if imported:
        return imported[0]
    return batches[0] if len(batches) == 1 else None


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
            first = wire.loads(first_line)
        except (json.JSONDecodeError, RecordError):
            first = None
        if isinstance(first, dict) and "task_id" in first:
            return FORMAT_TWELVELABS_JSONL
        if first is None and "\n" not in head and _LOOKS_LIKE_RESULT.match(first_line):
            return FORMAT_TWELVELABS_JSONL  # a first line longer than the sniffed part: a result all the same
        if '"batch_metadata"' in head or '"results"' in head:
            return FORMAT_BATCH_JSON
        if provider == JSONL_OWNER.name:
            return FORMAT_TWELVELABS_JSONL  # a first line that is itself malformed
        raise RecordError(
            "Unrecognized JSON: expected TwelveLabs results (one object per line with "
            "task_id) or a batch analysis (batch_metadata and results)."
        )
    try:
        header = next(csv.reader(io.StringIO(stripped.split("\n", 1)[0])), [])
    except csv.Error:
        header = []
    if not set(csv_columns.REQUIRED).issubset(column.strip() for column in header):
        raise RecordError(
            "Unrecognized file: expected TwelveLabs JSONL, a batch analysis JSON, or an event CSV "
            f"with at least the columns {', '.join(csv_columns.REQUIRED)}."
        )
    return FORMAT_EVENT_CSV


# --- TwelveLabs JSONL ---------------------------------------------------------------


def read_twelvelabs_jsonl(text: IO[str], batch_id: str, mode: str | None) -> tuple[BatchRecord, Iterator]:
    """Return the batch record and a lazy stream of its item records.

    The lines carry no batch metadata. The analysis mode is ``mode``, else the cached
    batch's; never guessed from an answer (a general batch's answer can be JSON too).
    A JSON answer with the mode unknown stops the import with a message asking for it.
    """
    if not batch_id:
        raise RecordError("A batch id is needed for a TwelveLabs results file.")
    cached = _cached_batch(JSONL_OWNER.name, batch_id)
    mode = mode or (cached.mode if cached else "")
    batch_record = BatchRecord(provider=JSONL_OWNER.name, provider_batch_id=batch_id, mode=mode)
    return batch_record, JSONL_OWNER.parse_jsonl(text, mode)


# --- Batch JSON (get_batch_analysis shape) -------------------------------------------


def read_batch_json(text: IO[str]) -> tuple[BatchRecord, Iterator]:
    """Return the batch record and a lazy stream of item records of a batch JSON file.

    The shape of NomadicML's ``get_batch_analysis``, which our JSON export also writes
    for every provider, naming it in ``batch_metadata.provider`` (absent: NomadicML).
    ``batch_metadata`` must come before ``results``, as both write it. An export made
    under a filter (``batch_metadata.export_filter``) leaves the events it omits alone.
    """
    members = _JsonObjectStream(text).members(stream_key="results")
    batch_metadata = None
    pending: tuple | None = None
    metadata_line = 1
    for member in members:
        if member[0] == "member" and member[1] == "batch_metadata":
            batch_metadata, metadata_line = member[2], member[3]
        elif member[0] == "element":
            pending = member
            break
    if batch_metadata is None:
        raise RecordError("The file has no batch_metadata before its results.")
    try:
        batch_metadata = wire.require_object(batch_metadata, "batch_metadata")
        try:
            adapter = adapter_for(batch_metadata.get("provider") or FILE_FORMAT_OWNER.name)
        except (KeyError, TypeError):
            raise RecordError(f"unknown provider {batch_metadata.get('provider')!r}") from None
        batch_record = adapter.read_export_metadata(batch_metadata)
    except RecordError as exc:
        raise RecordError(f"Line {metadata_line}: batch_metadata: {exc}") from None
    batch_record.carried_item_fields = _JSON_CARRIES["item"]
    batch_record.carried_event_fields = _JSON_CARRIES["event"]
    batch_record.complete = not batch_metadata.get("export_filter")
    id_name = f"{adapter.item_word} id"

    def records() -> Iterator[ItemRecord | Malformed]:
        seen: dict[str, int] = {}
        stream = members if pending is None else _chain([pending], members)
        for kind, index, value, line in stream:
            if kind != "element":
                continue
            try:
                record = adapter.read_export_result(value, batch_record)
            except StopRead:
                raise
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
        self.decoder = wire.DECODER

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
        # As much again as is pending: one huge record is read in a few doubling steps,
        # each decode attempt on twice the text, not 64 KB more each time (quadratic).
        data = self.text.read(max(self._CHUNK, len(self.buf) - self.pos))
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
            except RecursionError:
                raise RecordError(f"Invalid JSON on line {self._line()}: nested too deeply.") from None
            except (ValueError, OverflowError) as exc:
                raise RecordError(f"Invalid JSON on line {self._line()}: {exc}.") from None
            # A number at the very end of the buffer may continue in the next chunk.
            if end == len(self.buf) and not self.eof and self._fill():
                continue
            self.pos = end
            return value


# --- Event CSV (ours, the SDK's, the NomadicML web app's) ---------------------------


def read_event_csv(text: IO[str], default_batch_id: str, provider: str | None) -> tuple[BatchRecord, Iterator]:
    """Return the batch record and the item records of an event-level CSV.

    Rows are events, grouped into items by Video ID (in the order videos first appear;
    the web app's rows of one video are not adjacent). The batch is the rows' Batch ID,
    else ``default_batch_id`` (the web app's export has no such column). Its provider is
    ``provider``, else the cached batch's, else NomadicML (whose format this is).
    Item-level cells that differ from the item's first row (a per-row Query or Analysis
    ID) and unknown columns are kept on the event, shown and exported as JSON.
    """
    reader = csv.DictReader(text)
    try:
        if reader.fieldnames is None:
            raise RecordError("The CSV file is empty.")
        reader.fieldnames = [name.strip() for name in reader.fieldnames]
        missing = [name for name in csv_columns.REQUIRED if name not in reader.fieldnames]
        if missing:
            raise RecordError(f"The CSV header lacks {', '.join(missing)}.")
        rows = [(reader.line_num, row) for row in reader]  # grouped by video below: read whole
    except csv.Error as exc:  # a cell over the csv module's 131,072-character limit, a NUL byte
        raise RecordError(f"Line {reader.line_num + 1}: {exc}.") from None
    except UnicodeDecodeError:
        raise RecordError(f"The file is not UTF-8 text (line {reader.line_num + 1}).") from None
    if not rows:
        raise RecordError("The CSV file has a header but no rows: nothing to import.")
    has_batch_column = "Batch ID" in reader.fieldnames
    batch_id = (rows[0][1].get("Batch ID") or "").strip() if has_batch_column else default_batch_id
    if not batch_id:
        raise RecordError(f"Line {rows[0][0]}: Batch ID is empty.")
    provider = provider or next(
        (batch.provider for batch in Batch.objects.filter(provider_batch_id=batch_id).order_by("source_id")[:1]),
        FILE_FORMAT_OWNER.name,
    )
    adapter = adapter_for(provider)
    try:
        first_values = csv_columns.read_row(rows[0][1])[0]
    except RecordError as exc:
        raise RecordError(f"Line {rows[0][0]}: {exc}") from None
    batch_record = BatchRecord(
        provider=provider,
        provider_batch_id=batch_id,
        prompt=first_values.get("prompt", ""),
        viewer_url=first_values.get("viewer_url", ""),
        mode=adapter.mode_from_prompt(first_values.get("prompt", "")),
        carried_item_fields=_CSV_CARRIES["item"],
        carried_event_fields=_CSV_CARRIES["event"],
        complete=False,  # a CSV has no rows for videos without events, and may be filtered
    )

    def records() -> Iterator[ItemRecord | Malformed]:
        items: dict[str, ItemRecord] = {}
        for line, row in rows:
            try:
                if None in row:
                    raise RecordError("more cells than header columns")
                values, overlay, extra = csv_columns.read_row(row)
                if has_batch_column and values.get("batch_id") != batch_id:
                    raise RecordError(f"Batch ID {values.get('batch_id')!r} differs from the first row's {batch_id!r}")
                item_id = values.get("provider_item_id", "")
                if not item_id:
                    raise RecordError("Video ID is empty")
                item = items.get(item_id)
                if item is None:
                    item = items[item_id] = _csv_item(adapter.csv_name_field, values)
                extra.update(_differing_item_cells(batch_record, item, values))
                item.events.append(_csv_event(values, overlay, extra, row))
            except RecordError as exc:
                yield Malformed(line, str(exc))
        yield from items.values()

    return batch_record, records()


def _csv_item(name_field: str, values: dict) -> ItemRecord:
    item_id = values["provider_item_id"]
    shown_name = values.get("video_name", "")  # the Video column: a name, else the item id
    record = ItemRecord(
        provider_item_id=item_id,
        status=(values.get("status") or "completed").lower(),
        analysis_id=values.get("analysis_id", ""),
        text=values.get("text", ""),
        import_source_uri=values.get("import_source_uri", ""),
    )
    setattr(record, name_field, "" if shown_name == item_id else shown_name)
    return record


# Item- and batch-level columns whose per-row value is kept on the event when it differs.
_ROW_LEVEL = {"prompt": "Query", "analysis_id": "Analysis ID", "status": "Status", "text": "Summary",
              "import_source_uri": "Import Source URI"}  # fmt: skip


def _differing_item_cells(batch: BatchRecord, item: ItemRecord, values: dict) -> dict:
    shared = {"prompt": batch.prompt, "analysis_id": item.analysis_id, "status": item.status, "text": item.text,
              "import_source_uri": item.import_source_uri}  # fmt: skip
    return {
        column: values[key]
        for key, column in _ROW_LEVEL.items()
        if key in values and values[key] and values[key].lower() != (shared[key] or "").lower()
    }


def _csv_event(values: dict, overlay: dict, extra: dict, row: dict) -> EventRecord:
    t_start, t_end = values.get("t_start", ""), values.get("t_end", "")
    start, end = parse_seconds(t_start), parse_seconds(t_end)
    return EventRecord(
        category=values.get("category", ""),
        label=values.get("label", ""),
        severity=values.get("severity", ""),
        confidence=values.get("confidence"),
        ai_analysis=values.get("ai_analysis", ""),
        start_seconds=start,
        end_seconds=end,
        # Display times as every other path writes them ("1:47" from the web app -> "01:47").
        t_start=format_timestamp(start),
        t_end=format_timestamp(end),
        thumbnail_url=values.get("thumbnail_url", ""),
        overlay=overlay,
        metadata=extra,
        raw=dict(row),
        provider_approval=values.get("approval", "pending"),
    )
