"""Notes and reason codes on decisions, "reviewed" meaning by a person, the decided filter, the extended CSV."""
# ruff: noqa: F811  (pytest fixtures imported from tests.test_review share their names with parameters)

from __future__ import annotations

import csv
import html
import io

import pytest
from django.urls import reverse

from reviewer import csv_columns, review
from reviewer.models import Batch, Decision, Event, ReasonCode
from tests.factories import import_bytes
from tests.test_review import HTMX, batch, bulk, decide_url, event, reviewer_client, undo  # noqa: F401

pytestmark = pytest.mark.django_db


def decide(client, label: str, decision: str, reason: str | None = None, **extra):
    data = {"decision": decision, **extra} | ({} if reason is None else {"decision_reason": reason})
    return client.post(decide_url(event(label)), data, headers=HTMX)


def test_the_default_reasons_exist_and_staff_can_manage_them(admin_client):
    assert list(ReasonCode.objects.values_list("label", flat=True)) == [
        "False positive", "Wrong category", "Duplicate", "Bad video",
    ]  # fmt: skip
    page = admin_client.get("/admin/reviewer/reasoncode/")
    assert page.status_code == 200 and "False positive" in page.content.decode()


def test_a_rejection_keeps_its_reason_and_note_on_the_event_and_in_history(reviewer_client, batch):
    response = decide(reviewer_client, "walker 1", "rejected", reason="False positive", note="a shadow")
    assert response.status_code == 200 and response["X-Review-Outcome"] == "applied"
    walker = event("walker 1")
    assert (walker.approval, walker.reason, walker.note) == ("rejected", "False positive", "a shadow")
    decision = Decision.objects.get(event=walker)
    assert (decision.reason, decision.note) == ("False positive", "a shadow")
    history = reviewer_client.get(reverse("event_history", args=[walker.pk])).content.decode()
    assert "False positive" in history and "a shadow" in history


@pytest.mark.parametrize(
    ("decision", "reason", "message"),
    [
        ("approved", "False positive", "A reason goes with a rejection or an invalid event"),
        ("rejected", "Because", "Unknown reason 'Because': the reasons offered are False positive, Wrong category"),
    ],
)
def test_a_reason_that_does_not_fit_is_refused_and_changes_nothing(reviewer_client, batch, decision, reason, message):
    response = decide(reviewer_client, "walker 1", decision, reason=reason)
    assert response.status_code == 400 and message in html.unescape(response.content.decode())
    assert (event("walker 1").approval, Decision.objects.count()) == ("pending", 0)


def test_an_inactive_reason_is_no_longer_offered_but_stays_on_past_decisions(reviewer_client, batch):
    decide(reviewer_client, "walker 1", "rejected", reason="Duplicate")
    ReasonCode.objects.filter(label="Duplicate").update(active=False)
    assert decide(reviewer_client, "walker 2", "rejected", reason="Duplicate").status_code == 400
    assert event("walker 1").reason == "Duplicate"


def test_a_note_added_later_is_recorded_and_undone_on_its_own(reviewer_client, batch):
    decide(reviewer_client, "walker 1", "rejected", reason="Wrong category")
    response = decide(reviewer_client, "walker 1", "rejected", reason="Wrong category", note="it is a cyclist")
    assert response["X-Review-Outcome"] == "applied"
    rows = list(Decision.objects.filter(event=event("walker 1")).order_by("pk").values_list("from_approval",
                "to_approval", "note"))  # fmt: skip
    assert rows == [("pending", "rejected", ""), ("rejected", "rejected", "it is a cyclist")]
    undo(reviewer_client, batch)
    walker = event("walker 1")
    assert (walker.approval, walker.reason, walker.note) == ("rejected", "Wrong category", "")
    undo(reviewer_client, batch)
    walker = event("walker 1")
    assert (walker.approval, walker.reason, walker.note, walker.decided_at) == ("pending", "", "", None)


