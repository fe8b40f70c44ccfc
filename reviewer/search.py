"""Full-text search: the words of an event, folded, in an index of each database.

Text is folded in Python (case and accents dropped, "Piéton" -> "pieton") and cut into
words of letters and digits. The stored documents (``Event.search_text``,
``Event.search_note``, ``Item.search_text``) and the queries are folded the same way,
so SQLite and PostgreSQL agree on what matches:

- SQLite: an FTS5 table over the two event columns, kept in step by triggers
  (migration 0015);
- PostgreSQL: a GIN index on their ``tsvector`` ('simple' configuration: no stemming,
  no stop words, so every word counts as typed).

A query's words match in any order; the last one also matches as a prefix ("pedes"
finds "pedestrian"), while a phrase in double quotes matches its words in a row.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.lookups import In
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_WORD = re.compile(r"[^\W_]+")
_NOT_WORD = re.compile(r"[\W_]+")
_QUERY_PART = re.compile(r'"([^"]*)"?|([^\s"]+)')
MAX_TERMS = 16  # more words than anyone types; keeps a pasted paragraph from building a huge query


def fold(text: str) -> str:
    """``text`` in lower case without accents, its words separated by single spaces."""
    if not text:
        return ""
    if text.isascii():  # most text: a byte table is several times faster than the regular expression
        return b" ".join(text.encode().translate(_ASCII_FOLD).split()).decode()
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return _NOT_WORD.sub(" ", text).strip()


# ASCII letters lower-cased, digits kept, every other byte a space (what _NOT_WORD separates).
_ASCII_FOLD = bytes(
    ord(chr(byte).lower()) if chr(byte).isascii() and chr(byte).isalnum() else 32 for byte in range(256)
)


def _values(value) -> list[str]:
    """The text of a JSON value's leaves (metadata values, not their keys)."""
    if isinstance(value, dict):
        return [text for child in value.values() for text in _values(child)]
    if isinstance(value, list):
        return [text for child in value for text in _values(child)]
    if value is None or isinstance(value, bool):
        return []
    return [str(value)]


def item_document(item) -> str:
    """An item's searchable words (video name, ids, summary; an Item or an ItemRecord), padded with spaces."""
    return f" {fold(' '.join((item.video_name, item.provider_item_id, item.custom_id, item.text)))} "


def event_document(event, item_words: str) -> str:
    """An event's searchable words: its label, category, analysis, metadata values, then its item's."""
    own = " ".join((event.label, event.category, event.ai_analysis, *_values(event.metadata)))
    return f"{fold(own)} {item_words.strip()}".strip()


def reindex(items) -> None:
    """Recompute the search words of ``items`` (a queryset) and of their events, 500 items at a time.

    The sync, the import and the decisions keep the words in step; this fills them for
    rows written otherwise (the migration that added them, tests writing rows directly).
    """
    item_model = items.model
    event_model = item_model._meta.get_field("events").related_model
    ids = list(items.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), 500):
        chunk = list(item_model.objects.filter(pk__in=ids[start : start + 500]))
        for item in chunk:
            item.search_text = item_document(item)
        item_model.objects.bulk_update(chunk, ["search_text"])
        words = {item.pk: item.search_text for item in chunk}
        fields = ("pk", "item_id", "label", "category", "ai_analysis", "metadata", "note")
        events = list(event_model.objects.filter(item_id__in=words).only(*fields))
        for event in events:
            event.search_text = event_document(event, words[event.item_id])
            event.search_note = fold(event.note)
        event_model.objects.bulk_update(events, ["search_text", "search_note"], batch_size=500)


@dataclass(frozen=True)
class Query:
    """A parsed search: words that must all appear, and phrases that must appear as typed."""

    words: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Query:
        words: list[str] = []
        phrases: list[tuple[str, ...]] = []
        for phrase, word in _QUERY_PART.findall(text or ""):
            if phrase:
                if folded := tuple(fold(phrase).split()):
                    phrases.append(folded)  # a quoted single word matches whole, never as a prefix
            else:
                words.extend(fold(word).split())
        words = list(dict.fromkeys(words))[:MAX_TERMS]
        return cls(tuple(words), tuple(phrases[:MAX_TERMS]))

    def __bool__(self) -> bool:
        return bool(self.words or self.phrases)

    @property
    def prefix(self) -> str:
        """The word matched as a prefix: the last word typed outside quotes."""
        return self.words[-1] if self.words else ""

    def fts5(self) -> str:
        """The FTS5 MATCH expression (every term quoted: no FTS5 syntax can come from the user)."""
        terms = [f'"{word}"' for word in self.words[:-1]]
        if self.words:
            terms.append(f'"{self.prefix}"*')
        terms += ['"' + " ".join(phrase) + '"' for phrase in self.phrases]
        return " ".join(terms)

    def tsquery(self) -> str:
        """The PostgreSQL to_tsquery text (words are letters and digits only: nothing to escape)."""
        terms = list(self.words[:-1])
        if self.words:
            terms.append(f"{self.prefix}:*")
        terms += [" <-> ".join(phrase) for phrase in self.phrases]
        return " & ".join(f"({term})" for term in terms)

    def substrings(self) -> list[str]:
        """What a document padded with spaces must contain (items: short texts, scanned without an index)."""
        terms = [f" {word} " for word in self.words[:-1]]
        if self.words:
            terms.append(f" {self.prefix}")
        return terms + [" " + " ".join(phrase) + " " for phrase in self.phrases]

    def highlight(self, text: str) -> SafeString:
        """``text`` escaped, with the words this query matches in <mark>."""
        if not text or not self:
            return escape(text or "")
        exact = set(self.words[:-1]) | {word for phrase in self.phrases for word in phrase}
        parts, last = [], 0
        for match in _WORD.finditer(text):
            folded = fold(match.group())
            if folded in exact or (self.prefix and folded.startswith(self.prefix)):
                parts += [escape(text[last : match.start()]), "<mark>", escape(match.group()), "</mark>"]
                last = match.end()
        parts.append(escape(text[last:]))
        return mark_safe("".join(parts))  # noqa: S308 - every piece of text is escaped above


@lru_cache(maxsize=64)
def parsed(text: str) -> Query:
    """``Query.parse`` for templates, which highlight many fields with one query."""
    return Query.parse(text)


def event_q(query: Query, prefix: str = "") -> Q:
    """Events matching ``query`` (``prefix``: the path to the event, e.g. "events__").

    The matching ids come from one uncorrelated subquery. The id is compared as
    ``id + 0``: as a bare column, SQLite drove the whole query from that list (one
    primary-key lookup per match for every item of a page: 18 s at 100,000 events).
    """
    if connection.vendor == "postgresql":
        sql = (
            "SELECT id FROM reviewer_event WHERE to_tsvector('simple', search_text || ' ' || search_note)"
            " @@ to_tsquery('simple', %s)"
        )
        matching = RawSQL(sql, [query.tsquery()])
    else:
        matching = RawSQL("SELECT rowid FROM reviewer_event_fts WHERE reviewer_event_fts MATCH %s", [query.fts5()])
    return Q(In(F(f"{prefix}id") + Value(0), matching))


def item_q(query: Query, prefix: str = "") -> Q:
    """Items whose own words (name, ids, summary) match ``query``."""
    condition = Q()
    for term in query.substrings():
        condition &= Q(**{f"{prefix}search_text__contains": term})
    return condition
