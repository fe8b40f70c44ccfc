"""Keep API keys out of every message the dashboard stores, shows or logs.

A provider may echo the key anywhere: in an error body (before or across the point where
a message is cut), in a field of a results line (then quoted in a malformed-line
message), upper-cased, URL-encoded. ``redact`` removes every form: the key itself in any
letter case, its URL-encoded form, and any run of 8 or more of its characters, so a cut
through the middle of a key cannot leave a usable part. Call it before truncating.

The keys are the ones this process has handled (``remember``: every key set or
decrypted), so the logging filter needs no database.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from urllib.parse import quote, quote_plus

MIN_RUN = 8  # a shorter shared run could be any word; an 8-character piece of a key is not
MASK = "[redacted]"

_known: set[str] = set()
_lock = threading.Lock()


def remember(secret: str) -> None:
    """Redact ``secret`` from now on in this process (a key shorter than MIN_RUN is ignored)."""
    secret = (secret or "").strip()
    if len(secret) >= MIN_RUN:
        with _lock:
            _known.add(secret)


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with every form of every known key (and of ``secrets``) replaced by MASK."""
    if not text:
        return text
    keys = frozenset({key.strip() for key in secrets if key and len(key.strip()) >= MIN_RUN} | _known)
    if not keys:
        return text
    grams = _grams(keys)
    lowered = text.lower()
    secret_at = [False] * len(text)
    for i in range(len(text) - MIN_RUN + 1):
        if lowered[i : i + MIN_RUN] in grams:
            secret_at[i : i + MIN_RUN] = [True] * MIN_RUN
    if not any(secret_at):
        return text
    out, i = [], 0
    while i < len(text):
        if secret_at[i]:
            while i < len(text) and secret_at[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mentions_secret(text: str) -> bool:
    """A fast check (no 8-character pieces): whether ``text`` holds a known key whole, in any case or URL-encoded."""
    if not _known or not text:
        return False
    lowered = text.lower()
    return any(form in lowered for form in _whole_forms(frozenset(_known)))


@lru_cache(maxsize=16)
def _whole_forms(keys: frozenset[str]) -> frozenset[str]:
    return frozenset(form.lower() for key in keys for form in (key, quote(key, safe=""), quote_plus(key)))


@lru_cache(maxsize=16)
def _grams(keys: frozenset[str]) -> frozenset[str]:
    """Every MIN_RUN-character piece of every form of the keys, lower-cased."""
    grams = set()
    for key in keys:
        for form in {key, quote(key, safe=""), quote_plus(key)}:
            lowered = form.lower()
            grams.update(lowered[i : i + MIN_RUN] for i in range(len(lowered) - MIN_RUN + 1))
    return frozenset(grams)


class RedactingFilter(logging.Filter):
    """A logging filter: every record's message with the known keys redacted (settings.LOGGING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _known:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            elif record.exc_text:
                record.exc_text = redact(record.exc_text)
        return True
