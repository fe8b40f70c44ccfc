"""reviewer/providers/http.py: error bodies of every shape, retries, timeouts, secrets."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from reviewer.providers import http
from reviewer.providers.http import ProviderError, error_from_response, parse_error_body
from reviewer.providers.twelvelabs import TwelveLabsClient
from tests.conftest import TL_KEY
from tests.fakes.server import Reply, delayed
from tests.fakes.twelvelabs import TIMED_BATCH, error, timed_lines

LONG = "x" * 500


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"code":"resource_not_exist","message":"No batch.","docs_url":"https://d"}', "application/json",
         ("resource_not_exist", "No batch.")),
        (b'{"error":{"code":"internal_error","message":"Boom."}}', "application/json", ("internal_error", "Boom.")),
        (b'{"detail":"Batch not found"}', "application/json", (None, "Batch not found")),
        (b'{"detail":[{"loc":["body","video_ids"],"msg":"field required"},{"loc":["query","x"],"msg":"bad"}]}',
         "application/json", (None, "body.video_ids: field required; query.x: bad")),
        (b'{"message":"Something odd"}', "application/json", (None, "Something odd")),
        (b'{"error":"upstream unavailable"}', "application/json", (None, "upstream unavailable")),
        (b"Service temporarily down", "text/plain", (None, "Service temporarily down")),
        (b"<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>", "text/html",
         (None, "502 Bad Gateway")),
        (b"<html><head><style>p{color:red}</style><script>x()</script></head><body><p>Down &amp; out</p></body>",
         "text/html", (None, "Down & out")),
        (LONG.encode(), "text/plain", (None, "x" * 199 + "…")),
        (b"", "", (None, "")),
        (b'"just a string"', "application/json", (None, "just a string")),
    ],
)  # fmt: skip
def test_it_reads_error_bodies_of_every_shape(body, content_type, expected):
    assert parse_error_body(body, content_type) == expected


def _response(status: int, body: bytes, content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response._content_consumed = True
    response.headers["Content-Type"] = content_type
    return response


@pytest.mark.parametrize(
    ("status", "words", "permanent"),
    [
        (400, "refused the request for batch b1", True),
        (401, "refused the API key", True),
        (403, "refused the API key", True),
        (404, "has no batch b1", True),
        (409, "refused the request", True),
        (408, "refused the request", False),
        (429, "rate limiting", False),
        (500, "server error", False),
        (503, "server error", False),
    ],
)
def test_it_turns_statuses_into_specific_messages(status, words, permanent):
    exc = error_from_response(_response(status, b'{"code":"c1","message":"Detail."}'), provider="P", what="batch b1")
    assert words in exc.message
    assert f"(HTTP {status} c1: Detail)" in exc.message
    assert (exc.status, exc.code, exc.permanent) == (status, "c1", permanent)


def test_it_retries_a_429_honouring_retry_after(twelvelabs_fake):
    twelvelabs_fake.add_batch(TIMED_BATCH, timed_lines())
    too_many = error(429, "too_many_requests", "Slow down.")
    too_many.headers["Retry-After"] = "1"
    twelvelabs_fake.inject("batch", too_many)
    started = time.monotonic()
    record = TwelveLabsClient(twelvelabs_fake.base_url, TL_KEY).get_batch(TIMED_BATCH)
    assert record.provider_batch_id == TIMED_BATCH
    assert twelvelabs_fake.calls_to("batch") == 2
    assert time.monotonic() - started >= 1


def test_it_gives_up_after_bounded_retries_with_the_last_answer(twelvelabs_fake):
    twelvelabs_fake.inject("batch", Reply(502, b"<html><title>Bad Gateway</title></html>", {"Content-Type": "text/html"}),
                           times=None)  # fmt: skip
    with pytest.raises(ProviderError) as caught:
        TwelveLabsClient(twelvelabs_fake.base_url, TL_KEY).get_batch(TIMED_BATCH)
    assert caught.value.message == "TwelveLabs had a server error (HTTP 502: Bad Gateway): try again later."
    assert caught.value.permanent is False
    assert twelvelabs_fake.calls_to("batch") == http.RETRIES + 1


def test_it_never_retries_other_4xx(twelvelabs_fake):
    with pytest.raises(ProviderError) as caught:
        TwelveLabsClient(twelvelabs_fake.base_url, TL_KEY).get_batch(TIMED_BATCH)
    assert caught.value.status == 404
    assert caught.value.permanent
    assert twelvelabs_fake.calls_to("batch") == 1


def test_it_times_out_with_a_specific_message(twelvelabs_fake):
    twelvelabs_fake.add_batch(TIMED_BATCH, timed_lines())
    twelvelabs_fake.inject("batch", delayed(1.0), times=None)
    client = TwelveLabsClient(twelvelabs_fake.base_url, TL_KEY, timeout=(1, 0.2))
    with pytest.raises(ProviderError) as caught:
        client.get_batch(TIMED_BATCH)
    assert caught.value.message == "TwelveLabs did not answer within 0.2 s (read timed out); try again later."
    assert caught.value.permanent is False
    assert caught.value.status is None


def test_it_reports_a_refused_connection():
    with pytest.raises(ProviderError) as caught:
        TwelveLabsClient("http://127.0.0.1:9/v1.3", TL_KEY).get_batch(TIMED_BATCH)  # nothing listens on port 9
    assert caught.value.message == "Could not connect to TwelveLabs at 127.0.0.1:9 (connection refused)."
    assert caught.value.permanent is False


def test_it_reports_a_body_that_is_not_json(twelvelabs_fake):
    twelvelabs_fake.inject("batch", Reply(200, b"<<garbage>> {", {"Content-Type": "application/json"}))
    with pytest.raises(ProviderError, match=r"not JSON \(HTTP 200, application/json\): <<garbage>> \{"):
        TwelveLabsClient(twelvelabs_fake.base_url, TL_KEY).get_batch(TIMED_BATCH)


def test_it_times_every_call_out_by_default(monkeypatch):
    seen = {}

    def fake_send(self, request, **kwargs):
        seen.update(kwargs)
        raise requests.ConnectionError("stop here")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", fake_send)
    monkeypatch.setattr(http, "DEFAULT_TIMEOUT", (5, 30))
    with pytest.raises(ProviderError):
        TwelveLabsClient("https://api.example.com/v1.3", TL_KEY).get_batch(TIMED_BATCH)
    assert seen["timeout"] == (5, 30)


def test_it_keeps_the_key_out_of_messages_and_logs(twelvelabs_fake, caplog):
    caplog.set_level(logging.DEBUG)
    # A careless server (or proxy) echoing the key it was sent.
    twelvelabs_fake.inject("batch", error(401, "api_key_invalid", f"The key {TL_KEY} is not valid."), times=None)
    with pytest.raises(ProviderError) as caught:
        TwelveLabsClient(twelvelabs_fake.base_url, TL_KEY).get_batch(TIMED_BATCH)
    assert "refused the API key" in caught.value.message
    assert "[redacted]" in caught.value.message
    # A key requests itself refuses (a pasted newline) ends up in requests' own message.
    with pytest.raises(ProviderError) as invalid:
        TwelveLabsClient(twelvelabs_fake.base_url, TL_KEY + "\n").get_batch(TIMED_BATCH)
    for exc in (caught.value, invalid.value):
        assert TL_KEY not in str(exc)
        assert TL_KEY not in repr(exc.args)
        assert exc.__cause__ is None
    assert caplog.records  # urllib3 and our debug lines were captured...
    assert TL_KEY not in caplog.text  # ...and none of them holds the key
    assert TL_KEY not in repr(TwelveLabsClient(twelvelabs_fake.base_url, TL_KEY))


def _prepared() -> requests.PreparedRequest:
    return requests.Request("GET", "https://api.example.com/v1.3/x", headers={"x-api-key": TL_KEY}).prepare()


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (requests.ConnectTimeout("slow dns"), "Could not connect to P at api.example.com within 5 s"),
        (requests.ReadTimeout("read timed out"), "P did not answer within 30 s (read timed out)"),
        (requests.exceptions.RetryError("too many 503"), "P kept failing; gave up after 3 retries."),
        (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(10 bytes read)"),
         "The connection to P broke while reading its answer (the answer was cut short)."),
        (requests.ConnectionError("Failed to establish a new connection: [Errno -2] Name or service not known')"),
         "Could not connect to P at api.example.com (name or service not known)."),
        (requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0), "P answered with something that is not JSON."),
        (requests.exceptions.InvalidURL("bad"), "The request to P failed (InvalidURL: bad)."),
    ],
)  # fmt: skip
def test_it_turns_every_requests_exception_into_a_provider_error(exc, message):
    exc.request = _prepared()
    error = http.error_from_exception(exc, provider="P", timeout=(5, 30))
    assert isinstance(error, ProviderError)
    assert error.message.startswith(message)
    assert (error.status, error.permanent) == (None, False)


def test_it_retries_what_can_succeed_later_and_bounds_the_waiting():
    retry = http.make_retry()
    assert (retry.total, retry.connect, retry.status) == (http.RETRIES,) * 3
    assert {"GET", "POST"} <= retry.allowed_methods  # NomadicML's bulk POST is a read
    assert {408, 429, 500, 502, 503, 504} <= retry.status_forcelist
    assert not {400, 401, 403, 404, 409, 422} & retry.status_forcelist
    assert retry.respect_retry_after_header
    assert retry.retry_after_max * http.RETRIES <= 120  # the worst total wait of one call, in seconds
    assert retry.raise_on_status is False  # the last answer's body becomes the message


def test_the_key_is_not_sent_on_to_another_host_a_redirect_names(nomadic_fake):
    """requests strips Authorization on such redirects, not the custom x-api-key header."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from reviewer.providers.nomadicml import NomadicMLClient
    from tests.conftest import NM_KEY
    from tests.fakes.server import Reply

    seen: list[dict] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(dict(self.headers))
            body = b'{"status": "completed", "videos": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        elsewhere = f"http://127.0.0.1:{server.server_address[1]}/status"
        nomadic_fake.inject("status", Reply(302, b"", {"Location": elsewhere}))
        client = NomadicMLClient(nomadic_fake.base_url, NM_KEY)
        try:
            client.get_status("b1")
        except Exception:  # what the other host answers does not matter here
            pass
        finally:
            client.close()
    finally:
        server.shutdown()
    assert seen, "the redirect was not followed"
    assert not any(value == NM_KEY for headers in seen for value in headers.values())
