"""Geometry of the insights page's charts, drawn as SVG by templates/reviewer/_charts.html.

Server-side and script-free (the CSP allows no inline script or style): this module only
computes coordinates; colours come from classes in app.css, so dark mode works. Every
chart has its numbers in a table beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

WIDTH = 560
LABEL_WIDTH = 170  # left margin for group names
ROW_HEIGHT = 26
TOP, BOTTOM = 8, 28  # room for the axis labels
PLOT_HEIGHT = 180


@dataclass
class Bar:
    """One group of an interval chart: its point estimate and whisker (x in SVG units), or no data."""

    label: str
    y: float
    x: float | None
    x_low: float | None
    x_high: float | None
    text: str  # "82 % (74–88), n=120" or "not reviewed"


def _x(value: float) -> float:
    return round(LABEL_WIDTH + value * (WIDTH - LABEL_WIDTH - 28), 1)  # room for the "100 %" tick


def interval_chart(rows, *, max_rows: int = 25) -> dict:
    """Precision with its 95 % interval per row (quality.Row or Threshold-like: ``precision``, ``interval``)."""
    bars = []
    for index, row in enumerate(rows[:max_rows]):
        y = TOP + index * ROW_HEIGHT + ROW_HEIGHT / 2
        n = row.approved + row.rejected
        if row.precision is None:
            bars.append(Bar(_short(row.group), y, None, None, None, "not reviewed"))
            continue
        low, high = row.interval
        text = f"{row.precision:.0%} ({low:.0%}–{high:.0%}), n={n}"
        bars.append(Bar(_short(row.group), y, _x(row.precision), _x(low), _x(high), text))
    height = TOP + len(bars) * ROW_HEIGHT + BOTTOM
    ticks = [{"x": _x(value / 100), "label": f"{value} %"} for value in (0, 25, 50, 75, 100)]
    return {"width": WIDTH, "height": height, "bars": bars, "ticks": ticks, "axis_y": height - BOTTOM,
            "left": LABEL_WIDTH, "hidden": max(0, len(rows) - max_rows)}  # fmt: skip


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def threshold_chart(rows) -> dict:
    """Precision (line, with the interval as a band) and the share of events kept, against the cut-off."""
    left, right, top = 44, WIDTH - 44, TOP + 4
    bottom = top + PLOT_HEIGHT
    kept_max = max((row.kept for row in rows), default=0) or 1

    def x(cut: float) -> float:
        return round(left + cut * (right - left), 1)

    def y(value: float) -> float:
        return round(bottom - value * (bottom - top), 1)

    points = [(x(row.threshold), y(row.precision)) for row in rows if row.precision is not None]
    band_top = [(x(row.threshold), y(row.interval[1])) for row in rows if row.interval]
    band_bottom = [(x(row.threshold), y(row.interval[0])) for row in rows if row.interval]
    kept = [(x(row.threshold), y(row.kept / kept_max)) for row in rows]
    return {
        "width": WIDTH, "height": bottom + BOTTOM, "left": left, "right": right, "top": top, "bottom": bottom,
        "precision": _path(points), "band": _path(band_top + band_bottom[::-1], closed=True) if band_top else "",
        "kept": _path(kept), "dots": [{"x": px, "y": py} for px, py in points],
        "x_ticks": [{"x": x(cut), "label": f"{cut:g}"} for cut in (0, 0.25, 0.5, 0.75, 1.0)],
        "y_ticks": [{"y": y(value / 100), "label": f"{value} %"} for value in (0, 50, 100)],
        "kept_max": kept_max,
    }  # fmt: skip


def progress_chart(days: list[tuple[date, int]], total: int) -> dict:
    """The share of events a person has decided, day by day (cumulative), as a line."""
    left, right, top = 44, WIDTH - 16, TOP + 4
    bottom = top + PLOT_HEIGHT
    if not days or not total:
        return {"empty": True, "width": WIDTH, "height": bottom + BOTTOM}
    first, last = days[0][0], days[-1][0]
    span = (last - first).days
    cumulative, points = 0, []
    for day, count in days:
        cumulative += count
        px = left + ((day - first).days / span if span else 1.0) * (right - left)  # one day: at its end
        points.append((round(px, 1), round(bottom - min(cumulative / total, 1.0) * (bottom - top), 1)))
    if span == 0:
        points.insert(0, (left, bottom))  # from nothing reviewed to that day's share
    return {
        "empty": False, "width": WIDTH, "height": bottom + BOTTOM, "left": left, "right": right, "top": top,
        "bottom": bottom, "line": _path(points), "dots": [{"x": px, "y": py} for px, py in points],
        "first": first, "last": last, "y_ticks": [{"y": round(bottom - value / 100 * (bottom - top), 1),
                                                   "label": f"{value} %"} for value in (0, 50, 100)],
    }  # fmt: skip


def _path(points: list[tuple[float, float]], closed: bool = False) -> str:
    if not points:
        return ""
    text = "M" + " L".join(f"{px},{py}" for px, py in points)
    return text + (" Z" if closed else "")
