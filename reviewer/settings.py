"""Settings for reviewer, read from environment variables (see README, "Settings")."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from reviewer.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (README: Settings).")
    SECRET_KEY = "development-only-insecure-key-do-not-use-in-production"

# Fernet key for provider API keys at rest. Defaults to one derived from SECRET_KEY,
# so rotating SECRET_KEY without setting this makes stored API keys unreadable.
ENCRYPTION_KEY = env_str("ENCRYPTION_KEY", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",  # runserver too serves static files through WhiteNoise (Range requests: videos seek)
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "csp",
    "ninja",  # the API docs' scripts and styles from static files, not a CDN (the CSP allows only 'self')
    "reviewer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes documents
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a login while its username/IP is locked out
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "reviewer.urls"
WSGI_APPLICATION = "reviewer.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "reviewer.context_processors.roles",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'reviewer.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A sync and several reviewers write at once: WAL lets readers go on while one
    # writes, IMMEDIATE takes the write lock at BEGIN (no lock-upgrade deadlocks), and
    # the timeout makes a writer wait instead of failing with "database is locked".
    # reviewer/sqlite: write transactions take turns fairly (a decision is not starved
    # by a long import's chunks).
    DATABASES["default"]["ENGINE"] = "reviewer.sqlite"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20, minimum=1),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "batch_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Thumbnails stored so the archive outlives the provider (reviewer/media.py). The default
# storage is the file system under MEDIA_ROOT; for S3 and others set STORAGES["default"]
# to a django-storages backend. Served only to logged-in users, by the app itself.
MEDIA_ROOT = env_str("MEDIA_ROOT", str(BASE_DIR / "media"))
# Downloads from addresses inside this network (loopback, private ranges) are refused
# unless this is set: a provider's URL must not make the server fetch internal services.
MEDIA_FETCH_PRIVATE_HOSTS = env_bool("MEDIA_FETCH_PRIVATE_HOSTS", False)

# Uploaded result files above this size are refused (bytes).
MAX_UPLOAD_SIZE = env_int("MAX_UPLOAD_SIZE", 200 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Items per page on the batch page.
ITEMS_PER_PAGE = env_int("ITEMS_PER_PAGE", 25, minimum=1)

# A watched batch that is not finished re-syncs at most this often (seconds).
AUTO_SYNC_SECONDS = env_int("AUTO_SYNC_SECONDS", 30, minimum=1)

# API requests per token per minute (reviewer/api); more are answered 429 with Retry-After.
API_RATE_LIMIT = f"{env_int('API_RATE_LIMIT', 600, minimum=1)}/m"

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto, redirect http to https,
# and tell browsers to use https only (README: "Running in production").
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain http
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# No inline script or style anywhere (htmx is configured not to inject styles or eval).
# Thumbnails come from the providers' CDNs, so images may load from any http(s) host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "https:", "http:", "data:"],
        # Videos play from the providers' signed URLs: HLS through hls.js (its requests,
        # and a blob: MediaSource) and MP4 natively.
        "media-src": [SELF, "https:", "http:", "blob:"],
        "connect-src": [SELF, "https:", "http:"],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# Failed logins: after LOGIN_FAILURE_LIMIT failures for one username from one address,
# that pair is locked out for LOGIN_COOLOFF_MINUTES (django-axes).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Trusted reverse proxies in front that append to X-Forwarded-For: the client's address
# for login throttling is then the PROXY_COUNT-th entry from the right (reviewer/client_ip.py).
PROXY_COUNT = env_int("PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "reviewer.client_ip.client_ip"
AXES_VERBOSE = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Every line is redacted of the provider keys this process handled (reviewer/redaction.py).
    "filters": {
        "redact_keys": {"()": "reviewer.redaction.RedactingFilter"},
        "quiet_403": {"()": "reviewer.log_filters.ForbiddenWithoutTraceback"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_keys", "quiet_403"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},  # it logs every successful login at INFO
}
