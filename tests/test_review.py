"""The review workflow: single and bulk decisions, undo, history, stale views, roles."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from reviewer import review
from reviewer.models import Batch, Decision, Event
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

pytestmark = pytest.mark.django_db

BATCH_ID = "rr-review-tests"


def analysis() -> dict:
    """3 videos, 6 events: 4 pending, 1 approved and 1 rejected by the provider."""
    return nomadic_analysis(
        BATCH_ID,
        [
            nomadic_result("v1", [nomadic_event(label="walker 1"), nomadic_event(label="walker 2", t_start="00:05")]),
            nomadic_result(
                "v2",
                [
                    nomadic_event(label="cyclist", category="cycling", approval="approved"),
                    nomadic_event(label="truck", category="vehicle", approval="rejected"),
                ],
            ),  # fmt: skip
            nomadic_result("v3", [nomadic_event(label="walker 3"), nomadic_event(label="walker 4", t_start="00:09")]),
        ],
    )


@pytest.fixture
def batch() -> Batch:
    run = import_bytes(json.dumps(analysis()).encode(), "review.json")
    assert run.outcome == "succeeded", run.error
    return run.batch


@pytest.fixture
def reviewer_client(client, reviewer_user):
    client.force_login(reviewer_user)
    return client


def event(label: str) -> Event:
    return Event.objects.get(label=label)


def state() -> dict[str, tuple[str, str | None]]:
    """Every event's approval and decider, by label."""
    return {e.label: (e.approval, e.decided_by.username if e.decided_by else None) for e in Event.objects.all()}


def decide_url(e: Event) -> str:
    return reverse("event_decision", args=[e.pk])


HTMX = {"HX-Request": "true"}


# --- One event ---


def test_an_htmx_decision_answers_the_row_and_the_counters(reviewer_client, batch, reviewer_user):
    target = event("walker 1")
    response = reviewer_client.post(decide_url(target), {"decision": "approved", "revision": "0"}, headers=HTMX)
    assert response.status_code == 200 and response["X-Review-Outcome"] == "applied"
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr class="event" id="event-{target.pk}"') and "<html" not in body
    assert 'id="review-progress" class="tally-row" hx-swap-oob="true"' in body
    # Reviewed means by a person; the provider's own two decisions are counted apart.
    assert "1 / 6 reviewed" in body and "2 decided by the provider" in body
    decision = Decision.objects.get()
    assert (decision.from_approval, decision.to_approval, decision.user, decision.batch) == (
        "pending", "approved", reviewer_user, batch,
    )  # fmt: skip
    batch.refresh_from_db()
    assert batch.approval_counts == {"approved": 2, "pending": 3, "rejected": 1}
    assert state()["walker 1"] == ("approved", "rita")


def test_an_htmx_decision_sends_the_chip_counts_of_the_current_filter(reviewer_client, batch):
    response = reviewer_client.post(
        decide_url(event("walker 1")), {"decision": "rejected", "approval": "pending"}, headers=HTMX
    )
    body = response.content.decode()
    assert '<div id="chips" class="chips-area" hx-swap-oob="true">' in body
    assert "Rejected <b>2</b>" in body and "Pending <b>3</b>" in body


def test_a_plain_form_decision_redirects_back_to_the_filtered_view(reviewer_client, batch):
    target = event("walker 1")
    back = f"{batch.get_absolute_url()}?approval=pending"
    response = reviewer_client.post(decide_url(target), {"decision": "invalid", "next": back})
    assert response.status_code == 302 and response.url == f"{back}#event-{target.pk}"
    assert state()["walker 1"] == ("invalid", "rita")


def test_a_plain_form_never_redirects_off_site(reviewer_client, batch):
    response = reviewer_client.post(
        decide_url(event("walker 1")), {"decision": "invalid", "next": "https://evil.example/"}
    )
    assert response.url.startswith(batch.get_absolute_url())


def test_a_decision_needs_post(reviewer_client, batch):
    assert reviewer_client.get(decide_url(event("walker 1"))).status_code == 405


@pytest.mark.parametrize(
    "url", ["event_decision", "batch_decisions", "batch_undo", "bulk_confirm"], ids=lambda name: name
)
def test_a_viewer_may_not_decide(viewer_client, batch, url):
    target = reverse(url, args=[event("walker 1").pk if url == "event_decision" else batch.pk])
    response = (viewer_client.get if url == "bulk_confirm" else viewer_client.post)(
        target, {"decision": "approved", "event": event("walker 1").pk, "all_matching": "1"}
    )
    assert response.status_code == 403
    assert not Decision.objects.exists() and state()["walker 1"] == ("pending", None)


