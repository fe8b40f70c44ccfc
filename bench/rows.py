"""The rows of the bench table: one function per row group, run in the order of ``ROWS``.

To add a row, write a function taking the ``Bench`` and returning a list of ``Row``,
decorate it with ``@row``, and if it needs a measurement in a fresh process add a task
to ``bench/worker.py``. ``--only NAME`` runs one group (``make load``: ``--only load``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import Bench


@dataclass
class Row:
    name: str
    value: float | None
    unit: str
    floor: float | None  # the reference measured in the same run (see README: "floor")
    ratio: float | None  # value / floor
    target: str
    met: bool | None  # None: informational, or not measured
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def make_row(
    name: str, value: float | None, unit: str, *, floor: float | None = None, target: str = "—",
    met: bool | None = None, note: str = "",
) -> Row:  # fmt: skip
    ratio = value / floor if value is not None and floor else None
    return Row(name, value, unit, floor, ratio, target, met, note)


def not_measured(name: str, unit: str, target: str, reason: str) -> Row:
    return Row(name, None, unit, None, None, target, None, f"not measured: {reason}")


ROWS: list[Callable[[Bench], list[Row]]] = []
GROUPS: dict[str, Callable[[Bench], list[Row]]] = {}


def row(function: Callable[[Bench], list[Row]]) -> Callable[[Bench], list[Row]]:
    """Register a row group; groups run in the order they are defined in this module."""
    ROWS.append(function)
    GROUPS[function.__name__.replace("_", "-")] = function
    return function


# --- First sync -------------------------------------------------------------------------


def _sync_rows(bench: Bench, provider: str, name: str, ratio_target: float) -> list[Row]:
    """The first sync beside its download+parse floor, and beside executemany of the same rows."""
    floor, sync, insert = bench.floor(provider), bench.first_sync(provider), bench.insert_floor(provider)
    return [
        make_row(
            name, sync["seconds"], "s", floor=floor["seconds"], target=f"<= {ratio_target:g}x floor",
            met=sync["seconds"] <= ratio_target * floor["seconds"],
            note=f"fastest of {sync['n']} syncs vs fastest of {floor['n']} download+parse runs (the product's client, "
            f"no database); {sync['events_created']:,} events written",
        ),
        make_row(
            f"{name}: beside inserting its rows", sync["seconds"], "s", floor=insert["seconds"], target="—",
            note=f"floor: the {insert['items']:,} items and {insert['events']:,} events the sync wrote, inserted again "
            "with executemany into the same tables (indexes and search triggers included), one transaction, rolled back",
        ),
    ]  # fmt: skip


@row
def first_sync_twelvelabs(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    return _sync_rows(bench, "twelvelabs", f"first sync, TwelveLabs ({sizes.tl_items:,} items x {sizes.tl_segments} "
                                           "segments)", 5.0)  # fmt: skip


@row
def first_sync_nomadicml(bench: Bench) -> list[Row]:
    name = f"first sync, NomadicML ({bench.sizes.nm_videos:,} videos x {bench.sizes.nm_events} events)"
    sync, floor = bench.first_sync("nomadicml"), bench.floor("nomadicml")
    return [
        *_sync_rows(bench, "nomadicml", name, 3.0),
        make_row(
            f"{name}: peak memory growth", sync["peak_mb"], "MB", floor=floor["peak_mb"], target="<= 150 MB",
            met=sync["peak_mb"] <= 150, note=f"RSS ({sync['memory_method']}); floor: download+parse alone",
        ),
    ]  # fmt: skip


# --- Re-sync with nothing changed -------------------------------------------------------------


@row
def resync_unchanged(bench: Bench) -> list[Row]:
    rows = []
    for provider, label in (("twelvelabs", "TwelveLabs"), ("nomadicml", "NomadicML")):
        first = bench.first_sync(provider)
        again = bench.resync(provider)
        changed = again["items_created"] + again["items_updated"] + again["events_created"] + again["events_updated"]
        rows.append(
            make_row(
                f"re-sync, nothing changed, {label}",
                again["seconds"],
                "s",
                floor=first["seconds"],
                target="<= 0.30x first sync",
                met=again["seconds"] <= 0.30 * first["seconds"] and changed == 0,
                note=f"floor: the first sync; {again['items_unchanged']:,} items unchanged, {changed} rows written",
            )  # fmt: skip
        )
    return rows


# --- Pages: each beside its own SQL, and at 100,000 events beside 1,000 ---------------------


@row
def pages(bench: Bench) -> list[Row]:
    measured = bench.pages()
    large, small = measured["large"], measured["small"]
    rows = []
    for name, page in large.items():
        rows.append(make_row(
            f"{name}: p95 beside its SQL", page["p95_ms"], "ms", floor=page["sql_p95_ms"], target="<= 2x its SQL",
            met=page["p95_ms"] <= 2 * page["sql_p95_ms"],
            note=f"100,000 events; {page['n']} requests, p50 {page['p50_ms']:.0f} ms; floor: the request's own "
            f"{page['queries']} SQL statements run again raw right after it, every row fetched (p50 "
            f"{page['sql_p50_ms']:.0f} ms); {page['bytes'] / 1e3:.0f} kB",
        ))  # fmt: skip
    for name, page in large.items():
        other = small[name]
        rows.append(make_row(
            f"{name}: p95 at 100,000 events beside 1,000", page["p95_ms"], "ms", floor=other["p95_ms"],
            target="<= 1.2x", met=page["p95_ms"] <= 1.2 * other["p95_ms"],
            note=f"floor: the same page in a database holding the 1,000-event batch (and {bench.sizes.small_list_batches}"
            f" small batches): p50 {other['p50_ms']:.0f} ms, its SQL p95 {other['sql_p95_ms']:.0f} ms",
        ))  # fmt: skip
    differing = [f"{name} ({page['queries']} vs {small[name]['queries']})" for name, page in large.items()
                 if page["queries"] != small[name]["queries"]]  # fmt: skip
    most = max(page["queries"] for page in large.values())
    rows.append(make_row(
        f"queries per page constant ({len(large)} pages)", len(large) - len(differing), "pages", floor=len(large),
        target="all equal at 100,000 and 1,000", met=not differing,
        note=f"at most {most} queries a page (session and user included)"
        + (f"; differing: {', '.join(differing)}" if differing else ""),
    ))  # fmt: skip
    return rows


# --- CSV export ---------------------------------------------------------------------------


@row
def csv_export(bench: Bench) -> list[Row]:
    export = bench.export("nomadicml")
    floor = bench.export_floor("nomadicml")
    memory = bench.export_memory()
    events = bench.sizes.nm_videos * bench.sizes.nm_events
    same = memory["big"]["sha256"] == floor["sha256"]
    rows_ok = export["rows"] == floor["rows"] == events
    check = "" if same and rows_ok else (
        f"; CHECK: export {export['rows']:,} rows vs floor {floor['rows']:,}, output {'equal' if same else 'DIFFERS'}"
    )  # fmt: skip
    return [
        make_row(
            f"CSV export ({events:,} events): first byte", export["first_byte_ms"], "ms",
            floor=floor["first_row_ms"], target="<= 300 ms", met=export["first_byte_ms"] <= 300,
            note="the CSV header: sent before any row is read; floor: the raw query's first rows",
        ),
        make_row(
            f"CSV export ({events:,} events): first data row", export["first_row_ms"], "ms",
            floor=floor["first_row_ms"], note="informational (no target); floor: the raw query's first rows",
        ),
        make_row(
            f"CSV export ({events:,} events): total", export["seconds"], "s", floor=floor["seconds"],
            target="<= 2x floor", met=export["seconds"] <= 2 * floor["seconds"] and rows_ok,
            note=f"floor: one raw SQL query + csv.writer over the same rows (byte-identical output: {same}); "
            f"fastest of {len(export['runs'])} vs {len(floor['runs'])}; {export['bytes'] / 1e6:.0f} MB of CSV{check}",
        ),
        make_row(
            f"CSV export ({events:,} events): peak Python heap", memory["big"]["peak_mb"], "MB",
            floor=memory["mid"]["peak_mb"], target="flat: <= 1.5x floor",
            met=memory["big"]["peak_mb"] <= 1.5 * memory["mid"]["peak_mb"],
            note=f"tracemalloc; floor: the same export of a {bench.sizes.mid_events:,}-event batch "
            f"(memory that grows with the batch shows as a ratio toward {events / bench.sizes.mid_events:.0f}x); "
            f"RSS growth over the first timed export of the {events:,}-event batch: {export['peak_mb']:.0f} MB",
        ),
    ]  # fmt: skip


# --- The peer: NomadicML's official SDK -------------------------------------------------------


@row
def peer_sdk(bench: Bench) -> list[Row]:
    sync = bench.first_sync("nomadicml")
    export = bench.export("nomadicml")
    sdk = bench.peer()
    ours_seconds = sync["seconds"] + export["seconds"]
    ours_mb = max(sync["peak_mb"], export["peak_mb"])
    name = "peer: our sync + CSV export vs SDK get_batch_analysis(as_csv=True)"
    if "error" in sdk:
        return [
            not_measured(f"{name}: time", "s", "— (beside the SDK)", sdk["error"]),
            not_measured(f"{name}: peak memory", "MB", "— (beside the SDK)", sdk["error"]),
        ]
    return [
        make_row(
            f"{name}: time", ours_seconds, "s", floor=sdk["seconds"], target="— (beside the SDK)",
            note=f"ours: first sync {sync['seconds']:.1f} s + export {export['seconds']:.1f} s (a cached copy in a "
            f"database, then a file); floor: the SDK over the same fake, {sdk['rows']:,} rows, "
            f"{sdk['bytes'] / 1e6:.0f} MB of CSV held in memory",
        ),
        make_row(
            f"{name}: peak memory", ours_mb, "MB", floor=sdk["peak_mb"], target="— (beside the SDK)",
            note="RSS growth; ours: the larger of the sync's and the export's (separate processes: "
            "a background job and a web request); floor: the SDK call",
        ),
    ]  # fmt: skip


# --- Bulk decision ----------------------------------------------------------------------
# It changes the 100,000-event batch (then undoes the change), so it runs after every
# group that reads that batch.


@row
def bulk_decision(bench: Bench) -> list[Row]:
    result = bench.worker(
        "bulk_decision", "bulk-decision", batch_pk=bench.batch_pk("nomadicml"), query={"approval": ["pending"]}
    )
    events = result["events"]
    assert result["history_rows"] == events == result["undone"], result  # one history row per change, all undone
    return [
        make_row(
            f"bulk decision: approve {events:,} events matching approval=pending, with history", result["seconds"],
            "s", target="<= 3 s", met=result["seconds"] <= 3,
            note=f"{result['history_rows']:,} Decision rows, one transaction",
        ),
        make_row(
            f"undo of that bulk decision ({result['undone']:,} events restored)", result["undo_seconds"], "s",
            target="—", note="not a target of its own; restores each event's previous approval and decider",
        ),
    ]  # fmt: skip


# --- Insights ---------------------------------------------------------------------------
# It decides events of the 100,000-event batch (a review in progress), so it runs last.


@row
def insights_page(bench: Bench) -> list[Row]:
    result = bench.insights("nomadicml")
    insights, page = result["insights"], result["batch page"]
    return [
        make_row(
            "insights page p95 (precision tables, cut-offs, charts, throughput), 100,000 events",
            insights["p95_ms"], "ms", floor=page["p95_ms"], target="<= 2x the batch page",
            met=insights["p95_ms"] <= 2 * page["p95_ms"],
            note=f"{insights['n']} timed requests in turn with the batch page (page 1, no filter), p50 "
            f"{insights['p50_ms']:.0f} ms vs {page['p50_ms']:.0f} ms; {insights['queries']} queries vs "
            f"{page['queries']}; 4,020 events decided by a person first; its numbers are cached until the next "
            f"decision or sync: the first request after the decisions took {insights['cold_ms']:.0f} ms",
        ),
    ]  # fmt: skip


# --- A team at once (`make load`): it decides events of the 100,000-event batch, so it runs last ----


@row
def load(bench: Bench) -> list[Row]:
    from bench import load as load_test

    report = bench.load()
    config, alone, team = report["config"], report["single_client"], report["endpoints"]
    clients = f"{config['clients']} clients, {config['measured_seconds']:.0f} s"
    rows = [
        make_row(
            f"load: p95 of the whole mix under {config['clients']} clients", team["all"]["p95_ms"], "ms",
            floor=alone["all"]["p95_ms"], target="<= 5x one client",
            met=team["all"]["p95_ms"] is not None and team["all"]["p95_ms"] <= 5 * alone["all"]["p95_ms"],
            note=f"{clients}, {config['gunicorn_workers']} gunicorn workers, each client waiting "
            f"{config['think_seconds_mean']:g} s on average between requests; floor: one client alone, no wait; "
            f"{team['all']['requests']:,} requests, {team['all']['requests_per_second']:g} req/s",
        ),
        make_row(
            "load: errors", team["all"]["errors"] + alone["all"]["errors"], "errors", target="0",
            met=team["all"]["errors"] + alone["all"]["errors"] == 0,
            note="; ".join(sample for values in team.values() for sample in values.get("error_samples", []))[:500],
        ),
    ]  # fmt: skip
    for name, values in team.items():
        if name != "all":
            rows.append(make_row(
                f"load: {name}", values["p95_ms"], "ms", floor=alone[name]["p95_ms"], target="—",
                note=f"p95 under load beside one client's; {values['requests']} requests, "
                f"{values['requests_per_second']:g} req/s, p50 {load_test.fmt(values['p50_ms'])} ms",
            ))  # fmt: skip
    return rows
