"""``manage.py worker``: the background worker (django-tasks' ``db_worker``) that survives database trouble.

``db_worker`` exits on the first database error in its polling loop ("database is
locked" while a long import writes on SQLite, PostgreSQL restarting), and background
syncs and imports then stop until someone restarts it. This command restarts it after
such an error, waiting longer each time (1 s, 2 s, … at most a minute), and logs why.
"""

from __future__ import annotations

import logging
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

logger = logging.getLogger(__name__)

MAX_DELAY = 60.0


class Command(BaseCommand):
    help = "Run the background worker; after a database error it logs, waits (backing off) and starts again."

    def add_arguments(self, parser):
        parser.add_argument("--batch", action="store_true", help="run the queued tasks, then exit")
        parser.add_argument("--max-restarts", type=int, default=None, help="give up after this many restarts")

    def handle(self, *args, **options):
        delay, restarts = 1.0, 0
        worker_options = ["--no-reload"] + (["--batch", "--no-startup-delay"] if options["batch"] else [])
        while True:
            started = time.monotonic()
            try:
                call_command("db_worker", *worker_options)
                return  # a normal exit: --batch done, or stopped by a signal
            except DatabaseError as exc:
                restarts += 1
                if options["max_restarts"] is not None and restarts > options["max_restarts"]:
                    raise
                if time.monotonic() - started > 10 * MAX_DELAY:
                    delay = 1.0  # it had been running fine for a while: start over from a short wait
                logger.warning("The worker stopped on a database error (%s); starting again in %.0f s.", exc, delay)
                close_old_connections()
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
