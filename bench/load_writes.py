"""The write phase of ``make load``: a big import and a big sync while reviewers decide.

While ``--deciders`` clients decide events of the load batch (single decisions, as the
batch page's htmx requests), the Import page receives a NomadicML batch JSON of
``--import-events`` events (about 200 MB: the documented upload limit) and the Add batch
page queues a first sync of ``--sync-events`` events from a fake NomadicML server over
HTTP. The background worker (``manage.py worker``) runs both. Measured: every decision's
latency and status, the upload's time, how long the import and the sync took and how
they ended, and whether the worker is still alive at the end.

Targets (the reliability requirements): 0 failed decisions, p99 decision latency ≤ 1 s,
both writes succeeded, the worker alive. Each reviewer decides once a second by default
(a fast triage; --decision-interval 0.05 makes them decide as fast as the server answers).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SYNC_BATCH = "load-sync"
FAKE_KEY = "nm-load-" + os.urandom(8).hex()


def probe_lock(stop: threading.Event, waits: list[float]) -> None:
    """Open and close a write transaction every 50 ms, timing each: how long any writer waits for the lock.

    Apart from the decisions' latency, which also counts CPU time on a busy 2-core machine.
    An empty ``transaction.atomic()`` takes a writer's turn and BEGINs IMMEDIATE, as every
    write of the app does (reviewer/sqlite/base.py); this thread has its own connection.
    """
    from django.db import connection, transaction

    try:
        while not stop.is_set():
            began = time.monotonic()
            with transaction.atomic():
                waits.append(time.monotonic() - began)
            stop.wait(0.05)
    finally:
        connection.close()


@dataclass
class Decisions:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def start_fakes(sync_events: int, per_video: int = 10) -> tuple[subprocess.Popen, str]:
    """bench/serve_fakes.py serving the sync batch; returns the process and the NomadicML base URL."""
    spec = {
        "twelvelabs_key": "tl-unused",
        "nomadicml_key": FAKE_KEY,
        "twelvelabs": [],
        "nomadicml": [{"items": -(-sync_events // per_video), "per_item": per_video, "seed": 150, "ids": [SYNC_BATCH]}],
    }
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "serve_fakes.py"), json.dumps(spec)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "BENCH_DB": os.environ.get("BENCH_DB", "/nonexistent-unused.sqlite3")},
    )  # fmt: skip
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("the fake provider did not start")
    return process, json.loads(line)["nomadicml"]


def add_source(base_url: str) -> None:
    """The source the sync reads from (this process has Django set up on the load database)."""
    from reviewer.models import Source

    source = Source(name="load-nomadic", provider="nomadicml", base_url=base_url)
    source.set_api_key(FAKE_KEY)
    source.save()


class Worker:
    """``manage.py worker`` in its own process group, as the README runs it."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.log_path = tmp / "worker.log"
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "worker"], cwd=ROOT, env=self.env, start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def csrf_session(url: str, cookies) -> requests.Session:
    session = requests.Session()
    session.cookies.update(cookies)
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    session.headers["Referer"] = url + "/"
    return session


def decide_until(
    stop: threading.Event, url: str, cookies, event_ids: list[int], seed: int, out: Decisions, interval: float
) -> None:
    """One reviewer: a decision on a random event every ``interval`` seconds (or as soon as the last one came back)."""
    session, rng = csrf_session(url, cookies), random.Random(seed)
    while not stop.is_set():
        pk = rng.choice(event_ids)
        began = time.monotonic()
        try:
            response = session.post(
                f"{url}/events/{pk}/decision",
                data={"decision": rng.choice(("approved", "rejected", "invalid", "pending"))},
                headers={"HX-Request": "true"},
                timeout=30,
            )
            error = None if response.status_code == 200 else f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        took = time.monotonic() - began
        with out.lock:
            if error is None:
                out.latencies.append(took)
            else:
                out.errors.append(error[:300])
        stop.wait(max(0.0, interval - took))


def upload(url: str, cookies, path: Path) -> tuple[float, int]:
    """POST the file to the Import page as a browser's form does; returns (seconds, import run id)."""
    session = csrf_session(url, cookies)
    began = time.monotonic()
    with path.open("rb") as binary:
        response = session.post(
            f"{url}/import/",
            data={"csrfmiddlewaretoken": session.cookies["csrftoken"], "provider": "", "batch_id": "", "mode": ""},
            files={"file": (path.name, binary, "application/json")},
            allow_redirects=False,
            timeout=300,
        )
    took = time.monotonic() - began
    match = re.search(r"/imports/(\d+)/", response.headers.get("Location", ""))
    if response.status_code != 302 or match is None:
        raise RuntimeError(f"the upload was refused: HTTP {response.status_code} {response.text[:500]}")
    return took, int(match.group(1))


def queue_sync(url: str, cookies) -> None:
    session = csrf_session(url, cookies)
    from reviewer.models import Source

    source = Source.objects.get(name="load-nomadic")
    response = session.post(
        f"{url}/batches/add/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"], "source": source.pk, "batch_id": SYNC_BATCH},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302:
        raise RuntimeError(f"Add batch was refused: HTTP {response.status_code} {response.text[:500]}")


