"""All provider HTTP goes through here: timeouts, bounded retries, one exception type.

``ProviderClient`` wraps one ``requests.Session`` from ``make_session``: every call has
a (connect, read) timeout, 408/429/5xx answers and connection errors are retried a
bounded number of times by urllib3's ``Retry`` (``Retry-After`` honoured, waits
capped), and every failure, whatever its shape, becomes a ``ProviderError`` whose
message is fit to show a user and never contains the API key (STYLE.md, convention 4).
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from reviewer import redaction
from reviewer.providers import wire

logger = logging.getLogger(__name__)

# Module-level so every client shares them and tests can shorten them.
DEFAULT_TIMEOUT: tuple[float, float] = (5, 30)  # (connect, read) seconds, on every call
RETRIES = 3
BACKOFF_FACTOR = 0.5  # waits 0, 1, 2 s (plus jitter) between attempts without Retry-After
BACKOFF_JITTER = 0.5
BACKOFF_MAX = 10
# A longer Retry-After is shortened to this: with RETRIES, total waiting per call stays
# under RETRIES * RETRY_AFTER_MAX seconds, short enough for a background job.
RETRY_AFTER_MAX = 30
RETRY_STATUSES = frozenset({408, 429, *range(500, 600)})
# POST is retried because the only POST the clients send (NomadicML's bulk analyses)
# is a read. A client adding a write call must not send it through this session.
RETRY_METHODS = frozenset({"GET", "HEAD", "POST"})

MESSAGE_LIMIT = 200  # characters of a provider's error text kept in a message
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body read (a proxy page can be huge)
MAX_LINE_BYTES = 64 * 1024 * 1024  # one streamed line longer than this is not a result
STREAM_CHUNK = 64 * 1024

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SCRIPT = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


class ProviderError(Exception):
    """A provider call that failed, with a readable message.

    ``status`` is the HTTP status (None when no answer came), ``code`` the provider's
    error code when it sent one, ``permanent`` whether trying again cannot help (a
    refused key, a missing batch, a bad request) as opposed to a rate limit, a server
    error, a timeout or a broken connection.
    """

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.permanent = permanent

    def __str__(self) -> str:
        return self.message

    def redacted(self, secret: str) -> ProviderError:
        """Return this error with ``secret`` removed from the message (a body may echo the key)."""
        # The key without surrounding whitespace: requests quotes a refused header value
        # with its newline escaped. A very short "key" (a test placeholder) is left
        # alone, it would garble words; real keys are long.
        self.message = redaction.redact(self.message, [secret])
        self.args = (self.message,)
        return self


class _TimeoutSession(requests.Session):
    """A Session that applies a default timeout to every call (requests has none)."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.timeout = timeout
        self.secret_headers: tuple[str, ...] = ()

    def request(self, method: str, url: str, *args: object, **kwargs: object) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)

    def rebuild_auth(self, prepared_request, response) -> None:
        """On a redirect to another host, drop every header that carries the key, not only Authorization.

        requests strips Authorization itself; the providers' keys travel in custom headers
        (``x-api-key``), which it would forward to whatever host a redirect names.
        """
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in self.secret_headers:
                prepared_request.headers.pop(name, None)


def make_retry() -> Retry:
    """Return the retry policy shared by both providers (read at call time: tests shorten it)."""
    return Retry(
        total=RETRIES,
        connect=RETRIES,
        # One more try on a read timeout or a connection dropped before the answer: a
        # server slow once is often slow again, and each try costs a full read timeout.
        read=1,
        status=RETRIES,
        other=0,
        allowed_methods=RETRY_METHODS,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_FACTOR,
        backoff_jitter=BACKOFF_JITTER,
        backoff_max=BACKOFF_MAX,
        respect_retry_after_header=True,
        retry_after_max=RETRY_AFTER_MAX,
        # Hand back the last answer once retries run out, so its body becomes the message.
        raise_on_status=False,
    )


