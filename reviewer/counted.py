"""Numbers counted over many events, kept until what they count changes.

The batch page's chip counts and order, the insights' aggregates and the search's
counts each count or sort every matching event (tens to hundreds of milliseconds at
100,000 events), yet change only with a decision or a sync. They are cached under a
key holding what those change (``data_version``), so a decision, an undo or a sync
makes a new key, and a page opened again, or by a colleague, is not counted again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.db import models

from reviewer.models import Batch, Decision

SECONDS = 600  # an unused key goes after this; a changed one is never read again
T = TypeVar("T")


def data_version(batch: Batch | None = None) -> tuple:
    """What changes with every decision and every sync of ``batch`` (else of any batch).

    A decision adds a row (an undo too), a sync stamps its batch, a deletion drops one.
    """
    decisions = Decision.objects.filter(batch=batch) if batch is not None else Decision.objects.all()
    newest = decisions.order_by("-created_at", "-id").values_list("pk", flat=True).first()  # an index
    batches = Batch.objects.filter(pk=batch.pk) if batch is not None else Batch.objects.all()
    synced = batches.aggregate(synced=models.Max("last_synced_at"), count=models.Count("pk"))
    return newest, synced["synced"], synced["count"]


def remembered(kind: str, parts: tuple, compute: Callable[[], T]) -> T:
    """``compute()``, or what it returned before for the same ``parts`` (which must hold a data version)."""
    key = f"{kind}:" + hashlib.sha256(repr(parts).encode()).hexdigest()
    return cache.get_or_set(key, compute, SECONDS)
