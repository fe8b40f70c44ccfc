"""``manage.py fetch_batch SOURCE BATCH_ID``: fetch one batch into the cache, now."""

from __future__ import annotations

import json
from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError

from reviewer import fetch
from reviewer.models import Source, SyncOutcome, SyncTrigger


class Command(BaseCommand):
    help = "Fetch a batch's results from its provider into the cache (exit status 1 when the sync fails)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("source", help="the source's name (see add_source)")
        parser.add_argument("batch_id")
        parser.add_argument("--json", action="store_true", help="print the sync record as one JSON object")

    def handle(self, *args: object, **options: object) -> None:
        source = Source.objects.filter(name=options["source"]).first()
        if source is None:
            raise CommandError(f"No source named {options['source']!r}: add it with add_source.")
        run = fetch.fetch_batch(source, options["batch_id"], SyncTrigger.FETCH)
        if options["json"]:
            self.stdout.write(json.dumps(run.as_dict()))
        for bad in run.malformed_lines:
            self.stderr.write(f"line {bad['line']}: {bad['error']}")
        if run.outcome != SyncOutcome.SUCCEEDED:
            raise CommandError(" ".join(run.error.split()))  # one line, whatever the provider sent
        if not options["json"]:
            self.stdout.write(fetch.summary(run))
