"""``manage.py worker``: the background worker (django-tasks' ``db_worker``) that survives database trouble.

``db_worker`` exits on the first database error in its polling loop ("database is
locked" while a long import writes on SQLite, PostgreSQL restarting), and background
syncs and imports then stop until someone restarts it. This command restarts it after
such an error, waiting longer each time (1 s, 2 s, … at most a minute), and logs why.

Beside it, a thread undoes every RECLAIM_SECONDS the first loads whose process died
(sync.reclaim_stalled_loads): a worker killed mid-import leaves no half-loaded batch.
Another sends the due webhook deliveries every DELIVER_SECONDS (reviewer/webhooks.py).
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections, connections

from reviewer import sync, webhooks

logger = logging.getLogger(__name__)

MAX_DELAY = 60.0
RECLAIM_SECONDS = 30.0
DELIVER_SECONDS = 1.0
PRUNE_SECONDS = 3600.0


def reclaim_loop(stop: threading.Event) -> None:
    """Reclaim dead loads now and every RECLAIM_SECONDS until ``stop`` is set (its own connection)."""
    try:
        while True:
            try:
                sync.reclaim_stalled_loads()
            except DatabaseError as exc:  # locked or unreachable for now: the next round tries again
                logger.warning("Could not reclaim interrupted loads: %s", exc)
            if stop.wait(RECLAIM_SECONDS):
                return
    finally:
        connections.close_all()


def pause(seconds: float) -> None:
    """The wait before a restart (its own function: tests replace it, not every time.sleep of the process)."""
    time.sleep(seconds)


def deliver_loop(stop: threading.Event) -> None:
    """Send due webhook deliveries until ``stop`` is set (its own connection); a full round goes again at once.

    Once an hour it also drops delivered rows older than webhooks.LOG_DAYS from the log.
    """
    pruned_at = 0.0
    try:
        while not stop.is_set():
            try:
                if time.monotonic() - pruned_at > PRUNE_SECONDS:
                    webhooks.prune()
                    pruned_at = time.monotonic()
                sent = webhooks.deliver_due()
            except DatabaseError as exc:
                logger.warning("Could not send webhook deliveries: %s", exc)
                sent = 0
            if sent < webhooks.BATCH_SIZE and stop.wait(DELIVER_SECONDS):
                return
    finally:
        connections.close_all()


class Command(BaseCommand):
    help = "Run the background worker; after a database error it logs, waits (backing off) and starts again."

    def add_arguments(self, parser):
        parser.add_argument("--batch", action="store_true", help="run the queued tasks, then exit")
        parser.add_argument("--max-restarts", type=int, default=None, help="give up after this many restarts")

    def handle(self, *args, **options):
        stop = threading.Event()
        reclaimer = threading.Thread(target=reclaim_loop, args=(stop,), daemon=True, name="reclaim-loads")
        deliverer = threading.Thread(target=deliver_loop, args=(stop,), daemon=True, name="webhook-deliveries")
        reclaimer.start()
        deliverer.start()
        try:
            self._run(options)
        finally:
            stop.set()
            reclaimer.join(10)
            deliverer.join(20)

    def _run(self, options) -> None:
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
                pause(delay)
                delay = min(delay * 2, MAX_DELAY)
