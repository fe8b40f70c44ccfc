"""One measurement in a fresh process: ``python bench/worker.py TASK 'JSON kwargs'``.

Started by ``bench/run.py``. Prints progress on stderr and the result as one JSON
object on the last line of stdout. A fresh process per measurement keeps memory
figures honest (nothing freed earlier is still held by the allocator) and keeps one
step's caches from warming the next.

With ``BENCH_PROFILE_DIR`` set, the task runs under pyinstrument and its profile is
written there as ``<label>.txt`` and ``<label>.html`` (timings are then inflated).
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import math
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # run as a script: the repository, not bench/

from bench.measure import MB, PeakRSS, Timer, percentile  # noqa: E402

TASKS: dict[str, Callable[..., dict]] = {}


def task(function: Callable[..., dict]) -> Callable[..., dict]:
    TASKS[function.__name__] = function
    return function


def log(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def _django() -> None:
    from bench import django_env

    django_env.setup()


def _source(name: str):
    from reviewer.models import Source

    return Source.objects.get(name=name)


# --- Sync: the real fetch path, and its floor (the same download and parse, no database) ---


@task
def fetch_floor(source: str, batch_id: str) -> dict:
    """Download and parse a batch with the product's client (the adapter's ``open_batch``), writing nothing."""
    _django()
    from reviewer.records import Malformed

    src = _source(source)
    items = events = malformed = 0
    with PeakRSS() as memory, Timer() as timer:
        client = src.client()
        try:
            _, stream = src.adapter.open_batch(client, batch_id)
            for record in stream:
                if isinstance(record, Malformed):
                    malformed += 1
                else:
                    items += 1
                    events += len(record.events)
        finally:
            client.close()
    return {"seconds": timer.seconds, "peak_mb": memory.growth / MB, "memory_method": memory.method,
            "items": items, "events": events, "malformed": malformed}  # fmt: skip


@task
def fetch_sync(source: str, batch_id: str) -> dict:
    """``reviewer.fetch.fetch_batch``: what the background job runs for "Add batch" and "Sync now"."""
    _django()
    from reviewer import fetch
    from reviewer.models import SyncOutcome

    src = _source(source)
    with PeakRSS() as memory, Timer() as timer:
        run = fetch.fetch_batch(src, batch_id)
    if run.outcome != SyncOutcome.SUCCEEDED:
        raise SystemExit(f"sync of {batch_id} failed: {run.error}")
    counts = {name: getattr(run, name) for name in (
        "items_created", "items_updated", "items_unchanged", "events_created", "events_updated",
        "events_unchanged", "events_removed",
    )}  # fmt: skip
    return {"seconds": timer.seconds, "peak_mb": memory.growth / MB, "memory_method": memory.method,
            "batch_pk": run.batch_id, **counts}  # fmt: skip


# --- Review: a bulk decision, and its undo ------------------------------------------


@task
def bulk_decision(batch_pk: int, query: dict) -> dict:
    """``review.decide_many`` on every event matching ``query`` (one Decision row each), then ``undo_last``."""
    _django()
    from django.contrib.auth.models import User
    from django.http import QueryDict

    from reviewer import filters, review
    from reviewer.models import Batch, Decision

    batch = Batch.objects.get(pk=batch_pk)
    batch_filter, _ = filters.parse(QueryDict(urlencode(query, doseq=True)), batch)
    user = User.objects.get(username="bench")
    expected = batch_filter.events().count()
    with Timer() as timer:
        applied = review.decide_many(batch, batch_filter.events(), "approved", user, expected_count=expected)
    rows = Decision.objects.filter(group=applied.group).count()
    with Timer() as undo_timer:
        undone = review.undo_last(batch, user)
    return {"seconds": timer.seconds, "events": applied.changed, "history_rows": rows,
            "undo_seconds": undo_timer.seconds, "undone": undone.changed}  # fmt: skip


# --- The batch page ---------------------------------------------------------------


def _warmed_up_export(batch_pk: int):
    """A logged-in client and the export URL, after one request read up to its first chunk."""
    _django()
    client = _staff_client()
    url = f"/batches/{batch_pk}/export.csv"
    warm_up = client.get(url)
    next(iter(warm_up.streaming_content))
    warm_up.close()
    return client, url


def _staff_client():
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench"))
    return client


def _last_page(batch_pk: int, query: dict) -> int:
    from django.conf import settings
    from django.http import QueryDict

    from reviewer import filters
    from reviewer.models import Batch

    batch_filter, form = filters.parse(QueryDict(urlencode(query, doseq=True)), Batch.objects.get(pk=batch_pk))
    if batch_filter is None:
        raise SystemExit(f"invalid bench filter {query}: {form.error_message()}")
    return max(1, math.ceil(batch_filter.item_queryset().count() / settings.ITEMS_PER_PAGE))


def _page_path(spec: dict, main: str) -> str:
    """The URL of a page spec: a batch page (a filter, page 1 or "last"), review mode, or a plain path."""
    from reviewer.models import Batch

    if "path" in spec:
        return spec["path"]
    pk = Batch.objects.get(provider_batch_id=main).pk
    query = dict(spec.get("query", {}))
    if spec.get("review"):
        return f"/batches/{pk}/review?" + urlencode(query, doseq=True)
    page = _last_page(pk, query) if spec.get("page") == "last" else 1
    return f"/batches/{pk}/?" + urlencode({**query, "page": page}, doseq=True)


class _Statements:
    """The SQL statements a request runs (execute_wrapper), to be run again raw: its database floor."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        if not many:
            self.seen.append((sql, params))
        return execute(sql, params, many, context)

    def replay_seconds(self) -> float:
        """Each SELECT again with a raw cursor, every row fetched: what the database itself takes."""
        from django.db import connection

        connection.ensure_connection()
        with connection.cursor() as cursor, Timer() as timer:
            for sql, params in self.seen:
                if sql.lstrip().upper().startswith("SELECT"):
                    cursor.execute(sql, params)
                    cursor.fetchall()
        return timer.seconds


