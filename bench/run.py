"""`make bench`: sync, page and export benchmarks against the provider fakes over real HTTP.

Usage: ``.venv/bin/python bench/run.py [--quick] [--profile DIR] [--keep]``
(``make bench`` installs the bench requirements first). See bench/README.md.

What happens:
1. a fresh SQLite database in a temporary directory (``bench/settings.py``), migrated;
2. ``bench/serve_fakes.py`` starts in its own process and serves the synthetic batches
   (``bench/synthetic.py``) through ``tests/fakes`` on 127.0.0.1;
3. the row groups of ``bench/rows.py`` run in order; every measurement is a fresh
   ``bench/worker.py`` process, each figure beside a floor measured in the same run;
4. the table goes to stdout and ``bench/results.json`` (one object per row).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[0] = str(ROOT)  # run as a script: the repository, not bench/

from bench.rows import GROUPS, ROWS, Row  # noqa: E402

RESULTS = ROOT / "bench" / "results.json"
# Where `make bench` installs bench/requirements-peer.txt (the Makefile passes its own VENV).
PEER_PATH = Path(os.environ.get("BENCH_PEER_PATH") or ROOT / ".venv" / "bench-peer").resolve()
TL_KEY = "tlk_bench_0123456789abcdef"
NM_KEY = "nmk_bench_0123456789abcdef"
BENCH_PASSWORD = "bench-" + "x7Kq2mPz9Lw4"  # a local throwaway database's staff login
# The pages measured at 100,000 events and at 1,000 (a database of its own, same URLs):
# every sort, the filters, first and last page; review mode; the batch list; search.
PAGES = [
    *[{"name": f"batch page, {name}, {'page 1' if page == 1 else 'last page'}", "query": query, "page": page}
      for name, query in (
          ("no filter", {}), ("approval=pending", {"approval": ["pending"]}),
          ("severity=critical+category=near_miss", {"severity": ["critical"], "category": ["near_miss"]}),
          ("decided=provider+status=completed", {"decided": ["provider"], "status": ["completed"]}),
          ("q=market pedestrian", {"q": "market pedestrian"}),
          ("sort=time", {"sort": "time"}), ("sort=severity", {"sort": "severity"}),
          ("sort=confidence+approval=pending", {"sort": "confidence", "approval": ["pending"]}),
          ("sort=video", {"sort": "video"}),
      )
      for page in (1, "last")],
    {"name": "review mode, approval=pending", "review": True, "query": {"approval": ["pending"]}},
    {"name": "review mode, severity=high+q=market", "review": True, "query": {"severity": ["high"], "q": "market"}},
    {"name": "batch list (1,000 batches)", "path": "/"},
    {"name": "search across batches, q=market", "path": "/search/?q=market"},
    {"name": "search across batches, q=pedestrian market+approval=pending",
     "path": "/search/?q=pedestrian+market&approval=pending"},
]  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    tl_items: int = 1000  # TwelveLabs' maximum batch size
    tl_segments: int = 20
    nm_videos: int = 5000
    nm_events: int = 20
    small_videos: int = 50  # the 1,000-event batch the page's query count is compared with
    mid_videos: int = 1000  # the 20,000-event batch the export's memory is compared with
    tl_sync_repeats: int = 2  # first syncs (each of its own batch id); the fastest counts
    tl_floor_repeats: int = 3
    nm_floor_repeats: int = 2
    page_requests: int = 20  # timed requests per URL (p95 of 20 = the 19th fastest)
    page_budget_seconds: float = 3.0  # ...or fewer (at least 5) once this runs out
    export_repeats: int = 2
    list_batches: int = 1000  # the batch list's workload (imported small batches)
    small_list_batches: int = 60  # ...and in the 1,000-event database (a full first page of 50 too)
    load_seconds: float = 30.0  # `make load`: 20 clients for 30 s
    load_baseline_seconds: float = 12.0  # one client, the same mix: the single-client p95

    @property
    def small_events(self) -> int:
        return self.small_videos * self.nm_events

    @property
    def mid_events(self) -> int:
        return self.mid_videos * self.nm_events


QUICK = replace(Sizes(), tl_items=100, nm_videos=500, mid_videos=100, tl_sync_repeats=1, tl_floor_repeats=1,
                nm_floor_repeats=1, page_requests=5, export_repeats=1, list_batches=60, load_seconds=5,
                load_baseline_seconds=3)  # fmt: skip


STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def tl_batch_id(n: int) -> str:
    return f"{0xBE4C_BA7C_0000 + n:024x}"


class Bench:
    """What the row groups call: each measurement runs once, in a fresh worker process, and is cached."""

    def __init__(self, sizes: Sizes, profile_dir: Path | None, fake_urls: dict, workdir: Path, load_args=None) -> None:
        self.sizes = sizes
        self.profile_dir = profile_dir
        self.fake_urls = fake_urls
        self.workdir = workdir
        self.load_args = load_args  # `make load`'s options (bench/load.py)
        # The 1,000-event comparison: a database of its own (the batch list and search span every batch).
        self.small_db = workdir / "small.sqlite3"
        self._cache: dict[tuple, object] = {}
        self.batches = {
            "twelvelabs": ("bench-tl", [tl_batch_id(n) for n in range(sizes.tl_sync_repeats)]),
            "nomadicml": ("bench-nm", ["bench-large"]),
            "nomadicml-1k": ("bench-nm", ["bench-small"]),
            "nomadicml-20k": ("bench-nm", ["bench-mid"]),
        }

    def fake_spec(self) -> dict:
        sizes = self.sizes
        return {
            "twelvelabs_key": TL_KEY,
            "nomadicml_key": NM_KEY,
            "twelvelabs": [{"items": sizes.tl_items, "per_item": sizes.tl_segments, "seed": 2,
                            "ids": self.batches["twelvelabs"][1]}],
            "nomadicml": [
                {"items": sizes.nm_videos, "per_item": sizes.nm_events, "seed": 1, "ids": ["bench-large"]},
                {"items": sizes.small_videos, "per_item": sizes.nm_events, "seed": 3, "ids": ["bench-small"]},
                {"items": sizes.mid_videos, "per_item": sizes.nm_events, "seed": 4, "ids": ["bench-mid"]},
            ],
        }  # fmt: skip

    # --- plumbing ---

    def worker(self, task: str, label: str | None = None, *, db: Path | None = None, **kwargs: object) -> dict:
        """Run ``bench/worker.py TASK`` in a fresh process (on ``db``, else the main database); its JSON result."""
        env = dict(os.environ)
        if db is not None:
            env["BENCH_DB"] = str(db)
        if self.profile_dir:
            env.update(BENCH_PROFILE_DIR=str(self.profile_dir), BENCH_PROFILE_LABEL=label or task)
        completed = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "worker.py"), task, json.dumps(kwargs)],
            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        if completed.returncode != 0:
            raise RuntimeError(f"bench worker {task} {kwargs} failed (exit {completed.returncode})")
        return json.loads(completed.stdout.strip().splitlines()[-1])

    def once(self, key: tuple, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def batch_pk(self, key: str) -> int:
        return self.synced(key)["batch_pk"]

    # --- measurements ---

    def floor(self, provider: str) -> dict:
        """Download + parse with the product's client and no database: fastest of N runs."""

        def compute() -> dict:
            source, ids = self.batches[provider]
            repeats = self.sizes.tl_floor_repeats if provider == "twelvelabs" else self.sizes.nm_floor_repeats
            runs = []
            for attempt in range(repeats):
                progress(f"floor: download + parse {provider} {ids[0]} ({attempt + 1}/{repeats})")
                runs.append(self.worker("fetch_floor", f"floor-{provider}-{attempt}", source=source, batch_id=ids[0]))
            return {**min(runs, key=lambda run: run["seconds"]), "n": repeats,
                    "peak_mb": min(run["peak_mb"] for run in runs)}  # fmt: skip

        return self.once(("floor", provider), compute)

    def first_sync(self, provider: str) -> dict:
        """``fetch_batch`` into an empty cache: the fastest of one first sync per batch id."""

        def compute() -> dict:
            source, ids = self.batches[provider]
            runs = []
            for batch_id in ids:
                progress(f"first sync: {provider} {batch_id}")
                runs.append(self.worker("fetch_sync", f"first-sync-{provider}-{batch_id}", source=source,
                                        batch_id=batch_id))  # fmt: skip
            first = runs[0]
            return {**first, "seconds": min(run["seconds"] for run in runs), "n": len(runs)}

        return self.once(("first_sync", provider), compute)

    synced = first_sync

    def resync(self, provider: str) -> dict:
        def compute() -> dict:
            self.first_sync(provider)
            source, ids = self.batches[provider]
            progress(f"re-sync, nothing changed: {provider} {ids[0]}")
            return self.worker("fetch_sync", f"resync-{provider}", source=source, batch_id=ids[0])

        return self.once(("resync", provider), compute)

    def small_database(self) -> Path:
        """The 1,000-event batch and the small batches, alone in a database: what "at 1,000 events" means."""

        def compute() -> Path:
            progress("the 1,000-event database: migrate, first sync, list batches")
            prepare_database(self.fake_urls, self.small_db)
            self.worker("fetch_sync", "small-sync", db=self.small_db, source="bench-nm",
                        batch_id=self.batches["nomadicml-1k"][1][0])  # fmt: skip
            self.worker("list_batches", "small-list", db=self.small_db, count=self.sizes.small_list_batches, first=0)
            return self.small_db

        return self.once(("small_db",), compute)

    def list_batches(self) -> dict:
        def compute() -> dict:
            progress(f"the batch list's {self.sizes.list_batches:,} batches (imports)")
            return self.worker("list_batches", "list-batches", count=self.sizes.list_batches, first=0)

        return self.once(("list_batches",), compute)

    def pages(self) -> dict:
        """Every page of PAGES at 100,000 events, then at 1,000 (each in a worker of its own)."""

        def compute() -> dict:
            for key in ("nomadicml", "nomadicml-1k"):
                self.synced(key)
            self.list_batches()
            self.small_database()
            measured = {}
            for name, db, main in (("large", None, "bench-large"), ("small", self.small_db, "bench-small")):
                progress(f"pages at {'100,000' if name == 'large' else '1,000'} events: {len(PAGES)} URLs")
                measured[name] = self.worker("pages", f"pages-{name}", db=db, specs=PAGES, main=main,
                                             requests=self.sizes.page_requests,
                                             budget_seconds=self.sizes.page_budget_seconds)  # fmt: skip
            return measured

        return self.once(("pages",), compute)

    def load(self) -> dict:
        """`make load` (bench/load.py) on the 100,000-event batch; its report also goes to bench/load-results.json."""

        def compute() -> dict:
            from bench import load

            self.synced("nomadicml")
            args, sizes = self.load_args, self.sizes
            seconds = args.seconds or sizes.load_seconds
            progress(f"load: gunicorn, one client for {sizes.load_baseline_seconds:g} s, then {args.clients} clients "
                     f"for {seconds:g} s")  # fmt: skip
            report = load.measure(args, seconds, sizes.load_baseline_seconds, "bench", BENCH_PASSWORD)
            load.RESULTS.write_text(json.dumps(report, indent=2) + "\n")
            load.print_table(report)
            if report["writes"] is not None:
                from bench import load_writes

                load_writes.print_writes(report["writes"])
            return report

        return self.once(("load",), compute)

    def insert_floor(self, provider: str) -> dict:
        def compute() -> dict:
            pk = self.batch_pk(provider)
            progress(f"insert floor: the {provider} batch's rows again with executemany (rolled back)")
            return self.worker("insert_floor", f"insert-floor-{provider}", batch_pk=pk)

        return self.once(("insert_floor", provider), compute)

    def insights(self, key: str) -> dict:
        def compute() -> dict:
            pk = self.batch_pk(key)
            progress(f"insights page: {key} (batch {pk}), beside its batch page")
            return self.worker("insights_page", f"insights-{key}", batch_pk=pk, requests=self.sizes.page_requests,
                               budget_seconds=self.sizes.page_budget_seconds * 2)  # fmt: skip

        return self.once(("insights", key), compute)

    def export(self, key: str) -> dict:
        def compute() -> dict:
            pk = self.batch_pk(key)
            progress(f"CSV export: {key} (batch {pk})")
            return self.worker("export_csv", f"export-{key}", batch_pk=pk, repeats=self.sizes.export_repeats)

        return self.once(("export", key), compute)

    def export_floor(self, key: str) -> dict:
        def compute() -> dict:
            pk = self.batch_pk(key)
            progress(f"CSV export floor (raw query + csv.writer): {key}")
            return self.worker("export_floor", f"export-floor-{key}", batch_pk=pk, repeats=self.sizes.export_repeats)

        return self.once(("export_floor", key), compute)

    def export_memory(self) -> dict:
        def compute() -> dict:
            result = {}
            for name, key in (("mid", "nomadicml-20k"), ("big", "nomadicml")):
                pk = self.batch_pk(key)
                progress(f"CSV export memory (tracemalloc, untimed): {key} (batch {pk})")
                result[name] = self.worker("export_memory", f"export-memory-{key}", batch_pk=pk)
            return result

        return self.once(("export_memory",), compute)

    def peer(self) -> dict:
        def compute() -> dict:
            progress("peer: nomadicml SDK get_batch_analysis(as_csv=True)")
            return self.worker("peer_sdk", "peer-sdk", peer_path=str(PEER_PATH), base_url=self.fake_urls["nomadicml"],
                               api_key=NM_KEY, batch_id=self.batches["nomadicml"][1][0])  # fmt: skip

        return self.once(("peer",), compute)