def test_the_same_decision_again_without_a_note_changes_nothing(reviewer_client, batch):
    decide(reviewer_client, "walker 1", "rejected", reason="Duplicate", note="see walker 2")
    assert decide(reviewer_client, "walker 1", "rejected")["X-Review-Outcome"] == "unchanged"
    assert event("walker 1").note == "see walker 2"


def test_a_bulk_rejection_by_filter_takes_a_reason_and_keeps_the_reason_filter_apart(reviewer_client, batch):
    decide(reviewer_client, "walker 1", "rejected", reason="Duplicate")
    decide(reviewer_client, "walker 2", "rejected", reason="Duplicate")
    response = bulk(reviewer_client, batch, decision="invalid", all_matching="1", expected_count="2",
                    reason="Duplicate", decision_reason="Bad video")  # fmt: skip
    assert response.status_code == 200, response.content
    assert set(Event.objects.filter(label__in=["walker 1", "walker 2"]).values_list("approval", "reason")) == {
        ("invalid", "Bad video")
    }
    confirm = reviewer_client.get(
        reverse("bulk_confirm", args=[batch.pk]) + "?decision=rejected&reason=Bad+video"
    ).content.decode()
    assert 'name="decision_reason"' in confirm and 'name="reason" value="Bad video"' in confirm


def test_a_bulk_rejection_gives_every_event_its_reason(reviewer_client, batch):
    chosen = [event("walker 1").pk, event("walker 3").pk]
    bulk(reviewer_client, batch, decision="invalid", event=chosen, decision_reason="Bad video")
    assert set(Event.objects.filter(pk__in=chosen).values_list("reason", flat=True)) == {"Bad video"}
    assert set(Decision.objects.values_list("reason", flat=True)) == {"Bad video"}


def test_reviewed_counts_people_and_the_providers_decisions_apart(reviewer_client, batch):
    batch.refresh_from_db()
    assert (batch.reviewed_total, batch.provider_decided_total, batch.is_reviewed) == (0, 2, False)
    decide(reviewer_client, "walker 1", "approved")
    decide(reviewer_client, "truck", "approved")  # a person overrides the provider's rejection
    batch.refresh_from_db()
    assert batch.human_counts == {"approved": 2}
    assert (batch.reviewed_total, batch.provider_decided_total) == (2, 1)
    listing = reviewer_client.get(reverse("batch_list")).content.decode()
    assert "2 / 6 reviewed" in listing and "1 decided by the provider" in listing
    bulk(reviewer_client, batch, decision="approved", all_matching="1", expected_count="6")
    batch.refresh_from_db()
    assert batch.is_reviewed and batch.reviewed_total == 6 and batch.provider_decided_total == 0


def shown_labels(client, batch: Batch, query: str) -> set[str]:
    response = client.get(reverse("batch_export", args=[batch.pk, "csv"]) + "?" + query)
    assert response.status_code == 200, response.content
    rows = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    return {row["Label"] for row in rows}


def test_the_decided_filter_tells_people_from_the_provider_and_finds_disagreements(reviewer_client, batch):
    decide(reviewer_client, "walker 1", "approved")
    decide(reviewer_client, "truck", "approved")  # the provider said rejected
    decide(reviewer_client, "cyclist", "approved")  # the provider said approved too
    assert shown_labels(reviewer_client, batch, "decided=human") == {"walker 1", "truck", "cyclist"}
    assert shown_labels(reviewer_client, batch, "decided=provider") == set()
    assert shown_labels(reviewer_client, batch, "decided=disagree") == {"truck"}
    review.undo_last(batch, event("truck").decided_by)  # the cyclist decision
    assert shown_labels(reviewer_client, batch, "decided=provider") == {"cyclist"}
    assert shown_labels(reviewer_client, batch, "decided=provider&decided=disagree") == {"cyclist", "truck"}
    page = reviewer_client.get(batch.get_absolute_url() + "?decided=nobody")
    assert page.status_code == 400 and "decided:" in page.content.decode()


