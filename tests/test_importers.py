from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from reviewer import csv_columns, importers
from reviewer.models import Batch, Decision, Event, Item, SyncOutcome, SyncRun
from tests.factories import (
    import_bytes,
    jsonl,
    nomadic_analysis,
    nomadic_event,
    nomadic_result,
    tl_id,
    tl_line,
)

pytestmark = pytest.mark.django_db

TIMED = {
    "incident": [
        {"start_time": 12.5, "end_time": 18.0, "metadata": {"label": "near miss", "severity": "high"}},
        {"start_time": "01:01:05", "end_time": "01:01:09.500", "metadata": {"label": "hard brake"}},
    ],
    "scene": [],
}


def snapshot() -> tuple:
    return (
        list(Batch.objects.values_list("provider_batch_id", "status", "event_total")),
        list(Item.objects.values_list("provider_item_id", "status", "content_hash")),
        list(Event.objects.values_list("key", "approval", "content_hash")),
    )


def test_it_imports_twelvelabs_time_based_results_as_events():
    data = jsonl(
        [
            tl_line(tl_id(1), segments=TIMED, custom_id="cam-1"),
            tl_line(tl_id(2), "failed"),
            tl_line(tl_id(3), "canceled"),
            "",
            tl_line(tl_id(4), segments={"incident": [], "scene": []}),
        ]
    )
    run = import_bytes(data, "68f4ddaf8aaa60d33df0e800.jsonl", mode="time_based_metadata")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    batch = run.batch
    assert batch.provider_batch_id == "68f4ddaf8aaa60d33df0e800"
    assert batch.mode == "time_based_metadata"
    assert batch.status == "completed"
    assert batch.item_counts == {"ready": 2, "failed": 1, "canceled": 1}
    events = list(Event.objects.order_by("start_seconds"))
    assert [(e.category, e.label, e.severity, e.start_seconds, e.end_seconds) for e in events] == [
        ("incident", "near miss", "high", 12.5, 18.0),
        ("incident", "hard brake", "", 3665.0, 3669.5),
    ]
    assert events[1].t_start == "01:01:05"
    assert events[0].confidence is None  # never invented
    failed = Item.objects.get(status="failed")
    assert (failed.error_code, failed.error_message) == ("asset_unavailable", "The asset could not be read.")


def test_it_imports_twelvelabs_general_text_and_derives_processing_status():
    data = jsonl([tl_line(tl_id(1), text="A keynote."), tl_line(tl_id(2), "queued"), tl_line(tl_id(3), "processing")])
    run = import_bytes(data, "x.jsonl", batch_id="68f4ddaf8aaa60d33df0e7a1", mode="general")
    assert run.outcome == SyncOutcome.SUCCEEDED
    assert run.batch.mode == "general"
    assert run.batch.status == "processing"
    assert Item.objects.get(provider_item_id=tl_id(1)).text == "A keynote."
    assert Event.objects.count() == 0


def test_it_imports_the_same_file_twice_without_changes_and_keeps_decisions(staff):
    data = jsonl([tl_line(tl_id(1), segments=TIMED), tl_line(tl_id(2), "failed")])
    first = import_bytes(data, "b.jsonl", batch_id="68f4ddaf8aaa60d33df0e801", mode="time_based_metadata")
    event = Event.objects.first()
    Event.objects.filter(pk=event.pk).update(approval="rejected", decided_by=staff, decided_at=first.started_at)
    before = snapshot()

    second = import_bytes(data, "b.jsonl", batch_id="68f4ddaf8aaa60d33df0e801")  # the cached batch's mode

    assert (second.items_created, second.items_updated, second.items_unchanged) == (0, 0, 2)
    assert (second.events_created, second.events_updated, second.events_unchanged) == (0, 0, 2)
    assert snapshot() == before
    assert Event.objects.get(pk=event.pk).approval == "rejected"


