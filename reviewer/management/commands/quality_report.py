"""``manage.py quality_report``: the insights page's numbers, one row per group, as JSON or CSV."""

from __future__ import annotations

import csv
import json

from django.core.management.base import BaseCommand, CommandError

from reviewer import quality
from reviewer.models import Batch


class Command(BaseCommand):
    help = (
        "Precision (approved / (approved + rejected), a person's decisions only) with its 95 %% Wilson interval and "
        "the invalid rate, one row per group, for one batch or all of them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", help="a batch: the provider's batch id (or the dashboard's number)")
        parser.add_argument("--source", help="with --batch: the source's name, when two sources share a batch id")
        parser.add_argument("--by", choices=quality.ALL_GROUPS, default="category", help="what a row is (category)")
        parser.add_argument("--format", choices=("json", "csv"), default="json")

    def handle(self, *args, batch: str | None, source: str | None, by: str, format: str, **options):
        if batch is None and source is not None:
            raise CommandError("--source goes with --batch.")
        events = quality.shown_events(self._batch(batch, source) if batch is not None else None)
        rows = [row.as_dict() for row in quality.table(events, by)]
        if format == "json":
            self.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        writer = csv.DictWriter(self.stdout, fieldnames=quality.COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({name: "" if value is None else value for name, value in row.items()} for row in rows)

    def _batch(self, batch_id: str, source: str | None) -> Batch:
        batches = Batch.objects.filter(provider_batch_id=batch_id)
        if source is not None:
            batches = batches.filter(source__name=source)
        found = list(batches[:2])
        if not found and source is None and batch_id.isascii() and batch_id.isdigit():
            found = list(Batch.objects.filter(pk=int(batch_id))[:1]) if int(batch_id) < 2**63 else []
        if not found:
            raise CommandError(f"No batch {batch_id!r}" + (f" in source {source!r}." if source else "."))
        if len(found) > 1:
            raise CommandError(f"Several sources have a batch {batch_id!r}: name one with --source.")
        return found[0]