# --- setup ---------------------------------------------------------------------------------


def prepare_database(fake_urls: dict, db: Path | None = None) -> None:
    """Migrate a bench database (``db``, else BENCH_DB); add the two sources (pointing at the fakes) and a staff user.

    In a process of its own: Django connects to one database per process here.
    """
    if db is not None:
        subprocess.run([sys.executable, __file__, "--prepare", str(db), json.dumps(fake_urls)], check=True, cwd=ROOT)
        return
    from bench import django_env

    django_env.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from reviewer.models import Source

    call_command("migrate", verbosity=0, interactive=False)
    tl = Source(name="bench-tl", provider="twelvelabs", base_url=fake_urls["twelvelabs"])
    tl.set_api_key(TL_KEY)
    tl.save()
    nm = Source(name="bench-nm", provider="nomadicml", base_url=fake_urls["nomadicml"],
                viewer_base_url="https://app.nomadicml.com")  # fmt: skip
    nm.set_api_key(NM_KEY)
    nm.save()
    User.objects.create_user("bench", password=BENCH_PASSWORD, is_staff=True)  # the load test logs in as a browser does
    connection.close()


def start_fakes(spec: dict) -> tuple[subprocess.Popen, dict]:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "serve_fakes.py"), json.dumps(spec)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    line = server.stdout.readline()
    if not line:
        server.wait()
        raise RuntimeError(f"bench/serve_fakes.py exited ({server.returncode}) before serving")
    return server, json.loads(line)


