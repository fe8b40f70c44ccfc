"""Insights numbers, each computed here independently from the fixture and compared with the page, the CSV,
the command and the API."""

from __future__ import annotations

import csv
import html
import io
import json
import re

import pytest
from django.core.management import call_command

from reviewer import quality, review
from reviewer.models import Batch
from tests.conftest import bearer
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

pytestmark = pytest.mark.django_db

Z = 1.959963984540054

# (category, confidence, provider approval, a person's decision or None)
EVENTS = [
    # "mostly right": 3 approved, 1 rejected
    ("mostly right", 0.97, "pending", "approved"), ("mostly right", 0.9, "pending", "approved"),
    ("mostly right", 0.5, "approved", "approved"), ("mostly right", 0.2, "pending", "rejected"),
    # "always right": all approved
    ("always right", 1.0, "pending", "approved"), ("always right", 0.95, "pending", "approved"),
    ("always right", 0.85, "pending", "approved"),
    # "always wrong": all rejected
    ("always wrong", 0.7, "pending", "rejected"), ("always wrong", 0.6999, "pending", "rejected"),
    # "unreviewed": nothing decided by a person (one the provider approved, one it rejected)
    ("unreviewed", None, "approved", None), ("unreviewed", 0.4, "rejected", None), ("unreviewed", 0.8, "pending", None),
    # "broken videos": two invalid, one approved, one put back to pending by a person
    ("broken videos", None, "pending", "invalid"), ("broken videos", 0.3, "pending", "invalid"),
    ("broken videos", 0.88, "pending", "approved"), ("broken videos", 0.6, "approved", "pending"),
]  # fmt: skip


def wilson_by_bisection(successes: int, n: int) -> tuple[float, float] | None:
    """The Wilson bounds as the two roots of (p̂ - p)² = z² p (1 - p) / n, found by bisection (not the closed form)."""
    if n == 0:
        return None
    observed = successes / n

    def gap(p: float) -> float:
        return (observed - p) ** 2 - Z * Z * p * (1 - p) / n

    def root(low: float, high: float) -> float:  # gap changes sign between low and high
        for _ in range(200):
            middle = (low + high) / 2
            if (gap(low) > 0) == (gap(middle) > 0):
                low = middle
            else:
                high = middle
        return (low + high) / 2

    lower = 0.0 if observed == 0 else root(0.0, observed)
    upper = 1.0 if observed == 1 else root(observed, 1.0)
    return lower, upper


def expected_rows(key) -> dict[str, dict]:
    """The report's columns per group, from EVENTS alone."""
    groups: dict[str, dict] = {}
    for event in EVENTS:
        row = groups.setdefault(key(event), {"approved": 0, "rejected": 0, "invalid": 0, "pending": 0})
        decision = event[3]
        row[decision if decision in ("approved", "rejected", "invalid") else "pending"] += 1
    for row in groups.values():
        judged, reviewed = row["approved"] + row["rejected"], row["approved"] + row["rejected"] + row["invalid"]
        bounds = wilson_by_bisection(row["approved"], judged)
        row["precision"] = row["approved"] / judged if judged else None
        row["precision_low"], row["precision_high"] = bounds or (None, None)
        row["invalid_rate"] = row["invalid"] / reviewed if reviewed else None
    return groups


def bucket(event) -> str:
    confidence = event[1]
    if confidence is None:
        return "unknown"
    for low, high in ((0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 0.95), (0.95, 1)):
        if low <= confidence < high or (high == 1 and confidence == 1):
            return f"{low:g}–{high:g}"
    raise AssertionError(confidence)


def same(actual: dict, expected: dict) -> None:
    for name, value in expected.items():
        got = actual[name]
        if isinstance(value, float):
            assert got == pytest.approx(value, abs=5e-5), name
        else:
            assert got == value, name