@task
def pages(specs: list[dict], main: str, requests: int, budget_seconds: float) -> dict:
    """p50/p95 of each page beside its own SQL time (the same statements run again raw, right after), and its queries.

    ``main``: the provider id of the batch the batch-page specs name. Each URL is
    requested once untimed (a warm-up; it also counts the queries), then ``requests``
    times, or fewer (at least 5) once ``budget_seconds`` ran out.
    """
    _django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _staff_client()
    results = {}
    for spec in specs:
        url = _page_path(spec, main)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        query_count = len(queries.captured_queries)  # now: the next request_started clears the log
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")
        times, sql_times = [], []
        deadline = time.perf_counter() + budget_seconds
        while len(times) < requests and (len(times) < 5 or time.perf_counter() < deadline):
            statements = _Statements()
            with connection.execute_wrapper(statements):
                started = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - started)
            assert response.status_code == 200
            sql_times.append(statements.replay_seconds())
        results[spec["name"]] = {
            "url": url, "queries": query_count, "n": len(times), "bytes": len(response.content),
            "p50_ms": percentile(times, 0.5) * 1000, "p95_ms": percentile(times, 0.95) * 1000,
            "sql_p50_ms": percentile(sql_times, 0.5) * 1000, "sql_p95_ms": percentile(sql_times, 0.95) * 1000,
        }  # fmt: skip
        entry = results[spec["name"]]
        log(f"{spec['name']}: p95 {entry['p95_ms']:.0f} ms, its SQL {entry['sql_p95_ms']:.0f} ms, "
            f"{entry['queries']} queries")  # fmt: skip
    return results