def make_session(headers: dict[str, str], *, timeout: tuple[float, float] | None = None) -> requests.Session:
    """Return a Session with ``headers`` on every call, a default timeout and the retry policy."""
    session = _TimeoutSession(timeout or DEFAULT_TIMEOUT)
    session.headers.update({"User-Agent": f"reviewer {requests.utils.default_user_agent()}", **headers})
    session.secret_headers = tuple(headers)  # never sent on to another host (rebuild_auth)
    adapter = HTTPAdapter(max_retries=make_retry())
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class ProviderClient:
    """Base of the provider clients: one session, and every failure as a ProviderError.

    Subclasses set ``provider`` (a name for messages) and ``auth_header``.
    """

    provider = "provider"
    auth_header = "x-api-key"

    def __init__(self, base_url: str, api_key: str, *, timeout: tuple[float, float] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout or DEFAULT_TIMEOUT
        self._secret = api_key
        self.session = make_session({self.auth_header: api_key}, timeout=self.timeout)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"  # never the key

    def close(self) -> None:
        self.session.close()

    def url(self, *segments: str) -> str:
        """Return the URL of a path built from ``segments``, each quoted as one path segment."""
        return self.base_url + "".join("/" + quote(segment, safe="") for segment in segments)

    @contextmanager
    def translated_errors(self) -> Iterator[None]:
        """Turn any requests exception into a ProviderError, and keep the key out of messages."""
        try:
            yield
        except ProviderError as exc:
            raise exc.redacted(self._secret) from None
        except requests.RequestException as exc:
            error = error_from_exception(exc, provider=self.provider, timeout=self.timeout)
            raise error.redacted(self._secret) from None

    def request(
        self, method: str, url: str, *, what: str, params: dict | None = None, json_body: object = None,
        stream: bool = False,
    ) -> requests.Response:  # fmt: skip
        """Return the response (status < 400); raises ProviderError.

        ``what`` names the resource for messages ("batch 68f4…"). With ``stream`` the body
        is left unread; read it with ``iter_lines``.
        """
        with self.translated_errors():
            response = self.session.request(method, url, params=params, json=json_body, stream=stream)
            logger.debug("%s %s -> %s", method, urlsplit(url).path, response.status_code)
            if response.status_code >= 400:
                with response:
                    raise error_from_response(response, provider=self.provider, what=what, secrets=[self._secret])
            return response

    def get_json(self, url: str, *, what: str, params: dict | None = None) -> object:
        """Return the decoded JSON of a GET; raises ProviderError."""
        return self.decode_json(self.request("GET", url, what=what, params=params), what=what)

    def post_json(self, url: str, body: object, *, what: str, params: dict | None = None) -> object:
        """Return the decoded JSON of a POST with a JSON body; raises ProviderError."""
        return self.decode_json(self.request("POST", url, what=what, params=params, json_body=body), what=what)

    def decode_json(self, response: requests.Response, *, what: str) -> object:
        """Return the body as JSON; raises ProviderError when it is not JSON."""
        with response, self.translated_errors():
            content = response.content
            try:
                return wire.loads(content)  # no NaN, no 5,000-digit numbers, no stack-deep nesting
            except (ValueError, UnicodeDecodeError):
                content_type = response.headers.get("Content-Type", "unknown type")
                _, detail = parse_error_body(content[:ERROR_BODY_LIMIT], content_type)
                raise ProviderError(
                    f"{self.provider} answered the request for {what} with something that is not JSON "
                    f"(HTTP {response.status_code}, {content_type}): {detail or 'empty body'}",
                    status=response.status_code,
                ) from None

    def iter_lines(self, response: requests.Response, *, what: str) -> Iterator[bytes]:
        """Yield the body's lines (without line ends) as they arrive; raises ProviderError.

        Hand-rolled over ``iter_content`` because ``Response.iter_lines`` yields phantom
        empty lines at chunk boundaries, which would shift the line numbers reported for
        malformed lines. A connection that breaks mid-way raises: it is a failed read,
        not a shorter body.
        """
        count = 0
        with response, self.translated_errors():
            pending = b""
            try:
                for chunk in response.iter_content(STREAM_CHUNK):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        count += 1
                        yield line.removesuffix(b"\r")
                    if len(pending) > MAX_LINE_BYTES:
                        raise ProviderError(f"{self.provider} sent a line over {MAX_LINE_BYTES} bytes in {what}.")
            except requests.RequestException as exc:
                timed_out = isinstance(exc, requests.Timeout) or _wraps_read_timeout(exc)
                reason = f"nothing came for {self.timeout[1]:g} s" if timed_out else _short_reason(exc)
                raise ProviderError(f"The {what} from {self.provider} broke after line {count} ({reason}).") from None
            if pending:
                yield pending.removesuffix(b"\r")


def error_from_response(
    response: requests.Response, *, provider: str, what: str = "", secrets: list[str] | tuple[str, ...] = ()
) -> ProviderError:
    """Return the ProviderError for an answer with status >= 400, its body parsed in any shape.

    The body is redacted of ``secrets`` before it is parsed and cut (a cut could split a key).
    """
    status = response.status_code
    body = _read_capped(response)
    code, detail = parse_error_body(body, response.headers.get("Content-Type", ""), secrets=secrets)
    parts = " ".join(part for part in (f"HTTP {status}", code) if part)
    reason = f"({parts}{': ' + detail.rstrip('.') if detail else ''})"
    if status in (401, 403):
        message = f"{provider} refused the API key {reason}: check the source's API key and its access."
    elif status == 404:
        message = f"{provider} has no {what or 'such resource'} {reason}."
    elif status == 429:
        message = f"{provider} is rate limiting this API key and retries ran out {reason}: try again later."
    elif status >= 500:
        message = f"{provider} had a server error {reason}: try again later."
    else:
        message = f"{provider} refused the request for {what or 'this resource'} {reason}."
    return ProviderError(message, status=status, code=code, permanent=status < 500 and status not in (408, 429))


def error_from_exception(
    exc: requests.RequestException, *, provider: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT
) -> ProviderError:
    """Return the ProviderError for a requests exception (none of them is permanent)."""
    host = urlsplit(exc.request.url).netloc if exc.request is not None and exc.request.url else provider
    if isinstance(exc, requests.ConnectTimeout):
        message = f"Could not connect to {provider} at {host} within {timeout[0]:g} s (connection timed out)."
    elif isinstance(exc, requests.Timeout) or _wraps_read_timeout(exc):
        message = f"{provider} did not answer within {timeout[1]:g} s (read timed out); try again later."
    elif isinstance(exc, requests.exceptions.RetryError):
        message = f"{provider} kept failing; gave up after {RETRIES} retries."
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        message = f"The connection to {provider} broke while reading its answer ({_short_reason(exc)})."
    elif isinstance(exc, requests.ConnectionError):
        message = f"Could not connect to {provider} at {host} ({_short_reason(exc)})."
    elif isinstance(exc, requests.exceptions.JSONDecodeError):
        message = f"{provider} answered with something that is not JSON."
    else:
        message = f"The request to {provider} failed ({type(exc).__name__}: {_short_reason(exc)})."
    return ProviderError(message)


def parse_error_body(
    body: bytes, content_type: str = "", *, secrets: list[str] | tuple[str, ...] = ()
) -> tuple[str | None, str]:
    """Return (provider error code or None, readable text) from an error body of any shape.

    Understands TwelveLabs' flat ``{"code","message"}`` and nested ``{"error":{…}}``,
    FastAPI's ``{"detail": "…"}`` and ``{"detail": [{"loc","msg"}]}``, ``{"message"}``,
    ``{"error": "…"}``, plain text and HTML pages (their title, else their text).
    """
    text = redaction.redact(body.decode("utf-8", errors="replace").strip(), secrets)
    if not text:
        return None, ""
    try:
        data = wire.loads(text)
    except ValueError:  # not JSON (RecordError is one too: nested too deeply, NaN)
        data = None
    if data is not None:
        code, detail = _json_error(data)
        if code or detail:
            return code, _clip(detail)
    if "html" in content_type.lower() or text[:15].lower().startswith(("<!doctype html", "<html")):
        return None, _clip(_html_text(text))
    return None, _clip(text)


def _json_error(data: object) -> tuple[str | None, str]:
    if isinstance(data, str):
        return None, data
    if isinstance(data, list):
        return None, "; ".join(_validation_message(item) for item in data)
    if not isinstance(data, dict):
        return None, ""
    code = _text(data.get("code"))
    for key in ("error", "detail"):
        nested = data.get(key)
        if isinstance(nested, dict | list):
            nested_code, detail = _json_error(nested)
            return code or nested_code, detail
    message = next((_text(data.get(key)) for key in ("message", "detail", "error", "msg") if data.get(key)), "")
    return code, message


def _validation_message(item: object) -> str:
    """One FastAPI validation error: ``body.video_ids: field required``."""
    if not isinstance(item, dict):
        return _text(item)
    location = ".".join(str(part) for part in item.get("loc") or [])
    message = _text(item.get("msg") or item.get("message"))
    return f"{location}: {message}" if location else message


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _html_text(page: str) -> str:
    title = _TITLE.search(page)
    if title and title.group(1).strip():
        return html.unescape(title.group(1))
    return html.unescape(_TAG.sub(" ", _SCRIPT.sub(" ", page)))


def _clip(text: str | None) -> str:
    collapsed = " ".join((text or "").split())
    return collapsed if len(collapsed) <= MESSAGE_LIMIT else collapsed[: MESSAGE_LIMIT - 1].rstrip() + "…"


def _read_capped(response: requests.Response) -> bytes:
    """Return at most ERROR_BODY_LIMIT bytes of the body, streamed or not; b'' if unreadable."""
    data = b""
    try:
        for chunk in response.iter_content(8192):
            data += chunk
            if len(data) >= ERROR_BODY_LIMIT:
                break
    except (requests.RequestException, RuntimeError):
        pass  # the status alone still makes a message
    return data[:ERROR_BODY_LIMIT]


def _wraps_read_timeout(exc: requests.RequestException) -> bool:
    # A read timeout reaches us as ConnectionError(ReadTimeoutError) while streaming a
    # body, and as ConnectionError(MaxRetryError(reason=ReadTimeoutError)) once retried.
    return any(
        isinstance(arg, ReadTimeoutError) or isinstance(getattr(arg, "reason", None), ReadTimeoutError)
        for arg in exc.args
    )


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    errno = _ERRNO.search(text)
    if errno:
        return errno.group(1).strip().lower()
    if "Connection aborted" in text or "RemoteDisconnected" in text or "closed connection" in text:
        return "the connection was closed"
    if any(sign in text for sign in ("IncompleteRead", "InvalidChunkLength", "Connection broken", "prematurely")):
        return "the answer was cut short"
    return _clip(text) or type(exc).__name__
