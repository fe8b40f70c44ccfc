"""The batch page's event row, rendered in Python.

A page shows 25 videos with all their events: 500 rows at 20 events a video. As a
template partial (with an include for the provider fields), those rows took about 200 ms
of a 250 ms page at 100,000 events, ten times its database time; this renders the same
markup in a few milliseconds. ``batch_detail.html``'s ``event_row`` partial calls it, so
the page and the row an htmx decision swaps in stay one thing.

Every value from the provider or a person goes through ``escape`` (or ``highlight``,
which escapes); only http(s) URLs become links or images (``safe_url``).
"""

from __future__ import annotations

from functools import lru_cache
from html import escape as _escape

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from reviewer import search
from reviewer.models import Approval, Event
from reviewer.templatetags.reviewer_tags import event_fields, overlay_rows, percent, safe_url, severity_tone

_DECISIONS = (
    (Approval.APPROVED, "Approve", "a", "Approve (a)"),
    (Approval.REJECTED, "Reject", "r", "Reject (r)"),
    (Approval.INVALID, "Invalid", "i", "Invalid (i)"),
)


_APPROVAL_LABELS = dict(Approval.choices)


def escape(value: object) -> str:
    """Django's ``escape`` without its lazy-string wrapper (the same five characters): called 10,000 times a page."""
    return _escape(str(value))


@lru_cache(maxsize=8)
def _url(name: str) -> str:
    """The URL of ``name`` for event ``{}``: reversed once, not once per row."""
    return reverse(name, args=[123456789]).replace("123456789", "{}")


def render(event: Event, *, columns: dict, can_review: bool, q: str, query_string: str, notice: str = "") -> SafeString:
    """One ``<tr class="event">`` of the batch page (see batch_detail.html's event table)."""
    query = search.parsed(q or "")
    pk = event.pk
    out = [
        f'<tr class="event" id="event-{pk}" data-event="{pk}" data-approval="{escape(event.approval)}" tabindex="-1"'
    ]
    if can_review:
        out.append(f' hx-vals=\'{{"revision": "{event.revision}"}}\'')
    out.append(">")
    if can_review:
        out.append(f'<td class="col-select"><input type="checkbox" class="select" name="event" value="{pk}" '
                   'form="bulk-form" aria-label="Select this event"></td>')  # fmt: skip
    if columns.get("thumb"):
        thumb = safe_url(event.thumbnail)
        image = f'<img src="{escape(thumb)}" alt="" loading="lazy" referrerpolicy="no-referrer">' if thumb else ""
        out.append(f'<td class="col-thumb">{image}</td>')
    out.append(_time_cell(event))
    out.append(_event_cell(event, query))
    if columns.get("severity"):
        severity = event.severity
        badge = (f'<span class="badge tone-{severity_tone(severity)}">{escape(severity)}</span>' if severity
                 else '<span class="muted">—</span>')  # fmt: skip
        out.append(f'<td class="col-severity">{badge}</td>')
    if columns.get("confidence"):
        out.append(f'<td class="num col-confidence">{escape(percent(event.confidence))}</td>')
    if columns.get("analysis"):
        out.append(f'<td class="analysis">{query.highlight(event.ai_analysis or "")}{fields(event)}</td>')
    out.append(_approval_cell(event, notice))
    if can_review:
        out.append(_decide_cell(event, query_string))
    out.append("</tr>")
    return mark_safe("".join(out))  # noqa: S308 - every value is escaped above


def timeline(events: list[Event], current: Event | None, duration: float | None) -> SafeString:
    """A video's events on a strip across its duration, coloured by approval (player.js places the marks)."""
    out = ['<div class="timeline" data-timeline']
    if duration:
        out.append(f' data-duration="{duration:.3f}"')
    out.append(' role="group" aria-label="Events on this video\'s timeline">')
    media = _url("event_media")
    for mark in events:
        is_current = " is-current" if current is not None and mark.pk == current.pk else ""
        start = f' data-start="{mark.start_seconds:.3f}"' if mark.start_seconds is not None else ""
        end = f' data-end="{mark.end_seconds:.3f}"' if mark.end_seconds is not None else ""
        when = escape(mark.time_range or "no time")
        what = escape(mark.label or mark.category)
        approval = escape(_APPROVAL_LABELS.get(mark.approval, mark.approval).lower())
        out.append(
            f'<button type="button" class="mark approval-{escape(mark.approval)}{is_current}" data-event="{mark.pk}" '
            f'data-media="{media.format(mark.pk)}"{start}{end} title="{when} · {what} ({approval})" '
            f'aria-label="Watch {when}, {what}, {approval}"></button>'
        )
    out.append("</div>")
    return mark_safe("".join(out))  # noqa: S308 - every value is escaped above