def test_it_keeps_a_decision_when_the_provider_changes_the_event():
    data = nomadic_analysis("b1", [nomadic_result("v1", [nomadic_event(approval="pending")])])
    import_bytes(json.dumps(data).encode(), "b1.json")
    event = Event.objects.get()
    Event.objects.filter(pk=event.pk).update(approval="invalid", decided_at=event.item.batch.created_at)

    data["results"][0]["events"][0].update(approval="approved", aiAnalysis="new text")
    run = import_bytes(json.dumps(data).encode(), "b1.json")

    event.refresh_from_db()
    assert run.events_updated == 1
    assert (event.approval, event.provider_approval, event.ai_analysis) == ("invalid", "approved", "new text")


def test_it_refuses_a_file_with_malformed_lines_and_changes_nothing():
    import_bytes(jsonl([tl_line(tl_id(1), text="old")]), "c.jsonl", batch_id="68f4ddaf8aaa60d33df0e802")
    before = snapshot()
    data = jsonl(
        [
            tl_line(tl_id(1), text="new"),
            "{not json",
            tl_line(tl_id(2), "exploded"),
            {"custom_id": "no task id", "status": "ready"},
        ]
    )

    run = import_bytes(data, "c.jsonl", batch_id="68f4ddaf8aaa60d33df0e802")

    assert run.outcome == SyncOutcome.FAILED
    assert [bad["line"] for bad in run.malformed_lines] == [2, 3, 4]
    assert "invalid JSON" in run.malformed_lines[0]["error"]
    assert "unknown item status 'exploded'" in run.malformed_lines[1]["error"]
    assert "missing 'task_id'" in run.malformed_lines[2]["error"]
    assert "nothing was imported" in run.error
    assert snapshot() == before
    assert Batch.objects.get().last_error == run.error


def test_it_imports_valid_records_and_records_skipped_lines_when_asked():
    data = jsonl([tl_line(tl_id(1)), "garbage", tl_line(tl_id(2))])
    run = import_bytes(data, "d.jsonl", batch_id="68f4ddaf8aaa60d33df0e803", skip_invalid=True)
    assert run.outcome == SyncOutcome.SUCCEEDED
    assert run.items_created == 2
    assert run.malformed_lines == [{"line": 2, "error": run.malformed_lines[0]["error"]}]


def test_it_reports_a_duplicate_task_id():
    run = import_bytes(jsonl([tl_line(tl_id(1)), tl_line(tl_id(1))]), "e.jsonl", batch_id="68f4ddaf8aaa60d33df0e804")
    assert run.outcome == SyncOutcome.FAILED
    assert run.malformed_lines[0]["line"] == 2
    assert "duplicate task_id" in run.malformed_lines[0]["error"]


def test_it_imports_a_nomadicml_batch_analysis_json():
    data = nomadic_analysis(
        "rr-1",
        [
            nomadic_result(
                "v1",
                [
                    nomadic_event(approval="approved"),
                    nomadic_event("near_miss", "Bus", "rejected", "01:02:03", "01:02:09"),
                ],
            ),
            nomadic_result("v2", [], status="failed", analysis_id=None, error="decode error"),
            nomadic_result("v3", []),
        ],
        metadata={"site": "sf-3"},
    )
    run = import_bytes(json.dumps(data, indent=2).encode(), "rr-1.json")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    batch = run.batch
    assert (batch.provider, batch.mode, batch.prompt, batch.metadata) == (
        "nomadicml",
        "ask",
        "jaywalking",
        {"site": "sf-3"},
    )
    assert batch.viewer_url.endswith("/batch-view/rr-1")
    assert batch.approval_counts == {"approved": 1, "rejected": 1}
    late = Event.objects.get(category="near_miss")
    assert (late.start_seconds, late.end_seconds, late.label) == (3723.0, 3729.0, "Bus")
    failed = Item.objects.get(provider_item_id="v2")
    assert (failed.status, failed.error_message) == ("failed", "decode error")


