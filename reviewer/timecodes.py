"""Event times: provider forms in, seconds kept exactly, display forms out."""

from __future__ import annotations

import math
import re

from reviewer.records import RecordError

MAX_SECONDS = 10 * 365 * 24 * 3600  # ten years of video: beyond it a time is an error, not a moment
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_seconds(value: object) -> float | None:
    """Return seconds from a number, ``"t=61.5"``, ``"HH:MM:SS[.fff]"`` or ``"MM:SS"``.

    Returns None for None or an empty string; raises RecordError for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"time {value!r} is not a number or a timestamp")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise RecordError("time is out of range") from None
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("t="):
            text = text[2:]
        match = _CLOCK.match(text)
        try:
            if match:
                hours, minutes, secs = match.groups()
                seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
            else:
                seconds = float(text)
        except (ValueError, OverflowError):  # not a number, or 5,000 digits of one
            raise RecordError(f"time {value[:40]!r} is not a number or a timestamp") from None
    else:
        raise RecordError(f"time {value!r} is not a number or a timestamp")
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS:
        raise RecordError(f"time {str(value)[:40]!r} is out of range")
    return seconds


def format_timestamp(seconds: float | None) -> str:
    """Return ``MM:SS``, or ``HH:MM:SS`` from one hour on; empty for None."""
    if seconds is None:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"