def test_a_viewer_sees_no_decision_buttons_but_may_read_and_export(viewer_client, batch):
    page = viewer_client.get(batch.get_absolute_url()).content.decode()
    assert "walker 1" in page and 'class="decide"' not in page and "bulk-form" not in page
    assert viewer_client.get(reverse("batch_export", args=[batch.pk, "csv"])).status_code == 200


def test_anonymous_visitors_are_sent_to_the_login(client, batch):
    response = client.post(decide_url(event("walker 1")), {"decision": "approved"})
    assert response.status_code == 302 and "/accounts/login/" in response.url


@pytest.mark.parametrize("decision", ["", "approve", "APPROVED", "<script>"])
def test_an_unknown_decision_is_refused_and_changes_nothing(reviewer_client, batch, decision):
    response = reviewer_client.post(decide_url(event("walker 1")), {"decision": decision}, headers=HTMX)
    assert response.status_code == 400
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#toast", "outerHTML")  # a notice, not the row
    assert "Unknown decision" in response.content.decode() and "<script>" not in response.content.decode()
    assert not Decision.objects.exists()


def test_a_stale_view_is_told_and_nothing_is_applied(client, reviewer_client, batch, staff):
    target = event("walker 1")
    review.decide(target, "rejected", staff)  # alice decides first; rita's page still shows revision 0
    response = reviewer_client.post(decide_url(target), {"decision": "approved", "revision": "0"}, headers=HTMX)
    assert response["X-Review-Outcome"] == "stale"
    body = response.content.decode()
    assert "alice changed this event to rejected since you loaded the page" in body
    assert state()["walker 1"] == ("rejected", "alice") and Decision.objects.count() == 1
    # The answer shows the current revision: deciding again overrides, knowingly.
    assert """hx-vals='{"revision": "1"}'""" in body
    reviewer_client.post(decide_url(target), {"decision": "approved", "revision": "1"}, headers=HTMX)
    assert state()["walker 1"] == ("approved", "rita")


def test_deciding_the_same_value_again_is_not_a_new_history_row(reviewer_client, batch):
    target = event("walker 1")
    for _ in range(2):
        response = reviewer_client.post(decide_url(target), {"decision": "approved"}, headers=HTMX)
    assert response["X-Review-Outcome"] == "unchanged" and Decision.objects.count() == 1


def test_confirming_the_providers_approval_records_who_confirmed_it(reviewer_client, batch):
    reviewer_client.post(decide_url(event("cyclist")), {"decision": "approved"}, headers=HTMX)
    decision = Decision.objects.get()
    assert (decision.from_approval, decision.to_approval) == ("approved", "approved")
    assert state()["cyclist"] == ("approved", "rita")


def test_history_lists_every_change_newest_first(reviewer_client, batch, staff):
    target = event("walker 1")
    review.decide(target, "approved", staff, note="clear case")
    review.decide(target, "rejected", staff)
    body = reviewer_client.get(reverse("event_history", args=[target.pk])).content.decode()
    assert body.index("Rejected") < body.index("“clear case”")
    assert Decision.objects.filter(event=target).count() == 2


# --- Many events ---


def bulk(client, batch, **data):
    return client.post(reverse("batch_decisions", args=[batch.pk]), data, headers=HTMX)


def test_bulk_by_selection_decides_the_selected_events_as_one_group(reviewer_client, batch):
    chosen = [event("walker 1").pk, event("walker 3").pk, event("truck").pk]
    response = bulk(reviewer_client, batch, decision="invalid", event=chosen)
    assert response.status_code == 200 and response["HX-Trigger"] == "decisions-changed"
    assert "3 events set to invalid" in response.content.decode()
    assert {label for label, (approval, _) in state().items() if approval == "invalid"} == {
        "walker 1", "walker 3", "truck"
    }  # fmt: skip
    assert Decision.objects.values("group").distinct().count() == 1


def test_bulk_by_selection_refuses_an_event_of_another_batch(reviewer_client, batch):
    other = import_bytes(
        json.dumps(nomadic_analysis("rr-other", [nomadic_result("o1", [nomadic_event(label="x")])])).encode(), "o.json"
    )
    foreign = Event.objects.get(batch=other.batch).pk
    response = bulk(reviewer_client, batch, decision="approved", event=[event("walker 1").pk, foreign])
    assert response.status_code == 400 and "You confirmed 2 events, but 1 match now" in response.content.decode()
    assert not Decision.objects.exists()


