"""Hostile files and provider answers: a clear refusal naming the line, never a 500, never a half-written batch.

Then a property-based fuzz (Hypothesis) of every importer and both wire parsers.
"""

from __future__ import annotations

import contextlib
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviewer import csv_columns, fetch
from reviewer.models import Batch, Event, Item, SyncOutcome
from reviewer.providers import nomadicml, twelvelabs
from reviewer.records import RecordError
from tests.factories import import_bytes, jsonl, nomadic_analysis, nomadic_event, nomadic_result, tl_id, tl_line
from tests.fakes import twelvelabs as tl

pytestmark = pytest.mark.django_db

DEEP = 100_000


def _tl_file(*lines) -> bytes:
    return jsonl([tl_line(tl_id(1)), *lines])


def _segments_text(value: str) -> dict:
    line = tl_line(tl_id(2))
    line["data"]["data"] = value
    return line


def _nm_file(result: dict | None = None, **metadata) -> bytes:
    document = nomadic_analysis("b-hostile", [result or nomadic_result("v1", [nomadic_event()])])
    document["batch_metadata"].update(metadata)
    return json.dumps(document).encode()


def _nm_text(text: str) -> bytes:
    return text.encode()


CSV_HEADER = ",".join(csv_columns.HEADER)


def _csv(*cells: str) -> bytes:
    row = ["q", "a.mp4", "pending", "00:01", "cat", "", "", "", "v1", "", "b-csv", "", "completed", "", "", "", ""]
    for assignment in cells:
        index, value = assignment
        row[index] = value
    return (CSV_HEADER + "\n" + ",".join(row) + "\n").encode()


