"""`make load`: the dashboard under gunicorn, a team of clients at once, on the bench's 100,000-event batch.

Run by the bench harness as its ``load`` row group (``bench/run.py --only load``; ``make
bench`` runs it last): the database is the bench's own, with the batches the harness
synced from the synthetic data (``bench/synthetic.py``).

1. gunicorn as the README runs it in production (``reviewer.wsgi``, --workers 3, DEBUG
   off) on 127.0.0.1, on the bench database (``bench/settings.py``).
2. One login through /accounts/login/ (its CSRF token and all) and an API token.
3. The mix (MIX): batch pages under filters and sorts, a search in the batch and across
   all batches, review mode, a filtered CSV export, the API's event list, single
   decisions and bulk decisions of 20 selected events (htmx POSTs with the CSRF header).
4. One client alone for a while: the single-client p95 of each request. Then --clients
   clients for --seconds seconds, each waiting --think seconds on average between two
   requests (a person reads a page before the next click; --think 0 hammers).
5. Requests, req/s, p50/p95 and errors per endpoint: bench/load-results.json and rows
   of the bench table (p95 under load beside the single-client p95).
6. --writes: then the write phase (bench/load_writes.py): a ~200 MB import and a
   150,000-event sync while reviewers decide.

Bounded: no request starts after --seconds, each has a --timeout, and gunicorn (its
process group, started here) is stopped at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "load-results.json"
SELECTED = 20  # events per bulk decision

# (name, method, path): {pk} is the 100,000-event batch, {event} one of its events, {events} SELECTED of them.
MIX = (
    ("batch page", "GET", "/batches/{pk}/"),
    ("batch ?approval=pending&sort=confidence", "GET", "/batches/{pk}/?approval=pending&sort=confidence"),
    ("batch ?severity=high&category=near_miss", "GET", "/batches/{pk}/?severity=high&category=near_miss"),
    ("batch ?q=market", "GET", "/batches/{pk}/?q=market"),
    ("batch ?page=40&sort=severity", "GET", "/batches/{pk}/?page=40&sort=severity"),
    ("search all batches ?q=pedestrian market", "GET", "/search/?q=pedestrian+market"),
    ("review mode ?approval=pending", "GET", "/batches/{pk}/review?approval=pending"),
    ("export.csv ?severity=critical&approval=rejected", "GET",
     "/batches/{pk}/export.csv?severity=critical&approval=rejected"),
    ("api events ?approval=pending", "GET", "/api/batches/{pk}/events?approval=pending&limit=100"),
    ("decide one event", "POST", "/events/{event}/decision"),
    (f"decide {SELECTED} selected events", "POST", "/batches/{pk}/decisions"),
)  # fmt: skip


def add_arguments(parser) -> None:
    group = parser.add_argument_group("load (the `load` group; make load)")
    group.add_argument("--clients", type=int, default=20, help="concurrent clients, one thread each (20)")
    group.add_argument("--seconds", type=float, help="how long they send requests (30; --quick: 5)")
    group.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (3, as the README's)")
    group.add_argument("--think", type=float, default=1.0, help="mean seconds between a client's requests (1)")
    group.add_argument("--timeout", type=float, default=60.0, help="seconds one request may take (60)")
    group.add_argument("--writes", action="store_true", help="then the write phase (bench/load_writes.py)")
    group.add_argument("--import-events", type=int, default=220_000, help="events in the uploaded file (220,000)")
    group.add_argument("--sync-events", type=int, default=150_000, help="events in the synced batch (150,000)")
    group.add_argument("--deciders", type=int, default=10, help="reviewers deciding meanwhile (10)")
    group.add_argument("--decision-interval", type=float, default=1.0, help="seconds between their decisions (1)")
    group.add_argument("--write-timeout", type=float, default=900.0, help="seconds the import and sync may take")


def production_environment(tmp: Path) -> dict[str, str]:
    """The production settings through their environment variables (README, "Settings"), on a database in ``tmp``.

    With STATIC_ROOT in ``tmp`` (run collectstatic first). tests/test_gunicorn_upload.py serves the upload with it.
    """
    env = dict(os.environ)
    for name in ("ENCRYPTION_KEY", "CSRF_TRUSTED_ORIGINS", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env.update(
        DEBUG="0",
        SECRET_KEY="load-test-only-" + os.urandom(16).hex(),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{tmp / 'load.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),  # uploads and stored thumbnails: not in the checkout
        SECURE_COOKIES="0",  # plain http on 127.0.0.1: Secure cookies would never be sent back
        SSL_REDIRECT="0",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="load_settings",
        PYTHONPATH=os.pathsep.join([str(tmp), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    (tmp / "load_settings.py").write_text(
        f"from reviewer.settings import *  # noqa\nSTATIC_ROOT = {str(tmp / 'static')!r}\n"
    )
    return env


def environment() -> dict[str, str]:
    """gunicorn's environment: the bench settings (production settings, DEBUG off) on the bench database."""
    env = dict(os.environ)
    env.pop("ENCRYPTION_KEY", None)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    )
    return env


