"""The NomadicML client against the fake API: status, bulk analyses in chunks, event conversion."""

from __future__ import annotations

import pytest

from reviewer.providers.http import ProviderError
from reviewer.providers.nomadicml import NomadicMLClient
from reviewer.records import Malformed
from tests.conftest import NM_KEY
from tests.fakes.nomadicml import AGENT_BATCH, ASK_BATCH, agent_videos, ask_videos, ui_event, video
from tests.fakes.server import Reply

VIEWER = "https://app.nomadicml.com"


@pytest.fixture
def client(nomadic_fake) -> NomadicMLClient:
    return NomadicMLClient(nomadic_fake.base_url, NM_KEY, viewer_base=VIEWER)


def fetch_all(client: NomadicMLClient, batch_id: str) -> list:
    report = client.get_status(batch_id)
    return list(client.iter_results(batch_id, report.videos))


def test_it_reads_an_ask_batch_status(nomadic_fake, client):
    nomadic_fake.add_batch(ASK_BATCH, ask_videos(), review_status="in_review",
                           review_status_updated_at="2025-09-20T09:12:00Z", metadata={"site": "sf-3"})  # fmt: skip
    report = client.get_status(ASK_BATCH)
    record = report.record
    assert (record.mode, record.analysis_type, record.prompt, record.category) == (
        "ask", "rapid_review", "jaywalking near intersections", "driving"
    )  # fmt: skip
    assert (record.provider_status, record.status) == ("completed", "completed")
    assert (record.provider_review_status, record.provider_review_status_updated_at, record.metadata) == (
        "in_review", "2025-09-20T09:12:00Z", {"site": "sf-3"}
    )  # fmt: skip
    assert record.viewer_url == f"{VIEWER}/use-cases/rapid-review/batch-view/{ASK_BATCH}"
    assert [(v.video_id, v.status, v.last_error) for v in report.videos] == [
        ("vid1", "completed", ""), ("vid2", "completed", ""), ("vid3", "failed", "decode error"), ("vid4", "failed", ""),
    ]  # fmt: skip


def test_it_reads_an_agent_batch_without_prompt_and_a_cancelled_one(nomadic_fake, client):
    nomadic_fake.add_batch(AGENT_BATCH, agent_videos(), kind="edge_case_agent", status="cancelled")
    record = client.get_status(AGENT_BATCH).record
    assert (record.mode, record.analysis_type, record.prompt, record.category) == ("agent", "edge_case_agent", "", "")
    assert (record.provider_status, record.status) == ("cancelled", "canceled")
    assert (record.provider_review_status, record.metadata) == ("", {})  # absent: tolerated


def test_it_converts_ui_format_events(nomadic_fake, client):
    nomadic_fake.add_batch(ASK_BATCH, ask_videos())
    vid1, vid2, vid3, vid4 = fetch_all(client, ASK_BATCH)
    assert (vid1.status, vid1.video_name, vid1.analysis_id, vid1.text, vid1.import_source_uri) == (
        "completed", "vid1.mp4", "an-vid1", "Two jaywalkers near the crosswalk.", "s3://fleet/vid1.mp4"
    )  # fmt: skip
    first, second = vid1.events
    assert (first.category, first.label, first.severity, first.ai_analysis) == (
        "jaywalking", "Pedestrian mid-block", "high", "Detected Pedestrian mid-block"
    )  # fmt: skip
    assert (first.start_seconds, first.end_seconds, first.t_start, first.t_end) == (61.5, 64.0, "01:01", "01:04")
    assert (first.confidence, first.provider_approval) == (0.9, "approved")
    assert first.thumbnail_url == "https://cdn.example.com/jaywalking-61.5.jpg"
    assert first.overlay == {
        "unix_timestamp": {"start": 1758310061.5, "end": 1758310064.0},
        "frame_gps_lat": {"start": 37.7749, "end": 37.7751},
        "frame_speed": {"start": 31.0, "end": None},
    }
    assert first.raw["time"] == "t=61.5"  # the wire event is kept as sent
    # No description: the label comes from data.label; no confidence: none (the SDK invents 0.85).
    assert (second.label, second.confidence, second.provider_approval) == ("Bus pass", None, "pending")
    assert (second.start_seconds, second.end_seconds, second.t_start, second.t_end) == (
        3605.0, 3610.25, "01:00:05", "01:00:10"
    )  # fmt: skip
    assert (vid2.video_name, vid2.events, vid2.text) == ("vid2", [], "No jaywalking observed.")
    assert (vid3.status, vid3.error_message, vid3.analysis_id) == ("failed", "decode error", "")
    assert (vid4.status, vid4.error_message) == ("failed", "Analysis not found")