def stop_fakes(server: subprocess.Popen) -> None:
    try:
        server.stdin.close()  # serve_fakes.py exits at EOF
        server.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        server.terminate()  # only the process this run started, by its own handle
        server.wait(timeout=10)


# --- output ------------------------------------------------------------------------------


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "queries":
        return f"{value:.0f}"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f} {unit}"


def table(rows: list[Row]) -> str:
    header = ["#", "row", "value", "floor", "ratio", "target", "met"]
    cells = [
        [str(number), row.name, _number(row.value, row.unit), _number(row.floor, row.unit),
         "—" if row.ratio is None else f"{row.ratio:.2f}x", row.target,
         {True: "yes", False: "NO", None: "—"}[row.met]]
        for number, row in enumerate(rows, start=1)
    ]  # fmt: skip
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    right = {0, 2, 3, 4}
    lines = []
    for index, line in enumerate([header, *cells]):
        lines.append(
            "  ".join(
                c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"{number:>3}. {row.note}" for number, row in enumerate(rows, start=1) if row.note]
    return "\n".join([*lines, "", "Notes:", *notes])


def main() -> int:
    if sys.argv[1:2] == ["--prepare"]:  # prepare_database(urls, db) in a fresh process
        os.environ["BENCH_DB"] = sys.argv[2]
        prepare_database(json.loads(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes: checks the bench, not the targets")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="profile every step with pyinstrument into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--only", metavar="GROUPS", help=f"comma-separated row groups ({', '.join(GROUPS)})")
    from bench import load

    load.add_arguments(parser)
    args = parser.parse_args()
    groups = [GROUPS[name] for name in args.only.split(",")] if args.only else ROWS
    if args.only and not set(args.only.split(",")) <= set(GROUPS):
        parser.error(f"--only: unknown group; choose from {', '.join(GROUPS)}")

    sizes = QUICK if args.quick else Sizes()
    workdir = Path(tempfile.mkdtemp(prefix="reviewer-bench-"))
    os.environ["BENCH_DB"] = str(workdir / "bench.sqlite3")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    bench = Bench(sizes, args.profile.resolve() if args.profile else None, {}, workdir, load_args=args)
    server = None
    try:
        progress(f"generating the synthetic batches and starting the fakes (database in {workdir})")
        server, urls = start_fakes(bench.fake_spec())
        bench.fake_urls = urls
        progress(f"fakes ready in {urls['generated_seconds']} s: {urls['twelvelabs']}, {urls['nomadicml']}")
        prepare_database(urls)
        rows: list[Row] = []
        for group in groups:
            rows.extend(group(bench))
    finally:
        if server is not None:
            stop_fakes(server)
        if args.keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    RESULTS.write_text(json.dumps([row.as_dict() for row in rows], indent=2) + "\n")
    elapsed = time.perf_counter() - STARTED
    print(table(rows))
    missed = [row.name for row in rows if row.met is False]
    print(f"\n{len(rows)} rows, {len(missed)} target(s) missed; bench ran {elapsed:.0f} s"
          f"{' (QUICK sizes: targets not meaningful)' if args.quick else ''}"
          f"{' (PROFILED: timings inflated)' if args.profile else ''}; wrote {RESULTS.relative_to(ROOT)}")  # fmt: skip
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
