import sys

from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from reviewer import exporters, filters
from reviewer.models import Batch


class Command(BaseCommand):
    help = "Export a batch as CSV or JSON with the batch page's filters (stdout by default)."

    def add_arguments(self, parser):
        parser.add_argument("batch_id", help="the provider's batch id")
        parser.add_argument("--source", help="source name, when several sources hold the same batch id")
        parser.add_argument("--format", choices=["csv", "json"], required=True)
        for name in ("approval", "decided", "reason", "status", "severity", "category"):
            parser.add_argument(f"--{name}", action="append", default=[], metavar="VALUE")
        parser.add_argument("--q", default="", help="text search")
        parser.add_argument("--sort", default="")
        parser.add_argument("--output", help="file to write (default: stdout)")
        parser.add_argument(
            "--extended", action="store_true", help="CSV: add Event ID, Provider Approval, Decided By/At, Reason, Note"
        )

    def handle(self, *args, **options):
        batch = self._batch(options["batch_id"], options["source"])
        query = QueryDict(mutable=True)
        for name in ("approval", "decided", "reason", "status", "severity", "category"):
            query.setlist(name, options[name])
        for name in ("q", "sort"):
            if options[name]:
                query[name] = options[name]
        batch_filter, form = filters.parse(query, batch)
        if batch_filter is None:
            raise CommandError(form.error_message())
        if options["format"] == "csv":
            chunks = exporters.csv_rows(batch_filter, extended=options["extended"])
        else:
            chunks = exporters.json_chunks(batch_filter)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                out.writelines(chunks)
        else:
            sys.stdout.writelines(chunks)  # csv rows carry their own \r\n: no newline translation wanted
            sys.stdout.flush()

    def _batch(self, batch_id: str, source: str | None) -> Batch:
        batches = Batch.objects.filter(provider_batch_id=batch_id)
        if source:
            batches = batches.filter(source__name=source)
        found = list(batches[:2])
        if not found:
            raise CommandError(f"No cached batch {batch_id!r}" + (f" in source {source!r}" if source else "") + ".")
        if len(found) > 1:
            raise CommandError(f"Several sources hold batch {batch_id!r}: name one with --source.")
        return found[0]