def test_bulk_without_a_selection_says_so(reviewer_client, batch):
    response = bulk(reviewer_client, batch, decision="approved")
    assert response.status_code == 400 and "Select at least one event" in response.content.decode()


def test_bulk_by_filter_states_the_count_then_applies_exactly_it(reviewer_client, batch):
    query = {"decision": "approved", "approval": "pending", "category": "jaywalking"}
    confirm = reviewer_client.get(reverse("bulk_confirm", args=[batch.pk]), query).content.decode()
    assert "Set 4 events to approved?" in confirm and 'name="expected_count" value="4"' in confirm
    response = bulk(reviewer_client, batch, all_matching="1", expected_count="4", **query)
    assert "4 events set to approved" in response.content.decode()
    assert state() == {
        "walker 1": ("approved", "rita"), "walker 2": ("approved", "rita"), "walker 3": ("approved", "rita"),
        "walker 4": ("approved", "rita"), "cyclist": ("approved", None), "truck": ("rejected", None),
    }  # fmt: skip


def test_bulk_by_filter_applies_nothing_when_the_count_changed(reviewer_client, batch, staff):
    query = {"decision": "rejected", "approval": "pending"}
    review.decide(event("walker 4"), "approved", staff)  # someone else, after the confirmation showed 4
    response = bulk(reviewer_client, batch, all_matching="1", expected_count="4", **query)
    assert response.status_code == 400
    assert "You confirmed 4 events, but 3 match now" in response.content.decode()
    assert Decision.objects.count() == 1 and state()["walker 1"] == ("pending", None)


def test_bulk_by_filter_refuses_an_unknown_filter_value(reviewer_client, batch):
    response = bulk(reviewer_client, batch, all_matching="1", decision="approved", approval="maybe")
    assert response.status_code == 400 and "approval" in response.content.decode()
    assert not Decision.objects.exists()