# --- The server -------------------------------------------------------------------------


class Gunicorn:
    """gunicorn serving reviewer.wsgi in its own process group, stopped by ``stop`` whatever happened."""

    def __init__(self, tmp: Path, env: dict[str, str], workers: int) -> None:
        self.env, self.workers = env, workers
        self.log_path = tmp / "gunicorn.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "gunicorn", "reviewer.wsgi", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers), "--graceful-timeout", "5",  # the README's command: 30 s timeout
            "--log-level", "warning", "--error-logfile", str(self.log_path),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /healthz within 30 s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the master and its workers: our own process group
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_in(url: str, username: str, password: str) -> requests.cookies.RequestsCookieJar:
    """Log in as a browser does: GET the form (CSRF cookie), POST it with the token; returns the cookies."""
    session = requests.Session()
    form = session.get(f"{url}/accounts/login/", timeout=10)
    form.raise_for_status()
    answer = session.post(
        f"{url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 302 or "sessionid" not in session.cookies:
        raise RuntimeError(f"login failed: HTTP {answer.status_code}\n{answer.text[:500]}")
    return session.cookies


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    bytes: int = 0


@dataclass
class Target:
    """What the clients work on: the server, a logged-in session's cookies, an API token, the batch and its events."""

    url: str
    cookies: object
    token: str
    batch_pk: int
    event_ids: list[int]


def run_clients(target: Target, clients: int, seconds: float, think: float, timeout: float) -> tuple[dict, float]:
    stats = {name: Stats() for name, _, _ in MIX}
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds

    def client(index: int) -> None:
        session = requests.Session()
        session.cookies.update(target.cookies)
        session.headers.update({"X-CSRFToken": session.cookies["csrftoken"], "Referer": target.url + "/"})
        rng, turn = random.Random(index), index
        while time.monotonic() < deadline:
            name, method, template = MIX[turn % len(MIX)]
            turn += 1
            began = time.monotonic()
            error, size = None, 0
            try:
                response = _send(session, target, rng, method, template, timeout)
                size = len(response.content)  # the whole body: an export is timed until its last row
                error = check(response, name)
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            took = time.monotonic() - began
            with lock:
                entry = stats[name]
                if error is None:
                    entry.latencies.append(took)
                    entry.bytes += size
                else:
                    entry.errors += 1
                    if len(entry.error_samples) < 5:
                        entry.error_samples.append(f"{template}: {error}"[:300])
            if think:
                time.sleep(min(rng.expovariate(1 / think), 4 * think, max(0.0, deadline - time.monotonic())))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + timeout + 10)
    return stats, time.monotonic() - start


def _send(session, target: Target, rng: random.Random, method: str, template: str, timeout: float):
    path = template.format(pk=target.batch_pk, event=rng.choice(target.event_ids))
    headers = {"Authorization": f"Bearer {target.token}"} if path.startswith("/api/") else {}
    if method == "GET":
        return session.get(target.url + path, headers=headers, timeout=timeout, allow_redirects=False)
    data: dict = {"decision": rng.choice(("approved", "rejected", "invalid", "pending"))}
    if "/decisions" in path:
        data["event"] = rng.sample(target.event_ids, SELECTED)
    return session.post(target.url + path, data=data, headers={"HX-Request": "true"}, timeout=timeout,
                        allow_redirects=False)  # fmt: skip


