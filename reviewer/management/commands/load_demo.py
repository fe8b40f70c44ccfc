from django.core.management.base import BaseCommand

from reviewer import demo


class Command(BaseCommand):
    help = "Load (or refresh) four demo batches. Safe to run again: decisions are kept."

    def handle(self, *args, **options):
        for run in demo.load():
            self.stdout.write(
                f"{run.batch}: {run.items_created} new items, {run.events_created} new events, "
                f"{run.items_unchanged} items unchanged"
            )
