"""Watching the moment in Chromium: a real video from each provider's fake, at the event's time.

TwelveLabs streams HLS (hls.js), NomadicML a signed MP4; both come from tests/fakes/cdn.py,
which serves ffmpeg-made files with Range requests and expiring signatures.
"""

from __future__ import annotations

import time

import pytest

from reviewer import fetch
from reviewer.models import Event
from tests.conftest import give_tl_videos
from tests.factories import tl_id, tl_line
from tests.fakes import nomadicml as nm

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST, SECOND = (5.0, 8.0), (12.0, 15.0)  # two events inside the 20-second clip
PRE_ROLL = 2.0
TL_BATCH = "68f4ddaf8aaa60d33df0e8f0"


@pytest.fixture(params=["twelvelabs", "nomadicml"])
def watched(request, cdn):
    """A fetched batch of one video with two events; returns (provider, first event, second event)."""
    if request.param == "twelvelabs":
        fake, source = request.getfixturevalue("twelvelabs_fake"), request.getfixturevalue("tl_source")
        segments = {"incident": [{"start_time": start, "end_time": end, "metadata": {"label": label}}
                                 for (start, end), label in ((FIRST, "near miss"), (SECOND, "hard brake"))]}  # fmt: skip
        fake.add_batch(TL_BATCH, [tl_line(tl_id(0xF1), segments=segments)])
        give_tl_videos(fake, cdn, [tl_id(0xF1)])
        run = fetch.fetch_batch(source, TL_BATCH)
    else:
        fake, source = request.getfixturevalue("nomadic_fake"), request.getfixturevalue("nomadic_source")
        events = [nm.ui_event("near_miss", *FIRST, "near miss"), nm.ui_event("lane_change", *SECOND, "lane change")]
        fake.add_batch(nm.ASK_BATCH, [nm.video("v-watch", events)])
        fake.video_urls["v-watch"] = cdn.signer("clip.mp4")
        run = fetch.fetch_batch(source, nm.ASK_BATCH)
    assert run.outcome == "succeeded", run.error
    first, second = Event.objects.filter(batch=run.batch).order_by("start_seconds")
    return request.param, run.batch, first, second


def player_state(page) -> dict:
    return page.evaluate(
        """() => { const p = window.reviewerPlayer; return p && {event: p.eventId, time: p.video.currentTime,
             ready: p.video.readyState, paused: p.video.paused, firstFrame: p.firstFrame || null,
             current: document.querySelector('#event-pane .mark.is-current')?.dataset.event}; }"""
    )


def wait_time_near(page, seconds: float, tolerance: float = 0.5) -> None:
    page.wait_for_function(
        f"() => window.reviewerPlayer && window.reviewerPlayer.video.readyState >= 2"
        f" && Math.abs(window.reviewerPlayer.video.currentTime - {seconds}) <= {tolerance}",
        timeout=15_000,
    )


def test_an_event_plays_from_its_pre_roll_loops_and_steps_between_events(logged_in_page, live_server, watched, cdn):
    provider, batch, first, second = watched
    page = logged_in_page
    page.goto(live_server.url + batch.get_absolute_url())

    clicked = page.evaluate("() => performance.now()")
    page.locator(f"#event-{first.pk} td.time button.watch").click()
    page.wait_for_function("() => window.reviewerPlayer && window.reviewerPlayer.firstFrame", timeout=15_000)
    state = player_state(page)
    print(f"\n{provider}: first frame {(state['firstFrame']['at'] - clicked) / 1000:.2f} s after the click")
    assert abs(state["firstFrame"]["position"] - (FIRST[0] - PRE_ROLL)) <= 0.5, state  # the pre-roll start
    assert state["event"] == str(first.pk) and state["current"] == str(first.pk)

    # It stops at the event's end; with loop on it goes back to the event's start instead.
    page.wait_for_function("() => window.reviewerPlayer.video.paused", timeout=15_000)
    assert FIRST[1] - 0.1 <= player_state(page)["time"] <= FIRST[1] + 0.6
    page.keyboard.press("l")
    page.keyboard.press(" ")
    page.wait_for_function(
        f"() => !window.reviewerPlayer.video.paused && window.reviewerPlayer.video.currentTime < {FIRST[1]}"
    )
    page.evaluate(f"() => {{ window.reviewerPlayer.video.currentTime = {FIRST[1] - 0.3}; }}")
    wait_time_near(page, FIRST[0] + 0.5, tolerance=0.6)  # looped back to the start, playing on
    assert not player_state(page)["paused"]
    page.keyboard.press("l")  # loop off again for the rest

    # ] and [ move between the events of this video, each from its pre-roll.
    page.keyboard.press("]")
    wait_time_near(page, SECOND[0] - PRE_ROLL, tolerance=0.6)
    assert player_state(page)["current"] == str(second.pk)
    page.keyboard.press("[")
    wait_time_near(page, FIRST[0] - PRE_ROLL, tolerance=0.6)
    assert player_state(page)["current"] == str(first.pk)
    page.keyboard.press("0")  # back to the event's start
    wait_time_near(page, FIRST[0], tolerance=0.6)


def test_an_expired_url_is_refreshed_without_losing_the_position(logged_in_page, live_server, watched, cdn):
    provider, batch, first, _ = watched
    page = logged_in_page
    page.goto(live_server.url + batch.get_absolute_url())
    page.locator(f"#event-{first.pk} td.time button.watch").click()
    wait_time_near(page, FIRST[0] - PRE_ROLL, tolerance=0.6)
    page.keyboard.press(" ")  # pause, so the position is fixed
    page.evaluate("() => { window.reviewerPlayer.video.currentTime = 9.5; }")
    page.wait_for_function("() => window.reviewerPlayer.position >= 9.4")
    dead_url = page.evaluate("() => window.reviewerPlayer.media.url")

    cdn.expire_all()  # every URL handed out so far now answers 403
    # The browser needs the file again (its buffer dropped, as after a long pause) with the dead signature.
    # (An MP4 URL gets a harmless extra parameter, or Chromium would answer from its media cache.)
    if provider == "twelvelabs":
        page.evaluate("() => window.reviewerPlayer.hls.loadSource(window.reviewerPlayer.media.url)")
    else:
        page.evaluate("() => { const p = window.reviewerPlayer; p.video.src = p.media.url + '&again=1'; }")

    page.wait_for_function(f"() => window.reviewerPlayer.media.url !== {dead_url!r}", timeout=15_000)
    wait_time_near(page, 9.5, tolerance=0.6)
    assert any(status == 403 for _, status in cdn.served)  # the old URL really was refused


def test_review_mode_plays_the_event_and_a_decision_moves_on(logged_in_page, live_server, watched):
    _, batch, first, second = watched
    page = logged_in_page
    page.goto(live_server.url + f"/batches/{batch.pk}/review")
    wait_time_near(page, FIRST[0] - PRE_ROLL, tolerance=0.6)
    started = time.monotonic()
    page.keyboard.press("a")
    page.wait_for_function(f"() => window.reviewerPlayer && window.reviewerPlayer.eventId === '{second.pk}'")
    assert time.monotonic() - started < 5
    wait_time_near(page, SECOND[0] - PRE_ROLL, tolerance=0.6)
    assert Event.objects.get(pk=first.pk).approval == "approved"
