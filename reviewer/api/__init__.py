"""The JSON API under /api/ (django-ninja): token auth, per-token rate limits, errors as ``{"detail": …}``.

A request authenticates with ``Authorization: Bearer <token>`` (a personal token,
reviewer.models.ApiToken) and acts as the token's user, with that user's role. No
session cookie and so no CSRF token: a browser's cookies never authorize an API call.
The schema and the interactive docs are for logged-in people and token holders.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer
from ninja.throttling import SimpleRateThrottle

from reviewer.models import ApiToken

LAST_USED_PRECISION = 60  # seconds: last_used_at is written at most this often per token (one write, not one per call)

UNAUTHORIZED = "Send a valid API token: Authorization: Bearer <token> (create one on the dashboard's API tokens page)."


class TokenAuth(HttpBearer):
    """A personal token; the request then runs as its user."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        row = ApiToken.active(token)
        if row is None:
            return None
        request.user = row.user
        now = timezone.now()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        return row


class TokenRateThrottle(SimpleRateThrottle):
    """API_RATE_LIMIT requests per token (per server process: the cache is the process's own by default)."""

    scope = "token"

    def __init__(self) -> None:
        super().__init__(settings.API_RATE_LIMIT)

    def allow_request(self, request: HttpRequest) -> bool:
        self.num_requests, self.duration = self.parse_rate(settings.API_RATE_LIMIT)  # the setting now, not at import
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str | None:
        token = getattr(request, "auth", None)
        return f"api-rate-{token.pk}" if isinstance(token, ApiToken) else None


TOKEN_AUTH = TokenAuth()


def token_or_login(view):
    """The schema and the docs: for a logged-in person or a token holder (anyone else: log in, or 401)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        # A session login, or the operations' own check of the Authorization header.
        if not request.user.is_authenticated and not TOKEN_AUTH(request):
            if request.path.endswith(".json"):
                return JsonResponse({"detail": UNAUTHORIZED}, status=401)
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    wrapper.login_required = False  # checked here: a token is a login too
    return wrapper


api = NinjaAPI(
    title="reviewer API",
    version="1",
    description=(
        "Batches, videos and events of the review dashboard, with the batch page's filters, and review decisions. "
        "Authenticate with `Authorization: Bearer <token>`; a token acts with its user's role "
        '(viewers read, reviewers also decide and sync). Errors are `{"detail": "…"}`.'
    ),
    urls_namespace="api",
    auth=TOKEN_AUTH,
    throttle=[TokenRateThrottle()],
    docs_decorator=token_or_login,
)


@api.exception_handler(AuthenticationError)
def unauthorized(request: HttpRequest, exc: AuthenticationError):
    return api.create_response(request, {"detail": UNAUTHORIZED}, status=401)


@api.exception_handler(ValidationError)
def invalid(request: HttpRequest, exc: ValidationError):
    """400 with one readable line per bad value, as the batch page's filter errors are."""
    lines = []
    for error in exc.errors:
        parts = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "params")]
        where = ".".join(parts) or "request"
        lines.append(f"{where}: {error.get('msg', 'invalid')}.")
    return api.create_response(request, {"detail": " ".join(lines)}, status=400)


def takes(*names: str):
    """Name the query parameters an operation takes (the others are refused: see ``known_query_only``)."""

    def mark(func):
        func.query_names = frozenset(names)
        return func

    return mark


def checked_input(func):
    """Refuse what no operation can use, before it reaches the database.

    A query parameter the operation does not take (a typo such as ``aproval=`` must not
    silently mean "all"), and text that cannot be stored: a NUL character (PostgreSQL
    refuses it) or a lone surrogate (not encodable as UTF-8).
    """
    known = getattr(func, "query_names", frozenset())

    @wraps(func)
    def wrapper(request: HttpRequest, *args, **kwargs):
        unknown = sorted(set(request.GET) - known)
        if unknown:
            takes_text = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
            raise HttpError(400, f"Unknown query parameter {unknown[0]!r}: {takes_text}.")
        for name, value in kwargs.items():
            model = hasattr(value, "model_dump")  # a body's fields are named as in the body, not under "body."
            if (where := _unstorable(value.model_dump() if model else value, "" if model else name)) is not None:
                raise HttpError(400, f"{where}: contains a character that cannot be stored (NUL or a lone surrogate).")
        return func(request, *args, **kwargs)

    return wrapper


def _unstorable(value, where: str) -> str | None:
    """The path of the first string in ``value`` the database cannot store, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return where
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, part in items:
        if (found := _unstorable(part, f"{where}.{key}" if where else str(key))) is not None:
            return found
    return None


api.add_decorator(checked_input)

from reviewer.api import routes  # noqa: E402,F401  (registers the operations on ``api``)