def test_bulk_without_javascript_redirects_with_a_message(reviewer_client, batch):
    back = f"{batch.get_absolute_url()}?approval=pending"
    response = reviewer_client.post(
        reverse("batch_decisions", args=[batch.pk]),
        {"decision": "approved", "all_matching": "1", "approval": "pending", "expected_count": "4", "next": back},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == back
    assert "4 events set to approved" in response.content.decode()


# --- Undo ---


def undo(client, batch):
    return client.post(reverse("batch_undo", args=[batch.pk]), headers=HTMX)


def test_undo_of_a_single_decision_restores_the_providers_value(reviewer_client, batch):
    reviewer_client.post(decide_url(event("truck")), {"decision": "approved"}, headers=HTMX)
    response = undo(reviewer_client, batch)
    assert "Undone: 1 event restored" in response.content.decode()
    assert state()["truck"] == ("rejected", None)
    assert event("truck").decided_at is None
    rows = list(Decision.objects.order_by("pk").values_list("from_approval", "to_approval", "undoes"))
    assert rows[1][:2] == ("approved", "rejected") and rows[1][2] is not None  # history only grows
    batch.refresh_from_db()
    assert batch.approval_counts == {"approved": 1, "pending": 4, "rejected": 1}


def test_undo_of_a_bulk_action_restores_each_events_previous_value_and_decider(reviewer_client, batch, staff):
    review.decide(event("walker 2"), "invalid", staff)
    before = state()
    bulk(reviewer_client, batch, decision="approved", all_matching="1", expected_count=str(batch.events.count()))
    assert all(approval == "approved" for approval, _ in state().values())
    undo(reviewer_client, batch)
    assert state() == before  # walker 2 is alice's "invalid" again, the provider's values are back
    assert event("walker 2").decided_at is not None


def test_undo_walks_back_one_action_at_a_time_and_then_says_there_is_nothing(reviewer_client, batch):
    reviewer_client.post(decide_url(event("walker 1")), {"decision": "approved"}, headers=HTMX)
    reviewer_client.post(decide_url(event("walker 1")), {"decision": "rejected"}, headers=HTMX)
    undo(reviewer_client, batch)
    assert state()["walker 1"] == ("approved", "rita")
    undo(reviewer_client, batch)
    assert state()["walker 1"] == ("pending", None)
    assert "Nothing to undo" in undo(reviewer_client, batch).content.decode()


def test_undo_only_touches_the_users_own_actions_and_leaves_later_changes(reviewer_client, batch, staff):
    bulk(reviewer_client, batch, decision="approved", event=[event("walker 1").pk, event("walker 2").pk])
    review.decide(event("walker 2"), "rejected", staff)  # alice changes one of them afterwards
    response = undo(reviewer_client, batch)
    assert "1 event restored; 1 left as they are (someone changed them since)" in response.content.decode()
    assert state()["walker 1"] == ("pending", None) and state()["walker 2"] == ("rejected", "alice")


# --- Everything together ---


def test_a_re_sync_keeps_every_decision(reviewer_client, batch):
    bulk(reviewer_client, batch, decision="rejected", event=[event("walker 1").pk, event("cyclist").pk])
    changed = analysis()
    changed["results"][1]["events"][0]["approval"] = "invalid"  # the provider changes its own value
    changed["results"][0]["events"][0]["aiAnalysis"] = "new analysis text"
    run = import_bytes(json.dumps(changed).encode(), "review.json")
    assert run.outcome == "succeeded" and run.events_updated == 2
    assert state()["walker 1"] == ("rejected", "rita") and state()["cyclist"] == ("rejected", "rita")
    assert event("cyclist").provider_approval == "invalid" and event("walker 1").ai_analysis == "new analysis text"


def test_the_export_carries_the_effective_approval(reviewer_client, batch):
    bulk(reviewer_client, batch, decision="invalid", event=[event("walker 3").pk, event("truck").pk])
    response = reviewer_client.get(reverse("batch_export", args=[batch.pk, "csv"]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["Label"]: row["Approval Status"] for row in rows} == {label: a for label, (a, _) in state().items()}


def test_the_activity_log_has_one_line_per_action(reviewer_client, batch):
    bulk(reviewer_client, batch, decision="approved", all_matching="1", expected_count="6", note="all clear")
    reviewer_client.post(decide_url(event("truck")), {"decision": "rejected"}, headers=HTMX)
    undo(reviewer_client, batch)
    body = reviewer_client.get(reverse("batch_activity", args=[batch.pk])).content.decode()
    actions = body[body.index('<table class="table cards activity">') :]
    assert actions.count("<tr>") == 1 + 3  # header + bulk, single, undo
    assert "all clear" in body and "Undid an action" in body


def test_a_fully_reviewed_batch_says_so_with_who_and_when(reviewer_client, batch):
    bulk(reviewer_client, batch, decision="approved", all_matching="1", expected_count=str(batch.events.count()))
    listing = reviewer_client.get(reverse("batch_list")).content.decode()
    assert "Reviewed" in listing and f"by rita ({batch.events.count()})" in listing


def test_reviewed_by_names_everyone_who_decided_most_decisions_first(reviewer_client, batch, staff):
    bulk(reviewer_client, batch, decision="approved", all_matching="1", expected_count=str(batch.events.count()))
    review.decide(event("truck"), "rejected", staff)  # alice: one decision
    for page in (reverse("batch_list"), batch.get_absolute_url()):
        body = reviewer_client.get(page).content.decode()
        assert re.search(r"by rita \(\d+\), alice \(1\)", body), page


def test_the_providers_review_date_is_shown_as_a_date(reviewer_client, batch):
    Batch.objects.filter(pk=batch.pk).update(provider_review_status="in_review",
                                             provider_review_status_updated_at="2025-09-20T09:12:00Z")  # fmt: skip
    body = reviewer_client.get(batch.get_absolute_url()).content.decode()
    assert '<time datetime="2025-09-20T09:12:00+00:00">2025-09-20 09:12</time>' in body


def test_the_batch_page_shows_the_providers_approval_where_a_person_differs(reviewer_client, batch):
    reviewer_client.post(decide_url(event("truck")), {"decision": "approved"}, headers=HTMX)
    page = reviewer_client.get(batch.get_absolute_url()).content.decode()
    row = page[page.index(f'id="event-{event("truck").pk}"') :]
    row = row[: row.index("</tr>")]
    assert "the provider said rejected" in row and "mark-differs" in row  # in the tooltip and a mark: no extra line


# --- Review mode ---


def test_review_mode_starts_at_the_first_pending_event(reviewer_client, batch):
    page = reviewer_client.get(reverse("review_mode", args=[batch.pk])).content.decode()
    assert "<h2>walker 1</h2>" in page and "4 pending of 6 events" in page


def test_a_decision_in_review_mode_moves_to_the_next_pending_event(reviewer_client, batch):
    response = reviewer_client.post(
        decide_url(event("walker 2")), {"decision": "approved", "view": "focus"}, headers=HTMX
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="card"') and "<h2>walker 3</h2>" in body  # v2's are decided
    assert "3 pending of 6" in body


def test_review_mode_says_when_everything_under_the_filter_is_reviewed(reviewer_client, batch):
    bulk(reviewer_client, batch, decision="approved", all_matching="1", expected_count=str(batch.events.count()))
    page = reviewer_client.get(reverse("review_mode", args=[batch.pk]), {"approval": "approved"}).content.decode()
    assert "<h2>walker 1</h2>" in page  # nothing pending: the first event under the filter
    response = reviewer_client.post(
        decide_url(event("walker 4")), {"decision": "approved", "view": "focus"}, headers=HTMX
    )
    assert "Everything here is reviewed" in response.content.decode()


def test_review_mode_steps_forward_and_back_in_order(reviewer_client, batch):
    url = reverse("review_mode", args=[batch.pk])
    forward = reviewer_client.get(url, {"event": event("walker 2").pk, "step": "next"}).content.decode()
    back = reviewer_client.get(url, {"event": event("walker 1").pk, "step": "prev"}).content.decode()
    assert "<h2>cyclist</h2>" in forward and "<h2>walker 4</h2>" in back  # wraps around


def test_review_mode_refuses_an_unknown_filter_clearly(reviewer_client, batch):
    response = reviewer_client.get(reverse("review_mode", args=[batch.pk]), {"status": "nope"}, follow=True)
    assert response.status_code == 200 and response.redirect_chain[-1][0] == batch.get_absolute_url()
    assert "status: Select a valid choice. nope is not one of the available choices." in response.content.decode()


def test_undo_after_a_sync_restores_the_providers_current_value(reviewer_client, batch):
    reviewer_client.post(decide_url(event("walker 1")), {"decision": "approved"}, headers=HTMX)
    changed = analysis()
    changed["results"][0]["events"][0]["approval"] = "invalid"  # the provider changed its mind meanwhile
    assert import_bytes(json.dumps(changed).encode(), "review.json").outcome == "succeeded"
    assert state()["walker 1"] == ("approved", "rita")  # the sync kept the decision
    undo(reviewer_client, batch)
    assert state()["walker 1"] == ("invalid", None)  # not the stale "pending" from before the sync
    last = Decision.objects.order_by("-pk").first()
    assert (last.from_approval, last.to_approval, last.undoes is not None) == ("approved", "invalid", True)


def test_a_review_mode_decision_with_a_mangled_filter_still_moves_on(reviewer_client, batch):
    response = reviewer_client.post(
        decide_url(event("walker 1")), {"decision": "approved", "view": "focus", "approval": "bogus"}, headers=HTMX
    )
    assert response.status_code == 200 and "<h2>walker 2</h2>" in response.content.decode()
    assert state()["walker 1"] == ("approved", "rita")


def test_undo_says_what_it_undid(reviewer_client, batch):
    reviewer_client.post(decide_url(event("truck")), {"decision": "rejected"}, headers=HTMX)
    response = undo(reviewer_client, batch)
    assert "Undone: 1 event restored. It was: rejected 1 event (truck), now." in response.content.decode()


def test_undoing_an_action_older_than_the_page_asks_first(reviewer_client, batch):
    reviewer_client.post(decide_url(event("truck")), {"decision": "rejected"}, headers=HTMX)
    shown_later = int(Decision.objects.get().created_at.timestamp()) + 60  # the page came after the action
    url = reverse("batch_undo", args=[batch.pk])
    response = reviewer_client.post(url, {"page_shown_at": shown_later}, headers=HTMX)
    body = response.content.decode()
    assert response["HX-Retarget"] == "#dialog-body" and "Undo an earlier action?" in body
    assert "rejected 1 event (truck)" in body and event("truck").approval == "rejected"  # nothing undone yet
    group = Decision.objects.get().group
    response = reviewer_client.post(url, {"page_shown_at": shown_later, "confirm": str(group)}, headers=HTMX)
    assert "Undone: 1 event restored" in response.content.decode()
    assert event("truck").approval != "rejected" or event("truck").decided_at is None


def test_an_action_made_on_this_page_is_undone_at_once(reviewer_client, batch):
    shown = int(timezone.now().timestamp()) - 5
    reviewer_client.post(decide_url(event("truck")), {"decision": "rejected"}, headers=HTMX)
    response = reviewer_client.post(reverse("batch_undo", args=[batch.pk]), {"page_shown_at": shown}, headers=HTMX)
    assert "Undone: 1 event restored" in response.content.decode()