@task
def list_batches(count: int, first: int) -> dict:
    """``count`` small NomadicML batches imported through the product's import (the batch list's workload)."""
    _django()
    from bench import synthetic
    from reviewer import importers

    with Timer() as timer:
        for number in range(first, first + count):
            data = synthetic.small_analysis(f"list-{number:05d}", seed=number)
            run = importers.import_file(io.BytesIO(data), name=f"list-{number:05d}.json")
            if run.outcome != "succeeded":
                raise SystemExit(f"import of a list batch failed: {run.error}")
    return {"seconds": timer.seconds, "batches": count}


@task
def insert_floor(batch_pk: int) -> dict:
    """The rows a first sync wrote for the batch, inserted again with executemany into the same tables, rolled back.

    The database's own floor for those rows (indexes and the search index's triggers
    included); the sync's time over it is what the product spends besides writing.
    """
    _django()
    from django.db import connection, transaction

    from reviewer.models import Event, Item

    def rows(model, **where) -> tuple[str, list]:
        fields = [field for field in model._meta.concrete_fields if not field.primary_key]
        names = [field.attname for field in fields]
        columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
        sql = f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {model._meta.db_table} WHERE {' AND '.join(where)}",
                           list(where.values()))  # fmt: skip
            values = [list(row) for row in cursor.fetchall()]
        return sql, values, names

    item_sql, items, item_names = rows(Item, **{"batch_id = %s": batch_pk})
    event_sql, events, event_names = rows(Event, **{"batch_id = %s": batch_pk})
    name_at, item_at = item_names.index("provider_item_id"), event_names.index("item_id")
    originals = dict(Item.objects.filter(batch_id=batch_pk).values_list("pk", "provider_item_id"))
    for values in items:  # the copies must not collide with the originals (unique per batch)
        values[name_at] += "-copy"
    with Timer() as timer, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.executemany(item_sql, items)
            # As a load does: the new items' ids, read back, for their events.
            cursor.execute("SELECT provider_item_id, id FROM reviewer_item WHERE batch_id = %s", [batch_pk])
            copies = {name.removesuffix("-copy"): pk for name, pk in cursor.fetchall() if name.endswith("-copy")}
            for values in events:
                values[item_at] = copies[originals[values[item_at]]]
            cursor.executemany(event_sql, events)
        transaction.set_rollback(True)  # a measurement: nothing stays
    return {"seconds": timer.seconds, "items": len(items), "events": len(events)}


@task
def insights_page(batch_pk: int, requests: int, budget_seconds: float) -> dict:
    """p50/p95 of ``GET /batches/<pk>/insights`` beside the batch page's first page, timed in turns.

    A person's decisions first (a bulk approval, a bulk rejection and a few single ones, as
    a review in progress has), so every table has reviewed events to count. Both pages are
    requested in alternation, so a slow moment of the machine hits both alike.
    """
    _django()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reviewer import review
    from reviewer.models import Batch

    batch = Batch.objects.get(pk=batch_pk)
    user = User.objects.get(username="bench")
    events = batch.events.order_by("pk")
    review.decide_many(batch, batch.events.filter(pk__in=events.values("pk")[:3000]), "approved", user)
    review.decide_many(batch, batch.events.filter(pk__in=events.values("pk")[3000:4000]), "rejected", user)
    for event in events[4000:4020]:
        review.decide(event, "invalid", user)
    client = _staff_client()
    urls = {"insights": f"/batches/{batch_pk}/insights", "batch page": f"/batches/{batch_pk}/"}
    queries, cold = {}, {}
    for name, url in urls.items():
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)  # also the warm-up: the first request after the decisions
            cold[name] = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")
        queries[name] = len(captured.captured_queries)
    times: dict[str, list[float]] = {name: [] for name in urls}
    deadline = time.perf_counter() + budget_seconds
    while len(times["insights"]) < requests and (len(times["insights"]) < 5 or time.perf_counter() < deadline):
        for name, url in urls.items():
            started = time.perf_counter()
            response = client.get(url)
            times[name].append(time.perf_counter() - started)
            assert response.status_code == 200
    result = {
        name: {"n": len(values), "p50_ms": percentile(values, 0.5) * 1000, "p95_ms": percentile(values, 0.95) * 1000,
               "queries": queries[name], "cold_ms": cold[name]}
        for name, values in times.items()
    }  # fmt: skip
    log(f"insights p95 {result['insights']['p95_ms']:.0f} ms ({result['insights']['queries']} queries), "
        f"batch page p95 {result['batch page']['p95_ms']:.0f} ms")  # fmt: skip
    return result