def test_it_streams_json_across_read_boundaries(monkeypatch):
    monkeypatch.setattr(importers._JsonObjectStream, "_CHUNK", 7)
    results = [nomadic_result(f"v{n}", [nomadic_event(label=f'é {n} " {{ ]')]) for n in range(30)]
    run = import_bytes(json.dumps(nomadic_analysis("rr-2", results), indent=1).encode(), "rr-2.json")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert Item.objects.count() == 30
    assert Event.objects.filter(label='é 29 " { ]').exists()


def test_it_refuses_invalid_json_with_its_line_number():
    text = json.dumps(nomadic_analysis("rr-3", [nomadic_result("v1", [])]), indent=2)
    broken = text.replace('"video_id": "v1",', '"video_id": "v1",,')
    run = import_bytes(broken.encode(), "rr-3.json")
    assert run.outcome == SyncOutcome.FAILED
    line = broken.splitlines().index(next(line for line in broken.splitlines() if ",," in line)) + 1
    assert f"line {line}" in run.error
    assert Batch.objects.count() == 0


def test_it_reports_an_unknown_approval_in_json_with_its_line():
    results = [nomadic_result("v1", []), nomadic_result("v2", [nomadic_event(approval="maybe")])]
    text = json.dumps(nomadic_analysis("rr-4", results), indent=2)
    run = import_bytes(text.encode(), "rr-4.json")
    assert run.outcome == SyncOutcome.FAILED
    [bad] = run.malformed_lines
    assert "unknown approval 'maybe'" in bad["error"]
    assert text.splitlines()[bad["line"] - 1].strip() == "{"  # the line where result 1 starts
    assert Item.objects.count() == 0


CSV_HEADER = ",".join(csv_columns.HEADER)


def test_it_imports_a_nomadicml_csv_export():
    rows = [
        CSV_HEADER,
        'jaywalking,a.mp4,approved,00:01-00:02,lane_change,,Detected,medium,v1,a1,b9,https://app.nomadicml.com/x,completed,0.9,https://t/1.jpg,s3://b/a.mp4,"Two, jaywalkers"',
        'jaywalking,a.mp4,pending,01:00:05,near_miss,Bus,\'=cmd,high,v1,a1,b9,https://app.nomadicml.com/x,completed,,,s3://b/a.mp4,"Two, jaywalkers"',
        "jaywalking,v2,invalid,00:10-00:12,near_miss,Kid,,low,v2,a2,b9,https://app.nomadicml.com/x,completed,0.5,,,",
    ]
    run = import_bytes(("\r\n".join(rows) + "\r\n").encode(), "b9.csv")
    assert run.outcome == SyncOutcome.SUCCEEDED, (run.error, run.malformed_lines)
    assert (run.batch.provider_batch_id, run.batch.prompt) == ("b9", "jaywalking")
    v1 = Item.objects.get(provider_item_id="v1")
    assert (v1.video_name, v1.text, v1.analysis_id) == ("a.mp4", "Two, jaywalkers", "a1")
    assert Item.objects.get(provider_item_id="v2").video_name == ""  # "Video" fell back to the id
    first, second = v1.events.order_by("position")
    # A blank Label is a label equal to the category: kept blank (the page shows the category).
    assert (first.label, first.start_seconds, first.end_seconds, first.confidence) == ("", 1.0, 2.0, 0.9)
    assert (second.ai_analysis, second.start_seconds, second.confidence) == ("=cmd", 3605.0, None)
    assert sorted(Event.objects.values_list("approval", flat=True)) == ["approved", "invalid", "pending"]


def test_it_groups_csv_rows_of_one_video_that_are_not_together():
    row = "q,{v},pending,00:0{s},cat,,,,{v},,b9,,completed,,,,"
    rows = [row.format(v="v1", s=1), row.format(v="v2", s=2), row.format(v="v1", s=3)]
    run = import_bytes(("\n".join([CSV_HEADER, *rows]) + "\n").encode(), "b9.csv")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.malformed_lines
    assert list(Item.objects.order_by("position").values_list("provider_item_id", flat=True)) == ["v1", "v2"]
    assert list(Item.objects.get(provider_item_id="v1").events.values_list("t_start", flat=True)) == ["00:01", "00:03"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"hello,world\n1,2\n", "Unrecognized file"),
        (b'{"foo": 1}\n', "Unrecognized JSON"),
        (CSV_HEADER.encode() + b"\n", "no rows"),
    ],
)
def test_it_refuses_files_it_cannot_read_with_a_clear_message(data, message):
    run = import_bytes(data, "f.bin")
    assert run.outcome == SyncOutcome.FAILED
    assert message in run.error
    assert Batch.objects.count() == 0


