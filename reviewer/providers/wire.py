"""Small validators shared by the provider parsers: wire JSON in, typed values out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from reviewer.records import RecordError

MAX_INT_DIGITS = 30  # an id, a count or a time never needs more; Python refuses over 4,300 with a ValueError
MAX_INT = 2**31 - 1  # token counts are stored in 32-bit columns on PostgreSQL


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"a {len(digits)}-digit number is too large")
    return int(digits)


def _decoder() -> json.JSONDecoder:
    return json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_bounded_int)


DECODER = _decoder()  # shared by the readers of files and provider answers


def loads(value: str | bytes) -> object:
    """``json.loads`` for untrusted input; raises json.JSONDecodeError or RecordError, nothing else.

    Refuses NaN and Infinity (no database stores them in JSON), integers of more than
    MAX_INT_DIGITS digits, and nesting deep enough to exhaust the stack.
    """
    if isinstance(value, bytes | bytearray):
        value = value.decode("utf-8")  # UnicodeDecodeError is the caller's "not UTF-8"
    try:
        return DECODER.decode(value)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise RecordError("the JSON is nested too deeply") from None
    except (ValueError, OverflowError) as exc:
        raise RecordError(f"invalid JSON: {exc}") from None


def text(obj: dict, key: str, *, required: bool = False) -> str:
    """Return ``obj[key]`` as text ('' when absent or null); numbers are stringified."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise RecordError(f"missing {key!r}")
        return ""
    if isinstance(value, bool | dict | list):
        raise RecordError(f"{key!r} must be text, got {type(value).__name__}")
    return str(value)


def mapping(obj: dict, key: str) -> dict:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{key!r} must be an object, got {type(value).__name__}")
    return value


def number(obj: dict, key: str) -> float | None:
    """Return a finite number, or None when absent/blank; raises RecordError otherwise."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{key!r} must be a number")
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise RecordError(f"{key!r} must be a number, got {str(value)[:40]!r}") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise RecordError(f"{key!r} must be a finite number")
    return result


def integer(obj: dict, key: str) -> int | None:
    """A whole number from 0 to MAX_INT (a count), None when absent; raises RecordError."""
    value = number(obj, key)
    if value is None:
        return None
    if not 0 <= value <= MAX_INT:
        raise RecordError(f"{key!r} must be a count from 0 to {MAX_INT}, got {value:g}")
    return int(value)


def timestamp(obj: dict, key: str) -> datetime | None:
    """Return a datetime from an RFC 3339 string; None when absent or not a date; raises RecordError
    for a date that does not exist or cannot be stored (year 1 at +01:00)."""
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_datetime(value.replace(" UTC", "Z"))
        if parsed is not None and parsed.tzinfo is not None:
            parsed.astimezone(UTC)  # year 1 at +01:00 or 9999-12-31 at -05:00 is not a storable time
    except (ValueError, OverflowError):
        raise RecordError(f"{key!r} is not a time that can be stored: {value[:40]!r}") from None
    return parsed


def require_object(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise RecordError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