# --- CSV export, and its floor (one raw query + csv.writer over the same rows) ----------


class _NullSink:
    def write(self, value: str) -> int:
        return len(value)


@task
def export_csv(batch_pk: int, repeats: int) -> dict:
    """``GET /batches/<pk>/export.csv`` through the test client: time to first chunk and to the end.

    A warm-up request (read up to its first chunk) loads what any first request loads;
    then ``repeats`` timed runs: the fastest total, first byte and first data row count.
    The memory is the RSS growth over the first timed run.
    """
    client, url = _warmed_up_export(batch_pk)
    runs = []
    for attempt in range(repeats):
        with PeakRSS() as memory:
            started = time.perf_counter()
            response = client.get(url)
            assert response.status_code == 200, response.status_code
            chunks = iter(response.streaming_content)
            first = next(chunks)
            first_byte = time.perf_counter() - started
            # Rows are counted by line ends (the synthetic fields hold none), whatever the chunking.
            size, lines = len(first), first.count(b"\n")
            first_row = first_byte if lines > 1 else None
            for chunk in chunks:
                size += len(chunk)
                lines += chunk.count(b"\n")
                if first_row is None and lines > 1:
                    first_row = time.perf_counter() - started
            total = time.perf_counter() - started
            response.close()
        runs.append({"seconds": total, "first_byte_ms": first_byte * 1000,
                     "first_row_ms": (first_row or total) * 1000, "rows": lines - 1, "bytes": size,
                     "peak_mb": memory.growth / MB})  # fmt: skip
        log(f"export run {attempt + 1}: {total:.2f} s, first byte {first_byte * 1000:.0f} ms, {lines - 1:,} rows")
    best = min(runs, key=lambda run: run["seconds"])
    return {**best, "first_byte_ms": min(run["first_byte_ms"] for run in runs),
            "first_row_ms": min(run["first_row_ms"] for run in runs), "peak_mb": runs[0]["peak_mb"],
            "runs": [run["seconds"] for run in runs]}  # fmt: skip


def _floor_sql() -> str:
    from reviewer.models import Batch, Event, Item

    # The exporter's columns (exporters._csv_values), computed by the database.
    return f"""
        SELECT b.prompt,
               CASE WHEN i.video_name <> '' THEN i.video_name WHEN i.custom_id <> '' THEN i.custom_id
                    ELSE i.provider_item_id END,
               e.approval,
               CASE WHEN e.t_end = '' OR e.t_start = e.t_end THEN e.t_start ELSE e.t_start || '-' || e.t_end END,
               e.category, CASE WHEN e.label = e.category THEN '' ELSE e.label END, e.ai_analysis, e.severity,
               i.provider_item_id, i.analysis_id, b.provider_batch_id, b.viewer_url, i.status, e.confidence,
               e.thumbnail_url, i.import_source_uri, i.text
        FROM {Event._meta.db_table} e
        JOIN {Item._meta.db_table} i ON i.id = e.item_id
        JOIN {Batch._meta.db_table} b ON b.id = e.batch_id
        WHERE e.batch_id = %s
        ORDER BY i.position, i.id, e.position, e.id
    """


