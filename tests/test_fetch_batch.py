"""manage.py fetch_batch against both provider fakes, from add_source on."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from reviewer import review
from reviewer.models import Batch, Event, Item
from tests.conftest import NM_KEY, TL_KEY
from tests.fakes import nomadicml as nm
from tests.fakes import twelvelabs as tl
from tests.fakes.server import Reply


def command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def served_twelvelabs(fake: tl.TwelveLabsFake) -> list[tuple[str, str, int]]:
    """(task id, status, number of segments) of every line the fake serves."""
    served = []
    for line in fake.results[tl.TIMED_BATCH]:
        output = json.loads(line["data"]["data"]) if line["status"] == "ready" else {}
        served.append((line["task_id"], line["status"], sum(len(segments) for segments in output.values())))
    return served


def served_nomadicml(fake: nm.NomadicFake) -> list[tuple[str, str, int]]:
    return [
        (
            v["video_id"],
            "completed" if v["analysis"] else "failed",
            len(v["analysis"]["events"]) if v["analysis"] else 0,
        )
        for v in fake.videos[nm.ASK_BATCH]
    ]


@pytest.fixture
def twelvelabs(db, twelvelabs_fake, monkeypatch):
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    monkeypatch.setenv("TL_TEST_KEY", TL_KEY)
    command("add_source", "tl", "--provider", "twelvelabs", "--base-url", twelvelabs_fake.base_url,
            "--api-key-env", "TL_TEST_KEY")  # fmt: skip
    return "tl", tl.TIMED_BATCH, served_twelvelabs(twelvelabs_fake)


@pytest.fixture
def nomadicml(db, nomadic_fake, monkeypatch):
    nomadic_fake.add_batch(nm.ASK_BATCH, nm.ask_videos())
    monkeypatch.setenv("NM_TEST_KEY", NM_KEY)
    command("add_source", "nm", "--provider", "nomadicml", "--base-url", nomadic_fake.base_url,
            "--api-key-env", "NM_TEST_KEY")  # fmt: skip
    return "nm", nm.ASK_BATCH, served_nomadicml(nomadic_fake)


@pytest.mark.parametrize("provider", ["twelvelabs", "nomadicml"])
def test_it_caches_what_the_provider_serves_and_changes_nothing_the_second_time(request, provider, staff):
    source, batch_id, served = request.getfixturevalue(provider)
    out, _ = command("fetch_batch", source, batch_id)
    assert out.startswith(f"Synced {Batch.objects.get()}: items {len(served)} new, 0 updated, 0 unchanged")
    items = Item.objects.filter(batch__provider_batch_id=batch_id).order_by("position")
    assert [(i.provider_item_id, i.status, i.events.count()) for i in items] == served

    event = Event.objects.order_by("id").first()
    review.decide(event, "invalid", staff)
    decided_at = Event.objects.get(pk=event.pk).decided_at

    out, _ = command("fetch_batch", source, batch_id, "--json")
    run = json.loads(out)
    assert (run["outcome"], run["items_unchanged"], run["items_created"], run["items_updated"]) == (
        "succeeded", len(served), 0, 0
    )  # fmt: skip
    assert (run["events_created"], run["events_updated"], run["events_removed"]) == (0, 0, 0)
    event.refresh_from_db()
    assert (event.approval, event.decided_at, event.decided_by, event.decisions.count()) == (
        "invalid", decided_at, staff, 1
    )  # fmt: skip


def test_it_prints_the_run_as_one_json_object(twelvelabs):
    out, _ = command("fetch_batch", "tl", tl.TIMED_BATCH, "--json")
    run = json.loads(out)  # one object, nothing else on stdout
    assert (run["batch"], run["trigger"], run["outcome"], run["error"]) == (tl.TIMED_BATCH, "fetch", "succeeded", "")
    assert out.count("\n") == 1


def test_it_exits_with_a_one_line_reason_and_no_key(twelvelabs, twelvelabs_fake):
    # A proxy page that echoes the request's key, spread over lines.
    page = f"<html><body>\n<p>Forbidden\nfor key {TL_KEY}</p>\n</body></html>".encode()
    twelvelabs_fake.inject("batch", Reply(403, page, {"Content-Type": "text/html"}))
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("fetch_batch", "tl", tl.TIMED_BATCH, "--json", stdout=out)
    reason = str(caught.value)
    assert reason == ("TwelveLabs refused the API key (HTTP 403: Forbidden for key [redacted]): "
                      "check the source's API key and its access.")  # fmt: skip
    assert json.loads(out.getvalue())["outcome"] == "failed"
    assert TL_KEY not in out.getvalue()


def test_it_reports_malformed_lines_on_stderr_and_succeeds(twelvelabs, twelvelabs_fake):
    twelvelabs_fake.results[tl.TIMED_BATCH].insert(1, "not json")
    out, err = command("fetch_batch", "tl", tl.TIMED_BATCH)
    assert err == "line 2: invalid JSON: Expecting value (column 1)\n"
    assert out.rstrip().endswith("; 1 malformed line(s) skipped")


def test_it_refuses_an_unknown_source(db):
    with pytest.raises(CommandError, match="No source named 'nope': add it with add_source."):
        command("fetch_batch", "nope", tl.TIMED_BATCH)
