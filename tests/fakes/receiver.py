"""A webhook receiver on 127.0.0.1: records every delivery, answers as a test says, and can hang."""

from __future__ import annotations

import threading

from tests.fakes.server import FakeApp, Reply, Request


class Receiver(FakeApp):
    """Answers 200 unless a fault is injected on route "hook"; ``hang()`` holds answers until ``release()``."""

    def __init__(self) -> None:
        super().__init__(api_key="")
        self.received: list[Request] = []
        self.hanging = 0  # requests being held right now
        self._released = threading.Event()
        self._released.set()

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.received.append(request)
            self.calls.append(("hook", request.path))
            fault = self._take_fault("hook")
        if not self._released.is_set():
            with self._lock:
                self.hanging += 1
            self._released.wait(30)
            with self._lock:
                self.hanging -= 1
        if isinstance(fault, Reply):
            return fault
        return Reply(204)

    def hang(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def bodies(self) -> list[bytes]:
        return [request.body for request in self.received]