HOSTILE = {
    "deep first line": (
        '{"task_id": "' + tl_id(1) + '", "status": "ready", "x": ' + "[" * DEEP + "]" * DEEP + "}\n"
    ).encode(),
    "deep later line": _tl_file("[" * DEEP + "]" * DEEP),
    "deep inside data.data": jsonl([_segments_text('{"incident": ' + "[" * DEEP + "]" * DEEP + "}")]),
    "deep inside a result": _nm_text(
        '{"batch_metadata": {"batch_id": "b"}, "results": [' + "[" * DEEP + "]" * DEEP + "]}"
    ),
    "deep batch_metadata": _nm_text('{"batch_metadata": ' + "[" * 1_000_000 + "]" * 1_000_000 + ', "results": []}'),
    "5,000-digit integer": _tl_file('{"task_id": "' + tl_id(3) + '", "status": "ready", "n": ' + "9" * 5000 + "}"),
    "5,000-digit CSV timestamp": _csv((3, "9" * 5000 + ":00:00")),
    "400-digit confidence": _nm_file().replace(b'"confidence": 0.9', b'"confidence": ' + b"9" * 400),
    "400-digit start time": _nm_file().replace(b'"t_start": "00:01"', b'"t_start": ' + b"1" * 400),
    "NaN": _nm_file().replace(b'"confidence": 0.9', b'"confidence": NaN'),
    "Infinity in a raw field": _tl_file('{"task_id": "' + tl_id(3) + '", "status": "ready", "x": Infinity}'),
    "negative input_tokens": jsonl([{**tl_line(tl_id(4)), "data": {"data": "t", "usage": {"input_tokens": -5}}}]),
    "1e19 output_tokens": jsonl([{**tl_line(tl_id(4)), "data": {"data": "t", "usage": {"output_tokens": 1e19}}}]),
    "year 1 at +01:00": _nm_file(created_at="0001-01-01T00:00:00+01:00"),
    "year 9999 at -05:00": _nm_file(created_at="9999-12-31T23:59:59-05:00"),
    "a CSV cell over 131,072 characters": _csv((6, "x" * 140_000)),
    "Latin-1 after the first 64 KB": _tl_file(*[tl_line(tl_id(10 + n), text="y" * 200) for n in range(400)])
    + b'{"task_id": "'
    + tl_id(9).encode()
    + b'", "status": "ready", "custom_id": "caf\xe9"}\n',
    "Latin-1 in a CSV after 64 KB": (
        CSV_HEADER + "\n" + ("q,a.mp4,pending,00:01,cat,,,,v1,,b-csv,,completed,,,,\n" * 1200)
    ).encode()
    + b"q,caf\xe9,pending,00:02,cat,,,,v2,,b-csv,,completed,,,,\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_file_is_refused_with_a_reason_and_writes_nothing(name):
    data = HOSTILE[name]
    run = import_bytes(data, "hostile.jsonl" if data[:1] != b"Q" else "hostile.csv", mode="time_based_metadata")
    assert run.outcome == SyncOutcome.FAILED, name
    assert run.error or run.malformed_lines
    # Where it is: a malformed line's number, or a line (or the encoding) in the refusal.
    assert run.malformed_lines or "line" in run.error.lower() or "utf-8" in run.error.lower(), run.error
    assert (Batch.objects.count(), Item.objects.count(), Event.objects.count()) == (0, 0, 0)


@pytest.mark.parametrize("name", ["deep later line", "5,000-digit integer", "Infinity in a raw field"])
def test_a_hostile_line_is_one_malformed_line_under_skip_invalid(name):
    run = import_bytes(HOSTILE[name], "h.jsonl", mode="general", skip_invalid=True)
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert len(run.malformed_lines) == 1 and Item.objects.count() == 1


def test_lone_surrogates_and_nul_are_stored_replaced(staff_client):
    line = tl_line(tl_id(5), text="bad \ud800 text \x00 here", custom_id="cam-\udfff")
    run = import_bytes(json.dumps(line).encode() + b"\n", "s.jsonl", mode="general")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    item = Item.objects.get()
    assert item.text == "bad \ufffd text \ufffd here" and item.custom_id == "cam-\ufffd"
    assert staff_client.get(run.batch.get_absolute_url()).status_code == 200


def test_one_hostile_line_from_a_provider_is_a_malformed_line_not_a_crashed_sync(tl_source, twelvelabs_fake):
    good = [tl_line(tl_id(100 + n), text=f"answer {n}") for n in range(100)]
    hostile = "[" * DEEP + "]" * DEEP
    twelvelabs_fake.add_batch(tl.GENERAL_BATCH, [*good[:50], hostile, *good[50:]], mode="general")
    run = fetch.fetch_batch(tl_source, tl.GENERAL_BATCH)
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert run.items_created == 100 and len(run.malformed_lines) == 1
    assert run.malformed_lines[0]["line"] == 51


def test_a_provider_answer_nested_too_deeply_is_a_clear_failure(tl_source, twelvelabs_fake):
    from tests.fakes.server import Reply

    twelvelabs_fake.inject(
        "batch", Reply(200, ("[" * DEEP + "]" * DEEP).encode(), {"Content-Type": "application/json"})
    )
    run = fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    assert run.outcome == SyncOutcome.FAILED and "not JSON" in run.error


# --- Property-based: arbitrary and mutated inputs import cleanly or are refused ---------

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _mutate(data: bytes, position: int, replacement: bytes) -> bytes:
    position %= max(len(data), 1)
    return data[:position] + replacement + data[position + len(replacement) :]


SEEDS = {
    "jsonl": jsonl(
        [
            tl_line(tl_id(1), segments={"incident": [{"start_time": 1, "end_time": 2, "metadata": {"label": "x"}}]}),
            tl_line(tl_id(2), "failed"),
        ]
    ),  # fmt: skip
    "json": json.dumps(nomadic_analysis("b-fuzz", [nomadic_result("v1", [nomadic_event()])])).encode(),
    "csv": _csv(),
}


def _import_is_clean_or_refused(data: bytes, name: str, **options) -> None:
    """The property: a clean import, or a refusal with a message; never an exception, never a partial write."""
    before = (Batch.objects.count(), Item.objects.count(), Event.objects.count())
    run = import_bytes(data, name, **options)
    if run.outcome == SyncOutcome.FAILED:
        assert run.error or run.malformed_lines
        assert (Batch.objects.count(), Item.objects.count(), Event.objects.count()) == before
    else:
        assert run.batch is not None and run.batch.item_total == run.batch.items.count()


@FUZZ
@given(kind=st.sampled_from(sorted(SEEDS)), position=st.integers(min_value=0), junk=st.binary(min_size=1, max_size=12))
def test_fuzz_mutated_files_import_cleanly_or_are_refused(kind, position, junk):
    _import_is_clean_or_refused(_mutate(SEEDS[kind], position, junk), f"fuzz.{kind}", mode="time_based_metadata",
                                batch_id="fuzzbatch")  # fmt: skip


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_arbitrary_bytes_are_refused_or_imported(data):
    _import_is_clean_or_refused(data, "fuzz.bin", batch_id="fuzzbatch", mode="general")


@FUZZ
@given(value=json_values)
def test_fuzz_twelvelabs_parser_accepts_or_refuses_any_json(value):
    for mode in ("", "general", "time_based_metadata"):
        with contextlib.suppress(RecordError):
            twelvelabs.parse_result(value, mode)
    records = list(twelvelabs.parse_lines([json.dumps(value)], "general"))
    assert len(records) == 1 or not records


@FUZZ
@given(value=json_values, video=json_values)
def test_fuzz_nomadicml_parsers_accept_or_refuse_any_json(value, video):
    for parse in (nomadicml.parse_result, nomadicml.parse_batch_metadata):
        with contextlib.suppress(RecordError):
            parse(value)
    with contextlib.suppress(RecordError):
        nomadicml.parse_status("b1", {"videos": [video], "config": value if isinstance(value, dict) else {}}, "")
    pointer = nomadicml.api.VideoPointer("v1")
    with contextlib.suppress(RecordError):
        nomadicml.parse_bulk_entry(value if isinstance(value, dict) else None, pointer)


@FUZZ
@given(text=st.text(alphabet=string.printable + "–é\u00a0", max_size=40))
def test_fuzz_csv_cells_read_back_what_was_written(text):
    values = {column.key: "" for column in csv_columns.COLUMNS} | {
        "label": text, "category": "\u2603", "t_start": "00:01", "t_end": "00:01", "custom_id": "",
        "provider_item_id": "v1", "confidence": None, "approval": "pending",
    }  # fmt: skip
    import csv
    import io

    out = io.StringIO()
    csv.writer(out).writerows([csv_columns.HEADER, csv_columns.write_row(values)])
    (row,) = csv.DictReader(io.StringIO(out.getvalue(), newline=""))
    assert csv_columns.read_row(row)[0]["label"] == text
