"""Every page on a phone and on a desktop, in light and dark: nothing wider than the window, and
axe-core finds no serious or critical accessibility violation (contrast, names, labels, ARIA).

One test per look (viewport × colour scheme) walks all the pages, so the demo data is loaded
and the browser logs in once per look; a failure lists every page that failed and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User

from reviewer import demo, review, sampling
from reviewer.models import Batch, SecondReview, SyncOutcome, SyncRun, SyncTrigger, Webhook, WebhookDelivery
from tests.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
FAILING_IMPACTS = ("serious", "critical")
AXE = Axe()

# The outermost elements that stick out past the window's right edge: what to fix when the page overflows.
# (Not those clipped or scrolled inside a box that fits, such as a visually hidden table head.)
OVERFLOW_SCRIPT = """() => {
  const width = window.innerWidth;
  const contained = (el) => {
    for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== 'visible' && box.getBoundingClientRect().right <= width + 0.5) return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + Array.from(el.classList).map((c) => '.' + c).join('');
  const culprits = [];
  for (const el of document.body.querySelectorAll('*')) {
    const right = el.getBoundingClientRect().right;
    const parent = el.parentElement;
    if (right > width + 0.5 && parent && parent.getBoundingClientRect().right <= width + 0.5 && !contained(el)) {
      culprits.push(name(el) + ' (right edge ' + Math.round(right) + ' px)');
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, culprits: culprits.slice(0, 4)};
}"""


@dataclass
class Look:
    name: str
    viewport: dict
    scheme: str


LOOKS = [
    Look("phone-light", PHONE, "light"),
    Look("phone-dark", PHONE, "dark"),
    Look("desktop-light", DESKTOP, "light"),
    Look("desktop-dark", DESKTOP, "dark"),
]


def overflow_problem(page) -> str | None:
    """None, or why the page is wider than the window (document.documentElement.scrollWidth)."""
    measured = page.evaluate(OVERFLOW_SCRIPT)
    if measured["scroll"] <= measured["width"]:
        return None
    return (
        f"page is {measured['scroll']} px wide in a {measured['width']} px window; "
        f"sticking out: {', '.join(measured['culprits']) or '(nothing found)'}"
    )


def axe_problems(page) -> list[str]:
    """The serious and critical axe-core violations: rule id, impact, how many, the first targets."""
    results = AXE.run(page)
    problems = []
    for violation in results.response["violations"]:
        if violation["impact"] not in FAILING_IMPACTS:
            continue
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:3]]
        more = f" (+{len(violation['nodes']) - 3} more)" if len(violation["nodes"]) > 3 else ""
        problems.append(
            f"{violation['id']} [{violation['impact']}] ×{len(violation['nodes'])}: {'; '.join(targets)}{more}"
        )
    return problems


def check(page, what: str, failures: list[str]) -> None:
    page.wait_for_load_state("load")
    problems = []
    if (why := overflow_problem(page)) is not None:
        problems.append(f"overflow: {why}")
    problems += [f"axe: {problem}" for problem in axe_problems(page)]
    failures += [f"{what}: {problem}" for problem in problems]


@pytest.fixture
def reviewed_demo(staff):
    """The demo batches with decisions of every kind (an undo and a note among them), and a failed import."""
    demo.load()
    batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
    events = list(batch.events.order_by("id")[:6])
    review.decide(events[0], "approved", staff)
    review.decide(events[1], "rejected", staff, note="a shadow, not a pedestrian")
    review.decide(events[2], "invalid", staff)
    review.decide_many(batch, batch.events.filter(pk__in=[e.pk for e in events[3:6]]), "approved", staff)
    review.decide(events[5], "rejected", staff)
    review.undo_last(batch, staff)
    run = SyncRun.objects.create(
        trigger=SyncTrigger.IMPORT,
        file_name="results-2025-10-19.jsonl",
        outcome=SyncOutcome.FAILED,
        error="3 lines are not valid JSON.",
        malformed_lines=[{"line": n, "error": f"Expecting ',' delimiter: line 1 column {40 + n}"} for n in (4, 9, 17)],
    )
    return batch, run


@pytest.mark.parametrize("look", LOOKS, ids=[look.name for look in LOOKS])
def test_every_page_fits_the_window_and_passes_axe(browser, live_server, reviewed_demo, viewer, tl_source, look):
    batch, run = reviewed_demo
    base = live_server.url
    failures: list[str] = []

    context = browser.new_context(viewport=look.viewport, color_scheme=look.scheme)
    page = context.new_page()
    page.set_default_timeout(10_000)
    assert page.evaluate(f"matchMedia('(prefers-color-scheme: {look.scheme})').matches")

    page.goto(base + "/accounts/login/")
    check(page, "login", failures)
    log_in(page, live_server, "victor", "pw-victor")
    assert page.goto(base + "/import/").status == 403
    check(page, "403 (viewer)", failures)
    context.close()

    context = browser.new_context(viewport=look.viewport, color_scheme=look.scheme)
    page = context.new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_server, "alice", "pw-alice")
    check(page, "batch list", failures)

    batch_url = base + batch.get_absolute_url()
    page.goto(batch_url)
    page.keyboard.press("j")  # a focused row, as while reviewing
    check(page, "batch page", failures)
    page.keyboard.press("c")  # the reason and note dialog over it
    page.locator("#dialog[open] .note-form").wait_for()
    check(page, "note dialog", failures)
    page.keyboard.press("Escape")
    page.goto(batch_url + "?q=pedestrian&decided=human")  # search words marked
    check(page, "batch page with a search", failures)

    # The pane over a filtered list: checked chips of every approval, an open event.
    page.goto(batch_url + "?approval=approved&approval=rejected&approval=invalid&status=completed")
    page.locator("tr.event button.watch").first.click()
    page.locator("#event-pane .player video").wait_for()
    page.wait_for_function("() => window.reviewerPlayer && window.reviewerPlayer.media")
    check(page, "batch page with the event pane", failures)

    general = Batch.objects.get(provider_batch_id=demo.TL_GENERAL_BATCH)
    timed = Batch.objects.get(provider_batch_id=demo.TL_TIMED_BATCH)
    for what, path in [
        # Still processing: queued and failed videos, a warning, a truncated answer, a long summary.
        ("TwelveLabs general batch page", general.get_absolute_url()),
        ("TwelveLabs time-based batch page", timed.get_absolute_url()),  # custom metadata, timed entries
        ("review mode", f"/batches/{batch.pk}/review"),
        ("activity", f"/batches/{batch.pk}/activity"),
        ("import", "/import/"),
        ("bulk confirmation", f"/batches/{batch.pk}/decisions/confirm?decision=rejected&approval=pending"),
        ("note form", f"/events/{batch.events.first().pk}/note"),
        ("activity of one reviewer", f"/batches/{batch.pk}/activity?decision=approved"),
        ("import status", f"/imports/{run.pk}/"),
    ]:
        page.goto(base + path)
        check(page, what, failures)

    page.goto(base + "/account/tokens/")
    check(page, "API tokens (none yet)", failures)
    page.fill("input[name=name]", "nightly export")
    page.click("text=Create token")
    check(page, "API tokens with a new token", failures)
    page.goto(base + "/webhooks/")
    check(page, "webhooks (none yet)", failures)
    page.fill("input[name=url]", "https://hooks.example.com/reviewer")
    page.check("input[value='decision.created']")
    page.click("text=Add webhook")
    check(page, "a new webhook's secret", failures)
    page.click("text=Done: go to the webhook")
    hook = Webhook.objects.get()
    for state, code, error in [("delivered", 204, ""), ("failed", 503, "The receiver answered 503.")]:
        WebhookDelivery.objects.create(webhook=hook, event="decision.created", body="{}", state=state, attempts=3,
                                       response_code=code, error=error)  # fmt: skip
    page.click("text=Send a test event")
    check(page, "a webhook and its deliveries", failures)
    page.goto(base + "/webhooks/")
    check(page, "webhooks", failures)

    page.goto(base + f"/batches/{batch.pk}/insights")
    check(page, "insights of a batch", failures)
    page.goto(base + "/insights/?by=prompt")
    check(page, "insights across batches", failures)
    page.goto(base + "/search/")
    check(page, "search across batches (empty)", failures)
    page.goto(base + "/search/?q=pedestrian+cross")
    check(page, "search across batches with results", failures)
    page.goto(base + "/search/?q=zzzz")
    check(page, "search across batches, nothing found", failures)
    sample = sampling.create_sample(batch, "category", 3, None)
    page.goto(base + sample.get_absolute_url())
    check(page, "a sample's estimate", failures)
    second = SecondReview.objects.create(batch=batch, reviewer=User.objects.get(username="alice"), share=0.5, seed=1)
    for position, event in enumerate(batch.events.filter(decided_at__isnull=False)[:3]):
        second.items.create(event=event, first_approval=event.approval, position=position,
                            second_approval="approved" if position else "")  # fmt: skip
    page.goto(base + f"/second-reviews/{second.pk}/review")
    check(page, "a blind second review", failures)
    page.goto(base + second.get_absolute_url())
    check(page, "a second review's agreement", failures)

    page.goto(base + "/batches/add/")
    page.locator("#recent :is(table, p:not(:has(.spinner)))").first.wait_for()  # the recent batches have loaded
    check(page, "add batch", failures)
    context.close()

    assert not failures, f"{len(failures)} problem(s) at {look.name}:\n" + "\n".join(failures)


# What the keyboard focus looks like: the focused element's outline (a chip's hidden checkbox shows it on its pill).
FOCUS_SCRIPT = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const shown = el.matches('.chip input') ? el.nextElementSibling : el;
  const style = getComputedStyle(shown);
  const text = el.getAttribute('aria-label') || (el.value && el.tagName === 'INPUT' ? el.value : el.textContent);
  const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + Array.from(el.classList).map((c) => '.' + c).join('')
    + (text.trim() ? ' "' + text.trim().replace(/\\s+/g, ' ').slice(0, 30) + '"' : '');
  return {name, style: style.outlineStyle, width: parseFloat(style.outlineWidth), color: style.outlineColor,
          focusVisible: el.matches(':focus-visible')};
}"""


def unseen_focus(page, presses: int) -> tuple[list[str], int]:
    """Tab ``presses`` times; the elements whose focus showed no outline, and how many were checked."""
    unseen, checked = [], 0
    for _ in range(presses):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_SCRIPT)
        if focus is None:
            continue
        checked += 1
        if not focus["focusVisible"] or focus["style"] == "none" or focus["width"] < 2 or "0)" in focus["color"]:
            unseen.append(f"{focus['name']}: outline {focus['style']} {focus['width']}px {focus['color']}")
    return unseen, checked


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_keyboard_focus_is_always_visible(browser, live_server, staff, scheme):
    """Tabbing through the batch page and review mode: every stop shows a solid outline of 2 px or more."""
    demo.load()
    batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
    context = browser.new_context(viewport=DESKTOP, color_scheme=scheme)
    page = context.new_page()
    log_in(page, live_server, "alice", "pw-alice")
    page.goto(live_server.url + batch.get_absolute_url())
    # The top bar, the filters and their chips, the exports, the first rows' boxes, buttons and history.
    unseen, checked = unseen_focus(page, 45)
    page.goto(live_server.url + f"/batches/{batch.pk}/review")
    page.wait_for_function("() => window.reviewerPlayer && window.reviewerPlayer.media")
    # The player's buttons, its speed, the timeline's marks, the decisions.
    more, more_checked = unseen_focus(page, 30)
    context.close()
    assert checked + more_checked >= 70
    assert not unseen + more, "focus without a visible outline:\n" + "\n".join(unseen + more)


def test_the_checks_catch_low_contrast_and_overflow(browser, live_server):
    """The checks above can fail: a pale grey line and a too-wide box on the login page are both reported."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(live_server.url + "/accounts/login/")
    assert overflow_problem(page) is None
    assert axe_problems(page) == []
    page.evaluate("""() => {
      const pale = document.createElement('p');
      pale.id = 'pale';
      pale.textContent = 'Hard to read';
      pale.style.color = '#c8c8c8';
      pale.style.background = '#ffffff';
      const wide = document.createElement('div');
      wide.id = 'wide';
      wide.textContent = 'wide';
      wide.style.width = '900px';
      document.querySelector('main').append(pale, wide);
    }""")
    why = overflow_problem(page)
    assert why is not None
    assert "div#wide" in why
    problems = axe_problems(page)
    assert any(problem.startswith("color-contrast [serious]") and "#pale" in problem for problem in problems), problems
    context.close()
