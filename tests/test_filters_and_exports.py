"""Filters with the seed page's semantics, and exports of exactly what the page shows."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse

from reviewer import exporters, filters, search
from reviewer.models import Batch, Event, Item
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

pytestmark = pytest.mark.django_db

GOLDEN = Path(__file__).parent / "golden"
APPROVALS = ["approved", "rejected", "pending", "invalid"]

# The fixture batch: video -> (status, [(label, approval), ...]).
FIXTURE = {
    "v1": ("completed", [("Crossing", "approved"), ("Bus", "rejected"), ("Kid", "pending")]),
    "v2": ("completed", [("Dog", "pending")]),
    "v3": ("completed", []),
    "v4": ("failed", []),
    "v5": ("completed", [("Cyclist", "invalid"), ("Scooter", "approved")]),
}


@pytest.fixture
def batch() -> Batch:
    results = []
    for n, (video_id, (status, events)) in enumerate(FIXTURE.items()):
        built = [
            nomadic_event(label=label, approval=approval, t_start=f"00:{n}{k}", t_end=f"00:{n}{k + 1}")
            for k, (label, approval) in enumerate(events)
        ]
        extra = {"error": "decode error", "analysis_id": None} if status == "failed" else {}
        results.append(nomadic_result(video_id, built, status=status, **extra))
    data = nomadic_analysis("b-fix", results, metadata={"site": "sf-3"})
    run = import_bytes(json.dumps(data).encode(), "b-fix.json")
    assert run.outcome == "succeeded", run.error
    return run.batch


def expected(selected: set[str]) -> dict[str, list[str]]:
    """The seed page's rule, computed on the fixture: video -> shown labels."""
    shown = {}
    for video_id, (_, events) in FIXTURE.items():
        if not selected:
            shown[video_id] = [label for label, _ in events]
            continue
        matching = [label for label, approval in events if approval in selected]
        if matching:
            shown[video_id] = matching
    return shown


SUBSETS = [set(c) for r in range(5) for c in itertools.combinations(APPROVALS, r)]


