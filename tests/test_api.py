"""The JSON API: roles per token, the batch page's filters and order, cursors, decisions, tokens, the hand-off."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import override_settings

from reviewer import review
from reviewer.models import ApiToken, Batch, Decision, Event
from tests.conftest import bearer
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

pytestmark = pytest.mark.django_db

APPROVALS = ["pending", "approved", "rejected", "invalid"]
SORTS = ["", "time", "severity", "confidence", "video"]


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()  # the per-token counters live in the process's cache


@pytest.fixture
def batch(staff) -> Batch:
    """Five videos, 12 events: provider approvals of every kind, some decided again by a person."""
    videos = {
        "v1": [("Crossing", "approved", "high", 0.91), ("Bus", "rejected", "low", 0.42), ("Kid", "pending", "critical", None)],
        "v2": [("Dog", "pending", "medium", 0.77), ("Cart", "pending", "low", 0.55)],
        "v3": [],
        "v4": [("Cyclist", "invalid", "high", 0.66), ("Scooter", "approved", "medium", 0.97), ("Van", "pending", "", 0.8)],
        "b0": [("Truck", "pending", "high", 0.88), ("Walker", "rejected", "critical", 0.99), ("Tram", "pending", "low", 0.3),
               ("Horse", "approved", "", None)],
    }  # fmt: skip
    results = []
    for n, (video, events) in enumerate(videos.items()):
        built = [
            nomadic_event(label=label, approval=approval, severity=severity, confidence=confidence,
                          t_start=f"00:{(7 - k) % 6}{n}", t_end=f"00:{(7 - k) % 6}{n + 1}")
            for k, (label, approval, severity, confidence) in enumerate(events)
        ]  # fmt: skip
        results.append(nomadic_result(video, built))
    run = import_bytes(json.dumps(nomadic_analysis("b-api", results)).encode(), "b-api.json")
    assert run.outcome == "succeeded", run.error
    batch = run.batch
    by_label = {event.label: event for event in batch.events.all()}
    review.decide(by_label["Bus"], "approved", staff)  # a person against the provider
    review.decide(by_label["Dog"], "rejected", staff)
    review.decide(by_label["Truck"], "invalid", staff)
    return Batch.objects.get(pk=batch.pk)


def get_json(client, url: str, token: str, **params):
    response = client.get(url, params, **bearer(token))
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.status_code, json.loads(b"".join(response) if response.streaming else response.content)


def api_event_ids(client, token: str, batch: Batch, query: str = "", limit: int = 2) -> list[int]:
    """Every event id of a filtered list, following next_cursor page by page."""
    ids, cursor = [], ""
    for _ in range(100):
        url = f"/api/batches/{batch.pk}/events?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, **bearer(token))
        assert response.status_code == 200, response.content
        page = response.json()
        ids += [event["id"] for event in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            assert page["count"] == len(ids)
            return ids
    raise AssertionError("the cursor never ended")


def page_event_ids(client, batch: Batch, query: str) -> list[int]:
    html = client.get(f"/batches/{batch.pk}/?{query}").content.decode()
    return [int(pk) for pk in re.findall(r'<tr class="event" id="event-(\d+)"', html)]


def csv_event_ids(client, batch: Batch, query: str) -> list[int]:
    response = client.get(f"/batches/{batch.pk}/export.csv?columns=extended&{query}")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    return [int(row["Event ID"]) for row in rows]


# --- Who may do what ------------------------------------------------------------------------------


def operations(batch: Batch, event: Event, synced: int = 0) -> list[tuple[str, str, dict | None, bool, bool]]:
    """(method, path, body, changes data, staff only); ``synced``: a batch of a source (one that syncs)."""
    b, e = batch.pk, event.pk
    return [
        ("get", "/api/sources", None, False, False),
        ("get", "/api/batches", None, False, False),
        ("post", "/api/batches", {"source": "nm", "batch_id": "b-new"}, True, False),
        ("get", f"/api/batches/{b}", None, False, False),
        ("get", f"/api/batches/{b}/sync", None, False, False),
        ("post", f"/api/batches/{synced}/sync", {}, True, False),
        ("get", f"/api/batches/{b}/events", None, False, False),
        ("get", f"/api/batches/{b}/items", None, False, False),
        ("get", f"/api/batches/{b}/handoff", None, False, False),
        ("get", f"/api/events/{e}", None, False, False),
        ("get", f"/api/events/{e}/history", None, False, False),
        ("post", f"/api/events/{e}/decision", {"decision": "approved"}, True, False),
        ("post", f"/api/batches/{b}/decisions", {"decision": "rejected", "event_ids": [e]}, True, False),
        ("post", f"/api/batches/{b}/undo", {}, True, False),
        ("get", "/api/webhooks", None, False, True),
        ("get", f"/api/batches/{b}/quality", None, False, False),
        ("get", "/api/quality", None, False, False),
    ]


@pytest.mark.parametrize("role", ["anonymous", "bad token", "revoked", "viewer", "reviewer", "staff"])
def test_every_operation_for_every_kind_of_caller(client, batch, api_tokens, nomadic_source, role):
    revoked_row, revoked = ApiToken.issue(ApiToken.objects.get(name="staff token").user, "old")
    revoked_row.revoked_at = revoked_row.created_at
    revoked_row.save()
    token = {"bad token": "rvw_not-a-token", "revoked": revoked}.get(role) or api_tokens.get(role)
    headers = bearer(token) if token else {}
    event = batch.events.get(label="Kid")
    decisions_before = Decision.objects.count()
    synced = Batch.objects.create(source=nomadic_source, provider="nomadicml", provider_batch_id="b-synced")
    for method, path, body, changes, staff_only in operations(batch, event, synced.pk):
        if body is None:
            response = getattr(client, method)(path, **headers)
        else:
            response = getattr(client, method)(path, body, content_type="application/json", **headers)
        if role in ("anonymous", "bad token", "revoked"):
            expected = 401
        elif staff_only and role != "staff" or changes and role == "viewer":
            expected = 403
        else:
            expected = 202 if method == "post" and path.endswith(("/api/batches", "/sync")) else 200
        assert response.status_code == expected, (role, method, path, response.content[:300])
        if expected >= 400:
            assert response.json()["detail"]
    if role in ("anonymous", "bad token", "revoked", "viewer"):
        assert Decision.objects.count() == decisions_before  # refused calls changed nothing
        assert not Batch.objects.filter(provider_batch_id="b-new").exists()


def test_the_api_ignores_the_session_cookie(client, batch, staff):
    client.force_login(staff)
    response = client.get(f"/api/batches/{batch.pk}")
    assert response.status_code == 401  # a browser's cookies never authorize an API call (and so need no CSRF)
    response = client.post(f"/api/events/{batch.events.first().pk}/decision", {"decision": "approved"},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 401
    assert not Decision.objects.filter(to_approval="approved", user=staff).exclude(event__label="Bus").exists()


# --- The batch page's filters, order and messages ------------------------------------------------------


def test_the_event_list_equals_the_page_and_the_csv_for_all_16_approval_subsets(client, batch, api_tokens, staff):
    client.force_login(staff)
    subsets = [combo for size in range(5) for combo in itertools.combinations(APPROVALS, size)]
    assert len(subsets) == 16
    for subset in subsets:
        query = "&".join(f"approval={value}" for value in subset)
        from_api = api_event_ids(client, api_tokens["viewer"], batch, query)
        assert from_api == page_event_ids(client, batch, query), subset
        assert from_api == csv_event_ids(client, batch, query), subset
        expected = Event.objects.filter(batch=batch, approval__in=subset or APPROVALS).count()
        assert len(from_api) == expected, subset


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_pages_in_the_page_order(client, batch, api_tokens, staff, sort):
    client.force_login(staff)
    for query in (f"sort={sort}", f"sort={sort}&approval=pending&approval=invalid", f"sort={sort}&q=a"):
        from_api = api_event_ids(client, api_tokens["staff"], batch, query, limit=3)
        assert from_api == csv_event_ids(client, batch, query) == page_event_ids(client, batch, query), query
        assert len(set(from_api)) == len(from_api)


@pytest.mark.parametrize("sort", SORTS)
def test_items_follow_the_page(client, batch, api_tokens, staff, sort):
    client.force_login(staff)
    for query in (f"sort={sort}", f"sort={sort}&approval=rejected"):
        ids, cursor = [], ""
        while True:
            status, page = get_json(client, f"/api/batches/{batch.pk}/items?limit=2&{query}"
                                    + (f"&cursor={cursor}" if cursor else ""), api_tokens["viewer"])  # fmt: skip
            assert status == 200
            ids += [item["id"] for item in page["results"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        html = client.get(f"/batches/{batch.pk}/?{query}").content.decode()
        assert ids == [int(pk) for pk in re.findall(r'<tbody class="item" id="item-(\d+)"', html)], query
        assert page["count"] == len(ids)


@pytest.mark.parametrize(
    "query",
    ["approval=nope", "status=exploded", "severity=apocalyptic&category=nothing", "decided=alien", "sort=sideways"],
)
def test_a_bad_filter_gets_the_batch_pages_own_message(client, batch, api_tokens, staff, query):
    client.force_login(staff)
    status, answer = get_json(client, f"/api/batches/{batch.pk}/events?{query}", api_tokens["viewer"])
    assert status == 400
    if not query.startswith("sort"):  # sort is validated by the schema; the rest by the page's own form
        page_message = client.get(f"/batches/{batch.pk}/export.csv?{query}").content.decode()
        assert answer["detail"] == page_message
    assert answer["detail"].split(":")[0] in query


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "eyJrIjpbMV19", "eyJvIjotNX0", "e30", "%00", "W10", "eyJrIjpbe31dfQ",
     "eyJrIjpbMTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCwwLDAsMF19",  # a 31-digit number
     "eyJrIjogWyJ4IiwgMCwgMCwgMF19", "eyJrIjogW0luZmluaXR5LCAwLCAwLCAwXX0"],  # text for a position; Infinity
)  # fmt: skip
def test_a_cursor_that_is_not_ours_is_a_400(client, batch, api_tokens, cursor):
    status, answer = get_json(client, f"/api/batches/{batch.pk}/events?cursor={cursor}", api_tokens["viewer"])
    assert status == 400
    assert "cursor" in answer["detail"]
    status, answer = get_json(client, f"/api/batches/{batch.pk}/events?sort=severity&cursor={cursor}",
                              api_tokens["viewer"])  # fmt: skip
    assert status == 400


def test_paging_through_pending_while_deciding_it_skips_nothing(client, batch, api_tokens):
    """The keyset cursor: deciding the events of a page does not shift the next page (an offset would skip)."""
    pending = list(
        batch.events.filter(approval="pending").order_by("item__position", "position").values_list("pk", flat=True)
    )
    seen, cursor = [], ""
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        page = client.get(f"/api/batches/{batch.pk}/events?approval=pending&limit=2{suffix}",
                          **bearer(api_tokens["reviewer"])).json()  # fmt: skip
        ids = [event["id"] for event in page["results"]]
        seen += ids
        if ids:
            response = client.post(f"/api/batches/{batch.pk}/decisions", {"decision": "approved", "event_ids": ids},
                                   content_type="application/json", **bearer(api_tokens["reviewer"]))  # fmt: skip
            assert response.json()["changed"] == len(ids)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == pending
    assert not batch.events.filter(approval="pending").exists()


def test_unknown_batch_and_event_are_404_with_a_message(client, db, api_tokens):
    status, answer = get_json(client, "/api/batches/999999", api_tokens["viewer"])
    assert (status, answer["detail"]) == (404, "No batch 999999.")
    status, answer = get_json(client, "/api/events/999999/history", api_tokens["viewer"])
    assert (status, answer["detail"]) == (404, "No event 999999.")
    status, answer = get_json(client, "/api/batches/abc", api_tokens["viewer"])
    assert status == 400


# --- Decisions ---------------------------------------------------------------------------------------


def post(client, url: str, body: dict, token: str):
    response = client.post(url, body, content_type="application/json", **bearer(token))
    return response.status_code, response.json()


def test_a_decision_by_api_is_in_the_history_with_the_tokens_user(client, batch, api_tokens, reviewer_user):
    event = batch.events.get(label="Kid")
    status, answer = post(client, f"/api/events/{event.pk}/decision",
                          {"decision": "rejected", "reason": "False positive", "note": "a shadow"},
                          api_tokens["reviewer"])  # fmt: skip
    assert status == 200, answer
    assert answer["outcome"] == "applied"
    assert answer["event"]["approval"] == "rejected"
    assert answer["event"]["decided_by"] == "rita"
    decision = Decision.objects.get(event=event)
    assert (decision.user, decision.to_approval, decision.reason, decision.note) == (
        reviewer_user, "rejected", "False positive", "a shadow")  # fmt: skip
    status, history = get_json(client, f"/api/events/{event.pk}/history", api_tokens["viewer"])
    assert history[0]["user"] == "rita" and history[0]["to_approval"] == "rejected"
    client.force_login(reviewer_user)
    assert "rita" in client.get(f"/events/{event.pk}/history").content.decode()
    # the same again is not a new history row
    status, answer = post(client, f"/api/events/{event.pk}/decision", {"decision": "rejected"}, api_tokens["reviewer"])
    assert answer["outcome"] == "unchanged"
    assert Decision.objects.filter(event=event).count() == 1


def test_a_stale_revision_is_refused_and_changes_nothing(client, batch, api_tokens, staff):
    event = batch.events.get(label="Kid")
    seen = event.revision
    review.decide(event, "approved", staff)
    status, answer = post(client, f"/api/events/{event.pk}/decision", {"decision": "rejected", "revision": seen},
                          api_tokens["reviewer"])  # fmt: skip
    assert status == 409
    assert "alice changed this event to approved" in answer["detail"]
    assert Event.objects.get(pk=event.pk).approval == "approved"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"decision": "maybe", "event_ids": [1]}, 400, "decision"),
        ({"decision": "approved"}, 400, "either event_ids or filter"),
        ({"decision": "approved", "event_ids": [1], "filter": {}}, 400, "either event_ids or filter"),
        ({"decision": "approved", "event_ids": []}, 400, "at least one"),
        ({"decision": "approved", "filter": {"approval": ["pending"]}}, 400, "expected_count"),
        ({"decision": "approved", "filter": {"approval": ["nope"]}, "expected_count": 1}, 400, "Valid values"),
        ({"decision": "approved", "filter": {"approval": ["pending"]}, "expected_count": 1}, 409, "match now"),
        ({"decision": "pending", "reason": "False positive", "event_ids": [1]}, 400, "reason"),
        ({"decision": "rejected", "reason": "Sunspots", "filter": {}, "expected_count": 12}, 400, "Unknown reason"),
    ],
)
def test_bulk_decisions_refuse_what_cannot_be_applied(client, batch, api_tokens, body, status, words):
    before = list(batch.events.order_by("pk").values_list("approval", flat=True))
    got, answer = post(client, f"/api/batches/{batch.pk}/decisions", body, api_tokens["reviewer"])
    assert got == status, answer
    assert words in answer["detail"]
    assert list(batch.events.order_by("pk").values_list("approval", flat=True)) == before


def test_bulk_by_ids_refuses_an_event_of_another_batch(client, batch, api_tokens):
    other = import_bytes(json.dumps(nomadic_analysis("b-other", [nomadic_result("x", [nomadic_event()])])).encode(),
                         "b-other.json").batch  # fmt: skip
    ids = [batch.events.first().pk, other.events.first().pk]
    status, answer = post(client, f"/api/batches/{batch.pk}/decisions", {"decision": "approved", "event_ids": ids},
                          api_tokens["reviewer"])  # fmt: skip
    assert status == 409
    assert not Decision.objects.filter(user__username="rita").exists()


def test_bulk_by_filter_then_undo(client, batch, api_tokens):
    pending = batch.events.filter(approval="pending").count()
    body = {"decision": "rejected", "filter": {"approval": ["pending"], "severity": ["low"]}, "expected_count": 2,
            "reason": "Wrong category"}  # fmt: skip
    status, answer = post(client, f"/api/batches/{batch.pk}/decisions", body, api_tokens["reviewer"])
    assert status == 200, answer
    assert answer["changed"] == 2
    assert batch.events.filter(approval="pending").count() == pending - 2
    # someone else's undo does not take it back; the author's does, by its group
    status, answer_other = post(client, f"/api/batches/{batch.pk}/undo", {}, api_tokens["viewer"])
    assert status == 403
    status, undone = post(client, f"/api/batches/{batch.pk}/undo", {"group": "not-a-uuid"}, api_tokens["reviewer"])
    assert status == 400
    status, undone = post(client, f"/api/batches/{batch.pk}/undo", {"group": answer["group"]}, api_tokens["reviewer"])
    assert (status, undone["changed"]) == (200, 2)
    assert batch.events.filter(approval="pending").count() == pending
    status, again = post(client, f"/api/batches/{batch.pk}/undo", {}, api_tokens["reviewer"])
    assert status == 409 and "Nothing to undo" in again["detail"]


def test_nothing_can_be_decided_in_a_loading_batch(client, batch, api_tokens):
    Batch.objects.filter(pk=batch.pk).update(loading="first")
    event = batch.events.first()
    status, _ = post(client, f"/api/events/{event.pk}/decision", {"decision": "approved"}, api_tokens["reviewer"])
    assert status == 404
    status, answer = post(client, f"/api/batches/{batch.pk}/decisions", {"decision": "approved", "event_ids": [event.pk]},
                          api_tokens["reviewer"])  # fmt: skip
    assert status == 409 and "loading" in answer["detail"]
    status, page = get_json(client, f"/api/batches/{batch.pk}/events", api_tokens["viewer"])
    assert (status, page["count"], page["results"]) == (200, 0, [])


# --- Batches and syncs ---------------------------------------------------------------------------------


def test_adding_a_batch_queues_its_sync(client, db, api_tokens, nomadic_source):
    status, answer = post(client, "/api/batches", {"source": "nm", "batch_id": "b-new"}, api_tokens["reviewer"])
    assert status == 202, answer
    assert answer["provider_batch_id"] == "b-new" and answer["source"] == "nm"
    status, state = get_json(client, f"/api/batches/{answer['id']}/sync", api_tokens["viewer"])
    assert state["sync_state"] in ("queued", "running", "idle", "failed")
    status, answer = post(client, "/api/batches", {"source": "nope", "batch_id": "x"}, api_tokens["reviewer"])
    assert status == 400 and "Sources: nm" in answer["detail"]
    status, answer = post(client, "/api/batches", {"source": "nm", "batch_id": ""}, api_tokens["reviewer"])
    assert status == 400


def test_an_imported_batch_cannot_be_synced(client, batch, api_tokens):
    status, answer = post(client, f"/api/batches/{batch.pk}/sync", {}, api_tokens["reviewer"])
    assert status == 400 and "imported from a file" in answer["detail"]


def test_batch_counts_and_progress(client, batch, api_tokens):
    status, answer = get_json(client, f"/api/batches/{batch.pk}", api_tokens["viewer"])
    assert answer["event_total"] == 12 == sum(answer["approval_counts"].values())
    assert answer["reviewed_by_people"] == 3
    assert answer["pending"] == batch.events.filter(approval="pending").count()
    assert answer["is_reviewed"] is False
    assert answer["url"] == f"/batches/{batch.pk}/"


# --- Tokens --------------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_as_a_digest_and_revoked_from_its_page(client, viewer):
    client.force_login(viewer)
    response = client.post("/account/tokens/", {"name": "pipeline"})
    token = re.search(r'id="new-token">([^<]+)<', response.content.decode()).group(1)
    assert response["Cache-Control"].startswith("max-age=0")
    row = ApiToken.objects.get(name="pipeline")
    assert token not in (row.digest, row.hint) and row.digest == ApiToken.digest_of(token)
    assert token not in client.get("/account/tokens/").content.decode()  # never shown again
    assert client.get("/api/batches", **bearer(token)).status_code == 200
    assert ApiToken.objects.get(pk=row.pk).last_used_at is not None
    client.post(f"/account/tokens/{row.pk}/revoke")
    assert client.get("/api/batches", **bearer(token)).status_code == 401


def test_a_token_is_revoked_only_by_its_owner(client, viewer, staff):
    row, token = ApiToken.issue(staff, "mine")
    client.force_login(viewer)
    assert client.post(f"/account/tokens/{row.pk}/revoke").status_code == 404
    assert ApiToken.objects.get(pk=row.pk).revoked_at is None


def test_an_inactive_users_token_is_refused(client, viewer):
    _, token = ApiToken.issue(viewer, "t")
    viewer.is_active = False
    viewer.save()
    assert client.get("/api/batches", **bearer(token)).status_code == 401


def test_create_api_token_command(client, viewer, capsys):
    call_command("create_api_token", "victor", "--name", "nightly export")
    token = capsys.readouterr().out.strip()
    assert token.startswith("rvw_")
    assert client.get("/api/batches", **bearer(token)).status_code == 200
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("create_api_token", "nobody", "--name", "x")


def test_a_token_has_a_rate_limit(client, batch, api_tokens):
    with override_settings(API_RATE_LIMIT="3/m"):
        codes = [client.get("/api/batches", **bearer(api_tokens["viewer"])).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        response = client.get("/api/batches", **bearer(api_tokens["viewer"]))
        assert int(response["Retry-After"]) > 0
        assert client.get("/api/batches", **bearer(api_tokens["staff"])).status_code == 200  # per token


def test_the_schema_and_docs_need_a_login_or_a_token(client, viewer, api_tokens):
    assert client.get("/api/openapi.json").status_code == 401
    assert client.get("/api/docs").status_code == 302
    assert client.get("/api/openapi.json", **bearer(api_tokens["viewer"])).json()["info"]["title"] == "reviewer API"
    client.force_login(viewer)
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in docs.content.decode()  # served here, not from a CDN


# --- The hand-off -----------------------------------------------------------------------------------------


def test_the_handoff_lists_what_people_approved_and_rejected_per_video(client, batch, api_tokens, staff):
    kid = batch.events.get(label="Kid")
    review.decide(kid, "approved", staff)
    status, handoff = get_json(client, f"/api/batches/{batch.pk}/handoff", api_tokens["viewer"])
    assert status == 200 and handoff["people_only"] is True
    by_video = {video["custom_id"] or video["provider_item_id"]: video for video in handoff["videos"]}
    summary = {video: ([e["label"] for e in v["approved"]], [e["label"] for e in v["rejected"]])
               for video, v in by_video.items()}  # fmt: skip
    assert summary == {"v1": (["Bus", "Kid"], []), "v2": ([], ["Dog"])}  # time order; Truck is invalid: in neither
    assert by_video["v1"]["approved"][0]["decided_by"] == "alice"
    status, everything = get_json(client, f"/api/batches/{batch.pk}/handoff?include_provider=true",
                                  api_tokens["viewer"])  # fmt: skip
    labels = {e["label"] for v in everything["videos"] for kind in ("approved", "rejected") for e in v[kind]}
    assert labels == {"Kid", "Bus", "Dog", "Crossing", "Scooter", "Walker", "Horse"}
    client.force_login(staff)
    download = client.get(f"/batches/{batch.pk}/handoff.json")
    assert json.loads(b"".join(download.streaming_content)) == handoff
    assert download["Content-Disposition"] == 'attachment; filename="b-api-handoff.json"'


def test_an_unknown_query_parameter_is_refused_not_ignored(client, batch, api_tokens):
    """A typo must not silently widen a list (or a bulk decision's filter) to everything."""
    status, answer = get_json(client, f"/api/batches/{batch.pk}/events?aproval=pending", api_tokens["viewer"])
    assert status == 400
    assert answer["detail"].startswith("Unknown query parameter 'aproval': it takes approval, category, cursor,")
    status, answer = get_json(client, f"/api/batches/{batch.pk}?verbose=1", api_tokens["viewer"])
    assert (status, answer["detail"]) == (400, "Unknown query parameter 'verbose': it takes none.")


@pytest.mark.django_db(transaction=True)
def test_the_readmes_examples_work(live_server, api_tokens, capsys):
    """The README's curl lines and Python loop, run as written against a live server."""
    import subprocess
    from pathlib import Path

    cache.clear()
    run = import_bytes(json.dumps(nomadic_analysis("b-readme", [nomadic_result(f"v{n}", [nomadic_event()])
                                                                for n in range(3)])).encode(), "b.json")  # fmt: skip
    readme = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    section = readme.split("## The API and webhooks", 1)[1].split("\n## ", 1)[0]
    shell = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    base, token = "http://127.0.0.1:8000", api_tokens["reviewer"]
    event = run.batch.events.order_by("pk").first()
    batch_path = f"/api/batches/{run.batch.pk}/"
    shell = shell.replace(base, live_server.url).replace("/api/batches/1/", batch_path).replace("/api/events/42/",
                                                                                              f"/api/events/{event.pk}/")  # fmt: skip
    shell = re.sub(r"^TOKEN=.*$", f"TOKEN={token}", shell, flags=re.M)
    result = subprocess.run(["bash", "-c", "set -e; " + shell.replace("curl ", "curl -sf ")], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"count": 3' in result.stdout and '"outcome": "applied"' in result.stdout
    exec(python.replace(base, live_server.url).replace("/api/batches/1/", batch_path), {"TOKEN": token})  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2  # the two events still pending after the curl line approved one
    assert all(line.split()[1] in ("v1.mp4", "v2.mp4") for line in printed)


def test_the_role_matrix_covers_every_operation(batch):
    from reviewer.api import api

    documented = {(method, path) for path, methods in api.get_openapi_schema()["paths"].items() for method in methods}
    tested = {(method, re.sub(r"/\d+", "/{id}", path)) for method, path, *_ in operations(batch, batch.events.first())}
    assert {(method, re.sub(r"\{\w+\}", "{id}", path)) for method, path in documented} == tested


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"decision": "approved", "event_ids": [10**30]}, "event_ids.0: Input should be less than or equal to"),
        ({"decision": "approved", "filter": {}, "expected_count": 10**30}, "expected_count: Input should be"),
        ({"decision": "approved", "event_ids": ["x"]}, "event_ids.0: Input should be a valid integer"),
    ],
)
def test_numbers_the_database_cannot_hold_are_a_400(client, batch, api_tokens, body, words):
    status, answer = post(client, f"/api/batches/{batch.pk}/decisions", body, api_tokens["reviewer"])
    assert status == 400 and answer["detail"].startswith(words), answer
    status, answer = post(client, f"/api/events/{batch.events.first().pk}/decision",
                          {"decision": "approved", "revision": 10**30}, api_tokens["reviewer"])  # fmt: skip
    assert (status, answer["detail"].split(":")[0]) == (400, "revision")
    assert get_json(client, f"/api/batches/{10**30}", api_tokens["viewer"])[0] == 404


@pytest.mark.parametrize(
    ("url", "body", "where"),
    [
        ("/api/batches", {"source": "nm\x00", "batch_id": "x"}, "source: contains a character that cannot be stored"),
        ("/api/events/{event}/decision", {"decision": "rejected", "reason": "False\x00positive"}, "reason: contains"),
        ("/api/events/{event}/decision", {"decision": "rejected", "note": "\ud800 lone"}, "note: Input should be a"),
        ("/api/batches/{batch}/decisions", {"decision": "approved", "filter": {"category": ["a\x00"]},
                                             "expected_count": 1}, "filter.category.0: contains"),
    ],
)  # fmt: skip
def test_text_the_database_cannot_store_is_a_400(client, batch, api_tokens, url, body, where):
    """PostgreSQL refuses NUL characters, and a lone surrogate has no UTF-8 form: either is a 400, nothing changes."""
    url = url.format(event=batch.events.first().pk, batch=batch.pk)
    before = Decision.objects.count()
    response = client.post(url, json.dumps(body), content_type="application/json", **bearer(api_tokens["reviewer"]))
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(where)
    assert Decision.objects.count() == before
