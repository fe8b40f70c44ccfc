"""The TwelveLabs client against the fake API: batches, pages, the results stream, tasks, assets."""

from __future__ import annotations

import json
import threading
from functools import partial

import pytest

from reviewer.providers.http import ProviderError
from reviewer.providers.twelvelabs import TwelveLabsClient
from reviewer.records import ItemRecord, Malformed
from tests.conftest import TL_KEY
from tests.factories import tl_id, tl_line
from tests.fakes.server import Reply, cut_after
from tests.fakes.twelvelabs import GENERAL_BATCH, TIMED_BATCH, general_lines, timed_lines


@pytest.fixture
def client(twelvelabs_fake) -> TwelveLabsClient:
    return TwelveLabsClient(twelvelabs_fake.base_url, TL_KEY)


def test_it_reads_a_batch(twelvelabs_fake, client):
    twelvelabs_fake.add_batch(TIMED_BATCH, timed_lines(), status="processing")
    record = client.get_batch(TIMED_BATCH)
    assert (record.provider, record.provider_batch_id, record.mode, record.model_name) == (
        "twelvelabs", TIMED_BATCH, "time_based_metadata", "pegasus1.5"
    )  # fmt: skip
    assert (record.provider_status, record.status, record.completed_at) == ("processing", "processing", None)


def test_it_streams_every_item_status_with_time_based_events(twelvelabs_fake, client):
    twelvelabs_fake.add_batch(TIMED_BATCH, timed_lines())
    records = list(client.iter_results(TIMED_BATCH, "time_based_metadata"))
    assert [(r.provider_item_id, r.status) for r in records] == [
        (tl_id(1), "ready"), (tl_id(2), "ready"), (tl_id(3), "ready"), (tl_id(4), "failed"),
        (tl_id(5), "canceled"), (tl_id(6), "processing"), (tl_id(7), "queued"),
    ]  # fmt: skip
    numeric, strings = records[0].events, records[1].events
    assert [(e.category, e.label, e.severity, e.start_seconds, e.end_seconds, e.t_start, e.t_end) for e in numeric] == [
        ("incident", "near miss", "high", 12.5, 18.0, "00:12", "00:18"),
        ("incident", "hard brake", "medium", 3600.25, 3604.5, "01:00:00", "01:00:04"),
        ("scene", "highway", "", 0.0, 30.0, "00:00", "00:30"),
    ]
    assert [(e.start_seconds, e.end_seconds, e.t_start, e.t_end) for e in strings] == [(12.5, 63.0, "00:12", "01:03")]
    assert records[2].events == []
    assert (records[3].error_code, records[3].error_message) == ("video_duration_too_long", "The video is too long.")
    assert all(e.confidence is None for e in numeric)  # never invented


def test_it_streams_general_text_with_finish_reason_and_usage(twelvelabs_fake, client):
    twelvelabs_fake.add_batch(GENERAL_BATCH, general_lines(), mode="general")
    stop, length, *_ = records = list(client.iter_results(GENERAL_BATCH, "general"))
    assert [r.status for r in records] == ["ready", "ready", "failed", "processing", "queued", "canceled"]
    assert (stop.text, stop.finish_reason, stop.input_tokens, stop.output_tokens) == (
        "This video covers the keynote launch.", "stop", 5, 10
    )  # fmt: skip
    assert (length.finish_reason, length.input_tokens, length.output_tokens) == ("length", None, 512)
    assert records[4].custom_id == ""  # null custom_id


def test_it_reports_malformed_lines_with_their_numbers_and_skips_blank_ones(twelvelabs_fake, client):
    lines = [tl_line(tl_id(1)), "", "{not json", tl_line(tl_id(2), "exploded"), "   ", tl_line(tl_id(1)),
             tl_line(tl_id(3))]  # fmt: skip
    twelvelabs_fake.add_batch(TIMED_BATCH, lines)
    records = list(client.iter_results(TIMED_BATCH, "time_based_metadata"))
    assert [r.provider_item_id for r in records if isinstance(r, ItemRecord)] == [tl_id(1), tl_id(3)]
    malformed = [(m.line, m.error) for m in records if isinstance(m, Malformed)]
    assert malformed == [
        (3, "invalid JSON: Expecting property name enclosed in double quotes (column 2)"),
        (4, "unknown item status 'exploded'"),
        (6, f"duplicate task_id {tl_id(1)} (first on line 1)"),
    ]


