"""Load test: the dashboard under gunicorn, logged-in clients on the batch page, the CSV export and the API.

    make load                                   # 20 clients, 30 seconds
    .venv/bin/python bench/load.py --seconds 10 --clients 5 --workers 3

1. A temporary directory with a SQLite database (WAL, as in production): migrate, the
   demo batches (reviewer/demo.py), a synthetic NomadicML batch of --events events
   (bulk_create), a user; collectstatic for WhiteNoise's manifest. Nothing in the
   working tree is touched: the settings are the real ones (reviewer/settings.py, from
   environment variables) plus STATIC_ROOT in that directory.
2. gunicorn on 127.0.0.1, a free port, --workers sync workers, DEBUG off, a SECRET_KEY,
   ALLOWED_HOSTS=127.0.0.1, cookies over plain HTTP.
3. One login through /accounts/login/ (its CSRF token and all), then --clients threads,
   each with its own requests.Session carrying that session, cycle through the batch
   page under several filters, the CSV export and the API's event list (with a token),
   for --seconds seconds.
4. Requests per second, p50/p95/p99 latency and errors per endpoint, printed and written
   to bench/load-results.json.
5. The write phase (bench/load_writes.py; --no-writes skips it): a ~200 MB import of
   220,000 events uploaded through the Import page and a first sync of 150,000 events
   from a fake NomadicML server, run by `manage.py worker`, while 10 reviewers decide:
   decision latency and failures, the upload's time, both outcomes, the worker alive.

Bounded: no request starts after --seconds, each has a --timeout, and gunicorn (its
process group, started by this script) is stopped at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "load-results.json"
USERNAME = "load"
PASSWORD = "load-" + "".join(random.SystemRandom().choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(20))

KINDS = ("jaywalking", "near_miss", "hard_brake", "lane_change", "tailgating", "red_light_run")
SEVERITIES = ("low", "medium", "medium", "high", "high", "critical")
APPROVALS = ("pending", "pending", "pending", "pending", "pending", "approved", "approved", "rejected", "invalid")
STREETS = ("Market St", "Mission St", "Van Ness Ave", "Geary Blvd", "3rd St", "Embarcadero")

# (name, path; {pk} is the synthetic batch): every client cycles through these, each from
# its own starting point, so all run at once. Filter values exist in the batch (an
# unknown one is a 400, counted as an error). The /api/ ones send an API token.
ENDPOINTS = (
    ("batch page", "/batches/{pk}/"),
    ("batch ?approval=pending&sort=confidence", "/batches/{pk}/?approval=pending&sort=confidence"),
    ("batch ?severity=high&category=near_miss", "/batches/{pk}/?severity=high&category=near_miss"),
    ("batch ?q=Market", "/batches/{pk}/?q=Market"),
    ("batch ?page=40&sort=severity", "/batches/{pk}/?page=40&sort=severity"),
    ("export.csv", "/batches/{pk}/export.csv"),
    ("api events ?approval=pending", "/api/batches/{pk}/events?approval=pending&limit=100"),
    ("api events ?severity=high&sort=time", "/api/batches/{pk}/events?severity=high&sort=time&limit=100"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the clients send requests (30)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients, one thread each (20)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (3, as the README's)")
    parser.add_argument("--events", type=int, default=20_000, help="events in the synthetic batch (20,000)")
    parser.add_argument("--per-item", type=int, default=10, help="events per video in the synthetic batch (10)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one request may take (60)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"results file ({RESULTS.relative_to(ROOT)})")
    writes = parser.add_argument_group("the write phase (bench/load_writes.py), after the clients")
    writes.add_argument("--no-writes", action="store_true", help="skip the write phase")
    writes.add_argument("--import-events", type=int, default=220_000, help="events in the uploaded file (220,000)")
    writes.add_argument("--sync-events", type=int, default=150_000, help="events in the synced batch (150,000)")
    writes.add_argument("--deciders", type=int, default=10, help="reviewers deciding meanwhile (10)")
    writes.add_argument(
        "--decision-interval", type=float, default=1.0, help="seconds between a reviewer's decisions (1: a fast triage)"
    )
    writes.add_argument("--write-timeout", type=float, default=900.0, help="seconds the import and sync may take")
    args = parser.parse_args()
    if args.seconds <= 0 or args.clients < 1 or args.workers < 1 or args.events < 1 or args.per_item < 1:
        parser.error("--seconds, --clients, --workers, --events and --per-item must be positive")
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, through the finally that stops gunicorn.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    with tempfile.TemporaryDirectory(prefix="reviewer-load-") as tmp:
        env = environment(Path(tmp))
        started = time.monotonic()
        batch_pk, setup, token = prepare(Path(tmp), env, args)
        print(f"Set up in {time.monotonic() - started:.1f} s: {setup['events']:,} events in the load batch.")
        server = Gunicorn(Path(tmp), env, args.workers)
        try:
            server.start()
            cookies = log_in(server.url)
            print(f"Serving on {server.url} ({args.workers} workers); {args.clients} clients for {args.seconds:g} s...")
            stats, elapsed = run_clients(server.url, batch_pk, cookies, token, args)
            writes = None
            if not args.no_writes:
                from bench import load_writes  # importable once prepare() put the repository on sys.path

                writes = load_writes.run_write_phase(server.url, cookies, Path(tmp), env, args, batch_pk)
        finally:
            server.stop()
        report = summarize(stats, elapsed, args, setup, server.url)
        report["writes"] = writes
    print_table(report)
    if writes is not None:
        load_writes.print_writes(writes)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Wrote {args.output}")
    return 0


# --- Setup ------------------------------------------------------------------------------


def environment(tmp: Path) -> dict[str, str]:
    """Production settings through their environment variables (README, "Settings")."""
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
    # The real settings, with the collected static files in the temporary directory.
    (tmp / "load_settings.py").write_text(
        f"from reviewer.settings import *  # noqa\nSTATIC_ROOT = {str(tmp / 'static')!r}\n"
    )
    return env


def prepare(tmp: Path, env: dict[str, str], args: argparse.Namespace) -> tuple[int, dict, str]:
    """Migrate, collect static files, load the demo and the synthetic batch, create the user and an API token of theirs."""
    os.environ.clear()
    os.environ.update(env)
    sys.path[:0] = [str(tmp), str(ROOT)]
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connections

    from reviewer import demo
    from reviewer.models import ApiToken

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    demo.load()
    batch = synthetic_batch(args.events, args.per_item)
    user = User.objects.create_user(USERNAME, password=PASSWORD)
    user.groups.add(Group.objects.get(name="reviewer"))  # the write phase decides
    token = ApiToken.issue(user, "load test")[1]
    connections.close_all()
    return (
        batch.pk,
        {
            "events": batch.event_total,
            "items": batch.item_total,
            "approval_counts": batch.approval_counts,
            "database_bytes": (tmp / "load.sqlite3").stat().st_size,
        },
        token,
    )


def synthetic_batch(total: int, per_item: int):
    """A completed NomadicML batch of ``total`` events, ``per_item`` per video, written with bulk_create."""
    from django.utils import timezone

    from reviewer.models import Batch, BatchStatus, Event, Item, Provider

    rng = random.Random(20_000)
    batch = Batch.objects.create(
        provider=Provider.NOMADICML, provider_batch_id=f"load-{total}", provider_status="completed",
        status=BatchStatus.COMPLETED, mode="ask", analysis_type="rapid_review", category="driving",
        prompt="Flag every traffic incident near intersections.", last_synced_at=timezone.now(),
        viewer_url=f"https://app.nomadicml.com/use-cases/rapid-review/batch-view/load-{total}",
    )  # fmt: skip
    videos = -(-total // per_item)
    items = Item.objects.bulk_create(
        [
            Item(
                batch=batch, provider_item_id=f"video-{n:06d}", analysis_id=f"an-{n:06d}",
                video_name=f"dashcam-{n:06d}.mp4", status="completed", position=n, content_hash=f"{n:064x}",
                text=f"Drive {n} along {rng.choice(STREETS)}: {rng.randint(0, per_item)} incidents flagged.",
                import_source_uri=f"s3://fleet/dashcam-{n:06d}.mp4",
            )
            for n in range(videos)
        ],
        batch_size=1000,
    )  # fmt: skip
    events = []
    for item in items:
        for k in range(min(per_item, total - len(events))):
            kind, street = rng.choice(KINDS), rng.choice(STREETS)
            start = round(rng.uniform(0, 3600), 1)
            end = round(start + rng.uniform(1, 12), 1)
            approval = rng.choice(APPROVALS)
            events.append(
                Event(
                    item=item, batch=batch, key=f"{item.pk:x}-{k}", position=k, category=kind,
                    label=f"{kind.replace('_', ' ').capitalize()} on {street}", severity=rng.choice(SEVERITIES),
                    confidence=None if rng.random() < 0.1 else round(rng.uniform(0.3, 0.99), 2),
                    ai_analysis=(
                        f"A {kind.replace('_', ' ')} near {street} at {clock(start)}: the vehicle ahead slows, a "
                        f"pedestrian steps off the curb and the driver brakes; visibility good, traffic moderate."
                    ),
                    start_seconds=start, end_seconds=end, t_start=clock(start), t_end=clock(end),
                    thumbnail_url=f"https://cdn.example.com/{item.provider_item_id}/{k}.jpg",
                    raw={"type": kind, "time": f"t={start}", "end_time": f"t={end}", "street": street},
                    provider_approval=approval, approval=approval, content_hash=f"{len(events):064x}",
                )
            )  # fmt: skip
    Event.objects.bulk_create(events, batch_size=1000)
    batch.refresh_counts()
    return batch


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{rest:02d}"


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


def log_in(url: str) -> requests.cookies.RequestsCookieJar:
    """Log in as a browser does: GET the form (CSRF cookie), POST it with the token; returns the cookies."""
    session = requests.Session()
    form = session.get(f"{url}/accounts/login/", timeout=10)
    form.raise_for_status()
    answer = session.post(
        f"{url}/accounts/login/",
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 302 or "sessionid" not in session.cookies:
        raise RuntimeError(f"login failed: HTTP {answer.status_code}\n{answer.text[:500]}")
    return session.cookies


# --- The clients ------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    bytes: int = 0


def run_clients(
    url: str, batch_pk: int, cookies, token: str, args: argparse.Namespace
) -> tuple[dict[str, Stats], float]:
    stats = {name: Stats() for name, _ in ENDPOINTS}
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + args.seconds

    def client(index: int) -> None:
        session = requests.Session()
        session.cookies.update(cookies)
        turn = index
        while time.monotonic() < deadline:
            name, template = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            path = template.format(pk=batch_pk)
            headers = {"Authorization": f"Bearer {token}"} if path.startswith("/api/") else {}
            began = time.monotonic()
            error, size = None, 0
            try:
                response = session.get(url + path, headers=headers, timeout=args.timeout, allow_redirects=False)
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
                        entry.error_samples.append(f"{path}: {error}"[:300])

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.seconds + args.timeout + 10)
    return stats, time.monotonic() - start


def check(response: requests.Response, name: str) -> str | None:
    """None when the answer is what a browser would want, else why not."""
    if response.status_code != 200:
        where = f" to {response.headers.get('Location')}" if response.is_redirect else ""
        return f"HTTP {response.status_code}{where}"
    if name.startswith("api"):
        if (
            not response.headers.get("Content-Type", "").startswith("application/json")
            or not response.json()["results"]
        ):
            return f"not a page of events ({response.headers.get('Content-Type')}, {len(response.content)} bytes)"
    elif name.startswith("export"):
        if not response.headers.get("Content-Type", "").startswith("text/csv") or response.content.count(b"\n") < 2:
            return f"not a CSV export ({response.headers.get('Content-Type')}, {len(response.content)} bytes)"
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


def summarize(stats: dict[str, Stats], elapsed: float, args, setup: dict, url: str) -> dict:
    endpoints = {}
    for name, entry in stats.items():
        endpoints[name] = row(entry.latencies, entry.errors, entry.bytes, elapsed)
        if entry.error_samples:
            endpoints[name]["error_samples"] = entry.error_samples
    pages = [s for name, s in stats.items() if name.startswith("batch")]
    groups = {
        "batch page (all filters)": row(
            [t for s in pages for t in s.latencies], sum(s.errors for s in pages), sum(s.bytes for s in pages), elapsed
        ),
        "all": row(
            [t for s in stats.values() for t in s.latencies],
            sum(s.errors for s in stats.values()),
            sum(s.bytes for s in stats.values()),
            elapsed,
        ),
    }
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "seconds": args.seconds,
            "measured_seconds": round(elapsed, 2),
            "clients": args.clients,
            "gunicorn_workers": args.workers,
            "server": url,
            "database": "sqlite (WAL), temporary file",
            "settings": "reviewer/settings.py with DEBUG=0, SECRET_KEY, ALLOWED_HOSTS=127.0.0.1, SECURE_COOKIES=0",
            "request_timeout": args.timeout,
        },
        "data": setup,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "endpoints": endpoints,
        "groups": groups,
    }


def print_table(report: dict) -> None:
    header = f"{'endpoint':<42} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6}"
    print(header)
    print("-" * len(header))
    for section in ("endpoints", "groups"):
        for name, values in report[section].items():
            print(
                f"{name:<42} {values['requests']:>8} {values['requests_per_second']:>7} "
                f"{fmt(values['p50_ms']):>8} {fmt(values['p95_ms']):>8} {values['errors']:>6}"
            )
        if section == "endpoints":
            print("-" * len(header))
    for name, values in report["endpoints"].items():
        for sample in values.get("error_samples", []):
            print(f"  {name} error: {sample}")


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


if __name__ == "__main__":
    sys.exit(main())