@pytest.mark.parametrize("selected", SUBSETS, ids=lambda s: "+".join(sorted(s)) or "none")
def test_every_approval_subset_follows_the_seed_page(staff_client, batch, selected):
    want = expected(selected)
    query = "&".join(f"approval={value}" for value in sorted(selected))

    # The page (all on one page: 5 items).
    response = staff_client.get(f"{batch.get_absolute_url()}?{query}")
    assert response.status_code == 200
    page_items = response.context["page"].object_list
    assert {item.provider_item_id: [e.label for e in item.shown_events] for item in page_items} == want

    # The CSV: one row per shown event, none for items without events.
    csv_response = staff_client.get(f"/batches/{batch.pk}/export.csv?{query}")
    rows = list(csv.DictReader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    want_rows = [(video, label) for video, labels in want.items() for label in labels]
    assert [(row["Video ID"], row["Label"]) for row in rows] == want_rows
    assert all(row["Approval Status"] in (selected or APPROVALS) for row in rows)

    # The JSON: every shown item, with exactly its shown events.
    json_response = staff_client.get(f"/batches/{batch.pk}/export.json?{query}")
    document = json.loads(b"".join(json_response.streaming_content))
    assert {r["video_id"]: [e["label"] for e in r["events"]] for r in document["results"]} == want


def test_the_item_status_filter_combines_with_approval(staff_client, batch):
    response = staff_client.get(f"{batch.get_absolute_url()}?status=failed")
    assert [item.provider_item_id for item in response.context["page"].object_list] == ["v4"]
    response = staff_client.get(f"{batch.get_absolute_url()}?status=failed&approval=pending")
    assert list(response.context["page"].object_list) == []
    assert b"Nothing matches these filters" in response.content


def test_chip_counts_follow_the_other_filters(staff_client, batch):
    context = staff_client.get(f"{batch.get_absolute_url()}?q=Bus").context
    assert context["approval_chip_counts"] == {"rejected": 1}
    assert context["status_chip_counts"] == {"completed": 1}
    context = staff_client.get(f"{batch.get_absolute_url()}?approval=pending").context
    assert context["status_chip_counts"] == {"completed": 2}
    assert context["approval_chip_counts"] == {"approved": 2, "rejected": 1, "pending": 2, "invalid": 1}
    assert context["shown_event_count"] == 2


def test_search_finds_items_by_their_own_text_with_all_their_events(staff_client, batch):
    items = staff_client.get(f"{batch.get_absolute_url()}?q=V5.MP4").context["page"].object_list
    assert [(i.provider_item_id, len(i.shown_events)) for i in items] == [("v5", 2)]
    items = staff_client.get(f"{batch.get_absolute_url()}?q=v3").context["page"].object_list
    assert [i.provider_item_id for i in items] == ["v3"]  # found by id, though it has no events


def test_severity_category_and_sort_are_validated_and_applied(staff_client, batch):
    Event.objects.filter(label="Dog").update(severity="low", confidence=0.99)
    batch.refresh_counts()  # what a sync does after writing events: the chips' values follow
    items = staff_client.get(f"{batch.get_absolute_url()}?severity=low").context["page"].object_list
    assert [e.label for i in items for e in i.shown_events] == ["Dog"]
    items = staff_client.get(f"{batch.get_absolute_url()}?sort=confidence").context["page"].object_list
    assert items[0].provider_item_id == "v2"
    items = staff_client.get(f"{batch.get_absolute_url()}?sort=severity").context["page"].object_list
    assert items[len(items) - 1].provider_item_id in ("v3", "v4")  # no events rank last


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("approval=maybe", "approval: Select a valid choice. maybe is not one of the available choices."),
        ("status=exploded", "status: Select a valid choice."),
        ("severity=apocalyptic", "severity: Select a valid choice."),
        ("sort=random", "sort: Select a valid choice."),
        ("page=0", "page: Ensure this value is greater than or equal to 1."),
        ("page=abc", "page: Enter a whole number."),
    ],
)
def test_an_unknown_filter_value_is_a_clear_400(staff_client, batch, query, message):
    response = staff_client.get(f"{batch.get_absolute_url()}?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Clear all filters" in response.content.decode()
    export = staff_client.get(f"/batches/{batch.pk}/export.csv?{query}")
    assert export.status_code == 400
    assert message in export.content.decode()


def test_the_approval_error_lists_the_valid_values(staff_client, batch):
    body = staff_client.get(f"{batch.get_absolute_url()}?approval=maybe").content.decode()
    assert "Valid values: pending, approved, rejected, invalid." in body


def test_the_htmx_fragment_is_only_the_results(staff_client, batch):
    response = staff_client.get(
        f"{batch.get_absolute_url()}?approval=invalid", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="results-inner"' in body
    assert 'hx-swap-oob="true"' in body  # chip counts follow
    # The exports carry the filter: the CSV form's hidden fields, the JSON link's query.
    assert f'action="/batches/{batch.pk}/export.csv"' in body and 'name="approval" value="invalid"' in body
    assert f"/batches/{batch.pk}/export.json?approval=invalid" in body


def test_the_csv_matches_the_hand_checked_golden_file(staff_client, batch):
    response = staff_client.get(f"/batches/{batch.pk}/export.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="b-fix-all.csv"'
    body = b"".join(response.streaming_content).decode()
    assert body == (GOLDEN / "nomadic_export.csv").read_text(encoding="utf-8").replace("\n", "\r\n")


def test_the_csv_neutralizes_formulas_and_imports_them_back(staff_client, batch):
    Event.objects.filter(label="Dog").update(ai_analysis='=HYPERLINK("http://evil")', label="+1", category="-x")
    search.reindex(batch.items.all())
    rows = list(
        csv.reader(
            io.StringIO(
                b"".join(staff_client.get(f"/batches/{batch.pk}/export.csv?q=HYPERLINK").streaming_content).decode()
            )
        )
    )
    assert rows[1][4:7] == ["'-x", "'+1", '\'=HYPERLINK("http://evil")']


def _batch_state(batch: Batch) -> tuple:
    items = list(
        Item.objects.filter(batch=batch)
        .order_by("position")
        .values_list(
            "provider_item_id",
            "status",
            "analysis_id",
            "video_name",
            "text",
            "error_message",
            "import_source_uri",
            "thumbnail_url",
            "position",
        )
    )
    events = list(
        Event.objects.filter(batch=batch)
        .order_by("item__position", "position")
        .values_list(
            "item__provider_item_id",
            "key",
            "category",
            "label",
            "severity",
            "confidence",
            "ai_analysis",
            "start_seconds",
            "end_seconds",
            "t_start",
            "t_end",
            "thumbnail_url",
            "overlay",
            "approval",
        )
    )
    fields = (
        "provider",
        "provider_batch_id",
        "mode",
        "analysis_type",
        "prompt",
        "category",
        "metadata",
        "viewer_url",
        "status",
        "item_counts",
        "approval_counts",
    )
    return tuple(getattr(batch, name) for name in fields), items, events


@pytest.mark.parametrize("fixture_name", ["batch", "demo_timed"])
def test_a_json_export_imports_back_into_an_identical_batch(staff_client, request, fixture_name):
    original = request.getfixturevalue(fixture_name)
    document = b"".join(staff_client.get(f"/batches/{original.pk}/export.json").streaming_content)
    before = _batch_state(original)
    Batch.objects.filter(pk=original.pk).delete()

    run = import_bytes(document, "export.json")

    assert run.outcome == "succeeded", (run.error, run.malformed_lines)
    assert _batch_state(run.batch) == before


@pytest.fixture
def demo_timed() -> Batch:
    from reviewer import demo

    demo.load()
    batch = Batch.objects.get(provider_batch_id=demo.TL_TIMED_BATCH)
    event = batch.events.first()
    Event.objects.filter(pk=event.pk).update(approval="approved", decided_at=batch.created_at)
    batch.refresh_counts()
    return batch


def test_the_export_is_streamed_in_many_small_chunks(staff_client, batch, monkeypatch):
    monkeypatch.setattr(exporters, "CHUNK_SIZE", 2)
    monkeypatch.setattr(exporters, "CSV_BUFFER", 1)  # every row is a piece of its own
    calls = []
    original_items, original_events = filters.BatchFilter.items, filters.BatchFilter.events

    def spy(original):
        def wrapper(self):
            queryset = original(self)
            calls.append(queryset)
            return queryset

        return wrapper

    monkeypatch.setattr(filters.BatchFilter, "items", spy(original_items))
    monkeypatch.setattr(filters.BatchFilter, "events", spy(original_events))
    response = staff_client.get(f"/batches/{batch.pk}/export.csv")
    assert isinstance(response, StreamingHttpResponse)
    assert calls == []  # nothing is read before the response starts streaming
    chunks = list(response.streaming_content)
    assert len(chunks) == 1 + 6  # the header, then one chunk per event row
    for sort in ("severity", "confidence"):  # the orders read item by item give the same pieces
        assert len(list(staff_client.get(f"/batches/{batch.pk}/export.csv?sort={sort}").streaming_content)) == 7
    json_chunks = list(staff_client.get(f"/batches/{batch.pk}/export.json").streaming_content)
    assert len(json_chunks) == 2 + 5 + 1  # metadata, results opener, one per item, closer


def test_the_export_command_uses_the_same_filters(batch, tmp_path, capsys):
    call_command("export_batch", "b-fix", "--format", "csv", "--approval", "approved", "--approval", "invalid")
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["Label"] for row in rows] == ["Crossing", "Cyclist", "Scooter"]
    out = tmp_path / "b.json"
    call_command("export_batch", "b-fix", "--format", "json", "--status", "failed", "--output", str(out))
    assert [r["video_id"] for r in json.loads(out.read_text())["results"]] == ["v4"]


def test_the_export_command_explains_bad_input(batch):
    with pytest.raises(CommandError, match="approval: Select a valid choice. maybe"):
        call_command("export_batch", "b-fix", "--format", "csv", "--approval", "maybe")
    with pytest.raises(CommandError, match="No cached batch 'nope'"):
        call_command("export_batch", "nope", "--format", "csv")


def test_an_unknown_export_format_is_a_404(staff_client, batch):
    assert staff_client.get(f"/batches/{batch.pk}/export.xlsx").status_code == 404


@pytest.mark.parametrize("sort", ["", "time", "video", "severity", "confidence"])
@pytest.mark.parametrize("query", ["", "approval=pending", "q=market&status=completed"])
def test_the_csv_lists_the_events_in_the_pages_order(staff_client, settings, sort, query):
    """Whatever the sort and the filters, the CSV's rows are the page's events, in the page's order."""
    from reviewer import demo

    demo.load()
    batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
    settings.ITEMS_PER_PAGE = 10_000  # the whole batch on one page
    url = f"{batch.get_absolute_url()}?{query}&sort={sort}"
    shown = [
        (item.provider_item_id, event.t_start, event.label or event.category, event.approval)
        for item in staff_client.get(url).context["page"].object_list
        for event in item.shown_events
    ]
    export = f"/batches/{batch.pk}/export.csv?{query}&sort={sort}"
    rows = list(csv.DictReader(io.StringIO(b"".join(staff_client.get(export).streaming_content).decode())))
    exported = [
        (r["Video ID"], r["Timestamp"].split("-")[0], r["Label"] or r["Category"], r["Approval Status"]) for r in rows
    ]
    assert exported == [(video, start, label, approval) for video, start, label, approval in shown] and shown


def test_the_chip_values_are_read_live_for_a_batch_synced_before_they_were_stored(staff_client, batch):
    stored = filters.facets(batch)
    Batch.objects.filter(pk=batch.pk).update(event_facets=None)
    batch.refresh_from_db()
    assert filters.facets(batch) == stored and stored["severity"]
    assert staff_client.get(f"{batch.get_absolute_url()}?severity={stored['severity'][0]}").status_code == 200
