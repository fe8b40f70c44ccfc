"""Django's SQLite backend, with write transactions that take turns instead of racing for the lock.

SQLite lets one writer at a time in. A writer that finds the lock taken waits in SQLite's
busy handler, which sleeps and retries, sleeping up to 100 ms between tries. A long
import writes in short committed chunks (reviewer/sync.py) so that others can get in
between them; but the gap between two chunks is a few milliseconds of Python work, and
a reviewer's decision asleep in the busy handler kept missing it: measured, a decision
waited up to a second behind chunks of 150 ms.

So every write transaction (``BEGIN IMMEDIATE``, i.e. every ``transaction.atomic``
block) first takes a turn: an exclusive ``flock`` on a file beside the database, polled
every millisecond or so. A waiting writer then notices within a millisecond that the
lock is free and gets in before the next chunk. Writes in autocommit mode (a single
``UPDATE`` outside a transaction) do not take a turn: they are one statement long.
The turn is given back when the transaction commits or rolls back, or the connection
closes. Waiting longer than the database ``timeout`` raises "database is locked", as
SQLite itself would.
"""

from __future__ import annotations

import fcntl
import os
import time

from django.db import OperationalError
from django.db.backends.sqlite3 import base

POLL_SECONDS = (0.0005, 0.001, 0.002)  # then the last one, until the timeout


class DatabaseWrapper(base.DatabaseWrapper):
    turn_file: int | None = None
    has_turn = False

    def _start_transaction_under_autocommit(self) -> None:
        self._take_turn()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._give_turn()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._give_turn()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._give_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_turn()
            if self.turn_file is not None:
                os.close(self.turn_file)
                self.turn_file = None

    def _take_turn(self) -> None:
        path = self._turn_path()
        if path is None or self.has_turn:
            return
        if self.turn_file is None:
            try:  # readable and writable by whoever may write the database (the umask decides)
                self.turn_file = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise OperationalError(f"cannot open {path} to take a writer's turn: {exc.strerror}") from None
        deadline = time.monotonic() + float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        for attempt in range(1_000_000_000):
            try:
                fcntl.flock(self.turn_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.has_turn = True
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OperationalError("database is locked (waited for another writer's turn)") from None
                time.sleep(POLL_SECONDS[min(attempt, len(POLL_SECONDS) - 1)])

    def _give_turn(self) -> None:
        if self.has_turn:
            self.has_turn = False
            fcntl.flock(self.turn_file, fcntl.LOCK_UN)

    def _turn_path(self) -> str | None:
        """The turn file beside the database; None for an in-memory database (one connection: no turns)."""
        name = str(self.settings_dict["NAME"])
        if not name or name == ":memory:" or "mode=memory" in name:
            return None
        return name + "-writers"
