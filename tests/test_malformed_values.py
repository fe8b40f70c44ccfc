"""Malformed numbers in requests get a clear refusal, never a 500; a bulk action by filter needs its count."""

from __future__ import annotations

import json

import pytest

from reviewer.models import Event
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

pytestmark = pytest.mark.django_db

BAD_NUMBERS = ["²", "99999999999999999999999", "-1", "0x10", "abc", "1.5", ""]
HTMX = {"HX-Request": "true"}  # a refused action answers 400 (a plain form is redirected with the message)


@pytest.fixture
def batch():
    events = [nomadic_event(label=f"e{n}", t_start=f"00:0{n}", t_end=f"00:0{n}") for n in range(3)]
    run = import_bytes(json.dumps(nomadic_analysis("b-bad", [nomadic_result("v1", events)])).encode(), "b.json")
    return run.batch


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_review_mode_ignores_a_malformed_event(staff_client, batch, value):
    response = staff_client.get(f"/batches/{batch.pk}/review", {"event": value})
    assert response.status_code == 200  # starts at the first pending event instead


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_the_batch_picker_refuses_a_malformed_source(staff_client, value):
    response = staff_client.get("/batches/add/recent", {"source": value})
    assert response.status_code == 200 and "Choose a source." in response.content.decode()


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_a_decision_with_a_malformed_revision_is_applied_without_the_stale_check(staff_client, batch, value):
    event = batch.events.first()
    response = staff_client.post(f"/events/{event.pk}/decision", {"decision": "approved", "revision": value})
    assert response.status_code == 302
    assert Event.objects.get(pk=event.pk).approval == "approved"


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_a_bulk_selection_with_a_malformed_event_changes_nothing(staff_client, batch, value):
    good = batch.events.first().pk
    data = {"decision": "rejected", "event": [good, value]}
    response = staff_client.post(f"/batches/{batch.pk}/decisions", data, headers=HTMX)
    assert response.status_code == 400
    assert not Event.objects.filter(approval="rejected").exists()


@pytest.mark.parametrize("value", [*BAD_NUMBERS, " 72", "0", "4"])
def test_a_bulk_action_by_filter_needs_a_valid_count(staff_client, batch, value):
    data = {"decision": "rejected", "all_matching": "1", "approval": "pending", "expected_count": value}
    response = staff_client.post(f"/batches/{batch.pk}/decisions", data, headers=HTMX)
    assert response.status_code == 400
    assert not Event.objects.filter(approval="rejected").exists()


def test_a_bulk_action_by_filter_without_a_count_changes_nothing(staff_client, batch):
    data = {"decision": "rejected", "all_matching": "1", "approval": "pending"}
    response = staff_client.post(f"/batches/{batch.pk}/decisions", data, headers=HTMX)
    assert "confirmed number of events is missing" in response.content.decode()
    assert not Event.objects.filter(approval="rejected").exists()


def test_a_bulk_action_by_filter_with_the_right_count_applies(staff_client, batch):
    data = {"decision": "rejected", "all_matching": "1", "approval": "pending", "expected_count": "3"}
    staff_client.post(f"/batches/{batch.pk}/decisions", data)
    assert Event.objects.filter(approval="rejected").count() == 3