def test_it_refuses_a_file_of_the_other_provider():
    run = import_bytes(jsonl([tl_line(tl_id(1))]), "g.jsonl", provider="nomadicml")
    assert run.outcome == SyncOutcome.FAILED
    assert "TwelveLabs file, not NomadicML" in run.error


def test_the_command_imports_and_reports(tmp_path, capsys):
    path = tmp_path / "68f4ddaf8aaa60d33df0e805.jsonl"
    path.write_bytes(jsonl([tl_line(tl_id(1), segments=TIMED)]))
    call_command("import_results", str(path), "--mode", "time_based_metadata")
    assert "items 1 new" in capsys.readouterr().out
    call_command("import_results", str(path), "--json")
    assert json.loads(capsys.readouterr().out)["items_unchanged"] == 1


def test_the_command_fails_with_line_numbers_and_a_hint(tmp_path, capsys):
    path = tmp_path / "68f4ddaf8aaa60d33df0e806.jsonl"
    path.write_bytes(jsonl([tl_line(tl_id(1)), "nope"]))
    with pytest.raises(CommandError, match="--skip-invalid"):
        call_command("import_results", str(path))
    assert f"{path.name}:2: invalid JSON" in capsys.readouterr().err
    assert Item.objects.count() == 0
    call_command("import_results", str(path), "--skip-invalid")
    assert Item.objects.count() == 1


def test_the_command_explains_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_results", str(tmp_path / "missing.jsonl"))


def test_it_records_every_import_as_a_sync_run():
    import_bytes(jsonl([tl_line(tl_id(1))]), "h.jsonl", batch_id="68f4ddaf8aaa60d33df0e807")
    import_bytes(b"", "h.jsonl")
    assert list(SyncRun.objects.order_by("id").values_list("outcome", flat=True)) == ["succeeded", "failed"]
    assert Decision.objects.count() == 0


def test_import_reads_uploads_without_loading_them_whole():
    # TextIOWrapper over the binary file: the reader pulls lines, never .read() of everything.
    class CountingBytesIO(io.BytesIO):
        largest = 0

        def read(self, size=-1):
            assert size != -1 and size is not None, "read the whole file"
            CountingBytesIO.largest = max(CountingBytesIO.largest, size)
            return super().read(size)

        def read1(self, size=-1):
            assert size != -1, "read the whole file"
            return super().read1(size)

    lines = [tl_line(tl_id(n)) for n in range(2000)]
    run = importers.import_file(CountingBytesIO(jsonl(lines)), name="big.jsonl", batch_id="68f4ddaf8aaa60d33df0e808")
    assert run.outcome == SyncOutcome.SUCCEEDED
    assert Item.objects.count() == 2000


def test_the_command_prints_the_same_json_shape_as_fetch_batch(tmp_path, capsys, tl_source, twelvelabs_fake):
    from tests.fakes import twelvelabs as tl

    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    call_command("fetch_batch", "tl", tl.TIMED_BATCH, "--json")
    fetched = json.loads(capsys.readouterr().out)
    path = tmp_path / f"{tl.TIMED_BATCH}.jsonl"
    path.write_bytes(jsonl(tl.timed_lines()))
    call_command("import_results", str(path), "--json")
    imported = json.loads(capsys.readouterr().out)
    assert imported.keys() == fetched.keys()
    assert (imported["trigger"], imported["outcome"], imported["events_created"]) == ("import", "succeeded", 0)