def wait_for_writes(import_run: int, queued_at: float, deadline: float) -> dict:
    """Poll the database until the import and the sync have ended (or ``deadline``); their outcomes and times.

    The time of each is from its queueing to when this poll (every second) saw it end.
    """
    from django.db import connections

    from reviewer.models import Batch, SyncRun

    result: dict = {}
    while time.monotonic() < deadline and len(result) < 2:
        time.sleep(1)
        connections.close_all()  # a fresh snapshot each round
        run = SyncRun.objects.get(pk=import_run)
        if "import" not in result and run.outcome != "running":
            result["import"] = describe(run, queued_at)
        sync_run = SyncRun.objects.filter(batch__provider_batch_id=SYNC_BATCH).order_by("-id").first()
        batch = Batch.objects.filter(provider_batch_id=SYNC_BATCH).first()
        if "sync" not in result and sync_run is not None and batch is not None and not batch.loading:
            result["sync"] = describe(sync_run, queued_at)
        elif "sync" not in result and batch is not None and batch.sync_state == "failed":
            result["sync"] = {"outcome": "failed", "error": batch.last_error}
    return result


def describe(run, queued_at: float) -> dict:
    return {
        "outcome": run.outcome,
        "error": run.error,
        "items_created": run.items_created,
        "events_created": run.events_created,
        "seconds": round(time.monotonic() - queued_at),
    }


def run_write_phase(url: str, cookies, tmp: Path, env: dict[str, str], args, batch_pk: int) -> dict:
    """Everything above, in order; returns the report's "writes" section."""
    from bench import synthetic
    from reviewer.models import Event

    event_ids = list(Event.objects.filter(batch_id=batch_pk).values_list("pk", flat=True)[:5000])
    path = tmp / "load-import.json"
    began = time.monotonic()
    size = synthetic.write_nomadic_analysis(path, args.import_events)
    print(
        f"Wrote a {size / 1e6:.0f} MB import file of {args.import_events:,} events in {time.monotonic() - began:.0f} s."
    )
    fakes, base_url = start_fakes(args.sync_events)
    add_source(base_url)
    worker = Worker(tmp, env)
    decisions, stop = Decisions(), threading.Event()
    threads = [
        threading.Thread(
            target=decide_until, args=(stop, url, cookies, event_ids, n, decisions, args.decision_interval), daemon=True
        )
        for n in range(args.deciders)
    ]
    lock_waits: list[float] = []
    threads.append(threading.Thread(target=probe_lock, args=(stop, lock_waits), daemon=True))
    try:
        worker.start()
        for thread in threads:
            thread.start()
        time.sleep(2)  # the reviewers are at work before the writes start
        upload_seconds, import_run = upload(url, cookies, path)
        queue_sync(url, cookies)
        queued_at = time.monotonic()
        print(f"Uploaded in {upload_seconds:.1f} s; import and sync queued; {args.deciders} reviewers deciding...")
        writes = wait_for_writes(import_run, queued_at, queued_at + args.write_timeout)
        time.sleep(2)  # and a little after
        stop.set()
        for thread in threads:
            thread.join(40)
        alive = worker.alive
    finally:
        stop.set()
        worker.stop()
        fakes.stdin.close()
        fakes.wait(10)
    ordered = sorted(decisions.latencies)
    from bench.load import percentile

    return {
        "import_file_bytes": size,
        "import_events": args.import_events,
        "sync_events": args.sync_events,
        "upload_seconds": round(upload_seconds, 2),
        "import": writes.get("import", {"outcome": "did not finish in time"}),
        "sync": writes.get("sync", {"outcome": "did not finish in time"}),
        "worker_alive_at_end": alive,
        "decisions": {
            "reviewers": args.deciders,
            "seconds_between_decisions": args.decision_interval,
            "ok": len(ordered),
            "failed": len(decisions.errors),
            "error_samples": decisions.errors[:5],
            "p50_ms": percentile(ordered, 0.50),
            "p95_ms": percentile(ordered, 0.95),
            "p99_ms": percentile(ordered, 0.99),
            "max_ms": round(1000 * ordered[-1], 1) if ordered else None,
        },
        "write_lock_wait": {
            "probes": len(lock_waits),
            "p50_ms": percentile(sorted(lock_waits), 0.50),
            "p99_ms": percentile(sorted(lock_waits), 0.99),
            "max_ms": percentile(sorted(lock_waits), 1.0),
        },
        "worker_log_tail": worker.log_path.read_text(errors="replace").splitlines()[-5:],
    }


def print_writes(writes: dict) -> None:
    d = writes["decisions"]
    print(
        f"\nWrites: upload of {writes['import_file_bytes'] / 1e6:.0f} MB in {writes['upload_seconds']} s; "
        f"import {writes['import'].get('outcome')} ({writes['import'].get('events_created', 0):,} events, "
        f"{writes['import'].get('seconds')} s); sync {writes['sync'].get('outcome')} "
        f"({writes['sync'].get('events_created', 0):,} events, {writes['sync'].get('seconds')} s); "
        f"worker alive: {writes['worker_alive_at_end']}"
    )
    print(
        f"Decisions meanwhile: {d['ok']} ok, {d['failed']} failed; p50 {d['p50_ms']} ms, p95 {d['p95_ms']} ms, "
        f"p99 {d['p99_ms']} ms, max {d['max_ms']} ms"
    )
    lock = writes["write_lock_wait"]
    print(
        f"SQLite write lock, taken every 50 ms meanwhile: {lock['probes']} waits; p50 {lock['p50_ms']} ms, "
        f"p99 {lock['p99_ms']} ms, max {lock['max_ms']} ms"
    )
    for sample in d["error_samples"]:
        print(f"  decision error: {sample}")
