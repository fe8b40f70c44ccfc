"""Where SQLite and PostgreSQL differ, pinned on whichever one the suite runs on.

`make test` runs the suite on a SQLite file, `.ci/run` runs it again with DATABASE_URL
pointing to PostgreSQL (README, "Testing"). What PostgreSQL does differently and the
code has to even out: it refuses NUL characters in text and jsonb (SQLite stores
them), and it sorts NULLs at the other end. Its locking (row locks, not one database
lock) is covered by tests/test_concurrency.py.
"""

from __future__ import annotations

import json
import os

import pytest
from django.db import connection
from django.http import QueryDict

from reviewer import filters, sync
from reviewer.models import Event, Item, SyncOutcome, SyncRun
from tests.factories import import_bytes, jsonl, nomadic_analysis, nomadic_event, nomadic_result, tl_id, tl_line

pytestmark = pytest.mark.django_db


def test_the_suite_runs_on_the_database_database_url_names():
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        assert connection.vendor == "postgresql"
        assert connection.settings_dict["NAME"].startswith("test_")
    else:
        # A file in WAL mode, as in production: the concurrency tests mean nothing in memory.
        assert connection.vendor == "sqlite"
        assert not connection.is_in_memory_db() and os.path.isfile(connection.settings_dict["NAME"])
        with connection.cursor() as cursor:
            assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- NUL characters: stored as U+FFFD on both ---


def test_provider_text_with_a_nul_character_is_imported_on_every_database():
    data = nomadic_analysis(
        "rr-nul", [nomadic_result("v1", [nomadic_event(label="Ped\x00estrian", note="a\x00b")], summary="x\x00y")]
    )
    run = import_bytes(json.dumps(data).encode(), "nul.json")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    event = Event.objects.get()
    assert event.label == "Ped\ufffdestrian" and event.raw["note"] == "a\ufffdb"
    assert Item.objects.get().text == "x\ufffdy"
    again = import_bytes(json.dumps(data).encode(), "nul.json")
    assert (again.items_unchanged, again.events_unchanged) == (1, 1)  # the same data, nothing rewritten


def test_generated_text_with_a_nul_character_is_imported_on_every_database():
    run = import_bytes(jsonl([tl_line(tl_id(1), text="gen\x00erated")]), "68f4ddaf8aaa60d33df0e801.jsonl")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    assert Item.objects.get().text == "gen\ufffderated"


def test_a_failure_whose_message_has_a_nul_character_is_recorded():
    run = sync.record_failure(SyncRun(trigger="fetch"), "not JSON: \x00\ufffdgarbage")
    assert SyncRun.objects.get(pk=run.pk).error == "not JSON: \ufffd\ufffdgarbage"


# --- NULLs sort last on both (SQLite puts them first, PostgreSQL last, unless told) ---


@pytest.fixture
def batch():
    data = nomadic_analysis(
        "rr-nulls",
        [
            nomadic_result("unscored", [nomadic_event(label="u", confidence=None)]),
            nomadic_result(
                "mixed",
                [
                    nomadic_event(label="late", confidence=0.1, t_start="00:05", t_end="00:06"),
                    nomadic_event(label="untimed", confidence=None, t_start="", t_end=""),
                    nomadic_event(label="early", confidence=0.9, t_start="00:02", t_end="00:03"),
                ],
            ),
            nomadic_result("empty", []),
        ],
    )
    run = import_bytes(json.dumps(data).encode(), "nulls.json")
    assert run.outcome == SyncOutcome.SUCCEEDED, run.error
    return run.batch


def shown(batch, sort: str) -> list[tuple[str, list[str]]]:
    batch_filter, form = filters.parse(QueryDict(f"sort={sort}"), batch)
    assert batch_filter is not None, form.errors
    return [(item.provider_item_id, [e.label for e in item.shown_events]) for item in batch_filter.items()]


def test_sorting_by_confidence_puts_unscored_items_and_events_last(batch):
    assert shown(batch, "confidence") == [
        ("mixed", ["early", "late", "untimed"]),
        ("unscored", ["u"]),
        ("empty", []),
    ]


def test_sorting_by_time_puts_untimed_events_last(batch):
    assert dict(shown(batch, "time"))["mixed"] == ["early", "late", "untimed"]
