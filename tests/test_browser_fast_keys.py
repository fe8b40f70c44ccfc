"""Fast keys in a real browser: every key press is exactly one decision, in order, without a page reload."""

from __future__ import annotations

import pytest

from reviewer.models import Batch, Decision, Event
from tests.test_browser_review import open_demo_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=[0.0, 0.3], ids=["server answers at once", "server answers after 300 ms"])
def server_delay(request, monkeypatch):
    """Every decision's answer held back by the server (live_server runs in this process)."""
    import time

    from reviewer.urls import urlpatterns

    if request.param:
        pattern = next(entry for entry in urlpatterns if getattr(entry, "name", "") == "event_decision")
        decide = pattern.callback

        def slow(*args, **kwargs):
            time.sleep(request.param)
            return decide(*args, **kwargs)

        monkeypatch.setattr(pattern, "callback", slow)
    return request.param


def test_twenty_decisions_typed_20_ms_apart_are_twenty_decisions_in_order(logged_in_page, live_server, server_delay):
    page = logged_in_page
    batch = open_demo_batch(page, live_server, "?approval=pending")
    page.evaluate("window.notReloaded = true")
    page.keyboard.press("j")
    order = [
        int(row) for row in page.eval_on_selector_all("#results tr.event", "rows => rows.map(r => r.dataset.event)")
    ]
    page.keyboard.type("a" * 20, delay=20)  # faster than a round trip: a double tap, key auto-repeat
    page.wait_for_function("() => document.querySelectorAll('#results tr.event[data-approval=approved]').length >= 20",
                           timeout=60_000)  # fmt: skip
    page.wait_for_timeout(500)
    assert page.evaluate("window.notReloaded") is True  # no full page POST
    if server_delay:  # the delay was real: every decision's request took at least that long
        durations = page.evaluate(
            "performance.getEntriesByType('resource').filter(e => /decision/.test(e.name)).map(e => e.duration)"
        )
        assert len(durations) == 20 and min(durations) >= 1000 * server_delay - 10, durations
    decided = list(Decision.objects.filter(batch=batch).order_by("id").values_list("event_id", flat=True))
    assert decided == order[:20]  # each press the next event, in order
    assert Event.objects.filter(batch=batch, approval="approved", decided_at__isnull=False).count() == 20


def test_review_mode_takes_fast_keys_one_event_each(logged_in_page, live_server):
    page = logged_in_page
    batch = open_demo_batch(page, live_server)
    page.goto(live_server.url + f"/batches/{batch.pk}/review")
    page.evaluate("window.notReloaded = true")
    page.keyboard.type("r" * 8, delay=20)
    page.wait_for_function(
        "() => document.querySelector('#card') && /pending of/.test(document.querySelector('#card').textContent)"
    )
    page.wait_for_timeout(3000)
    assert page.evaluate("window.notReloaded") is True
    assert Decision.objects.filter(batch=batch, to_approval="rejected").count() == 8
    assert Batch.objects.get(pk=batch.pk).approval_counts.get("rejected", 0) >= 8
