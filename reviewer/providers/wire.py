"""Small validators shared by the provider parsers: wire JSON in, typed values out."""

from __future__ import annotations

from datetime import datetime

from django.utils.dateparse import parse_datetime

from reviewer.records import RecordError


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
    except (TypeError, ValueError):
        raise RecordError(f"{key!r} must be a number, got {value!r}") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise RecordError(f"{key!r} must be a finite number")
    return result


def integer(obj: dict, key: str) -> int | None:
    value = number(obj, key)
    return None if value is None else int(value)


def timestamp(obj: dict, key: str) -> datetime | None:
    """Return an aware datetime from an RFC 3339 string; None when absent or unparsable."""
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value.replace(" UTC", "Z"))
    except ValueError:
        return None


def require_object(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise RecordError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
