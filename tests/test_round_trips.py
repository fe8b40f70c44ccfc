"""Export -> import -> export: identical files, no new or removed events, decisions stay on their events.

For each provider and each format: our JSON, our CSV, and the SDK's CSV (``as_csv=True``:
"Video Name" and the unix timestamp columns). Plus the CSV's formula guard, both ways.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from reviewer import csv_columns, fetch, review
from reviewer.models import Decision, Event, SyncOutcome
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result
from tests.fakes import nomadicml as nm
from tests.fakes import twelvelabs as tl

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["twelvelabs", "nomadicml"])
def fetched(request, staff):
    """A batch fetched from the provider's fake, with one human decision on it."""
    if request.param == "twelvelabs":
        request.getfixturevalue("twelvelabs_fake").add_batch(tl.TIMED_BATCH, tl.timed_lines())
        run = fetch.fetch_batch(request.getfixturevalue("tl_source"), tl.TIMED_BATCH)
    else:
        request.getfixturevalue("nomadic_fake").add_batch(nm.ASK_BATCH, nm.ask_videos())
        run = fetch.fetch_batch(request.getfixturevalue("nomadic_source"), nm.ASK_BATCH)
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    decided = run.batch.events.order_by("id")[1]
    decision = "rejected" if decided.approval != "rejected" else "approved"
    review.decide(decided, decision, staff, note="checked")
    return run.batch, decided.pk, decision


def _export(client, batch, file_format: str) -> bytes:
    return b"".join(client.get(f"/batches/{batch.pk}/export.{file_format}").streaming_content)


def _sdk_csv(our_csv: bytes, batch) -> bytes:
    """The same rows as the SDK's as_csv=True writes them: "Video Name", unix timestamps after Timestamp."""
    rows = list(csv.reader(io.StringIO(our_csv.decode())))
    events = list(batch.events.order_by("item__position", "item_id", "position"))
    assert len(events) == len(rows) - 1
    out = io.StringIO()
    writer = csv.writer(out)
    header = rows[0]
    header[1] = "Video Name"
    at = header.index("Timestamp") + 1
    writer.writerow(header[:at] + ["unix_timestamp_start", "unix_timestamp_end"] + header[at:])
    for row, event in zip(rows[1:], events, strict=True):
        unix = event.overlay.get("unix_timestamp", {})
        cells = [repr(unix[side]) if unix.get(side) is not None else "" for side in ("start", "end")]
        writer.writerow(row[:at] + cells + row[at:])
    return out.getvalue().encode()


def _state():
    return sorted(
        Event.objects.values_list("id", "key", "approval", "provider_approval", "decided_by", "start_seconds",
                                  "end_seconds", "overlay", "metadata", "raw")
    )  # fmt: skip


@pytest.mark.parametrize("file_format", ["json", "csv", "sdk-csv"])
def test_an_export_imports_back_unchanged_and_keeps_every_decision(fetched, staff_client, file_format):
    batch, decided_pk, decision = fetched
    first_csv, first_json = _export(staff_client, batch, "csv"), _export(staff_client, batch, "json")
    document = {"json": first_json, "csv": first_csv, "sdk-csv": _sdk_csv(first_csv, batch)}[file_format]
    before, decisions = _state(), Decision.objects.count()

    run = import_bytes(document, f"{batch.provider_batch_id}.{file_format.split('-')[-1]}")

    assert run.outcome == SyncOutcome.SUCCEEDED, (run.error, run.malformed_lines)
    assert run.batch == batch  # into the cached batch, not a copy beside it
    assert (run.items_created, run.events_created, run.events_removed) == (0, 0, 0)
    assert _state() == before  # same events, same decisions, raw payloads and exact seconds kept
    assert Decision.objects.count() == decisions
    decided = Event.objects.get(pk=decided_pk)
    assert (decided.approval, decided.decided_by.username) == (decision, "alice")
    assert _export(staff_client, batch, "csv") == first_csv
    assert _export(staff_client, batch, "json") == first_json


@pytest.mark.parametrize("file_format", ["json", "csv"])
def test_an_export_imports_into_an_empty_archive_and_exports_the_same(fetched, staff_client, file_format):
    batch, _, _ = fetched
    first = _export(staff_client, batch, file_format)
    batch.delete()
    run = import_bytes(first, f"{batch.provider_batch_id}.{file_format}", provider=batch.provider)
    assert run.outcome == SyncOutcome.SUCCEEDED, (run.error, run.malformed_lines)
    assert _export(staff_client, run.batch, file_format) == first
    again = import_bytes(first, f"{batch.provider_batch_id}.{file_format}", provider=batch.provider)
    assert (again.events_created, again.events_removed) == (0, 0)


