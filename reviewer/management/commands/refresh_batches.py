"""``manage.py refresh_batches [--loop SECONDS]``: re-sync every unfinished fetched batch."""

from __future__ import annotations

import time
from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError

from reviewer import fetch
from reviewer.models import TERMINAL_BATCH_STATUSES, Batch, SyncOutcome, SyncTrigger


class Command(BaseCommand):
    help = (
        "Re-sync every batch that has a source, is not finished and is still at the provider. "
        "With --loop, repeat every SECONDS until interrupted."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--loop", type=float, metavar="SECONDS", help="repeat, waiting SECONDS between rounds")

    def handle(self, *args: object, **options: object) -> None:
        interval = options["loop"]
        if interval is not None and interval <= 0:
            raise CommandError("--loop needs a number of seconds above 0.")
        try:
            while True:
                self.refresh_once()
                if interval is None:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def refresh_once(self) -> None:
        batches = (
            Batch.objects.filter(source__isnull=False, gone_upstream=False, sync_paused=False)
            .exclude(status__in=TERMINAL_BATCH_STATUSES)
            .select_related("source")
            .order_by("id")
        )
        count = 0
        for batch in batches:
            count += 1
            run = fetch.fetch_batch(batch.source, batch.provider_batch_id, SyncTrigger.REFRESH)
            if run.outcome == SyncOutcome.SUCCEEDED:
                self.stdout.write(fetch.summary(run))
            else:
                self.stderr.write(f"{batch.source.name} {batch.provider_batch_id}: {' '.join(run.error.split())}")
        if not count:
            self.stdout.write("No unfinished batch to refresh.")
