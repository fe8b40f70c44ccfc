"""The rows of the bench table: one function per row group, run in the order of ``ROWS``.

To add a row (for example the bulk decision once ``reviewer/review.py`` has it), write
a function taking the ``Bench`` and returning a list of ``Row``, decorate it with
``@row``, and if it needs a measurement in a fresh process add a task to
``bench/worker.py``. See the commented ``bulk_decision`` stub below.
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


def row(function: Callable[[Bench], list[Row]]) -> Callable[[Bench], list[Row]]:
    """Register a row group; groups run in the order they are defined in this module."""
    ROWS.append(function)
    return function


# --- First sync -------------------------------------------------------------------------


@row
def first_sync_twelvelabs(bench: Bench) -> list[Row]:
    floor = bench.floor("twelvelabs")
    sync = bench.first_sync("twelvelabs")
    ratio_target = 3.0
    seconds = sync["seconds"]
    return [
        make_row(
            f"first sync, TwelveLabs ({bench.sizes.tl_items:,} items x {bench.sizes.tl_segments} segments)",
            seconds,
            "s",
            floor=floor["seconds"],
            target=f"<= {ratio_target:g}x floor",
            met=seconds <= ratio_target * floor["seconds"],
            note=f"fastest of {sync['n']} syncs vs fastest of {floor['n']} download+parse runs; "
            f"{sync['events_created']:,} events written",
        ),  # fmt: skip
    ]


@row
def first_sync_nomadicml(bench: Bench) -> list[Row]:
    floor = bench.floor("nomadicml")
    sync = bench.first_sync("nomadicml")
    name = f"first sync, NomadicML ({bench.sizes.nm_videos:,} videos x {bench.sizes.nm_events} events)"
    return [
        make_row(
            name, sync["seconds"], "s", floor=floor["seconds"], target="<= 20 s", met=sync["seconds"] <= 20,
            note=f"{sync['events_created']:,} events written; floor: fastest of {floor['n']} download+parse runs",
        ),
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


# --- The batch page ---------------------------------------------------------------------


@row
def batch_page(bench: Bench) -> list[Row]:
    big = bench.page_timings("nomadicml")
    small = bench.page_timings("nomadicml-1k")
    small_by_key = {(page["combo"], page["which"]): page for page in small["pages"]}
    rows = []
    for page in big["pages"]:
        other = small_by_key[(page["combo"], page["which"])]
        which = "page 1" if page["which"] == "first" else f"last page ({page['page']})"
        rows.append(
            make_row(
                f"batch page p95, {page['combo']}, {which}",
                page["p95_ms"],
                "ms",
                floor=other["p95_ms"],
                target="<= 150 ms",
                met=page["p95_ms"] <= 150,
                note=f"{page['n']} timed requests, p50 {page['p50_ms']:.0f} ms, {page['bytes'] / 1e3:.0f} kB of HTML; "
                f"floor: the same URL on the {bench.sizes.small_events:,}-event batch (p50 {other['p50_ms']:.0f} ms)",
            )  # fmt: skip
        )
    for page in big["pages"]:
        other = small_by_key[(page["combo"], page["which"])]
        which = "page 1" if page["which"] == "first" else "last page"
        rows.append(
            make_row(
                f"batch page queries, {page['combo']}, {which}",
                page["queries"],
                "queries",
                floor=other["queries"],
                target="<= 12 and = floor",
                met=page["queries"] <= 12 and page["queries"] == other["queries"],
                note=f"floor: same URL on the {bench.sizes.small_events:,}-event batch (session and user included)",
            )  # fmt: skip
        )
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
            f"{page['queries']}; 4,020 events decided by a person first",
        ),
    ]  # fmt: skip
