"""A real HTTP server on 127.0.0.1 for provider fakes, with faults injectable per test.

A fake app turns a ``Request`` into a ``Reply``. Before answering, the server applies
the faults a test injected for that route: replace the reply (a 401, a 503 page), or
change it (delay it past the client's timeout, cut the stream after N chunks).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    # bytes: sent with Content-Length. An iterable: sent chunked, one chunk per element.
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow server)
    cut_after: int | None = None  # drop the connection after this many chunks

    @classmethod
    def json(cls, value: object, status: int = 200, **headers: str) -> Reply:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json", **headers})


# A fault: a Reply to send instead, or a function changing the app's own reply.
Fault = Reply | Callable[[Reply], Reply]


@dataclass
class _Injected:
    route: str
    fault: Fault
    times: int | None  # None: every time
    skip: int  # let this many matching requests through first


class FakeApp:
    """Base of a provider fake: auth check, fault injection, call log."""

    auth_header = "x-api-key"

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.calls: list[tuple[str, str]] = []  # (route, path) of every request
        self._faults: list[_Injected] = []
        self._lock = threading.Lock()

    def inject(self, route: str, fault: Fault, *, times: int | None = 1, skip: int = 0) -> None:
        """Apply ``fault`` to the next ``times`` requests of ``route`` (None: all), after ``skip``."""
        self._faults.append(_Injected(route, fault, times, skip))

    def calls_to(self, route: str) -> int:
        return sum(1 for name, _ in self.calls if name == route)

    def handle(self, request: Request) -> Reply:
        route, answer = self.route(request)
        with self._lock:
            self.calls.append((route, request.path))
            fault = self._take_fault(route)
        if isinstance(fault, Reply):
            return fault
        reply = self.unauthorized() if request.headers.get(self.auth_header.lower()) != self.api_key else answer()
        return fault(reply) if fault else reply

    def _take_fault(self, route: str) -> Fault | None:
        for injected in self._faults:
            if injected.route != route or injected.times == 0:
                continue
            if injected.skip:
                injected.skip -= 1
                return None
            if injected.times is not None:
                injected.times -= 1
            return injected.fault
        return None

    def route(self, request: Request) -> tuple[str, Callable[[], Reply]]:
        raise NotImplementedError

    def unauthorized(self) -> Reply:
        raise NotImplementedError


def delayed(seconds: float) -> Callable[[Reply], Reply]:
    """A fault: answer only after ``seconds`` (past the client's read timeout)."""
    return lambda reply: replace(reply, delay=seconds)


def cut_after(chunks: int) -> Callable[[Reply], Reply]:
    """A fault: drop the connection after ``chunks`` chunks of a streamed body."""
    return lambda reply: replace(reply, cut_after=chunks)


def stall_after(chunks: int, seconds: float) -> Callable[[Reply], Reply]:
    """A fault: send ``chunks`` chunks of a streamed body, then go quiet for ``seconds``."""

    def fault(reply: Reply) -> Reply:
        def body() -> Iterable[bytes]:
            for count, chunk in enumerate(reply.body):
                if count == chunks:
                    time.sleep(seconds)
                yield chunk

        return replace(reply, body=body())

    return fault


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like a real API
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet test output

    def _answer(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.app.handle(Request(self.command, url.path, parse_qs(url.query), headers, body))
        if reply.delay:
            time.sleep(reply.delay)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if isinstance(reply.body, bytes):
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for count, chunk in enumerate(reply.body):
            if reply.cut_after is not None and count >= reply.cut_after:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, app: FakeApp) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out and hung up is expected here, not a test failure


class FakeServer:
    """Serves ``app`` on 127.0.0.1 (a free port) in a thread; use as a context manager."""

    def __init__(self, app: FakeApp) -> None:
        self.app = app
        self._server = _Server(app)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
