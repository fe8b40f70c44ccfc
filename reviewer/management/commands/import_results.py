import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reviewer import fetch, importers
from reviewer.models import Provider, SyncOutcome


class Command(BaseCommand):
    help = "Import a results file: TwelveLabs JSONL, NomadicML JSON or NomadicML CSV (auto-detected)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--provider", choices=Provider.values)
        parser.add_argument(
            "--batch-id",
            help="batch id of a file whose rows name none (TwelveLabs JSONL, web-app CSV; default: the file name)",
        )
        parser.add_argument(
            "--mode", choices=["time_based_metadata", "general"],
            help="analysis mode of a TwelveLabs JSONL file of a batch not cached yet (default: the cached batch's)",
        )  # fmt: skip
        parser.add_argument("--skip-invalid", action="store_true", help="import valid records, report the rest")
        parser.add_argument("--json", action="store_true", help="print the sync record as JSON")

    def handle(self, *args, **options):
        path: Path = options["file"]
        try:
            binary = path.open("rb")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        with binary:
            run = importers.import_file(
                binary,
                name=path.name,
                provider=options["provider"],
                batch_id=options["batch_id"],
                mode=options["mode"],
                skip_invalid=options["skip_invalid"],
            )
        # The same output as fetch_batch: one JSON object, or one summary line.
        if options["json"]:
            self.stdout.write(json.dumps(run.as_dict()))
        for bad in run.malformed_lines:
            self.stderr.write(f"{path.name}:{bad['line']}: {bad['error']}")
        if run.outcome != SyncOutcome.SUCCEEDED:
            hint = " Use --skip-invalid to import the valid records." if run.malformed_lines else ""
            raise CommandError(" ".join(run.error.split()) + hint)
        if not options["json"]:
            self.stdout.write(fetch.summary(run))