def test_it_finds_agent_events_wherever_the_analysis_keeps_them(nomadic_fake, client):
    nomadic_fake.add_batch(AGENT_BATCH, agent_videos(), kind="edge_case_agent")
    edge1, edge2, edge3, edge4, edge5 = fetch_all(client, AGENT_BATCH)
    (sdk_form,) = edge1.events
    assert (sdk_form.category, sdk_form.label, sdk_form.t_start, sdk_form.t_end, sdk_form.provider_approval) == (
        "edge_case", "Debris on the highway", "00:05", "00:09", "rejected"
    )  # fmt: skip
    assert edge1.text == "Highway drive, mostly clear.\n1 edge case flagged."  # a list summary, joined
    (legacy,) = edge2.events
    assert (legacy.category, legacy.label, legacy.start_seconds, legacy.end_seconds, legacy.t_end) == (
        "edge_case", "Emergency vehicle", 20.25, 31.0, "00:31"
    )  # fmt: skip
    assert [e.category for e in edge3.events] == ["weather"]  # result.events
    assert [e.category for e in edge4.events] == ["construction_zone"]  # visual_analysis.events
    assert (edge5.status, edge5.error_message) == ("failed", "model timeout")


def test_it_prefers_analysis_events_and_falls_back_to_later_keys_only_when_empty(nomadic_fake, client):
    both = video("v1", [], events_key="events")
    both["analysis"]["detected_events"] = [ui_event("lane_change", 1, 2, "lane change")]
    nomadic_fake.add_batch(AGENT_BATCH, [both], kind="edge_case_agent")
    (record,) = fetch_all(client, AGENT_BATCH)
    assert [e.label for e in record.events] == ["lane change"]


def test_it_fetches_analyses_at_most_100_videos_at_a_time(nomadic_fake, client):
    nomadic_fake.add_batch(ASK_BATCH, [video(f"v{n:03d}", []) for n in range(250)])
    records = fetch_all(client, ASK_BATCH)
    assert [r.provider_item_id for r in records] == [f"v{n:03d}" for n in range(250)]
    assert nomadic_fake.bulk_sizes == [100, 100, 50]


def test_it_raises_for_a_failed_chunk_instead_of_dropping_its_videos(nomadic_fake, client):
    nomadic_fake.add_batch(ASK_BATCH, [video(f"v{n:03d}", []) for n in range(150)])
    nomadic_fake.inject("bulk", Reply.json({"detail": "Internal Server Error"}, 500), times=None, skip=1)
    report = client.get_status(ASK_BATCH)
    records = client.iter_results(ASK_BATCH, report.videos)
    assert len([next(records) for _ in range(100)]) == 100
    with pytest.raises(ProviderError, match=r"NomadicML had a server error \(HTTP 500: Internal Server Error\)"):
        next(records)


def test_it_retries_the_bulk_post_after_a_503(nomadic_fake, client):
    nomadic_fake.add_batch(ASK_BATCH, ask_videos())
    nomadic_fake.inject("bulk", Reply.json({"error": "upstream unavailable"}, 503))
    assert len(fetch_all(client, ASK_BATCH)) == 4
    assert nomadic_fake.calls_to("bulk") == 2


def test_it_reports_an_unreadable_analysis_as_malformed_by_position(nomadic_fake, client):
    broken = video("v2", [ui_event("x", 1, 2, "x")])
    broken["analysis"]["events"][0]["time"] = "t=soon"
    nomadic_fake.add_batch(ASK_BATCH, [video("v1", []), broken, video("v3", [])])
    records = fetch_all(client, ASK_BATCH)
    assert [getattr(r, "provider_item_id", None) for r in records] == ["v1", None, "v3"]
    assert records[1] == Malformed(2, "video v2: time 't=soon' is not a number or a timestamp")


def test_it_reports_fastapi_errors(nomadic_fake, client):
    with pytest.raises(ProviderError) as caught:
        client.get_status("no-such-batch")
    assert caught.value.message == "NomadicML has no batch no-such-batch (HTTP 404: Batch no-such-batch not found)."
    nomadic_fake.api_key = "rotated"
    with pytest.raises(ProviderError, match=r"refused the API key \(HTTP 401: Invalid API key\)"):
        client.get_status(ASK_BATCH)


@pytest.mark.parametrize("bad_id", ["", "a/b", "../status", "with space", "x" * 129])
def test_it_validates_batch_ids_before_any_request(nomadic_fake, client, bad_id):
    with pytest.raises(ProviderError) as caught:
        client.get_status(bad_id)
    assert caught.value.permanent
    with pytest.raises(ProviderError):
        list(client.iter_results(bad_id, []))
    assert nomadic_fake.calls == []