def test_reasons_and_notes_are_filterable_and_searchable(reviewer_client, batch):
    decide(reviewer_client, "walker 1", "rejected", reason="Duplicate", note="same as walker two")
    decide(reviewer_client, "walker 3", "invalid", reason="Bad video")
    assert shown_labels(reviewer_client, batch, "reason=Duplicate") == {"walker 1"}
    assert shown_labels(reviewer_client, batch, "reason=Duplicate&reason=Bad+video") == {"walker 1", "walker 3"}
    assert shown_labels(reviewer_client, batch, "q=walker+two") == {"walker 1"}


def test_the_default_csv_keeps_the_seed_pages_17_columns(reviewer_client, batch):
    response = reviewer_client.get(reverse("batch_export", args=[batch.pk, "csv"]))
    header = next(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert header == csv_columns.HEADER and len(header) == 17


def test_the_extended_csv_adds_who_decided_when_why_and_the_note(reviewer_client, batch, reviewer_user):
    decide(reviewer_client, "truck", "invalid", reason="Bad video", note="=cmd|' /C calc'!A0")
    for sort in ("", "&sort=severity"):  # the flat query and the item-by-item path
        response = reviewer_client.get(reverse("batch_export", args=[batch.pk, "csv"]) + "?columns=extended" + sort)
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert list(rows[0]) == csv_columns.HEADER + [
            "Event ID", "Provider Approval", "Decided By", "Decided At", "Reason", "Note",
        ]  # fmt: skip
        truck = next(row for row in rows if row["Label"] == "truck")
        assert truck["Event ID"] == str(event("truck").pk) and truck["Provider Approval"] == "rejected"
        assert truck["Decided By"] == reviewer_user.username and truck["Decided At"].startswith("20")
        assert truck["Reason"] == "Bad video" and truck["Note"] == "'=cmd|' /C calc'!A0"  # no formula
        walker = next(row for row in rows if row["Label"] == "walker 1")
        assert walker["Decided By"] == walker["Decided At"] == walker["Reason"] == ""
    bad = reviewer_client.get(reverse("batch_export", args=[batch.pk, "csv"]) + "?columns=all")
    assert bad.status_code == 400 and "Valid values: extended" in bad.content.decode()


def test_an_extended_export_re_imported_changes_no_event(reviewer_client, batch):
    decide(reviewer_client, "truck", "invalid", reason="Bad video", note="blurry")
    response = reviewer_client.get(reverse("batch_export", args=[batch.pk, "csv"]) + "?columns=extended")
    before = list(Event.objects.order_by("pk").values_list("pk", "metadata", "approval", "reason", "note"))
    run = import_bytes(b"".join(response.streaming_content), "rr-review-tests.csv")
    assert run.outcome == "succeeded", (run.error, run.malformed_lines)
    assert (run.events_created, run.events_updated) == (0, 0)
    assert list(Event.objects.order_by("pk").values_list("pk", "metadata", "approval", "reason", "note")) == before


def test_the_note_form_offers_the_active_reasons_and_decides_with_them(reviewer_client, batch):
    ReasonCode.objects.filter(label="Bad video").update(active=False)
    walker = event("walker 1")
    page = reviewer_client.get(reverse("event_note", args=[walker.pk]) + "?approval=pending")
    body = page.content.decode()
    assert page.status_code == 200 and "Duplicate" in body and "Bad video" not in body
    assert 'name="approval" value="pending"' in body  # the page's filter goes along
    assert f'hx-target="#event-{walker.pk}"' in body and 'value="pending" checked' in body  # Save alone keeps it
    response = reviewer_client.post(
        decide_url(walker),
        {
            "decision": "rejected",
            "decision_reason": "Duplicate",
            "note": "twice",
            "note_form": "1",
            "approval": "pending",
        },
        headers=HTMX,
    )
    assert response.status_code == 200 and (event("walker 1").reason, event("walker 1").note) == ("Duplicate", "twice")
    # The form keeps its reason list for every decision: an approval from it drops the reason.
    reviewer_client.post(decide_url(walker), {"decision": "approved", "decision_reason": "Duplicate", "note_form": "1"},
                         headers=HTMX)  # fmt: skip
    assert (event("walker 1").approval, event("walker 1").reason) == ("approved", "")


def test_the_note_form_can_clear_a_note_and_a_reason(reviewer_client, batch):
    decide(reviewer_client, "walker 1", "rejected", reason="Duplicate", note="twice")
    response = decide(reviewer_client, "walker 1", "rejected", reason="", note="", note_form="1")
    assert response["X-Review-Outcome"] == "applied"
    assert (event("walker 1").reason, event("walker 1").note) == ("", "")
    undo(reviewer_client, batch)
    assert (event("walker 1").reason, event("walker 1").note) == ("Duplicate", "twice")


def test_the_note_form_in_review_mode_answers_into_the_card(reviewer_client, batch):
    body = reviewer_client.get(reverse("event_note", args=[event("truck").pk]) + "?view=focus").content.decode()
    assert 'hx-target="#card"' in body and 'name="view" value="focus"' in body


def test_the_note_form_is_for_reviewers_only(viewer_client, batch):
    assert viewer_client.get(reverse("event_note", args=[event("truck").pk])).status_code == 403


def test_the_activity_log_names_events_filters_and_shows_each_reviewers_pace(reviewer_client, batch, staff):
    from datetime import timedelta

    from django.utils import timezone

    decide(reviewer_client, "walker 1", "rejected", reason="Duplicate", note="twice")
    decide(reviewer_client, "walker 2", "approved")
    review.decide(event("truck"), "invalid", staff)
    # Spread rita's two actions 2 minutes apart and add a break of an hour before a third.
    rita = list(Decision.objects.filter(user__username="rita").order_by("pk"))
    start = timezone.now() - timedelta(hours=2)
    for offset, decision in zip((0, 120), rita, strict=True):
        Decision.objects.filter(pk=decision.pk).update(created_at=start + timedelta(seconds=offset))
    decide(reviewer_client, "walker 3", "approved")
    url = reverse("batch_activity", args=[batch.pk])

    body = reviewer_client.get(url).content.decode()
    walker = event("walker 1")
    assert f'href="/batches/{batch.pk}/review?event={walker.pk}">walker 1</a>' in body and "v1.mp4" in body
    assert "Duplicate" in body and "twice" in body
    pace = {entry.reviewer: entry for entry in __import__("reviewer.activity").activity.pace(batch)}
    assert (pace["rita"].events, pace["rita"].actions, pace["rita"].active) == (3, 3, timedelta(seconds=120))
    assert pace["rita"].events_per_hour == 90.0  # 3 events in 2 active minutes
    assert pace["alice"].events_per_hour is None  # one action: no active time to divide by
    assert "2 min 00 s" in body

    only_alice = reviewer_client.get(url + "?reviewer=alice").content.decode()
    assert "truck" in only_alice and "walker 1" not in only_alice
    rejections = reviewer_client.get(url + "?decision=rejected").content.decode()
    assert "walker 1" in rejections and "walker 2" not in rejections
    bad = reviewer_client.get(url + "?reviewer=nobody")
    assert bad.status_code == 400 and "reviewer:" in bad.content.decode()


def test_a_decision_from_a_page_with_a_mangled_filter_still_answers_its_row(reviewer_client, batch):
    walker = event("walker 1")
    response = decide(reviewer_client, "walker 1", "approved", severity="no-such-severity")
    assert response.status_code == 200 and response["X-Review-Outcome"] == "applied"
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr class="event" id="event-{walker.pk}"') and 'id="card"' not in body
