"""Insights in a real browser: the demo data's numbers and charts, a sample reviewed in review mode, and a blind
second review by another reviewer."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User

from reviewer import demo, quality, review, sampling
from reviewer.models import Batch, Decision, Sample, SecondReview
from tests.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reviewed_demo(staff):
    demo.load()
    batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
    for n, event in enumerate(batch.events.order_by("pk")[:24]):
        review.decide(event, ["approved", "approved", "rejected", "invalid"][n % 4], staff)
    second = User.objects.create_user("bea", password="pw-bea")
    second.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    return Batch.objects.get(pk=batch.pk)


def _logged_in(browser, live_server, username: str, password: str):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_server, username, password)
    return context, page


def test_insights_a_sample_review_and_a_blind_second_review(browser, live_server, reviewed_demo, staff):
    batch = reviewed_demo
    base = live_server.url
    context, page = _logged_in(browser, live_server, "alice", "pw-alice")

    # The insights of the demo data: the numbers the tables and charts show are the module's
    page.goto(base + batch.get_absolute_url())
    page.click("text=Insights: precision, cut-offs, throughput")
    overall = quality.overall(batch.events.all())
    assert page.locator("#overall-precision").inner_text() == f"{overall.precision * 100:.0f} %"
    assert page.locator("svg.interval-chart circle.point").count() >= 3
    rows = page.locator("table.quality").first.locator("tbody tr")
    assert rows.count() == len(quality.table(batch.events.all(), "category"))
    page.click("nav.tabs >> text=Confidence")
    assert "?by=confidence" in page.url
    page.goto(base + "/insights/?by=prompt")
    assert page.locator("h2#trend-title").is_visible()

    # A sample: drawn from the insights page, reviewed in review mode, estimated on its page
    page.goto(base + f"/batches/{batch.pk}/insights#sample")
    page.select_option("select[name=by]", "category")
    page.fill("input[name=per_stratum]", "3")
    page.click("text=Draw a sample")
    sample = Sample.objects.get()
    page.wait_for_url(base + sample.get_absolute_url())
    assert "This is an estimate." in page.locator(".estimate-note").inner_text()
    page.click("text=Review the sample")
    page.wait_for_url(re.compile(r".*/review\?sample="))
    page.wait_for_load_state("load")  # review.js listens for the keys
    sampled = set(sample.members.values_list("event_id", flat=True))
    for _ in range(len(sampled)):  # every sampled event, the provider's own approvals too: none is a person's yet
        shown = int(page.locator("#card[data-event]").get_attribute("data-event"))
        assert shown in sampled
        page.keyboard.press("a")
        # the next event's card is in (after the last one: the card saying nothing is left)
        page.wait_for_function(
            "(shown) => { const card = document.querySelector('#card'); return Boolean(card) && card.dataset.event !== shown; }",
            arg=str(shown),
        )
    assert Decision.objects.filter(event_id__in=sampled, to_approval="approved").count() == len(sampled)
    page.goto(base + sample.get_absolute_url())
    strata = sampling.estimate(sample)
    assert sum(stratum.approved for stratum in strata) == len(sampled)
    point, _ = sampling.combined(strata)
    assert page.locator("#combined-estimate").inner_text() == f"{point * 100:.0f} %"

    # A second review, assigned here and judged blind by bea
    page.goto(base + f"/batches/{batch.pk}/insights#second-review")
    page.select_option("select[name=reviewer]", label="bea")
    page.fill("input[name=share]", "25")
    page.click("text=Assign")
    second = SecondReview.objects.get()
    count = second.items.count()
    decided_by_alice = batch.events.filter(decided_by=staff).exclude(approval="pending").count()
    assert count == round(0.25 * decided_by_alice)  # a quarter of the events alice decided, sample included
    context.close()

    context, page = _logged_in(browser, live_server, "bea", "pw-bea")
    page.goto(base + second.get_absolute_url())
    page.click("text=Judge your events")
    for n in range(count):
        card = page.locator(".blind-card")
        text = card.inner_text()
        assert (
            "alice" not in text and card.locator(".badge[class*=approval-]").count() == 0
        )  # the first decision is hidden
        assert page.locator(".timeline").count() == 0
        page.click("button[value=approved]" if n % 2 == 0 else "button[value=rejected]")
    page.wait_for_url(base + second.get_absolute_url())
    rate = page.locator("#agreement-rate").inner_text()
    items = list(second.items.all())
    agreed = sum(1 for item in items if item.first_approval == item.second_approval)
    assert rate == re.sub(r"\.0 %", " %", f"{agreed / count * 100:.0f} %")
    assert page.locator("table.disagreements tbody tr").count() == count - agreed
    context.close()
