"""Every payload shape met in real provider data, through the fetch path and the file path.

For each shape: nothing dropped in the cache, shown on the batch page, present in the
JSON export. The batches come from tests/fakes/shapes.py, served by the provider fakes
(fetch) or written as the provider or its SDK writes files (import).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from reviewer import fetch
from reviewer.models import Batch, Event, Item, SyncOutcome
from tests.factories import import_bytes
from tests.fakes import shapes

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["fetch", "file"])
def cached(request):
    """Load the three shape batches by one path; returns {batch id: Batch}."""
    if request.param == "fetch":
        tl_fake, nm_fake = request.getfixturevalue("twelvelabs_fake"), request.getfixturevalue("nomadic_fake")
        tl_source, nm_source = request.getfixturevalue("tl_source"), request.getfixturevalue("nomadic_source")
        tl_fake.add_batch(shapes.TL_TIMED, shapes.tl_timed_lines(), mode="time_based_metadata")
        tl_fake.add_batch(shapes.TL_GENERAL, shapes.tl_general_lines(), mode="general")
        nm_fake.add_batch(shapes.NM_BATCH, shapes.nm_videos(), kind="edge_case_agent", status="COMPLETED")
        runs = [fetch.fetch_batch(tl_source, shapes.TL_TIMED), fetch.fetch_batch(tl_source, shapes.TL_GENERAL),
                fetch.fetch_batch(nm_source, shapes.NM_BATCH)]  # fmt: skip
    else:
        runs = [
            import_bytes(shapes.tl_jsonl(shapes.tl_timed_lines()), f"{shapes.TL_TIMED}.jsonl",
                         mode="time_based_metadata"),
            import_bytes(shapes.tl_jsonl(shapes.tl_general_lines()), f"{shapes.TL_GENERAL}.jsonl", mode="general"),
            import_bytes(shapes.nm_batch_analysis_json(), "shapes.json"),
        ]  # fmt: skip
    for run in runs:
        assert run.outcome == SyncOutcome.SUCCEEDED, (run.error, run.malformed_lines)
        assert run.malformed_lines == []
    return {batch.provider_batch_id: batch for batch in Batch.objects.all()}


def _event(batch: Batch, **lookup) -> Event:
    return batch.events.get(**lookup)


def _exported_events(client, batch: Batch) -> list[dict]:
    document = json.loads(b"".join(client.get(f"/batches/{batch.pk}/export.json").streaming_content))
    return [event for result in document["results"] for event in result["events"]]


def _exported_results(client, batch: Batch) -> list[dict]:
    return json.loads(b"".join(client.get(f"/batches/{batch.pk}/export.json").streaming_content))["results"]


@dataclass
class Shape:
    name: str
    batch_id: str
    cache: Callable[[Batch], None]  # asserts on the cached rows
    page: list[str]  # texts the batch page shows (as escaped HTML)
    export: Callable[[list[dict]], None]  # asserts on the exported results


def _check_metadata_cache(batch):
    event = _event(batch, label="keynote opening")
    assert event.metadata == shapes.RICH_METADATA
    assert (event.severity, event.confidence) == ("low", 0.82)


def _check_metadata_export(results):
    event = next(e for r in results for e in r["events"] if e["label"] == "keynote opening")
    assert event["metadata"] == shapes.RICH_METADATA


def _check_string_times(batch):
    event = _event(batch, label="string times")
    assert (event.start_seconds, event.end_seconds, event.t_start, event.t_end) == (40.0, 44.5, "00:40", "00:44")


def _check_string_times_export(results):
    event = next(e for r in results for e in r["events"] if e["label"] == "string times")
    assert (event["start_seconds"], event["end_seconds"]) == (40.0, 44.5)


def _check_json_answer(batch):
    item = batch.items.get()
    assert json.loads(item.text) == shapes.JSON_ANSWER
    assert batch.events.count() == 0  # a general batch has no segments, whatever the JSON holds
    assert (item.finish_reason, item.error_code, item.error_message) == ("length", "output_truncated", shapes.TRUNCATED)


def _check_json_answer_export(results):
    (result,) = results
    assert json.loads(result["data"]["data"]) == shapes.JSON_ANSWER
    assert result["events"] == []
    assert result["error"]["message"] == shapes.TRUNCATED


def _check_warning(batch):
    item = batch.items.get(provider_item_id__endswith="c11")
    assert (item.status, item.error_code, item.error_message) == ("ready", "", shapes.WARNING)
    assert item.error_is_warning and item.events.count() == 1


def _check_warning_export(results):
    result = next(r for r in results if r["task_id"].endswith("c11"))
    assert result["error"] == {"message": shapes.WARNING} and len(result["events"]) == 1


def _check_canceled(batch):
    item = batch.items.get(status="canceled")
    assert (item.error_code, item.error_message) == ("batch_expired", "The batch expired before this task ran.")
    assert not item.error_is_warning


def _check_canceled_export(results):
    result = next(r for r in results if r["status"] == "canceled")
    assert result["error"]["code"] == "batch_expired"


def _check_overlay(batch):
    event = _event(batch, category="near_miss")
    assert event.overlay["frame_gps_lat"] == {"start": 37.7749, "end": 37.7751}
    assert event.overlay["frame_gps_lon"] == {"start": -122.4194, "end": None}  # "" means none
    assert event.overlay["frame_speed"] == {"start": 31.0, "end": 12.0}
    assert event.overlay["unix_timestamp"] == {"start": 1758310961.5, "end": 1758310964.25}
    assert event.overlay["frame_timestamp"]["start"] == "2025-09-19 19:22:42.000 UTC"


def _check_overlay_export(results):
    event = next(e for r in results for e in r["events"] if e["category"] == "near_miss")
    assert event["overlay"]["frame_gps_lat"] == {"start": 37.7749, "end": 37.7751}
    assert event["overlay"]["unix_timestamp"]["end"] == 1758310964.25


def _check_legacy(batch):
    event = _event(batch, label="debris on the road")
    assert (event.start_seconds, event.end_seconds, event.t_start, event.t_end) == (12.0, 15.0, "00:12", "00:15")


def _check_legacy_export(results):
    event = next(e for r in results for e in r["events"] if e["label"] == "debris on the road")
    assert (event["start_seconds"], event["end_seconds"]) == (12.0, 15.0)


def _check_processing(batch):
    item = batch.items.get(provider_item_id="v-busy")
    assert (item.status, item.error_message) == ("processing", "")
    assert batch.status == "completed" or batch.status == "processing"


def _check_processing_export(results):
    assert next(r for r in results if r["video_id"] == "v-busy")["status"] == "processing"


def _check_json_label(batch):
    assert _event(batch, category="near_miss").label == shapes.JSON_LABEL


def _check_json_label_export(results):
    assert any(e["label"] == shapes.JSON_LABEL for r in results for e in r["events"])


def _check_upper_case(batch):
    assert batch.provider_status == "completed"
    assert set(batch.items.values_list("status", flat=True)) == {"completed", "processing"}


def _check_upper_case_export(results):
    assert {r["status"] for r in results} == {"completed", "processing"}


SHAPES = [
    Shape("TwelveLabs metadata of every JSON type", shapes.TL_TIMED, _check_metadata_cache,
          ["importance", "5", "contains_speech", "yes", "stage, podium", "speaker_change_at", "00:01:23.500"],
          _check_metadata_export),
    Shape("TwelveLabs time_array entries keep their times", shapes.TL_TIMED, _check_metadata_cache,
          ["hazards", "00:12–00:14", "kind: hard brake", "00:15–00:16", "kind: swerve"], _check_metadata_export),
    Shape("TwelveLabs segment times as strings", shapes.TL_TIMED, _check_string_times, ["00:40–00:44"],
          _check_string_times_export),
    Shape("TwelveLabs general answer that is JSON stays text", shapes.TL_GENERAL, _check_json_answer,
          ["Loading dock at shift change", "output_truncated", "truncated"], _check_json_answer_export),
    Shape("TwelveLabs error on a ready item is a warning", shapes.TL_TIMED, _check_warning,
          ["Warning", shapes.WARNING], _check_warning_export),
    Shape("TwelveLabs canceled item with an error", shapes.TL_TIMED, _check_canceled,
          ["batch_expired", "The batch expired before this task ran."], _check_canceled_export),
    Shape("NomadicML overlay (GPS, speed, frame and unix times)", shapes.NM_BATCH, _check_overlay,
          ["GPS lat", "37.7749 → 37.7751", "GPS lon", "-122.419", "Speed", "31 → 12", "Frame time", "Unix time"],
          _check_overlay_export),
    Shape("NomadicML legacy agent events keep their times", shapes.NM_BATCH, _check_legacy,
          ["debris on the road", "00:12–00:15"], _check_legacy_export),
    Shape("NomadicML video without analysis while processing", shapes.NM_BATCH, _check_processing,
          ["Not analysed yet"], _check_processing_export),
    Shape("NomadicML label that is JSON text", shapes.NM_BATCH, _check_json_label, [shapes.JSON_LABEL],
          _check_json_label_export),
    Shape("Statuses in upper case", shapes.NM_BATCH, _check_upper_case, [], _check_upper_case_export),
]  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.name)
def test_every_real_payload_shape_is_kept_shown_and_exported(shape, cached, staff_client):
    batch = cached[shape.batch_id]
    shape.cache(batch)
    page = staff_client.get(f"/batches/{batch.pk}/").content.decode()
    for text in shape.page:
        assert html.escape(text, quote=True) in page or text in page, f"{text!r} is not on the page"
    shape.export(_exported_results(staff_client, batch))


def test_a_jsonl_file_of_a_new_batch_with_json_answers_asks_for_the_mode():
    run = import_bytes(shapes.tl_jsonl(shapes.tl_general_lines()), f"{shapes.TL_GENERAL}.jsonl")
    assert run.outcome == SyncOutcome.FAILED
    assert "Say which analysis mode" in run.error
    assert Item.objects.count() == 0


def test_a_jsonl_file_of_plain_text_needs_no_mode():
    line = {"task_id": "68f4ddaf8aaa60d33df0e8d0", "status": "ready", "data": {"data": "A keynote."}}
    run = import_bytes(shapes.tl_jsonl([line]), f"{shapes.TL_GENERAL}.jsonl")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert Item.objects.get().text == "A keynote."


def test_a_reimport_takes_the_mode_of_the_cached_batch(tl_source, twelvelabs_fake):
    twelvelabs_fake.add_batch(shapes.TL_GENERAL, shapes.tl_general_lines(), mode="general")
    fetch.fetch_batch(tl_source, shapes.TL_GENERAL)
    run = import_bytes(shapes.tl_jsonl(shapes.tl_general_lines()), f"{shapes.TL_GENERAL}.jsonl")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert (run.batch.source, run.events_created, Event.objects.count()) == (tl_source, 0, 0)


def test_a_nomadicml_web_app_csv_imports_with_every_row_kept(staff_client):
    header = ("Query,Video,Approval Status,Timestamp,Camera Time,unix_timestamp_start,unix_timestamp_end,"
              "Frame Gps Lat Start,Frame Gps Lat End,Frame Gps Lon Start,Frame Gps Lon End,Frame Timestamp Start,"
              "Frame Timestamp End,Category,Label,Severity,Video ID,Analysis ID,Share Link,Weather")  # fmt: skip
    rows = [
        "jaywalking,a.mp4,approved,1:47–1:56,19:22:42,1758310907,1758310916,37.77,37.78,-122.41,,t1,t2,"
        "near_miss,Bus,high,v1,an-1,https://app.nomadicml.com/events/v1/an-1,rain",
        "cyclists,b.mp4,pending,0:05–0:07,,,,,,,,,,lane_change,,low,v2,an-2,https://app.nomadicml.com/events/v2/an-2,",
        "jaywalking,a.mp4,rejected,2:01–2:03,,,,,,,,,,near_miss,Kid,medium,v1,an-1b,https://app.nomadicml.com/events/v1/an-1b,",
    ]  # fmt: skip
    run = import_bytes(("\n".join([header, *rows]) + "\n").encode("utf-8"), "web-batch-7.csv")
    assert run.outcome == SyncOutcome.SUCCEEDED, (run.error, run.malformed_lines)
    batch = run.batch
    assert (batch.provider, batch.provider_batch_id, batch.prompt) == ("nomadicml", "web-batch-7", "jaywalking")
    assert batch.imported_from == "web-batch-7.csv"  # the batch list names the file
    v1 = batch.items.get(provider_item_id="v1")
    assert (v1.video_name, v1.analysis_id) == ("a.mp4", "an-1")
    bus, kid = v1.events.order_by("start_seconds")
    assert (bus.start_seconds, bus.end_seconds, bus.t_start, bus.t_end) == (107.0, 116.0, "01:47", "01:56")
    assert bus.overlay["frame_gps_lat"] == {"start": 37.77, "end": 37.78}
    assert bus.overlay["frame_gps_lon"] == {"start": -122.41, "end": None}
    assert bus.overlay["unix_timestamp"] == {"start": 1758310907.0, "end": 1758310916.0}
    assert bus.metadata == {"Camera Time": "19:22:42", "Share Link": "https://app.nomadicml.com/events/v1/an-1",
                            "Weather": "rain"}  # fmt: skip
    # A per-row Analysis ID and Query differing from the item's and the batch's stay on the row's event.
    assert kid.metadata["Analysis ID"] == "an-1b"
    assert batch.items.get(provider_item_id="v2").events.get().metadata["Query"] == "cyclists"
    page = staff_client.get(f"/batches/{batch.pk}/").content.decode()
    assert 'href="https://app.nomadicml.com/events/v1/an-1"' in page and "Camera Time" in page and "rain" in page


def test_an_unrecognized_file_names_the_required_columns():
    run = import_bytes(b"Video,Label\na.mp4,x\n", "x.csv")
    assert run.outcome == SyncOutcome.FAILED
    assert "Video ID, Timestamp, Category" in run.error