def test_a_filtered_export_reimported_leaves_the_other_events_alone(fetched, staff_client):
    batch, decided_pk, _ = fetched
    decided = Event.objects.get(pk=decided_pk)
    total = batch.events.count()
    filtered = b"".join(
        staff_client.get(f"/batches/{batch.pk}/export.json?approval={decided.approval}").streaming_content
    )
    run = import_bytes(filtered, "filtered.json")
    assert (run.outcome, run.events_created, run.events_removed) == (SyncOutcome.SUCCEEDED, 0, 0)
    assert batch.events.count() == total


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r", "'", "'=", "''"])
def test_every_formula_prefix_survives_a_csv_round_trip(prefix):
    value = prefix + "SUM(A1:A9)"
    values = {column.key: "" for column in csv_columns.COLUMNS} | {
        "label": value, "ai_analysis": value, "category": "c", "t_start": "00:01", "t_end": "00:01",
        "custom_id": "", "provider_item_id": "v1", "confidence": None, "approval": "pending",
    }  # fmt: skip
    cells = csv_columns.write_row(values)
    assert not any(cell.startswith(csv_columns.FORMULA_PREFIXES) for cell in cells)  # safe in a spreadsheet
    out = io.StringIO()
    csv.writer(out).writerows([csv_columns.HEADER, cells])
    (row,) = csv.DictReader(io.StringIO(out.getvalue(), newline=""))
    read, _, _ = csv_columns.read_row(row)
    assert (read["label"], read["ai_analysis"]) == (value, value)


def test_labels_with_every_formula_prefix_keep_their_events_through_our_csv(staff_client):
    prefixes = ["=", "+", "-", "@", "\t", "\r", "'"]
    events = [nomadic_event(category="c", label=f"{prefix}cmd", t_start=f"00:0{n}", t_end=f"00:0{n}")
              for n, prefix in enumerate(prefixes)]  # fmt: skip
    run = import_bytes(json.dumps(nomadic_analysis("b-formula", [nomadic_result("v1", events)])).encode(), "f.json")
    batch = run.batch
    first = _export(staff_client, batch, "csv")
    assert b"'=cmd" in first and b"'\tcmd" in first and b"'\rcmd" in first

    again = import_bytes(first, "b-formula.csv")

    assert (again.outcome, again.events_created, again.events_removed) == (SyncOutcome.SUCCEEDED, 0, 0)
    assert sorted(batch.events.values_list("label", flat=True)) == sorted(f"{prefix}cmd" for prefix in prefixes)
    assert _export(staff_client, batch, "csv") == first


@pytest.mark.parametrize("query", ["sort=severity", "sort=confidence", "severity=high", "severity=low"])
@pytest.mark.parametrize("file_format", ["json", "csv"])
def test_twin_events_keep_their_decisions_through_sorted_or_filtered_exports(staff_client, staff, query, file_format):
    """Two events alike in category, time and label, told apart by their other fields, not their order."""
    twins = [
        nomadic_event(category="near_miss", label="bus", severity="low", aiAnalysis="minor", confidence=0.9),
        nomadic_event(category="near_miss", label="bus", severity="high", aiAnalysis="dangerous", confidence=0.4),
    ]
    run = import_bytes(json.dumps(nomadic_analysis("b-twins", [nomadic_result("v1", twins)])).encode(), "t.json")
    low, high = run.batch.events.order_by("position")
    review.decide(high, "rejected", staff, note="checked")
    document = b"".join(staff_client.get(f"/batches/{run.batch.pk}/export.{file_format}?{query}").streaming_content)

    again = import_bytes(document, f"b-twins.{file_format}")

    assert (again.outcome, again.events_created, again.events_removed) == (SyncOutcome.SUCCEEDED, 0, 0)
    low.refresh_from_db()
    high.refresh_from_db()
    assert (high.severity, high.ai_analysis, high.approval, high.decided_by) == ("high", "dangerous", "rejected", staff)
    assert (low.severity, low.ai_analysis, low.approval, low.decided_at) == ("low", "minor", "pending", None)


def test_a_label_that_repeats_its_category_survives_our_csv(staff_client):
    events = [nomadic_event(category="Collision", label="Collision")]
    run = import_bytes(json.dumps(nomadic_analysis("b-label", [nomadic_result("v1", events)])).encode(), "l.json")
    before = _export(staff_client, run.batch, "json")
    import_bytes(_export(staff_client, run.batch, "csv"), "b-label.csv")
    assert Event.objects.get().label == "Collision"
    assert _export(staff_client, run.batch, "json") == before


def test_an_event_with_only_an_end_time_round_trips_through_our_csv(staff_client):
    events = [nomadic_event(t_start="", t_end="00:05")]
    run = import_bytes(json.dumps(nomadic_analysis("b-end", [nomadic_result("v1", events)])).encode(), "e.json")
    first = _export(staff_client, run.batch, "csv")
    again = import_bytes(first, "b-end.csv")
    assert (again.outcome, again.events_created) == (SyncOutcome.SUCCEEDED, 0), again.error
    assert _export(staff_client, run.batch, "csv") == first