def test_it_reads_the_stream_lazily(twelvelabs_fake, client):
    # The server holds the rest of the body until the client has used the first line:
    # a client that read the whole body first would time out here.
    gate = threading.Event()

    def body():
        yield json.dumps(tl_line(tl_id(1))).encode() + b"\n"
        assert gate.wait(5)
        yield json.dumps(tl_line(tl_id(2))).encode() + b"\n"

    twelvelabs_fake.inject("results", Reply(200, body(), {"Content-Type": "application/jsonl"}))
    records = client.iter_results(TIMED_BATCH, "time_based_metadata")
    assert next(records).provider_item_id == tl_id(1)
    gate.set()
    assert [r.provider_item_id for r in records] == [tl_id(2)]


def test_it_raises_when_the_stream_breaks_mid_way(twelvelabs_fake, client):
    twelvelabs_fake.add_batch(TIMED_BATCH, timed_lines())
    twelvelabs_fake.inject("results", cut_after(3))
    records = client.iter_results(TIMED_BATCH, "time_based_metadata")
    assert len([next(records) for _ in range(3)]) == 3
    with pytest.raises(ProviderError) as caught:
        next(records)
    assert caught.value.message == (
        f"The results stream of batch {TIMED_BATCH} from TwelveLabs broke after line 3 (the answer was cut short)."
    )
    assert not caught.value.permanent


def test_it_refuses_an_html_page_instead_of_results(twelvelabs_fake, client):
    twelvelabs_fake.inject("results", Reply(200, b"<html><title>Login</title></html>", {"Content-Type": "text/html"}))
    with pytest.raises(ProviderError, match="with an HTML page"):
        client.iter_results(TIMED_BATCH, "time_based_metadata")


def test_it_asks_for_the_results_when_called_not_when_iterated(twelvelabs_fake, client):
    with pytest.raises(ProviderError, match=f"TwelveLabs has no batch {GENERAL_BATCH}"):
        client.iter_results(GENERAL_BATCH, "general")  # a 404 surfaces here, before any record is consumed


@pytest.mark.parametrize(
    "bad_id", ["", "123", "68f4ddaf8aaa60d33df0e80g", "../../assets/x", "68f4ddaf8aaa60d33df0e800/x"]
)
def test_it_validates_ids_before_any_request(twelvelabs_fake, client, bad_id):
    results = partial(client.iter_results, mode="time_based_metadata")
    for call in (client.get_batch, results, client.get_task, client.get_asset):
        with pytest.raises(ProviderError) as caught:
            call(bad_id)
        assert caught.value.permanent
        assert "24 hexadecimal characters" in caught.value.message
    assert twelvelabs_fake.calls == []


def test_it_lists_batches_without_asking_for_an_empty_page(twelvelabs_fake, client):
    for n in range(7):
        twelvelabs_fake.add_batch(tl_id(0x100 + n), [], created_at=f"2025-10-1{n}T12:00:00Z")
    records = client.list_batches(page_limit=3)
    assert [r.provider_batch_id for r in records] == [tl_id(0x100 + n) for n in reversed(range(7))]  # newest first
    assert twelvelabs_fake.calls_to("list") == 3  # pages 1-3 of 3, never page 4

    assert len(client.list_batches(page_limit=3, max_pages=2)) == 6


def test_it_reads_a_task_and_its_asset_thumbnail(twelvelabs_fake, client):
    asset_id = tl_id(0xA55E7)
    twelvelabs_fake.tasks[tl_id(1)] = {
        "task_id": tl_id(1), "custom_id": "cam-1", "batch_id": TIMED_BATCH, "status": "ready",
        "created_at": "2025-10-19T12:00:00Z", "completed_at": "2025-10-19T12:03:00.250Z",
        "video_source": {"type": "asset", "asset_id": asset_id, "system_metadata": {"duration": 125.4}},
    }  # fmt: skip
    twelvelabs_fake.assets[asset_id] = {
        "thumbnail": {"status": "ready", "representative_url": "https://cdn.example.com/t.jpg"},
        "hls": {"status": "processing"},
    }
    task = client.get_task(tl_id(1))
    assert (task.status, task.batch_id, task.custom_id, task.asset_id, task.duration) == (
        "ready", TIMED_BATCH, "cam-1", asset_id, 125.4
    )  # fmt: skip
    assert task.completed_at.microsecond == 250000
    assert client.get_asset(asset_id).thumbnail_url == "https://cdn.example.com/t.jpg"

    twelvelabs_fake.assets[asset_id]["thumbnail"] = {"status": "processing"}
    assert client.get_asset(asset_id).thumbnail_url == ""


def test_it_refuses_a_batch_that_breaks_the_contract(twelvelabs_fake, client):
    twelvelabs_fake.inject("batch", Reply.json({"status": "completed"}))  # no batch_id
    with pytest.raises(ProviderError, match="TwelveLabs sent a batch that cannot be read: missing 'batch_id'"):
        client.get_batch(TIMED_BATCH)
