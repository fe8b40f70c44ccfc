"""Template helpers. Provider text is untrusted: these never mark anything safe."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django import template

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
