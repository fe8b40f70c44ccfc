"""The provider registry: one adapter per provider, looked up by ``Batch.provider``.

Adding a provider: a package next to these two with an ``ADAPTER`` (see ``base.Adapter``),
and one line in ``ADAPTERS`` below.
"""

from __future__ import annotations

from reviewer.providers.base import Adapter
from reviewer.providers.nomadicml import ADAPTER as NOMADICML
from reviewer.providers.twelvelabs import ADAPTER as TWELVELABS

ADAPTERS: dict[str, Adapter] = {adapter.name: adapter for adapter in (TWELVELABS, NOMADICML)}

# The model field choices (Source.provider, Batch.provider).
CHOICES: list[tuple[str, str]] = [(adapter.name, adapter.label) for adapter in ADAPTERS.values()]

# Statuses after which no provider changes an item (Item.has_finished reads this without its batch).
TERMINAL_ITEM_STATUSES: frozenset[str] = frozenset().union(*(a.terminal_item_statuses for a in ADAPTERS.values()))
RESULT_ITEM_STATUSES: frozenset[str] = frozenset().union(*(a.result_statuses for a in ADAPTERS.values()))


# Files that do not say whose they are (a get_batch_analysis JSON without "provider", an
# event CSV of a batch not cached) are in NomadicML's documented formats.
FILE_FORMAT_OWNER: Adapter = NOMADICML
# The provider whose saved results stream (JSONL) can be imported.
JSONL_OWNER: Adapter = next(adapter for adapter in ADAPTERS.values() if adapter.reads_jsonl)


def adapter_for(provider: str) -> Adapter:
    """Return the adapter of ``provider``; raises KeyError for an unknown name."""
    return ADAPTERS[provider]