def _floor_rows(batch_pk: int, sink) -> tuple[int, float]:
    """Write the batch's CSV to ``sink`` with one raw query; returns (rows, seconds to the first row)."""
    from django.db import connection

    from reviewer.csv_columns import HEADER as CSV_COLUMNS

    started = time.perf_counter()
    writer = csv.writer(sink)
    writer.writerow(CSV_COLUMNS)
    rows, first_row = 0, None
    with connection.cursor() as cursor:
        cursor.execute(_floor_sql(), [batch_pk])
        while chunk := cursor.fetchmany(2000):
            if first_row is None:
                first_row = time.perf_counter() - started
            writer.writerows(chunk)
            rows += len(chunk)
    return rows, first_row or 0.0


@task
def export_floor(batch_pk: int, repeats: int) -> dict:
    """The floor of the CSV export: fastest of ``repeats`` runs, and the sha256 of its output."""
    _django()
    runs = []
    for _ in range(repeats):
        with Timer() as timer:
            rows, first_row = _floor_rows(batch_pk, _NullSink())
        runs.append((timer.seconds, first_row, rows))
    seconds, first_row, rows = min(runs)
    digest = hashlib.sha256()
    _floor_rows(batch_pk, _HashSink(digest))
    return {"seconds": seconds, "first_row_ms": first_row * 1000, "rows": rows, "sha256": digest.hexdigest(),
            "runs": [run[0] for run in runs]}  # fmt: skip


class _HashSink:
    def __init__(self, digest) -> None:
        self.digest = digest

    def write(self, value: str) -> None:
        self.digest.update(value.encode())


@task
def export_memory(batch_pk: int) -> dict:
    """Peak Python heap (tracemalloc) over one CSV export of a batch, and the sha256 of its output.

    tracemalloc slows the code down, so this run is not timed. Its peak counts Python
    objects only (not SQLite's page cache): what grows if rows are held. One batch per
    process, after the same warm-up (one request read up to its header, then a full
    garbage collection), so two batches are measured from the same state: the peak
    depends on when the cyclic garbage collector runs, which depends on what the
    process did before.
    """
    client, url = _warmed_up_export(batch_pk)
    gc.collect()
    digest = hashlib.sha256()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    response = client.get(url)
    for chunk in response.streaming_content:
        digest.update(chunk)
    response.close()
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    log(f"export of batch {batch_pk}: Python heap peak {peak / MB:.1f} MB")
    return {"peak_mb": peak / MB, "sha256": digest.hexdigest()}


# --- The peer: NomadicML's official SDK against the same fake ------------------------


@task
def peer_sdk(peer_path: str, base_url: str, api_key: str, batch_id: str) -> dict:
    """``NomadicML(...).video.get_batch_analysis(batch_id, as_csv=True)`` (SDK 0.1.53), timed, with its memory."""
    if not Path(peer_path, "nomadicml").is_dir():
        return {"error": f"the SDK is not installed in {peer_path} (make bench installs bench/requirements-peer.txt)"}
    sys.path.append(peer_path)  # last: its wheel's stray top-level `tests` never shadows ours
    import nomadicml

    if nomadicml.__version__ != "0.1.53":
        return {"error": f"found nomadicml {nomadicml.__version__}, the bench expects 0.1.53"}
    client = nomadicml.NomadicML(api_key=api_key, base_url=base_url, timeout=120)
    with PeakRSS() as memory, Timer() as timer:
        text = client.video.get_batch_analysis(batch_id, as_csv=True)
    rows = sum(1 for _ in csv.reader(io.StringIO(text))) - 1
    return {"seconds": timer.seconds, "peak_mb": memory.growth / MB, "memory_method": memory.method,
            "rows": rows, "bytes": len(text.encode())}  # fmt: skip


def main() -> None:
    name, kwargs = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    if profile_dir:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    result = TASKS[name](**kwargs)
    if profile_dir:
        profiler.stop()
        label = os.environ.get("BENCH_PROFILE_LABEL", name)
        Path(profile_dir, f"{label}.txt").write_text(profiler.output_text(unicode=True, show_all=False))
        Path(profile_dir, f"{label}.html").write_text(profiler.output_html())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