def check(response: requests.Response, name: str) -> str | None:
    """None when the answer is what a browser would want, else why not."""
    if response.status_code != 200:
        where = f" to {response.headers.get('Location')}" if response.is_redirect else ""
        return f"HTTP {response.status_code}{where}: {response.text[:200]}"
    kind = response.headers.get("Content-Type", "")
    if name.startswith("api"):
        if not kind.startswith("application/json") or "results" not in response.json():
            return f"not a page of events ({kind}, {len(response.content)} bytes)"
    elif name.startswith("export"):
        if not kind.startswith("text/csv") or response.content.count(b"\n") < 2:
            return f"not a CSV export ({kind}, {len(response.content)} bytes)"
    elif name.startswith("decide"):
        pass  # a refused decision answers 400 (reviewer/views.py _refuse)
    elif b"</html>" not in response.content:
        return "an incomplete page"
    return None


# --- The report -------------------------------------------------------------------------


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted values, in milliseconds."""
    if not ordered:
        return None
    return round(1000 * ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))], 1)


def row(latencies: list[float], errors: int, size: int, elapsed: float) -> dict:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered) + errors,
        "ok": len(ordered),
        "errors": errors,
        "requests_per_second": round((len(ordered) + errors) / elapsed, 2),
        "p50_ms": percentile(ordered, 0.50),
        "p95_ms": percentile(ordered, 0.95),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": round(1000 * ordered[-1], 1) if ordered else None,
        "mean_bytes": round(size / len(ordered)) if ordered else None,
    }


def summarize(stats: dict[str, Stats], elapsed: float) -> dict:
    """Per endpoint and for the whole mix: requests, req/s, p50/p95/p99, errors."""
    endpoints = {}
    for name, entry in stats.items():
        endpoints[name] = row(entry.latencies, entry.errors, entry.bytes, elapsed)
        if entry.error_samples:
            endpoints[name]["error_samples"] = entry.error_samples
    every = list(stats.values())
    endpoints["all"] = row([t for s in every for t in s.latencies], sum(s.errors for s in every),
                           sum(s.bytes for s in every), elapsed)  # fmt: skip
    return endpoints


def measure(target_args, seconds: float, baseline_seconds: float, username: str, password: str) -> dict:
    """Serve the bench database with gunicorn; one client alone, then the team; the report (RESULTS)."""
    from django.contrib.auth.models import User

    from reviewer.models import ApiToken, Batch, Event

    batch = Batch.objects.get(provider_batch_id="bench-large")
    events = list(Event.objects.filter(batch=batch).order_by("pk").values_list("pk", flat=True)[:5000])
    token = ApiToken.issue(User.objects.get(username=username), "load test")[1]
    args = target_args
    server = Gunicorn(Path(os.environ["BENCH_DB"]).parent, environment(), args.workers)
    try:
        server.start()
        target = Target(server.url, log_in(server.url, username, password), token, batch.pk, events)
        alone, alone_seconds = run_clients(target, 1, baseline_seconds, 0, args.timeout)
        team, team_seconds = run_clients(target, args.clients, seconds, args.think, args.timeout)
        writes = None
        if args.writes:
            from bench import load_writes

            writes = load_writes.run_write_phase(server.url, target.cookies, server.log_path.parent, environment(),
                                                 args, batch.pk)  # fmt: skip
    finally:
        server.stop()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "clients": args.clients, "seconds": seconds, "measured_seconds": round(team_seconds, 2),
            "think_seconds_mean": args.think, "gunicorn_workers": args.workers, "request_timeout": args.timeout,
            "database": "sqlite (WAL): the bench database", "settings": "bench/settings.py (production, DEBUG off)",
        },
        "data": {"events": batch.event_total, "items": batch.item_total, "batches": Batch.objects.count()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "single_client": summarize(alone, alone_seconds),
        "endpoints": summarize(team, team_seconds),
        "writes": writes,
    }  # fmt: skip


def print_table(report: dict) -> None:
    header = f"{'endpoint':<48} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'alone p95':>9} {'errors':>6}"
    print(header, file=sys.stderr)
    print("-" * len(header), file=sys.stderr)
    for name, values in report["endpoints"].items():
        alone = report["single_client"][name]["p95_ms"]
        print(f"{name:<48} {values['requests']:>8} {values['requests_per_second']:>7} {fmt(values['p50_ms']):>8} "
              f"{fmt(values['p95_ms']):>8} {fmt(alone):>9} {values['errors']:>6}", file=sys.stderr)  # fmt: skip
        for sample in values.get("error_samples", []):
            print(f"  error: {sample}", file=sys.stderr)


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"