@pytest.fixture
def batch(staff) -> Batch:
    events = [nomadic_event(category=c, confidence=conf, approval=provider, label=f"e{n}", t_start=f"00:{n:02d}",
                            t_end=f"00:{n + 1:02d}")
              for n, (c, conf, provider, _) in enumerate(EVENTS)]  # fmt: skip
    for event, (_, confidence, _, _) in zip(events, EVENTS, strict=True):
        if confidence is None:
            del event["confidence"]
    run = import_bytes(json.dumps(nomadic_analysis("b-quality", [nomadic_result("v1", events)])).encode(), "q.json")
    assert run.outcome == "succeeded", run.error
    by_label = {event.label: event for event in run.batch.events.all()}
    for n, (_, _, _, decision) in enumerate(EVENTS):
        if decision is not None:
            review.decide(by_label[f"e{n}"], decision, staff)
    return Batch.objects.get(pk=run.batch.pk)


def test_the_wilson_interval_matches_an_independent_computation():
    for successes, n in [(0, 1), (1, 1), (3, 4), (0, 7), (7, 7), (50, 100), (1, 1000), (999, 1000)]:
        assert quality.wilson(successes, n) == pytest.approx(wilson_by_bisection(successes, n), abs=1e-9)
    assert quality.wilson(0, 0) is None


@pytest.mark.parametrize(("by", "key"), [("category", lambda e: e[0]), ("confidence", bucket)])
def test_the_table_matches_the_fixture(batch, by, key):
    rows = {row.group: row.as_dict() for row in quality.table(batch.events.all(), by)}
    expected = expected_rows(key)
    assert set(rows) == set(expected)
    for group, values in expected.items():
        same(rows[group], values)
    # the corner cases are there
    assert rows["unreviewed"]["precision"] is None if by == "category" else True
    if by == "category":
        assert (rows["always right"]["precision"], rows["always right"]["precision_high"]) == (1.0, 1.0)
        assert (rows["always wrong"]["precision"], rows["always wrong"]["precision_low"]) == (0.0, 0.0)


def test_the_provider_decisions_are_counted_apart(batch):
    rows = {row.group: row for row in quality.table(batch.events.all(), "category")}
    assert (rows["unreviewed"].provider_approved, rows["unreviewed"].provider_rejected) == (1, 1)
    assert rows["unreviewed"].reviewed == 0 and rows["unreviewed"].pending == 3


