"""Template helpers. Provider text is untrusted: only ``highlight`` marks text safe, after escaping every piece."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django import template

from reviewer import search

register = template.Library()

_STATUS_TONES = {
    "ready": "ok", "completed": "ok",
    "failed": "bad", "expired": "bad",
    "canceled": "muted", "cancelled": "muted",
    "queued": "info", "pending": "info", "processing": "info", "canceling": "info",
}  # fmt: skip


@register.filter
def safe_url(value: str) -> str:
    """Return the URL when it is http(s) or a path on this site, else '' (shown as text).

    ``javascript:``, ``data:`` and every other scheme from a provider never become a
    link or an image source.
    """
    if not value:
        return ""
    value = value.strip()
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.scheme in ("http", "https") and parts.netloc:
        return value
    return ""


@register.filter
def status_tone(status: str) -> str:
    """The badge colour of an item or batch status."""
    return _STATUS_TONES.get((status or "").lower(), "muted")


@register.filter
def severity_tone(severity: str) -> str:
    value = (severity or "").lower()
    if value in ("critical", "high"):
        return "bad"
    if value == "medium":
        return "warn"
    return "muted" if not value else "info"


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%" if value <= 1 else f"{value:g}"


@register.filter
def get_item(mapping: dict, key: str) -> object:
    return mapping.get(key, 0) if isinstance(mapping, dict) else ""


@register.simple_tag
def query(filter_obj, **overrides) -> str:
    """``?`` + the current filter's query string with some values replaced."""
    if filter_obj is None:
        return "?" + urlencode({k: v for k, v in overrides.items() if v not in ("", None)})
    return "?" + filter_obj.query_string(**overrides)


# Segment metadata keys shown in columns of their own (records: TwelveLabs _segment_event).
_COLUMN_KEYS = {"label", "severity", "confidence"}
_OVERLAY_NAMES = {
    "frame_gps_lat": "GPS lat", "frame_gps_lon": "GPS lon", "frame_speed": "Speed",
    "frame_timestamp": "Frame time", "unix_timestamp": "Unix time",
}  # fmt: skip


@register.filter
def event_fields(event) -> list[dict]:
    """The event's extra provider fields as rows ``{key, text, url, entries}`` for _event_fields.html.

    Every metadata field but those with a column (label, severity, confidence, and the
    one the AI analysis came from); nested timed entries (a ``time_array``) keep their
    times. Values are text here: the template escapes them.
    """
    rows = []
    for key, value in (event.metadata or {}).items():
        if key in _COLUMN_KEYS or (isinstance(value, str) and value and value == event.ai_analysis):
            continue
        row = {"key": key, "text": "", "url": "", "entries": []}
        if isinstance(value, list) and value and all(isinstance(entry, dict) for entry in value):
            row["entries"] = [_timed_entry(entry) for entry in value]
        else:
            row["text"] = _value_text(value)
            row["url"] = safe_url(value) if isinstance(value, str) and "://" in value else ""
        rows.append(row)
    return rows


@register.filter
def overlay_rows(event) -> list[dict]:
    """The event's overlay (GPS, speed, frame and unix times) as ``{name, text}`` rows."""
    rows = []
    for name, ends in (event.overlay or {}).items():
        if isinstance(ends, dict):
            start, end = ends.get("start"), ends.get("end")
            text = _value_text(start) if end in (None, start) else f"{_value_text(start)} → {_value_text(end)}"
        else:
            text = _value_text(ends)
        label = _OVERLAY_NAMES.get(name) or name.removeprefix("frame_").replace("_", " ")
        rows.append({"name": label, "text": text})
    return rows


def _timed_entry(entry: dict) -> dict:
    from reviewer.records import RecordError
    from reviewer.timecodes import format_timestamp, parse_seconds

    times = []
    for key in ("start_time", "end_time"):
        try:
            times.append(format_timestamp(parse_seconds(entry.get(key))))
        except RecordError:
            times.append(str(entry.get(key)))
    time = "–".join(dict.fromkeys(t for t in times if t))  # one time when start == end
    rest = {key: value for key, value in entry.items() if key not in ("start_time", "end_time")}
    return {"time": time, "text": ", ".join(f"{key}: {_value_text(value)}" for key, value in rest.items())}


def _value_text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else repr(value)
    if isinstance(value, list) and all(not isinstance(entry, dict | list) for entry in value):
        return ", ".join(_value_text(entry) for entry in value)
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)


@register.filter
def as_time(value: str):
    """An ISO time stored as provider text as a datetime (for |date and |naturaltime); the text when it is none."""
    from django.utils.dateparse import parse_datetime

    try:
        return parse_datetime(value or "") or value
    except ValueError:
        return value


@register.filter
def highlight(text: object, query: str) -> str:
    """``text`` escaped, with the words the search ``query`` matches marked (``<mark>``): see reviewer/search.py."""
    return search.parsed(query or "").highlight("" if text is None else str(text))


@register.filter
def duration_text(value) -> str:
    """A timedelta as people say it: "1 h 05 min", "3 min 20 s", "12 s"."""
    seconds = int(value.total_seconds()) if value is not None else 0
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


@register.filter
def share(value) -> str:
    """0.8234 -> '82 %' (one decimal under 10 % and over 99 %, where whole points hide the difference)."""
    if value is None or value == "":
        return "—"
    points = float(value) * 100
    if 0 < points < 10 or 99 < points < 100:
        return f"{points:.1f} %"
    return f"{points:.0f} %"


@register.filter
def share_range(interval) -> str:
    """(0.64, 0.93) -> '64–93 %': an interval of shares, one unit."""
    if not interval:
        return "—"
    low, high = (share(value).removesuffix(" %") for value in interval)
    return f"{low}–{high} %"


@register.simple_tag(takes_context=True)
def event_row(context) -> str:
    """The batch page's row for ``event`` (reviewer/event_rows.py), with the page's columns, role and filter."""
    from reviewer import event_rows

    batch_filter = context.get("filter")
    return event_rows.render(
        context["event"], columns=context.get("columns") or {}, can_review=bool(context.get("can_review")),
        q=batch_filter.q if batch_filter else "", query_string=batch_filter.plain_query if batch_filter else "",
        notice=context.get("notice") or "",
    )  # fmt: skip


@register.simple_tag
def timeline(events, current, duration) -> str:
    """A video's events on a strip (reviewer/event_rows.py): a mark per event, 500 a page."""
    from reviewer import event_rows

    return event_rows.timeline(events, current, duration)


@register.simple_tag
def event_fields_list(event) -> str:
    """The event's other provider fields and its overlay as a definition list (reviewer/event_rows.py)."""
    from reviewer import event_rows

    return event_rows.fields(event)