def _time_cell(event: Event) -> str:
    span = event.time_range
    title = f"{event.start_seconds}s – {event.end_seconds}s" if event.start_seconds is not None else ""
    return (f'<td class="time"><span title="{escape(title)}">{escape(span) or "—"}</span><button type="button" '
            f'class="watch" data-open-event="{event.pk}" title="Watch this moment (Enter)" '
            f'aria-label="Watch {escape(span)}">▶</button></td>')  # fmt: skip


def _event_cell(event: Event, query: search.Query) -> str:
    label, category = event.label, event.category
    cell = f'<td class="col-event"><div class="label">{query.highlight(label or category)}</div>'
    if category and label and label != category:
        cell += f'<div class="category">{query.highlight(category)}</div>'
    return cell + "</td>"


def fields(event: Event) -> SafeString:
    """The provider's other fields and the overlay, as a definition list (empty when there are none).

    Also in the event pane and the review card (``_event_fields.html``).
    """
    provided, overlay = event_fields(event), overlay_rows(event)
    if not provided and not overlay:
        return mark_safe("")
    out = ['<dl class="event-fields">']
    for field in provided:
        if field["entries"]:
            entries = "".join(
                "<li>" + (f'<span class="time">{escape(entry["time"])}</span> ' if entry["time"] else "")
                + escape(entry["text"]) + "</li>"
                for entry in field["entries"]
            )  # fmt: skip
            value = f'<ul class="timed">{entries}</ul>'
        elif field["url"]:
            value = (f'<a href="{escape(field["url"])}" target="_blank" rel="noopener noreferrer">'
                     f'{escape(field["text"])}</a>')  # fmt: skip
        else:
            value = escape(field["text"])
        out.append(f"<div><dt>{escape(field['key'])}</dt><dd>{value}</dd></div>")
    out += [
        f'<div class="overlay"><dt>{escape(row["name"])}</dt><dd>{escape(row["text"])}</dd></div>' for row in overlay
    ]
    out.append("</dl>")
    return mark_safe("".join(out))  # noqa: S308 - every value is escaped above


def _decider(event: Event) -> str:
    return event.decided_by.get_username() if event.decided_by is not None else "a deleted user"


def _approval_cell(event: Event, notice: str) -> str:
    if event.decided_at:
        title = f"{_APPROVAL_LABELS.get(event.approval, event.approval)} by {_decider(event)}, {naturaltime(event.decided_at)}"
        if event.reason:
            title += f" · {event.reason}"
        if event.note:
            note = event.note if len(event.note) <= 120 else event.note[:119] + "…"
            title += f" · “{note}”"
    else:
        title = "The provider's value"
    differs = event.approval_differs_from_provider
    if differs:
        title += (
            f" · the provider said {_APPROVAL_LABELS.get(event.provider_approval, event.provider_approval).lower()}"
        )
    marks = ""
    if event.decided_at:
        marks += f'<span class="mark mark-human" role="img" aria-label="decided by {escape(_decider(event))}">●</span>'
    if differs:
        said = escape(_APPROVAL_LABELS.get(event.provider_approval, event.provider_approval).lower())
        marks += f'<span class="mark mark-differs" role="img" aria-label="the provider said {said}">≠</span>'
    if event.note or event.reason:
        kind = "reason" if event.reason else "note"
        marks += f'<span class="mark mark-note" role="img" aria-label="has a {kind}">✎</span>'
    cell = (f'<td class="approval-cell" title="{escape(title)}"><span class="badge approval-{escape(event.approval)}">'
            f'{escape(_APPROVAL_LABELS.get(event.approval, event.approval))}</span><span class="row-marks">{marks}</span>')  # fmt: skip
    if notice:
        cell += f'<div class="stale-notice" role="alert">{escape(notice)}</div>'
    return cell + "</td>"


def _decide_cell(event: Event, query_string: str) -> str:
    decide_url = _url("event_decision").format(event.pk)
    buttons = []
    for value, text, key, title in _DECISIONS:
        pressed = ' aria-pressed="true"' if event.approval == value and event.decided_at else ""
        buttons.append(
            f'<button type="submit" form="decide-form" formaction="{decide_url}" hx-post="{decide_url}" '
            f'name="decision" value="{value}" class="dec dec-{value}" data-key="{key}" title="{title}"{pressed}>'
            f"{text}</button>"
        )
    buttons.append(
        f'<button type="submit" form="decide-form" formaction="{decide_url}" hx-post="{decide_url}" name="decision" '
        'value="pending" class="dec dec-pending" data-key="p" title="Back to pending (p)">Pending</button>'
    )
    note_url = f"{_url('event_note').format(event.pk)}?{escape(query_string)}"
    buttons.append(
        f'<a class="dec dec-note" href="{note_url}" hx-get="{note_url}" hx-target="#dialog-body" hx-swap="innerHTML" '
        'hx-params="none" data-note title="Decide with a reason or a note (c)" aria-label="Reason or note">✎</a>'
    )
    return f'<td class="col-decide"><div class="decide">{"".join(buttons)}</div></td>'