def test_the_csv_download_the_command_and_the_api_say_the_same(client, batch, staff, api_tokens, capsys):
    expected = expected_rows(lambda e: e[0])
    client.force_login(staff)
    response = client.get(f"/batches/{batch.pk}/insights.csv?by=category")
    assert response["Content-Disposition"] == 'attachment; filename="b-quality-quality-by-category.csv"'
    from_csv = {row["group"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    call_command("quality_report", "--batch", "b-quality", "--by", "category", "--format", "csv")
    from_command_csv = {row["group"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    call_command("quality_report", "--batch", "b-quality", "--by", "category", "--format", "json")
    from_command_json = {row["group"]: row for row in json.loads(capsys.readouterr().out)}
    from_api = client.get(f"/api/batches/{batch.pk}/quality?by=category", **bearer(api_tokens["viewer"])).json()
    from_api = {row["group"]: row for row in from_api["groups"]}
    assert set(from_csv) == set(from_command_csv) == set(from_command_json) == set(from_api) == set(expected)
    for group, values in expected.items():
        for name, value in values.items():
            for source in (from_csv, from_command_csv):
                cell = source[group][name]
                assert (cell == "") if value is None else float(cell) == pytest.approx(value, abs=5e-5), (group, name)
            for source in (from_command_json, from_api):
                got = source[group][name]
                assert got is None if value is None else got == pytest.approx(value, abs=5e-5), (group, name)


def cells(page: str, group: str) -> list[str]:
    """The text of a quality table's row: its heading, then its cells."""
    row = re.search(r'<th scope="row">' + re.escape(group) + r"</th>(.*?)</tr>", page, re.S).group(1)
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def test_the_page_shows_the_same_numbers(client, batch, staff):
    client.force_login(staff)
    page = client.get(f"/batches/{batch.pk}/insights?by=category").content.decode()

    def share(value: float) -> str:
        points = value * 100
        return f"{points:.1f} %" if 0 < points < 10 or 99 < points < 100 else f"{points:.0f} %"

    for group, values in expected_rows(lambda e: e[0]).items():
        approved, rejected, invalid, pending, precision, invalid_rate = cells(page, group)
        assert [approved, rejected, invalid] == [str(values[name]) for name in ("approved", "rejected", "invalid")]
        assert pending.split()[0] == str(values["pending"])
        if values["precision"] is None:
            assert precision == "—"
        else:
            low, high = share(values["precision_low"]).removesuffix(" %"), share(values["precision_high"])
            assert precision == f"{share(values['precision'])} {low}–{high}", group
        assert invalid_rate == ("—" if values["invalid_rate"] is None else share(values["invalid_rate"]))


def test_thresholds_match_the_fixture(client, batch, staff):
    rows = {row.threshold: row for row in quality.thresholds(batch.events.filter(category="mostly right"))}
    for cut in quality.THRESHOLDS:
        kept = [e for e in EVENTS if e[0] == "mostly right" and e[1] is not None and e[1] >= cut]
        assert rows[cut].kept == len(kept)
        assert rows[cut].approved == sum(1 for e in kept if e[3] == "approved")
        assert rows[cut].rejected == sum(1 for e in kept if e[3] == "rejected")
    client.force_login(staff)
    response = client.get(f"/batches/{batch.pk}/insights.csv?table=thresholds&category=mostly+right")
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(float(line["threshold"]), int(line["kept"])) for line in lines] == [
        (cut, rows[cut].kept) for cut in quality.THRESHOLDS
    ]


def test_the_recommended_cut_off_keeps_the_most_events_at_the_target():
    made = [quality.Threshold(0.0, 100, 60, 40), quality.Threshold(0.5, 80, 75, 5), quality.Threshold(0.9, 20, 20, 0)]
    assert quality.lowest_threshold_for(made, 0.8).threshold == 0.5  # 75/80: interval from 0.86
    assert quality.lowest_threshold_for(made, 0.9) is None  # 20/20 is only ≥ 0.84 with 95 % confidence


@pytest.mark.parametrize("query", ["by=nope", "target=5", "category=unknown", "target=abc"])
def test_a_bad_option_is_a_400_naming_it(client, batch, staff, query):
    client.force_login(staff)
    response = client.get(f"/batches/{batch.pk}/insights?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] + ":" in html.unescape(response.content.decode())
    assert client.get(f"/batches/{batch.pk}/insights.csv?{query}").status_code == 400


def test_across_batches_by_prompt_and_week(client, batch, staff):
    client.force_login(staff)
    page = client.get("/insights/?by=prompt")
    assert page.status_code == 200
    rows = {row.group: row for row in quality.table(batch.events.all(), "week")}
    assert list(rows) == [batch.created_at.date().isoformat()] or len(rows) == 1
    trend = client.get("/insights.csv?table=trend").content.decode().splitlines()
    assert trend[0].startswith("group,approved") and len(trend) == 2


def test_a_long_table_shows_the_largest_groups_and_the_csv_has_all(client, batch, staff, monkeypatch):
    from reviewer import insight_views

    monkeypatch.setattr(insight_views, "TABLE_ROWS", 2)
    client.force_login(staff)
    page = client.get(f"/batches/{batch.pk}/insights?by=category").content.decode()
    assert "The table shows the 2 largest of 5 groups; the CSV has them all." in page
    assert len(cells(page, "mostly right")) == 6 and 'scope="row">always wrong<' not in page.split("By the model")[0]
    lines = client.get(f"/batches/{batch.pk}/insights.csv?by=category").content.decode().splitlines()
    assert len(lines) == 6
